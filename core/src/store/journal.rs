//! The journal ↔ session state mapping: what each engine entry and each call is
//! as a [`Record`], how a journal replays into a queue, and the snapshot a
//! compaction writes. The session and the engine never see a `Record`.

use std::collections::VecDeque;

use uuid::Uuid;

use super::{codec, Record};
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
    let decoded = codec::decode_all(bytes);
    decoded.check_readable()?;
    let migrate = decoded.needs_migration();
    let recovery = RecoveryReport {
        restored_ops: 0,
        restored_calls: 0,
        skipped_ranges: decoded.skipped.len(),
        skipped_bytes: decoded.skipped.iter().map(|s| s.len).sum(),
        lost_records: decoded
            .skipped
            .iter()
            .filter(|s| !s.is_torn_tail(bytes))
            .map(|s| s.records_lost(bytes))
            .sum(),
    };
    let mut meta = None;
    // Sorted by seq. Ops arrive in seq order and leave mostly from the front, so a deque with
    // binary search replays 10k ops quickly, without BTreeMap's code in the wasm build.
    let mut entries = RecoveredQueue::default();
    let mut max_seq = 0;
    let mut backoff = (0, 0, 0);
    let mut checkpoints = Vec::new();
    for record in decoded.records {
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
                entries.insert(Entry {
                    op,
                    merged: Vec::new(),
                    sent: false,
                });
            }
            Record::Done { seqs } => {
                for s in seqs {
                    entries.remove(s);
                }
            }
            Record::Merged { seq, into } => {
                if entries.get_mut(into).is_some() {
                    if let Some(gone) = entries.remove(seq) {
                        if let Some(target) = entries.get_mut(into) {
                            target.merged.push(gone.op);
                            target.merged.extend(gone.merged);
                        }
                    }
                }
            }
            Record::Sent { through } => {
                for e in entries.0.iter_mut().take_while(|e| e.op.seq <= through) {
                    e.sent = true;
                }
            }
            Record::Backoff {
                until_ms,
                attempt,
                granted_at_ms,
            } => backoff = (attempt, until_ms, granted_at_ms),
            Record::Checkpoint { key, value } => {
                set_checkpoint(&mut checkpoints, key, value);
            }
        }
    }
    if recovery.is_damaged() {
        // A lost Op record may lie behind any checkpoint: progress markers no longer prove anything.
        checkpoints.clear();
    }
    Ok(Replayed {
        meta,
        entries: entries.0.into(),
        next_seq: max_seq + 1,
        backoff,
        checkpoints,
        recovery,
        migrate,
    })
}

/// Appends the record of one engine entry.
pub fn encode_entry(buf: &mut Vec<u8>, entry: &JournalEntry) {
    let record = match entry {
        JournalEntry::Merged { seq, into } => Record::Merged {
            seq: *seq,
            into: *into,
        },
        JournalEntry::Sent { through } => Record::Sent { through: *through },
        JournalEntry::Done { seqs } => Record::Done { seqs: seqs.clone() },
        JournalEntry::Backoff {
            until_ms,
            attempt,
            granted_at_ms,
        } => Record::Backoff {
            until_ms: *until_ms,
            attempt: *attempt,
            granted_at_ms: *granted_at_ms,
        },
    };
    codec::encode_into(buf, &record);
}

pub fn encode_meta(buf: &mut Vec<u8>, meta: &Meta) {
    codec::encode_into(
        buf,
        &Record::Meta {
            device_id: meta.device_id,
            opted_in: meta.opted_in,
            user_id: meta.user_id.clone(),
            next_seq: meta.next_seq,
        },
    );
}

/// An accepted call.
pub fn encode_op(buf: &mut Vec<u8>, op: &Op) {
    codec::encode_into(buf, &Record::Op(op.clone()));
}

pub fn encode_checkpoint(buf: &mut Vec<u8>, key: &str, value: u64) {
    codec::encode_into(
        buf,
        &Record::Checkpoint {
            key: key.to_owned(),
            value,
        },
    );
}

/// The whole live state as one journal: what a compaction writes.
pub fn snapshot<'a>(
    meta: &Meta,
    backoff: (u32, u64, u64),
    queue: impl IntoIterator<Item = &'a Entry>,
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

/// The queue being rebuilt from the journal, sorted by seq.
#[derive(Default)]
struct RecoveredQueue(VecDeque<Entry>);

impl RecoveredQueue {
    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&seq, |e| e.op.seq)
    }

    fn insert(&mut self, entry: Entry) {
        match self.position(entry.op.seq) {
            Ok(i) => self.0[i] = entry,
            Err(i) => self.0.insert(i, entry),
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        self.position(seq).ok().and_then(|i| self.0.remove(i))
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        self.position(seq).ok().and_then(|i| self.0.get_mut(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OpKind;

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
}
