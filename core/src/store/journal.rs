//! The journal ↔ session state mapping: what each engine entry and each call is
//! as a [`Record`](super::Record), how a journal replays into a queue, and the snapshot a
//! compaction writes. The session and the engine never see a `Record`.

use uuid::Uuid;

use super::{codec, payload};
use crate::engine::{Entry, JournalEntry};
use crate::protocol::Op;

/// What recovery found in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Ops restored to the queue (after coalescing).
    pub restored_ops: usize,
    /// Calls restored and not yet reported (each is reported by this client).
    pub restored_calls: usize,
    /// Byte ranges of the journal that held no valid record and were discarded.
    pub skipped_ranges: usize,
    pub skipped_bytes: usize,
    /// Accepted records destroyed by damage inside the journal (at least this many;
    /// a torn last append is not counted: its call was never accepted). Calls in
    /// them may be lost; any checkpoint is no longer trusted.
    pub lost_records: usize,
}

impl RecoveryReport {
    /// Damage destroyed accepted records: tell the user, calls may be lost.
    pub fn is_damaged(&self) -> bool {
        self.lost_records > 0
    }
}

/// The device's durable settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub device_id: Uuid,
    pub opted_in: bool,
    pub user_id: Option<String>,
    pub next_seq: u64,
}

/// The state a journal replays to.
#[derive(Debug, Default)]
pub struct Replayed {
    /// `None`: a fresh (or wholly lost) journal.
    pub meta: Option<Meta>,
    /// The queue, sorted by seq.
    pub entries: Vec<Entry>,
    /// One above the highest seq seen.
    pub next_seq: u64,
    /// `(attempt, not_before_ms, granted_at_ms)`.
    pub backoff: (u32, u64, u64),
    /// Cleared when damage was found: a lost op may lie behind any checkpoint.
    pub checkpoints: Vec<(String, u64)>,
    /// `restored_*` are left for the caller (they count the queue it keeps).
    pub recovery: RecoveryReport,
    /// Written in an older format: rewrite it (with a header) before appending.
    pub migrate: bool,
}

/// Replays `bytes`, keeping every intact record. Never fails on corrupt content; fails
/// only on a journal written by a newer repro-line, which it leaves to that version.
pub fn replay(bytes: &[u8]) -> Result<Replayed, crate::Error> {
    // One pass: each record is applied as it is decoded. A journal this version cannot read
    // is refused below, once the whole of it has been seen; what was applied is dropped.
    let mut state = Replaying::default();
    let decoded = codec::decode_each(bytes, &mut state);
    decoded.check_readable()?;
    let mut recovery = RecoveryReport {
        skipped_ranges: decoded.skipped.len(),
        ..RecoveryReport::default()
    };
    for s in &decoded.skipped {
        recovery.skipped_bytes += s.len;
        if !s.is_torn_tail(bytes) {
            recovery.lost_records += s.records_lost(bytes);
        }
    }
    if recovery.is_damaged() {
        // A lost Op record may lie behind any checkpoint: progress markers no longer prove anything.
        state.checkpoints.clear();
    }
    Ok(Replayed {
        meta: state.meta,
        entries: state.entries.into_live(),
        next_seq: state.max_seq + 1,
        backoff: state.backoff,
        checkpoints: state.checkpoints,
        recovery,
        migrate: decoded.needs_migration(),
    })
}

/// The state records are applied to while a journal is read.
#[derive(Default)]
struct Replaying {
    meta: Option<Meta>,
    // Sorted by seq. Ops arrive in seq order and leave mostly from the front, so a vector with
    // a vacated front and binary search replays 10k ops quickly, without BTreeMap's code.
    entries: RecoveredQueue,
    max_seq: u64,
    backoff: (u32, u64, u64),
    checkpoints: Vec<(String, u64)>,
}

// `op`, `merged` and `done` inlined into the decoder (which is out of line): measured 28 B
// gzip smaller in the wasm build than as functions of their own.
impl payload::Apply for Replaying {
    fn meta(&mut self, meta: Meta) {
        self.max_seq = self.max_seq.max(meta.next_seq.saturating_sub(1));
        self.meta = Some(meta);
    }

    #[inline(always)]
    fn op(&mut self, op: Op) {
        self.max_seq = self.max_seq.max(op.seq);
        self.entries.insert(Entry {
            op,
            merged: Vec::new(),
            sent: false,
        });
    }

    #[inline(always)]
    fn done(&mut self, seqs: payload::Seqs<'_>) {
        for s in seqs {
            self.entries.remove(s);
        }
    }

    #[inline(always)]
    fn merged(&mut self, seq: u64, into: u64) {
        self.entries.merge(seq, into);
    }

    fn sent(&mut self, through: u64) {
        for e in self.entries.live_mut() {
            if e.op.seq > through {
                break;
            }
            e.sent = true;
        }
    }

