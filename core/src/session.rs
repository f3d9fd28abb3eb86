//! A `Session` is the engine plus its durable state (store, device ID, user
//! ID, opt-in, seq counter) and input validation. Every driver — the native
//! thread, the wasm browser loop — wraps one, so call semantics exist once.
//! It takes the time as an argument and does no network I/O.

use std::collections::VecDeque;

use uuid::Uuid;

use crate::engine::{Action, DropReason, Engine, EngineConfig, Entry, Event};
use crate::protocol::{self, Op, OpKind};
use crate::retry::Outcome;
use crate::store::{codec, Record, Store};
use crate::{validate, Error, StorageError};

/// Compaction starts when the journal is larger than this…
const COMPACT_MIN_BYTES: u64 = 1 << 20;
/// …and larger than this many times the bytes the live queue needs.
const COMPACT_RATIO: u64 = 4;
/// A drained queue is compacted once the journal grew this much since the last
/// compaction, so a small or full disk gets its space back after delivery.
const DRAINED_COMPACT_GROWTH: u64 = 4 << 10;

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

/// One SDK call, for [`Session::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    SetUserId(String),
    SetLineUserId {
        line_user_id: String,
        channel_id: Option<String>,
    },
    UnlinkLineUserId {
        line_user_id: String,
        channel_id: Option<String>,
    },
    /// `linkLineIDToken`: link the LINE user ID in the token's `sub`, verified by the endpoint.
    LinkLineIdToken {
        id_token: protocol::IdToken,
        channel_id: Option<String>,
    },
}

impl Call {
    pub fn link_id_token(id_token: &str, channel_id: Option<&str>) -> Call {
        Call::LinkLineIdToken {
            id_token: id_token.into(),
            channel_id: channel_id.map(str::to_owned),
        }
    }

    pub fn link(line_user_id: &str, channel_id: Option<&str>) -> Call {
        Call::SetLineUserId {
            line_user_id: line_user_id.to_owned(),
            channel_id: channel_id.map(str::to_owned),
        }
    }

