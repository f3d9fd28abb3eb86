//! On-disk framing of the append-only log.
//!
//! Why an append-only log and not write-temp-then-rename per call: a call must
//! return in microseconds, and a single `write(2)` of one small frame is all it
//! costs; a rename per call would cost a metadata update each. The log is
//! rewritten (temp + rename) only on compaction.
//!
//! Frame: `b"RL"` | payload length (u32 LE) | CRC-32 of payload (u32 LE) | payload (see `payload.rs`).
//! A torn or corrupted frame is skipped; decoding resynchronises on the next
//! magic whose length and checksum hold, so one bad byte costs one record.
//!
//! A journal starts with a header frame naming its [`FORMAT`] (compaction writes
//! it; every journal is compacted on open when fresh or older). A journal of a
//! newer format, or holding an intact frame of a record type this version does
//! not know, is refused and left untouched: skipping what it cannot read would
//! erase it at the next compaction.

use super::payload::Apply;
use super::Record;
use crate::Error;

/// The journal format this version writes. 0 is the headerless format of the first
/// releases: it is read as is and rewritten with a header on open.
pub const FORMAT: u8 = 1;
/// The header frame of [`FORMAT`], precomputed (the wasm build saves the encoder):
/// magic, length 2, CRC-32 of the payload, payload `[0 (header tag), FORMAT]`.
/// A later format's header may carry more bytes after the format.
const HEADER_FRAME: [u8; 12] = [b'R', b'L', 2, 0, 0, 0, 0x69, 0x22, 0xde, 0x36, 0, FORMAT];

const MAGIC: [u8; 2] = *b"RL";
const HEADER_LEN: usize = 10;
/// Far above any real record (an op is < 2 KiB); a larger length means corruption.
const MAX_PAYLOAD: usize = 1 << 20;

/// CRC-32 (IEEE), the checksum crc32fast computes, from a table built at compile time
/// (crc32fast's 16 KiB of tables cost ~18 KB gzipped in the wasm build; journals are small).
/// Byte by byte from 256 entries natively; four bits at a time from 16 in the wasm, where the
/// 1 KiB table was incompressible data (-1,170 B gzip) and a journal is a few KiB. The nibble
/// form takes about twice as long (BENCHMARKS.md §8).
pub fn crc32(bytes: &[u8]) -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return crc32_bytewise(bytes);
    #[cfg(target_arch = "wasm32")]
    return crc32_nibbles(bytes);
}

/// The table for `bits`-bit steps (8: 256 entries, 4: 16).
const fn crc_table<const N: usize>(bits: u32) -> [u32; N] {
    let mut table = [0u32; N];
    let mut i = 0;
    while i < N {
        let mut c = i as u32;
        let mut k = 0;
        while k < bits {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(any(test, not(target_arch = "wasm32")))]
fn crc32_bytewise(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc_table(8);
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(any(test, target_arch = "wasm32"))]
fn crc32_nibbles(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 16] = crc_table(4);
    !bytes.iter().fold(!0u32, |mut c, &b| {
        c ^= u32::from(b);
        c = TABLE[(c & 15) as usize] ^ (c >> 4);
        TABLE[(c & 15) as usize] ^ (c >> 4)
    })
}

/// Appends one framed record to `buf`.
pub fn encode_into(buf: &mut Vec<u8>, record: &Record) {
    let start = begin_frame(buf);
    super::payload::encode(buf, record);
    end_frame(buf, start);
}

/// Appends the header frame that starts a journal (before its first record).
pub fn encode_header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&HEADER_FRAME);
}

/// Starts a frame: its header, filled in by [`end_frame`] once the payload follows it.
/// A pair of calls rather than a closure: one copy of the framing code in the wasm build.
pub(super) fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 8]);
    start
}