    fn backoff(&mut self, until_ms: u64, attempt: u32, granted_at_ms: u64) {
        self.backoff = (attempt, until_ms, granted_at_ms);
    }

    fn checkpoint(&mut self, key: String, value: u64) {
        set_checkpoint(&mut self.checkpoints, key, value);
    }
}

/// Appends the record of one engine entry.
pub fn encode_entry(buf: &mut Vec<u8>, entry: &JournalEntry) {
    let start = codec::begin_frame(buf);
    match entry {
        JournalEntry::Merged { seq, into } => payload::merged(buf, *seq, *into),
        JournalEntry::Sent { through } => payload::sent(buf, *through),
        JournalEntry::Done { seqs } => payload::done(buf, seqs),
        JournalEntry::Backoff {
            until_ms,
            attempt,
            granted_at_ms,
        } => payload::backoff(buf, *until_ms, *attempt, *granted_at_ms),
    }
    codec::end_frame(buf, start);
}

pub fn encode_meta(buf: &mut Vec<u8>, meta: &Meta) {
    let start = codec::begin_frame(buf);
    payload::meta(
        buf,
        &meta.device_id,
        meta.opted_in,
        meta.user_id.as_deref(),
        meta.next_seq,
    );
    codec::end_frame(buf, start);
}

/// An accepted call.
pub fn encode_op(buf: &mut Vec<u8>, op: &Op) {
    let start = codec::begin_frame(buf);
    payload::op(buf, op);
    codec::end_frame(buf, start);
}

pub fn encode_checkpoint(buf: &mut Vec<u8>, key: &str, value: u64) {
    let start = codec::begin_frame(buf);
    payload::checkpoint(buf, key, value);
    codec::end_frame(buf, start);
}

/// The whole live state as one journal: what a compaction writes.
pub fn snapshot(
    meta: &Meta,
    backoff: (u32, u64, u64),
    queue: &[Entry],
    checkpoints: &[(String, u64)],
) -> Vec<u8> {
    let mut buf = Vec::new();
    codec::encode_header(&mut buf);
    encode_meta(&mut buf, meta);
    let (attempt, until_ms, granted_at_ms) = backoff;
    if attempt != 0 || until_ms != 0 {
        encode_entry(
            &mut buf,
            &JournalEntry::Backoff {
                until_ms,
                attempt,
                granted_at_ms,
            },
        );
    }
    let mut sent_through = None;
    for entry in queue {
        encode_op(&mut buf, &entry.op);
        for m in &entry.merged {
            encode_op(&mut buf, m);
            encode_entry(
                &mut buf,
                &JournalEntry::Merged {
                    seq: m.seq,
                    into: entry.op.seq,
                },
            );
        }
        if entry.sent {
            sent_through = Some(entry.op.seq);
        }
    }
    if let Some(through) = sent_through {
        encode_entry(&mut buf, &JournalEntry::Sent { through });
    }
    for (key, value) in checkpoints {
        encode_checkpoint(&mut buf, key, *value);
    }
    buf
}

pub fn set_checkpoint(checkpoints: &mut Vec<(String, u64)>, key: String, value: u64) {
    match checkpoints.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => checkpoints.push((key, value)),
    }
}

/// The queue being rebuilt from the journal, sorted by seq: `entries[head..]`. `Done` removes
/// from the front, which only vacates a slot (O(1)); other removals are near the tail.
#[derive(Default)]
struct RecoveredQueue {
    entries: Vec<Entry>,
    head: usize,
}

impl RecoveredQueue {
    fn live_mut(&mut self) -> &mut [Entry] {
        &mut self.entries[self.head..]
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        let live = &self.entries[self.head..];
        match live.binary_search_by_key(&seq, |e| e.op.seq) {
            Ok(i) => Ok(self.head + i),
            Err(i) => Err(self.head + i),
        }
    }

    fn insert(&mut self, entry: Entry) {
        match self.position(entry.op.seq) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => {
                // `push` and swaps down (ops arrive in seq order: usually none) instead of
                // `Vec::insert`, and `pop` after swaps up in `remove`: the engine's queue already
                // needs `push`, `pop` and `swap`, so no other `Vec<Entry>` edit is in the wasm build.
                self.entries.push(entry);
                for j in (i + 1..self.entries.len()).rev() {
                    self.entries.swap(j - 1, j);
                }
            }
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let i = self.position(seq).ok()?;
        if i == self.head {
            let entry = std::mem::replace(&mut self.entries[i], Entry::vacant());
            self.head += 1;
            crate::engine::reclaim_vacated(&mut self.entries, &mut self.head);
            return Some(entry);
        }
        for j in i + 1..self.entries.len() {
            self.entries.swap(j - 1, j);
        }
        self.entries.pop()
    }

