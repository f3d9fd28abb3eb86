//! Record payloads in a compact binary form: tag byte, LEB128 integers,
//! length-prefixed UTF-8, raw 16-byte UUIDs. Hand-written rather than serde
//! so the wasm build carries no serde buffering code for the journal (it cost
//! ~40 KB), and so decoding untrusted bytes is a few bounds-checked reads.

use uuid::Uuid;

use super::journal::Meta;
use super::Record;
use crate::protocol::{Op, OpKind};

const META: u8 = 1;
const OP: u8 = 2;
const DONE: u8 = 3;
const MERGED: u8 = 4;
const SENT: u8 = 5;
const BACKOFF: u8 = 6;
const CHECKPOINT: u8 = 7;
/// `BACKOFF` plus the time the wait was granted (older journals hold `BACKOFF`).
const BACKOFF_GRANTED: u8 = 8;

/// Tags this version reads: 0 starts the header frame (`codec::HEADER_FRAME`), the
/// others are records. A format-1 journal holds nothing else.
const KNOWN: std::ops::RangeInclusive<u8> = 0..=BACKOFF_GRANTED;

const SET_USER_ID: u8 = 1;
const LINK: u8 = 2;
const UNLINK: u8 = 3;
/// Protocol v1.1 token link: user ID, ID token, channel ID.
const LINK_ID_TOKEN: u8 = 4;

/// One payload encoder per record type, on borrowed fields: the journal writes engine
/// entries, ops and settings without building (cloning into) a [`Record`] first.
pub(super) fn encode(buf: &mut Vec<u8>, record: &Record) {
    match record {
        Record::Meta {
            device_id,
            opted_in,
            user_id,
            next_seq,
        } => meta(buf, device_id, *opted_in, user_id.as_deref(), *next_seq),
        Record::Op(o) => op(buf, o),
        Record::Done { seqs } => done(buf, seqs),
        Record::Merged { seq, into } => merged(buf, *seq, *into),
        Record::Sent { through } => sent(buf, *through),
        Record::Backoff {
            until_ms,
            attempt,
            granted_at_ms,
        } => backoff(buf, *until_ms, *attempt, *granted_at_ms),
        Record::Checkpoint { key, value } => checkpoint(buf, key, *value),
    }
}

pub(super) fn meta(
    buf: &mut Vec<u8>,
    device_id: &Uuid,
    opted_in: bool,
    user_id: Option<&str>,
    next_seq: u64,
) {
    buf.push(META);
    buf.extend_from_slice(device_id.as_bytes());
    buf.push(u8::from(opted_in));
    match user_id {
        Some(u) => {
            buf.push(1);
            put_str(buf, u);
        }
        None => buf.push(0),
    }
    put_u64(buf, next_seq);
}

pub(super) fn op(buf: &mut Vec<u8>, op: &Op) {
    buf.push(OP);
    buf.extend_from_slice(op.op_id.as_bytes());
    put_u64(buf, op.seq);
    put_u64(buf, op.at_ms);
    // Every kind but `SetUserId` is three strings: user ID, LINE ID (or token), channel.
    let (tag, user_id, rest) = match &op.kind {
        OpKind::SetUserId { user_id } => (SET_USER_ID, user_id, None),
        OpKind::LinkLineId {
            user_id,
            line_user_id,
            channel_id,
        } => (LINK, user_id, Some((line_user_id.as_str(), channel_id))),
        OpKind::UnlinkLineId {
            user_id,
            line_user_id,
            channel_id,
        } => (UNLINK, user_id, Some((line_user_id.as_str(), channel_id))),
        OpKind::LinkLineIdToken {
            user_id,
            id_token,
            channel_id,
        } => (
            LINK_ID_TOKEN,
            user_id,
            Some((id_token.as_str(), channel_id)),
        ),
    };
    buf.push(tag);
    put_str(buf, user_id);
    if let Some((second, channel_id)) = rest {
        put_str(buf, second);
        put_str(buf, channel_id);
    }
}

pub(super) fn done(buf: &mut Vec<u8>, seqs: &[u64]) {
    buf.push(DONE);
    put_u64(buf, seqs.len() as u64);
    for s in seqs {
        put_u64(buf, *s);
    }
}