/// Ends the frame [`begin_frame`] started at `start`: the payload's length and checksum.
pub(super) fn end_frame(buf: &mut [u8], start: usize) {
    let payload_len = buf.len() - start - HEADER_LEN;
    let crc = crc32(&buf[start + HEADER_LEN..]);
    // Both fields little endian, side by side: one 8-byte copy.
    let fields = u64::from(payload_len as u32) | u64::from(crc) << 32;
    buf[start + 2..start + 10].copy_from_slice(&fields.to_le_bytes());
}

/// A byte range that did not hold a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub offset: usize,
    pub len: usize,
}

impl Skipped {
    /// A range at the end holding one frame that runs past the end: the last append
    /// was cut short (power loss, or a write that never returned). Its call was never
    /// accepted, so nothing is lost. Any other range is damage to accepted records.
    pub fn is_torn_tail(&self, bytes: &[u8]) -> bool {
        if self.offset + self.len != bytes.len() {
            return false;
        }
        let range = &bytes[self.offset..];
        if range.len() < HEADER_LEN {
            return MAGIC.starts_with(&range[..range.len().min(2)]);
        }
        let len = u32::from_le_bytes([range[2], range[3], range[4], range[5]]) as usize;
        range[..2] == MAGIC && len <= MAX_PAYLOAD && HEADER_LEN + len > range.len()
    }

    /// Records this damaged range held, at least: the frame headers still
    /// recognisable in it, and never fewer than one.
    pub fn records_lost(&self, bytes: &[u8]) -> usize {
        let range = &bytes[self.offset..self.offset + self.len];
        let mut headers = 0;
        for w in range.windows(HEADER_LEN) {
            if w[..2] == MAGIC
                && u32::from_le_bytes([w[2], w[3], w[4], w[5]]) as usize <= MAX_PAYLOAD
            {
                headers += 1;
            }
        }
        headers.max(1)
    }
}

#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    pub skipped: Vec<Skipped>,
    /// The header's format; 0 for a headerless journal.
    pub format: u8,
    /// The tag of the first intact frame whose record type is unknown.
    pub unknown_tag: Option<u8>,
}

impl Decoded {
    /// Refuses a journal this version would misread: a newer format, or an intact
    /// record of an unknown type. The caller must then leave the journal untouched.
    pub fn check_readable(&self) -> Result<(), Error> {
        readable(self.format, self.unknown_tag)
    }

    /// Written by an older format: rewrite it (with a header) before appending.
    pub fn needs_migration(&self) -> bool {
        self.format < FORMAT
    }
}

/// [`Decoded`] without the records: what [`decode_each`] finds besides the records it
/// hands over (so the wasm build, which only replays, has no `Vec<Record>` to drop).
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub skipped: Vec<Skipped>,
    pub format: u8,
    pub unknown_tag: Option<u8>,
}

impl Scan {
    /// See [`Decoded::check_readable`].
    pub fn check_readable(&self) -> Result<(), Error> {
        readable(self.format, self.unknown_tag)
    }

    /// See [`Decoded::needs_migration`].
    pub fn needs_migration(&self) -> bool {
        self.format < FORMAT
    }
}

fn readable(format: u8, unknown_tag: Option<u8>) -> Result<(), Error> {
    if format > FORMAT || unknown_tag.is_some() {
        return Err(Error::JournalTooNew {
            format,
            record_tag: unknown_tag,
        });
    }
    Ok(())
}

/// Decodes every intact frame; never fails and never panics.
pub fn decode_all(bytes: &[u8]) -> Decoded {
    let mut records = Vec::new();
    let scan = decode_each(bytes, &mut records);
    Decoded {
        records,
        skipped: scan.skipped,
        format: scan.format,
        unknown_tag: scan.unknown_tag,
    }
}

/// Decodes every intact frame, handing each record to `to` as it is read (replay applies
/// them without collecting them first); the rest is summed up in the result.
///
/// A position that starts no intact frame is one damaged byte: decoding resumes at the
/// next one, and adjacent damaged bytes make one [`Skipped`] range.
pub(super) fn decode_each(bytes: &[u8], to: &mut impl Apply) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0;
    while pos < bytes.len() {
        match payload_at(bytes, pos) {
            Some(payload) if out.read(payload, to) => pos += HEADER_LEN + payload.len(),
            _ => {
                match out.skipped.last_mut() {
                    Some(last) if last.offset + last.len == pos => last.len += 1,
                    _ => out.skipped.push(Skipped {
                        offset: pos,
                        len: 1,
                    }),
                }
                pos += 1;
            }
        }
    }
    out
}