    pub fn unlink(line_user_id: &str, channel_id: Option<&str>) -> Call {
        Call::UnlinkLineUserId {
            line_user_id: line_user_id.to_owned(),
            channel_id: channel_id.map(str::to_owned),
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub batch_id: u64,
    pub retry_count: u32,
    pub op_count: usize,
    /// JSON body of `POST /v1/identity/batch`.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Send(Request),
    WaitUntil(u64),
    Idle,
}

pub struct Session {
    engine: Engine,
    store: Box<dyn Store>,
    device_id: Uuid,
    user_id: Option<String>,
    opted_in: bool,
    next_seq: u64,
    default_channel_id: Option<String>,
    rng: u64,
    /// Journal bytes a failed background append could not write yet.
    unwritten: Vec<u8>,
    /// Few keys (one per registered CSV): a Vec is smaller than a map in the wasm build.
    checkpoints: Vec<(String, u64)>,
    recovery: RecoveryReport,
    /// Journal bytes right after the last compaction (0: none yet).
    compacted_len: u64,
    /// See [`Session::hold_done_until_reported`].
    hold_done: bool,
    /// `Done` records of reports not yet handed to the app (journaled by `reported`).
    held_done: Vec<Record>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device_id", &self.device_id)
            .field("pending", &self.engine.pending())
            .field("opted_in", &self.opted_in)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens the session on `store`, restoring every intact op. Never fails on corrupt content.
    pub fn open(
        engine_cfg: EngineConfig,
        default_channel_id: Option<String>,
        mut store: Box<dyn Store>,
    ) -> Result<Session, Error> {
        if let Some(c) = &default_channel_id {
            validate::channel_id(c)?;
        }
        let bytes = store.read_all()?;
        let decoded = codec::decode_all(&bytes);
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
                .filter(|s| !s.is_torn_tail(&bytes))
                .map(|s| s.records_lost(&bytes))
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
                    meta = Some((device_id, opted_in, user_id));
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
        let fresh = meta.is_none();
        let (device_id, opted_in, user_id) = meta.unwrap_or_else(|| (Uuid::new_v4(), true, None));
        // An opted-out device sends nothing, even if the purge's Done records were lost.
        let entries: Vec<Entry> = if opted_in {
            entries.0.into()
        } else {
            Vec::new()
        };
        let mut session = Session {
            engine: Engine::restore(engine_cfg, entries, backoff),
            store,
            device_id,
            user_id,
            opted_in,
            next_seq: max_seq + 1,
            default_channel_id,
            rng: seed_from(Uuid::new_v4()),
            unwritten: Vec::new(),
            checkpoints,
            recovery,
            compacted_len: 0,
            hold_done: false,
            held_done: Vec::new(),
        };
        session.recovery.restored_ops = session.engine.queued_ops();
        session.recovery.restored_calls = session.engine.pending();
        if fresh || migrate || session.recovery.skipped_bytes > 0 {
            // Rewrite now so garbage is not carried forward, the device ID is durable before
            // first use, and an older format is appended to only after it has a header.
            session.compact()?;
        }
        if session.recovery.is_damaged() {
            tracing::error!(
                lost_records = session.recovery.lost_records,
                skipped_bytes = session.recovery.skipped_bytes,
                restored_ops = session.recovery.restored_ops,
                "repro-line journal was damaged: records were lost; kept every intact op"
            );
        } else if session.recovery.skipped_bytes > 0 {
            tracing::warn!(
                skipped_bytes = session.recovery.skipped_bytes,
                restored_ops = session.recovery.restored_ops,
                "repro-line journal ended in a torn append; kept every intact op"
            );
        }
        Ok(session)
    }

    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn device_id(&self) -> Uuid {
        self.device_id
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    pub fn opted_in(&self) -> bool {
        self.opted_in
    }

    pub fn pending_ops(&self) -> usize {
        self.engine.pending()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// `setUserID`: validated, then persisted before this returns.
    pub fn set_user_id(&mut self, now_ms: u64, user_id: &str) -> Result<(), Error> {
        self.apply(now_ms, &[Call::SetUserId(user_id.to_owned())], None)
    }

    /// `linkLineID`: `channel_id` falls back to the default channel.
    pub fn set_line_user_id(
        &mut self,
        now_ms: u64,
        line_user_id: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.apply(now_ms, &[Call::link(line_user_id, channel_id)], None)
    }

    /// `linkLineIDToken`: `channel_id` falls back to the default channel.
    pub fn link_line_id_token(
        &mut self,
        now_ms: u64,
        id_token: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.apply(now_ms, &[Call::link_id_token(id_token, channel_id)], None)
    }

    /// `unlinkLineID`.
    pub fn unlink_line_user_id(
        &mut self,
        now_ms: u64,
        line_user_id: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.apply(now_ms, &[Call::unlink(line_user_id, channel_id)], None)
    }

    /// Accepts several calls all-or-nothing with one append: after a process kill
    /// either every call (and the checkpoint) is stored or none is. Bulk
    /// registration uses the checkpoint to resume without enqueueing a row twice.
    pub fn apply(
        &mut self,
        now_ms: u64,
        calls: &[Call],
        checkpoint: Option<(&str, u64)>,
    ) -> Result<(), Error> {
        let mut user = self.user_id.clone();
        let mut kinds = Vec::with_capacity(calls.len());
        for call in calls {
            kinds.push(match call {
                Call::SetUserId(user_id) => {
                    validate::user_id(user_id)?;
                    user = Some(user_id.clone());
                    OpKind::SetUserId {
                        user_id: user_id.clone(),
                    }
                }
                Call::SetLineUserId {
                    line_user_id,
                    channel_id,
                } => {
                    let (user_id, channel_id) =
                        self.check_link(user.as_deref(), line_user_id, channel_id.as_deref())?;
                    OpKind::LinkLineId {
                        user_id,
                        line_user_id: line_user_id.clone(),
                        channel_id,
                    }
                }
                Call::LinkLineIdToken {
                    id_token,
                    channel_id,
                } => {
                    let sub = validate::id_token(id_token)?;
                    let (user_id, channel_id) =
                        self.check_link(user.as_deref(), &sub, channel_id.as_deref())?;
                    OpKind::LinkLineIdToken {
                        user_id,
                        id_token: id_token.clone(),
                        channel_id,
                    }
                }
                Call::UnlinkLineUserId {
                    line_user_id,
                    channel_id,
                } => {
                    let (user_id, channel_id) =
                        self.check_link(user.as_deref(), line_user_id, channel_id.as_deref())?;
                    OpKind::UnlinkLineId {
                        user_id,
                        line_user_id: line_user_id.clone(),
                        channel_id,
                    }
                }
            });
        }
        if !self.opted_in {
            tracing::debug!(calls = kinds.len(), "opted out: calls ignored");
            kinds.clear();
            user = self.user_id.clone();
        }
        let ops: Vec<Op> = kinds
            .into_iter()
            .zip(self.next_seq..)
            .map(|(kind, seq)| Op {
                op_id: Uuid::now_v7(),
                seq,
                at_ms: now_ms,
                kind,
            })
            .collect();
        let user_changed = user != self.user_id;
        let mut buf = std::mem::take(&mut self.unwritten);
        let keep_from = buf.len();
        if user_changed {
            let meta = Record::Meta {
                device_id: self.device_id,
                opted_in: self.opted_in,
                user_id: user.clone(),
                next_seq: self.next_seq + ops.len() as u64,
            };
            codec::encode_into(&mut buf, &meta);
        }
        for op in &ops {
            codec::encode_into(&mut buf, &Record::Op(op.clone()));
        }
        if let Some((key, value)) = checkpoint {
            codec::encode_into(
                &mut buf,
                &Record::Checkpoint {
                    key: key.to_owned(),
                    value,
                },
            );
        }
        if buf.len() > keep_from {
            if let Err(e) = self.store.append(&buf) {
                buf.truncate(keep_from);
                self.unwritten = buf;
                return Err(e.into());
            }
        }
        self.user_id = user;
        if let Some((key, value)) = checkpoint {
            set_checkpoint(&mut self.checkpoints, key.to_owned(), value);
        }
        self.next_seq += ops.len() as u64;
        for op in ops {
            self.engine.enqueue(op);
        }
        self.persist_journal();
        Ok(())
    }

    /// The last value stored with [`Session::apply`] under `key`.
    pub fn checkpoint(&self, key: &str) -> Option<u64> {
        self.checkpoints
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// `optIn`: persisted; opting out purges the queue (ops in flight still finish).
    pub fn set_opted_in(&mut self, opted_in: bool) -> Result<(), Error> {
        if self.opted_in == opted_in {
            return Ok(());
        }
        self.opted_in = opted_in;
        let mut buf = std::mem::take(&mut self.unwritten);
        codec::encode_into(&mut buf, &self.meta_record());
        if let Err(e) = self.store.append(&buf) {
            self.opted_in = !opted_in;
            return Err(e.into());
        }
        if !opted_in {
            self.engine.purge(DropReason::OptedOut);
            self.persist_journal();
        }
        Ok(())
    }

    pub fn request_flush(&mut self) {
        self.engine.request_flush();
    }

    /// Resumes after `AuthFailed` (the driver calls it when the token changes).
    pub fn resume(&mut self) {
        self.engine.resume();
    }

    /// What the driver should do now.
    pub fn poll(&mut self, now_ms: u64) -> Next {
        let action = self.engine.poll(now_ms);
        self.persist_journal();
        match action {
            Action::Send(batch) => Next::Send(Request {
                batch_id: batch.id,
                retry_count: batch.retry_count,
                op_count: batch.ops.len(),
                body: protocol::encode_batch(&self.device_id, &batch.ops),
            }),
            Action::WaitUntil(t) => Next::WaitUntil(t),
            Action::Idle => Next::Idle,
        }
    }

    /// Feeds a response (or network failure) for `batch_id`.
    pub fn on_outcome(&mut self, now_ms: u64, batch_id: u64, outcome: &Outcome) {
        let jitter = self.next_jitter();
        self.engine.on_outcome(now_ms, batch_id, outcome, jitter);
        self.persist_journal();
        self.maybe_compact();
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.engine.take_events()
    }

    /// Reports become at-least-once across a kill: an op leaves the journal only once
    /// its report was handed to the app. Until the driver calls [`Session::reported`],
    /// its `Done` record is held back, so a kill in between restores the op, which is
    /// sent again (answered `duplicate`: same final state) and reported again.
    /// Without this, a report made just before a kill is never made.
    pub fn hold_done_until_reported(&mut self) {
        self.hold_done = true;
    }

    /// The `Done` records of the events taken so far; give them back to
    /// [`Session::reported`] once those events reached the app.
    pub fn take_held_done(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.held_done)
    }

    /// Journals the removal of ops whose reports reached the app.
    pub fn reported(&mut self, done: Vec<Record>) {
        if done.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.unwritten);
        for record in &done {
            codec::encode_into(&mut buf, record);
        }
        if let Err(e) = self.store.append(&buf) {
            tracing::warn!(error = %e, "repro-line could not persist delivery progress; will retry");
            self.unwritten = buf;
        }
        self.maybe_compact();
    }

    /// A handle to fsync the store outside any lock (native file store only).
    pub fn syncer(&self) -> Option<Box<dyn crate::store::Syncer>> {
        self.store.syncer()
    }

    fn check_link(
        &self,
        user: Option<&str>,
        line_user_id: &str,
        channel_id: Option<&str>,
    ) -> Result<(String, String), Error> {
        validate::line_user_id(line_user_id)?;
        let channel = match channel_id.or(self.default_channel_id.as_deref()) {
            Some(c) => c,
            None => return Err(Error::MissingChannelId),
        };
        validate::channel_id(channel)?;
        let user_id = user.ok_or(Error::UserIdNotSet)?;
        Ok((user_id.to_owned(), channel.to_owned()))
    }

    fn meta_record(&self) -> Record {
        Record::Meta {
            device_id: self.device_id,
            opted_in: self.opted_in,
            user_id: self.user_id.clone(),
            next_seq: self.next_seq,
        }
    }

    /// Writes what the engine journaled. A failure here loses no call: the
    /// bytes are kept and retried with the next append, and every record but
    /// `Op` is safe to lose anyway (see [`Record`]).
    fn persist_journal(&mut self) {
        if !self.engine.has_journal() && self.unwritten.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.unwritten);
        for record in self.engine.take_journal() {
            if self.hold_done && matches!(record, Record::Done { .. }) {
                self.held_done.push(record);
                continue;
            }
            codec::encode_into(&mut buf, &record);
        }
        if buf.is_empty() {
            return;
        }
        if let Err(e) = self.store.append(&buf) {
            tracing::warn!(error = %e, "repro-line could not persist delivery progress; will retry");
            self.unwritten = buf;
        }
    }

    fn maybe_compact(&mut self) {
        if !self.held_done.is_empty() {
            // The snapshot holds only queued ops: it would drop the held ones' records.
            return;
        }
        let len = self.store.byte_len();
        let drained = self.engine.pending() == 0 && !self.engine.has_in_flight();
        if drained && len > self.compacted_len + DRAINED_COMPACT_GROWTH {
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "repro-line journal compaction failed; will retry");
            }
            return;
        }
        if len < COMPACT_MIN_BYTES {
            return;
        }
        let live_estimate = 256 * (self.engine.pending() as u64 + 1);
        if len > COMPACT_RATIO * live_estimate {
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "repro-line journal compaction failed; will retry");
            }
        }
    }

    /// Rewrites the journal as a snapshot of the live state.
    pub fn compact(&mut self) -> Result<(), StorageError> {
        let _ = self.engine.take_journal(); // the snapshot supersedes it
        let mut buf = Vec::new();
        codec::encode_header(&mut buf);
        codec::encode_into(&mut buf, &self.meta_record());
        let (attempt, until_ms, granted_at_ms) = self.engine.backoff();
        if attempt != 0 || until_ms != 0 {
            codec::encode_into(
                &mut buf,
                &Record::Backoff {
                    until_ms,
                    attempt,
                    granted_at_ms,
                },
            );
        }
        let mut sent_through = None;
        for entry in self.engine.entries() {
            codec::encode_into(&mut buf, &Record::Op(entry.op.clone()));
            for m in &entry.merged {
                codec::encode_into(&mut buf, &Record::Op(m.clone()));
                codec::encode_into(
                    &mut buf,
                    &Record::Merged {
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
            codec::encode_into(&mut buf, &Record::Sent { through });
        }
        for (key, value) in &self.checkpoints {
            codec::encode_into(
                &mut buf,
                &Record::Checkpoint {
                    key: key.clone(),
                    value: *value,
                },
            );
        }
        self.store.replace(&buf)?;
        self.unwritten.clear();
        self.compacted_len = buf.len() as u64;
        Ok(())
    }

    fn next_jitter(&mut self) -> f64 {
        // xorshift64*: jitter needs no cryptographic quality, and a crate would add size to the wasm build.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn set_checkpoint(checkpoints: &mut Vec<(String, u64)>, key: String, value: u64) {
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

fn seed_from(id: Uuid) -> u64 {
    let v = id.as_u128();
    ((v >> 64) as u64 ^ v as u64) | 1
}