pub(super) fn merged(buf: &mut Vec<u8>, seq: u64, into: u64) {
    buf.push(MERGED);
    put_u64(buf, seq);
    put_u64(buf, into);
}

pub(super) fn sent(buf: &mut Vec<u8>, through: u64) {
    buf.push(SENT);
    put_u64(buf, through);
}

pub(super) fn backoff(buf: &mut Vec<u8>, until_ms: u64, attempt: u32, granted_at_ms: u64) {
    buf.push(BACKOFF_GRANTED);
    put_u64(buf, until_ms);
    put_u64(buf, u64::from(attempt));
    put_u64(buf, granted_at_ms);
}

pub(super) fn checkpoint(buf: &mut Vec<u8>, key: &str, value: u64) {
    buf.push(CHECKPOINT);
    put_str(buf, key);
    put_u64(buf, value);
}

/// The tag of a payload whose record type this version does not know.
pub(super) fn unknown_tag(bytes: &[u8]) -> Option<u8> {
    bytes.first().copied().filter(|t| !KNOWN.contains(t))
}

/// What each record type does to whoever reads the journal: replay applies it to the state
/// it rebuilds, [`decode`] collects it as a [`Record`]. A record is handed over only once the
/// whole of it has been read, so one cut short or malformed changes nothing.
pub(super) trait Apply {
    fn meta(&mut self, meta: Meta);
    fn op(&mut self, op: Op);
    fn done(&mut self, seqs: Seqs<'_>);
    fn merged(&mut self, seq: u64, into: u64);
    fn sent(&mut self, through: u64);
    fn backoff(&mut self, until_ms: u64, attempt: u32, granted_at_ms: u64);
    fn checkpoint(&mut self, key: String, value: u64);
}

/// Collects records (the native decoder's [`super::codec::decode_all`]).
impl Apply for Vec<Record> {
    fn meta(&mut self, m: Meta) {
        self.push(Record::Meta {
            device_id: m.device_id,
            opted_in: m.opted_in,
            user_id: m.user_id,
            next_seq: m.next_seq,
        });
    }
    fn op(&mut self, op: Op) {
        self.push(Record::Op(op));
    }
    fn done(&mut self, seqs: Seqs<'_>) {
        self.push(Record::Done {
            seqs: seqs.collect(),
        });
    }
    fn merged(&mut self, seq: u64, into: u64) {
        self.push(Record::Merged { seq, into });
    }
    fn sent(&mut self, through: u64) {
        self.push(Record::Sent { through });
    }
    fn backoff(&mut self, until_ms: u64, attempt: u32, granted_at_ms: u64) {
        self.push(Record::Backoff {
            until_ms,
            attempt,
            granted_at_ms,
        });
    }
    fn checkpoint(&mut self, key: String, value: u64) {
        self.push(Record::Checkpoint { key, value });
    }
}

/// `None` unless `bytes` is exactly one well-formed record.
#[cfg(test)]
pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
    let mut records = Vec::new();
    apply(bytes, &mut records)?;
    records.pop()
}