impl Scan {
    /// Reads one intact frame's payload: a record (handed to `to`), the header, or a record
    /// type this version does not know. `false`: a known type that does not parse, damage.
    fn read(&mut self, payload: &[u8], to: &mut impl Apply) -> bool {
        if super::payload::apply(payload, to).is_some() {
            return true;
        }
        match (payload, super::payload::unknown_tag(payload)) {
            ([0, format, ..], _) => self.format = *format,
            (_, Some(tag)) => {
                self.unknown_tag.get_or_insert(tag);
            }
            _ => return false,
        }
        true
    }
}

/// The payload of the intact frame at `pos`: magic, a plausible length, and its checksum.
fn payload_at(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    let header = bytes.get(pos..pos.checked_add(HEADER_LEN)?)?;
    if header[..2] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[2..6].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[6..10].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(pos + HEADER_LEN..pos + HEADER_LEN + len)?;
    (crc32(payload) == crc).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Op, OpKind};

    fn op(seq: u64) -> Record {
        Record::Op(Op {
            op_id: uuid::Uuid::from_u128(seq as u128),
            seq,
            at_ms: 1_000 + seq,
            kind: OpKind::SetUserId {
                user_id: format!("user{seq}"),
            },
        })
    }

    #[test]
    fn the_precomputed_header_is_a_frame_naming_the_format() {
        let mut framed = Vec::new();
        let start = begin_frame(&mut framed);
        framed.extend_from_slice(&[0, FORMAT]);
        end_frame(&mut framed, start);
        assert_eq!(framed, HEADER_FRAME);
        let d = decode_all(&HEADER_FRAME);
        assert_eq!((d.format, d.records.len(), d.skipped.len()), (FORMAT, 0, 0));
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn both_crc32_forms_match_the_bitwise_definition_on_every_byte_value() {
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in bytes {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for end in 0..all.len() {
            let expect = bitwise(&all[..end]);
            assert_eq!(crc32_bytewise(&all[..end]), expect, "first {end} bytes");
            assert_eq!(crc32_nibbles(&all[..end]), expect, "first {end} bytes");
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        for s in 1..=3 {
            encode_into(&mut buf, &op(s));
        }
        let d = decode_all(&buf);
        assert_eq!(d.records, vec![op(1), op(2), op(3)]);
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn a_flipped_byte_costs_exactly_one_record() {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for s in 1..=5 {
            starts.push(buf.len());
            encode_into(&mut buf, &op(s));
        }
        for (i, start) in starts.iter().enumerate() {
            for offset in [0, 3, 7, 12] {
                let mut bad = buf.clone();
                bad[start + offset] ^= 0x55;
                let d = decode_all(&bad);
                let expect: Vec<Record> = (1..=5).filter(|s| *s != i as u64 + 1).map(op).collect();
                assert_eq!(d.records, expect, "record {i} byte {offset}");
                assert_eq!(d.skipped.len(), 1);
            }
        }
    }

    #[test]
    fn torn_tail_keeps_every_complete_record() {
        let mut buf = Vec::new();
        for s in 1..=3 {
            encode_into(&mut buf, &op(s));
        }
        let last_start = {
            let mut b = Vec::new();
            encode_into(&mut b, &op(1));
            encode_into(&mut b, &op(2));
            b.len()
        };
        for cut in last_start..buf.len() {
            let d = decode_all(&buf[..cut]);
            assert_eq!(d.records, vec![op(1), op(2)], "cut at {cut}");
            assert_eq!(
                d.skipped.iter().map(|s| s.len).sum::<usize>(),
                cut - last_start
            );
        }
    }
}