    /// Op `seq` coalesced into op `into`, if both are queued (else nothing changes).
    fn merge(&mut self, seq: u64, into: u64) {
        if self.position(into).is_err() {
            return;
        }
        if let Some(gone) = self.remove(seq) {
            // Found again: removing `seq` may have shifted (or vacated the slot before) it.
            if let Ok(i) = self.position(into) {
                self.entries[i].absorb(gone);
            }
        }
    }

    fn into_live(mut self) -> Vec<Entry> {
        self.entries.split_off(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OpKind;
    use crate::store::Record;
    use proptest::prelude::*;

    fn op(seq: u64, user: &str) -> Op {
        Op {
            op_id: Uuid::from_u128(u128::from(seq)),
            seq,
            at_ms: 1_000 + seq,
            kind: OpKind::SetUserId {
                user_id: user.into(),
            },
        }
    }

    #[test]
    fn a_snapshot_replays_to_the_state_it_was_taken_from() {
        let meta = Meta {
            device_id: Uuid::from_u128(9),
            opted_in: true,
            user_id: Some("u".into()),
            next_seq: 8,
        };
        let queue = vec![
            Entry {
                op: op(3, "a"),
                merged: vec![op(2, "a")],
                sent: true,
            },
            Entry {
                op: op(5, "b"),
                merged: Vec::new(),
                sent: false,
            },
        ];
        let checkpoints = vec![("rows.csv".to_owned(), 41)];
        let bytes = snapshot(&meta, (2, 9_000, 8_000), &queue, &checkpoints);
        let r = replay(&bytes).expect("a current journal");
        assert_eq!(r.meta, Some(meta));
        assert_eq!(r.entries, queue);
        assert_eq!(r.backoff, (2, 9_000, 8_000));
        assert_eq!(r.checkpoints, checkpoints);
        assert_eq!(r.next_seq, 8);
        assert_eq!(r.recovery, RecoveryReport::default());
    }

    #[test]
    fn engine_entries_replay_as_they_were_meant() {
        let mut buf = Vec::new();
        for s in 1..=4 {
            encode_op(&mut buf, &op(s, "a"));
        }
        encode_entry(&mut buf, &JournalEntry::Merged { seq: 2, into: 3 });
        encode_entry(&mut buf, &JournalEntry::Sent { through: 3 });
        encode_entry(&mut buf, &JournalEntry::Done { seqs: vec![1] });
        let r = replay(&buf).expect("an older journal");
        let seqs: Vec<(u64, usize, bool)> = r
            .entries
            .iter()
            .map(|e| (e.op.seq, e.merged.len(), e.sent))
            .collect();
        assert_eq!(seqs, [(3, 1, true), (4, 0, false)]);
        assert_eq!(r.next_seq, 5);
        assert_eq!(r.meta, None, "no device yet");
    }

    /// Replay applies records as it decodes them; the same journal read as [`Record`]s
    /// (`codec::decode_all`) and folded over a map gives the same state, damage or not.
    fn replayed_by_a_fold_over_the_records(bytes: &[u8]) -> Replayed {
        use std::collections::BTreeMap;
        let mut meta = None;
        let mut queue: BTreeMap<u64, Entry> = BTreeMap::new();
        let (mut max_seq, mut backoff, mut checkpoints) = (0, (0, 0, 0), Vec::new());
        for record in codec::decode_all(bytes).records {
            match record {
                Record::Meta {
                    device_id,
                    opted_in,
                    user_id,
                    next_seq,
                } => {
                    max_seq = max_seq.max(next_seq.saturating_sub(1));
                    meta = Some(Meta {
                        device_id,
                        opted_in,
                        user_id,
                        next_seq,
                    });
                }
                Record::Op(op) => {
                    max_seq = max_seq.max(op.seq);
                    let entry = Entry {
                        op,
                        merged: Vec::new(),
                        sent: false,
                    };
                    queue.insert(entry.op.seq, entry);
                }
                Record::Done { seqs } => seqs.iter().for_each(|s| drop(queue.remove(s))),
                Record::Merged { seq, into } => {
                    if queue.contains_key(&into) {
                        if let Some(gone) = queue.remove(&seq) {
                            if let Some(e) = queue.get_mut(&into) {
                                e.absorb(gone);
                            }
                        }
                    }
                }
                Record::Sent { through } => {
                    queue.range_mut(..=through).for_each(|(_, e)| e.sent = true)
                }
                Record::Backoff {
                    until_ms,
                    attempt,
                    granted_at_ms,
                } => backoff = (attempt, until_ms, granted_at_ms),
                Record::Checkpoint { key, value } => set_checkpoint(&mut checkpoints, key, value),
            }
        }
        Replayed {
            meta,
            entries: queue.into_values().collect(),
            next_seq: max_seq + 1,
            backoff,
            checkpoints,
            ..Replayed::default()
        }
    }

    fn any_record() -> impl Strategy<Value = Record> {
        let seq = || 0..12u64;
        prop_oneof![
            (any::<bool>(), proptest::option::of("[a-c]{0,2}"), seq()).prop_map(
                |(opted_in, user_id, next_seq)| Record::Meta {
                    device_id: Uuid::from_u128(7),
                    opted_in,
                    user_id,
                    next_seq,
                }
            ),
            (seq(), "[ab]", 0..4u8).prop_map(|(s, user, kind)| {
                let (u, line_user_id, channel_id) =
                    (user.clone(), format!("U{user}"), "1".to_owned());
                let mut o = op(s, &u);
                o.kind = match kind {
                    0 => OpKind::SetUserId { user_id: u },
                    1 => OpKind::LinkLineId {
                        user_id: u,
                        line_user_id,
                        channel_id,
                    },
                    2 => OpKind::UnlinkLineId {
                        user_id: u,
                        line_user_id,
                        channel_id,
                    },
                    _ => OpKind::LinkLineIdToken {
                        user_id: u,
                        id_token: line_user_id.as_str().into(),
                        channel_id,
                    },
                };
                Record::Op(o)
            }),
            proptest::collection::vec(seq(), 0..4).prop_map(|seqs| Record::Done { seqs }),
            (seq(), seq()).prop_map(|(seq, into)| Record::Merged { seq, into }),
            seq().prop_map(|through| Record::Sent { through }),
            (0..3u32, 0..9u64, 0..9u64).prop_map(|(attempt, until_ms, granted_at_ms)| {
                Record::Backoff {
                    until_ms,
                    attempt,
                    granted_at_ms,
                }
            }),
            ("[kl]", 0..5u64).prop_map(|(key, value)| Record::Checkpoint { key, value }),
        ]
    }

    proptest! {
        #[test]
        fn replay_equals_a_fold_over_the_decoded_records(
            records in proptest::collection::vec(any_record(), 0..40),
            flips in proptest::collection::vec((any::<usize>(), 1..=255u8), 0..3),
        ) {
            let mut bytes = Vec::new();
            codec::encode_header(&mut bytes);
            for r in &records {
                codec::encode_into(&mut bytes, r);
            }
            for (at, bits) in flips {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
            let Ok(r) = replay(&bytes) else {
                // Only a flip can make a record type or format this version does not know.
                let d = codec::decode_all(&bytes);
                prop_assert!(d.check_readable().is_err());
                return Ok(());
            };
            let expect = replayed_by_a_fold_over_the_records(&bytes);
            prop_assert_eq!(&r.meta, &expect.meta);
            prop_assert_eq!(&r.entries, &expect.entries);
            prop_assert_eq!(r.next_seq, expect.next_seq);
            prop_assert_eq!(r.backoff, expect.backoff);
            if !r.recovery.is_damaged() {
                prop_assert_eq!(&r.checkpoints, &expect.checkpoints);
            } else {
                prop_assert!(r.checkpoints.is_empty());
            }
        }
    }

    /// Ops leave from the front in batches; coalescing removes at the head or the tail.
    #[test]
    fn a_long_journal_of_delivered_batches_replays_to_what_is_left() {
        let mut buf = Vec::new();
        for s in 1..=20_000 {
            encode_op(&mut buf, &op(s, "a"));
        }
        for batch in 0..199 {
            let seqs = (batch * 100 + 1..=batch * 100 + 100).collect();
            encode_entry(&mut buf, &JournalEntry::Done { seqs });
        }
        encode_entry(
            &mut buf,
            &JournalEntry::Merged {
                seq: 19_901,
                into: 19_902,
            },
        );
        encode_entry(
            &mut buf,
            &JournalEntry::Merged {
                seq: 19_950,
                into: 19_951,
            },
        );
        encode_entry(&mut buf, &JournalEntry::Sent { through: 19_960 });
        let r = replay(&buf).expect("a current journal");
        let seqs: Vec<u64> = r.entries.iter().map(|e| e.op.seq).collect();
        let expect: Vec<u64> = (19_902..=20_000).filter(|s| *s != 19_950).collect();
        assert_eq!(seqs, expect);
        let merged = |seq: u64| {
            let e = r.entries.iter().find(|e| e.op.seq == seq).expect("queued");
            e.merged.iter().map(|m| m.seq).collect::<Vec<_>>()
        };
        assert_eq!(merged(19_902), [19_901]);
        assert_eq!(merged(19_951), [19_950]);
        let sent: Vec<bool> = r.entries.iter().map(|e| e.sent).collect();
        assert!(sent.iter().take(58).all(|s| *s) && sent.iter().skip(58).all(|s| !*s));
        assert_eq!(r.next_seq, 20_001);
    }
}