/// Hands the record `bytes` holds to `to`; `None` (and nothing handed over) unless `bytes`
/// is exactly one well-formed record. Decoding straight into the reader's state, without a
/// [`Record`] in between, keeps one walk over the record in the wasm build.
// Strings are read borrowed and copied (and checked to be UTF-8) only once every field of
// the record has been read, so a record cut short frees nothing.
// Out of line: measured 26 B gzip smaller in the wasm build than inlined into replay.
#[inline(never)]
pub(super) fn apply(bytes: &[u8], to: &mut impl Apply) -> Option<()> {
    let mut r = Reader(bytes);
    match r.u8()? {
        META => {
            let device_id = r.uuid()?;
            let opted_in = match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let user_id = match r.u8()? {
                0 => None,
                1 => Some(r.str()?),
                _ => return None,
            };
            let next_seq = r.u64()?;
            r.end()?;
            let user_id = match user_id {
                Some(u) => Some(owned(u)?),
                None => None,
            };
            to.meta(Meta {
                device_id,
                opted_in,
                user_id,
                next_seq,
            });
        }
        OP => {
            let op_id = r.uuid()?;
            let seq = r.u64()?;
            let at_ms = r.u64()?;
            let tag = r.u8()?;
            let user_id = r.str()?;
            let kind = match tag {
                SET_USER_ID => {
                    r.end()?;
                    OpKind::SetUserId {
                        user_id: owned(user_id)?,
                    }
                }
                LINK | UNLINK | LINK_ID_TOKEN => {
                    let (second, channel_id) = (r.str()?, r.str()?);
                    r.end()?;
                    let (user_id, channel_id) = (owned(user_id)?, owned(channel_id)?);
                    let second = owned(second)?;
                    match tag {
                        LINK => OpKind::LinkLineId {
                            user_id,
                            line_user_id: second,
                            channel_id,
                        },
                        UNLINK => OpKind::UnlinkLineId {
                            user_id,
                            line_user_id: second,
                            channel_id,
                        },
                        _ => OpKind::LinkLineIdToken {
                            user_id,
                            id_token: second.into(),
                            channel_id,
                        },
                    }
                }
                _ => return None,
            };
            to.op(Op {
                op_id,
                seq,
                at_ms,
                kind,
            });
        }
        DONE => {
            let n = r.u64()?;
            // Read through once to check it, then again by whoever applies it: no list built.
            let seqs = Seqs(Reader(r.0), n);
            for _ in 0..n {
                r.u64()?;
            }
            r.end()?;
            to.done(seqs);
        }
        MERGED => {
            let (seq, into) = (r.u64()?, r.u64()?);
            r.end()?;
            to.merged(seq, into);
        }
        SENT => {
            let through = r.u64()?;
            r.end()?;
            to.sent(through);
        }
        tag @ (BACKOFF | BACKOFF_GRANTED) => {
            let until_ms = r.u64()?;
            let attempt = u32::try_from(r.u64()?).ok()?;
            // 0: unknown (an older journal's record).
            let granted_at_ms = if tag == BACKOFF { 0 } else { r.u64()? };
            r.end()?;
            to.backoff(until_ms, attempt, granted_at_ms);
        }
        CHECKPOINT => {
            let key = r.str()?;
            let value = r.u64()?;
            r.end()?;
            to.checkpoint(owned(key)?, value);
        }
        _ => return None,
    }
    Some(())
}

/// A string field as a `String`: `None` unless UTF-8 (as `str::from_utf8` judges, without it).
fn owned(bytes: &[u8]) -> Option<String> {
    let mut s = String::with_capacity(bytes.len());
    crate::text::push_utf8(&mut s, bytes).then_some(s)
}

fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u64(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A `Done` record's seqs, already checked to be well-formed.
pub(super) struct Seqs<'a>(Reader<'a>, u64);

impl Iterator for Seqs<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.1 = self.1.checked_sub(1)?;
        self.0.u64()
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// `Some` when every byte was read: a record is exactly its fields.
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let mut shift = 0;
        while shift < 64 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
        None
    }

    fn uuid(&mut self) -> Option<Uuid> {
        Some(Uuid::from_bytes(self.take(16)?.try_into().ok()?))
    }

    /// A length-prefixed string's bytes, borrowed; [`owned`] checks they are UTF-8.
    fn str(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let op = |seq: u64, kind: OpKind| {
            Record::Op(Op {
                op_id: Uuid::from_u128(seq as u128 * 77),
                seq,
                at_ms: 1_795_867_200_123,
                kind,
            })
        };
        vec![
            Record::Meta {
                device_id: Uuid::from_u128(9),
                opted_in: true,
                user_id: Some("ユーザー✓".into()),
                next_seq: 300,
            },
            Record::Meta {
                device_id: Uuid::nil(),
                opted_in: false,
                user_id: None,
                next_seq: 1,
            },
            op(
                1,
                OpKind::SetUserId {
                    user_id: "u".into(),
                },
            ),
            op(
                u64::MAX,
                OpKind::LinkLineId {
                    user_id: "u".into(),
                    line_user_id: "U4af4980629a1b2c3d4e5f60718293a4b".into(),
                    channel_id: "1".into(),
                },
            ),
            op(
                3,
                OpKind::UnlinkLineId {
                    user_id: "".into(),
                    line_user_id: "x".into(),
                    channel_id: "y".into(),
                },
            ),
            Record::Done {
                seqs: vec![1, 2, 128, u64::MAX],
            },
            Record::Done { seqs: vec![] },
            Record::Merged { seq: 5, into: 4 },
            Record::Sent { through: 1 << 40 },
            Record::Backoff {
                until_ms: 0,
                attempt: u32::MAX,
                granted_at_ms: 1 << 42,
            },
            Record::Checkpoint {
                key: "register:/x.csv:1".into(),
                value: 2000,
            },
        ]
    }

    #[test]
    fn an_older_backoff_record_decodes_with_an_unknown_grant_time() {
        let mut buf = vec![BACKOFF];
        put_u64(&mut buf, 5_000);
        put_u64(&mut buf, 3);
        assert_eq!(
            decode(&buf),
            Some(Record::Backoff {
                until_ms: 5_000,
                attempt: 3,
                granted_at_ms: 0
            })
        );
    }

    /// A count larger than the seqs that follow is corruption: refused, whatever it claims.
    #[test]
    fn a_done_record_holds_exactly_its_count_of_seqs() {
        for (count, seqs) in [(u64::MAX, 3), (4, 3), (2, 3), (1, 0)] {
            let mut buf = vec![DONE];
            put_u64(&mut buf, count);
            (0..seqs).for_each(|s| put_u64(&mut buf, 1_000 + s));
            assert_eq!(decode(&buf), None, "count {count}, {seqs} seqs");
        }
        let mut buf = vec![DONE];
        put_u64(&mut buf, 3);
        [5, 300, u64::MAX]
            .iter()
            .for_each(|s| put_u64(&mut buf, *s));
        assert_eq!(
            decode(&buf),
            Some(Record::Done {
                seqs: vec![5, 300, u64::MAX]
            })
        );
    }

    /// A string field that is not UTF-8 (a stray byte, a surrogate, an overlong form) makes
    /// the record unreadable, whichever field it is; a valid multi-byte one reads back.
    #[test]
    fn a_string_field_must_be_utf8() {
        let m = || String::from("MARK");
        let op = |kind: OpKind| {
            Record::Op(Op {
                op_id: Uuid::from_u128(1),
                seq: 1,
                at_ms: 2,
                kind,
            })
        };
        let mut records = vec![
            Record::Meta {
                device_id: Uuid::nil(),
                opted_in: true,
                user_id: Some(m()),
                next_seq: 1,
            },
            Record::Checkpoint { key: m(), value: 1 },
            op(OpKind::SetUserId { user_id: m() }),
        ];
        for i in 0..3 {
            let f = |k| if k == i { m() } else { "a".into() };
            records.push(op(OpKind::LinkLineId {
                user_id: f(0),
                line_user_id: f(1),
                channel_id: f(2),
            }));
            records.push(op(OpKind::UnlinkLineId {
                user_id: f(0),
                line_user_id: f(1),
                channel_id: f(2),
            }));
            records.push(op(OpKind::LinkLineIdToken {
                user_id: f(0),
                id_token: f(1).as_str().into(),
                channel_id: f(2),
            }));
        }
        for record in records {
            let mut buf = Vec::new();
            encode(&mut buf, &record);
            let at = buf.windows(4).position(|w| w == b"MARK").unwrap();
            for bad in [
                [0xff, b'A', b'R', b'K'],
                [0xed, 0xa0, 0x80, b'K'],
                [0xc1, 0x81, b'R', b'K'],
                [b'M', b'A', b'R', 0xc3],
            ] {
                let mut broken = buf.clone();
                broken[at..at + 4].copy_from_slice(&bad);
                assert_eq!(decode(&broken), None, "{record:?} {bad:x?}");
            }
            let mut wide = buf.clone();
            wide[at..at + 4].copy_from_slice("éRK".as_bytes());
            let read = decode(&wide).unwrap();
            let mut again = Vec::new();
            encode(&mut again, &read);
            assert_eq!(again, wide, "{read:?}");
        }
    }

    #[test]
    fn every_record_round_trips_and_rejects_any_truncation_or_extension() {
        for record in samples() {
            let mut buf = Vec::new();
            encode(&mut buf, &record);
            assert_eq!(decode(&buf), Some(record.clone()));
            for cut in 0..buf.len() {
                assert_eq!(decode(&buf[..cut]), None, "{record:?} cut at {cut}");
            }
            let mut longer = buf.clone();
            longer.push(0);
            assert_eq!(decode(&longer), None);
        }
    }
}
