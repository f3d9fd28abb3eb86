//! A `Session` is the engine plus its durable state (store, device ID, user
//! ID, opt-in, seq counter) and input validation. Every driver — the native
//! thread, the wasm browser loop — wraps one, so call semantics exist once.
//! It takes the time as an argument and does no network I/O.

use uuid::Uuid;

use crate::engine::{DropReason, Engine, Event, JournalEntry, Lent};
use crate::net::Jitter;
use crate::policy::Policy;
use crate::protocol::{self, Op, OpKind, Outcome};
use crate::store::journal::{self, Meta};
use crate::store::{Staged, Store};
use crate::{validate, Error, StorageError};

pub use crate::store::journal::RecoveryReport;

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
    /// Op IDs and jitter need no cryptographic quality (op IDs need uniqueness: a v7 UUID's
    /// millisecond plus 74 bits of this), and a crate would add size to the wasm build.
    rng: Jitter,
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
    held_done: Vec<JournalEntry>,
    /// A [`Compaction`] is begun and not yet finished.
    compacting: bool,
}

/// A compaction begun under the callers' lock by [`Session::begin_compaction`]: its slow
/// part, [`Compaction::write`], runs without the session, and
/// [`Session::finish_compaction`] (under the lock again) swaps the new journal in.
#[derive(Debug)]
pub struct Compaction {
    snapshot: Vec<u8>,
    staged: Staged,
}

impl Compaction {
    /// Writes and fsyncs the snapshot aside. Calls may append to the old journal meanwhile.
    pub fn write(&mut self) {
        if let Err(e) = self.staged.write(&self.snapshot) {
            tracing::warn!(error = %e, "repro-line journal compaction failed; will retry");
        }
    }
}

/// Drops `session` (the error path of [`Session::open_seeded`]'s compaction). Out of line: the
/// wasm build is smaller than with the drop glue LLVM inlines there (-14 B gzip, measured).
#[inline(never)]
fn discard(session: Session) {
    drop(session);
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
    /// [`Session::open_seeded`] with a seed from the OS RNG: the drivers' entry point.
    pub fn open(
        policy: Policy,
        default_channel_id: Option<String>,
        store: Box<dyn Store>,
    ) -> Result<Session, Error> {
        // The bytes as they are (`as_u128` would reorder them): the seed only needs to be random.
        let seed = u128::from_le_bytes(*Uuid::new_v4().as_bytes());
        Session::open_seeded(policy, default_channel_id, store, seed)
    }

    /// Opens the session on `store`, restoring every intact op. Never fails on corrupt content.
    /// All randomness comes from `seed` (a new device ID, op IDs, backoff jitter) and all time
    /// from the callers' `now_ms`, so the same seed and inputs give the same journal and requests.
    pub fn open_seeded(
        policy: Policy,
        default_channel_id: Option<String>,
        mut store: Box<dyn Store>,
        seed: u128,
    ) -> Result<Session, Error> {
        if let Some(c) = &default_channel_id {
            validate::channel_id(c)?;
        }
        let bytes = store.read_all()?;
        let replayed = journal::replay(&bytes)?;
        let fresh = replayed.meta.is_none();
        let replayed_migrate = replayed.migrate;
        // A new device ID takes the seed's own bits (122 random ones, as a v4 UUID): unique across devices.
        let meta = replayed.meta.unwrap_or_else(|| Meta {
            device_id: uuid::Builder::from_random_bytes(seed.to_le_bytes()).into_uuid(),
            opted_in: true,
            user_id: None,
            next_seq: 1,
        });
        // An opted-out device sends nothing, even if the purge's Done records were lost.
        let entries = if meta.opted_in {
            replayed.entries
        } else {
            Vec::new()
        };
        let mut session = Session {
            engine: Engine::restore(policy, entries, replayed.backoff),
            store,
            device_id: meta.device_id,
            user_id: meta.user_id,
            opted_in: meta.opted_in,
            next_seq: replayed.next_seq,
            default_channel_id,
            rng: Jitter::new(((seed >> 64) as u64 ^ seed as u64) | 1),
            unwritten: Vec::new(),
            checkpoints: replayed.checkpoints,
            recovery: replayed.recovery,
            compacted_len: 0,
            hold_done: false,
            held_done: Vec::new(),
            compacting: false,
        };
        session.recovery.restored_ops = session.engine.queued_ops();
        session.recovery.restored_calls = session.engine.pending();
        if fresh || replayed_migrate || session.recovery.skipped_bytes > 0 {
            // Rewrite now so garbage is not carried forward, the device ID is durable before
            // first use, and an older format is appended to only after it has a header.
            if let Err(e) = session.compact() {
                discard(session);
                return Err(e.into());
            }
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
        let mut ops = Vec::with_capacity(calls.len());
        for call in calls {
            ops.push(Op {
                op_id: Uuid::nil(), // drawn below, once every call is valid
                seq: self.next_seq + ops.len() as u64,
                at_ms: now_ms,
                kind: self.op_kind(&mut user, call)?,
            });
        }
        if !self.opted_in {
            tracing::debug!(calls = ops.len(), "opted out: calls ignored");
            ops.clear();
            user = self.user_id.clone();
        }
        let user_changed = user != self.user_id;
        let mut buf = std::mem::take(&mut self.unwritten);
        let keep_from = buf.len();
        if user_changed {
            let meta = Meta {
                device_id: self.device_id,
                opted_in: self.opted_in,
                user_id: user.clone(),
                next_seq: self.next_seq + ops.len() as u64,
            };
            journal::encode_meta(&mut buf, &meta);
        }
        for op in &mut ops {
            // Drawn in call order once every call is valid (nothing else draws in between).
            op.op_id = self.next_op_id(now_ms);
            journal::encode_op(&mut buf, op);
        }
        if let Some((key, value)) = checkpoint {
            journal::encode_checkpoint(&mut buf, key, value);
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
            journal::set_checkpoint(&mut self.checkpoints, key.to_owned(), value);
        }
        self.next_seq += ops.len() as u64;
        for op in &mut ops {
            self.engine
                .enqueue(std::mem::replace(op, crate::engine::vacant_op()));
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
        journal::encode_meta(&mut buf, &self.meta());
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
        let action = self.engine.poll_lent(now_ms);
        self.persist_journal();
        match action {
            // Encoded from the queue itself: no copy of the batch's ops.
            Lent::Send { id, retry_count, n } => Next::Send(Request {
                batch_id: id,
                retry_count,
                op_count: n,
                body: protocol::encode_batch(
                    &self.device_id,
                    self.engine.live()[..n].iter().map(|e| &e.op),
                ),
            }),
            Lent::WaitUntil(t) => Next::WaitUntil(t),
            Lent::Idle => Next::Idle,
        }
    }

    /// Feeds a response (or network failure) for `batch_id`.
    pub fn on_outcome(&mut self, now_ms: u64, batch_id: u64, outcome: &Outcome) {
        let jitter = self.rng.next_unit();
        self.engine.on_outcome(now_ms, batch_id, outcome, jitter);
        self.persist_journal();
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
    pub fn take_held_done(&mut self) -> Vec<JournalEntry> {
        std::mem::take(&mut self.held_done)
    }

    /// Journals the removal of ops whose reports reached the app.
    pub fn reported(&mut self, done: Vec<JournalEntry>) {
        if done.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.unwritten);
        for entry in &done {
            journal::encode_entry(&mut buf, entry);
        }
        if let Err(e) = self.store.append(&buf) {
            tracing::warn!(error = %e, "repro-line could not persist delivery progress; will retry");
            self.unwritten = buf;
        }
    }

    /// A handle to fsync the store outside any lock (native file store only).
    pub fn syncer(&self) -> Option<Box<dyn crate::store::Syncer>> {
        self.store.syncer()
    }

    /// Validates one call against the user ID in force (`user`, which a `SetUserId` changes)
    /// and builds the op it makes.
    fn op_kind(&self, user: &mut Option<String>, call: &Call) -> Result<OpKind, Error> {
        // Every call but `SetUserId` links or unlinks a LINE user ID (a token's `sub`) on a
        // channel: one check for the three, in the same order (token, LINE ID, channel, user).
        Ok(match call {
            Call::SetUserId(user_id) => {
                validate::user_id(user_id)?;
                *user = Some(user_id.clone());
                OpKind::SetUserId {
                    user_id: user_id.clone(),
                }
            }
            // One arm for the two: the same check and fields, one copy in the wasm build.
            Call::SetLineUserId {
                line_user_id,
                channel_id,
            }
            | Call::UnlinkLineUserId {
                line_user_id,
                channel_id,
            } => {
                let channel_id = self
                    .check_link(user.as_deref(), line_user_id, channel_id.as_deref())?
                    .to_owned();
                let user_id = user.clone().unwrap_or_default();
                let line_user_id = line_user_id.clone();
                if let Call::SetLineUserId { .. } = call {
                    OpKind::LinkLineId {
                        user_id,
                        line_user_id,
                        channel_id,
                    }
                } else {
                    OpKind::UnlinkLineId {
                        user_id,
                        line_user_id,
                        channel_id,
                    }
                }
            }
            Call::LinkLineIdToken {
                id_token,
                channel_id,
            } => {
                let sub = validate::id_token(id_token)?;
                let channel_id = self
                    .check_link(user.as_deref(), &sub, channel_id.as_deref())?
                    .to_owned();
                let user_id = user.clone().unwrap_or_default();
                OpKind::LinkLineIdToken {
                    user_id,
                    id_token: id_token.clone(),
                    channel_id,
                }
            }
        })
    }

    fn check_link<'a>(
        &'a self,
        user: Option<&str>,
        line_user_id: &str,
        channel_id: Option<&'a str>,
    ) -> Result<&'a str, Error> {
        validate::line_user_id(line_user_id)?;
        let channel = match channel_id.or(self.default_channel_id.as_deref()) {
            Some(c) => c,
            None => return Err(Error::MissingChannelId),
        };
        validate::channel_id(channel)?;
        user.ok_or(Error::UserIdNotSet)?;
        Ok(channel)
    }

    fn meta(&self) -> Meta {
        Meta {
            device_id: self.device_id,
            opted_in: self.opted_in,
            user_id: self.user_id.clone(),
            next_seq: self.next_seq,
        }
    }

    /// Writes what the engine journaled. A failure here loses no call: the
    /// bytes are kept and retried with the next append, and every record but
    /// `Op` is safe to lose anyway (see [`JournalEntry`]).
    fn persist_journal(&mut self) {
        if !self.engine.has_journal() && self.unwritten.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.unwritten);
        for entry in &mut self.engine.take_journal() {
            match entry {
                JournalEntry::Done { seqs } if self.hold_done => {
                    let seqs = std::mem::take(seqs);
                    self.held_done.push(JournalEntry::Done { seqs });
                }
                _ => journal::encode_entry(&mut buf, entry),
            }
        }
        if buf.is_empty() {
            return;
        }
        if let Err(e) = self.store.append(&buf) {
            tracing::warn!(error = %e, "repro-line could not persist delivery progress; will retry");
            self.unwritten = buf;
        }
    }

    /// Whether the journal should be compacted now (see [`Policy`]'s `compact_*`). The
    /// session never compacts on its own: the driver asks after an outcome or a report
    /// and calls [`Session::compact_if_due`] where a full rewrite suits it.
    pub fn compaction_due(&self) -> bool {
        if self.compacting {
            return false;
        }
        if !self.held_done.is_empty() {
            // The snapshot holds only queued ops: it would drop the held ones' records.
            return false;
        }
        let policy = self.engine.config();
        let len = self.store.byte_len();
        let drained = self.engine.pending() == 0 && !self.engine.has_in_flight();
        if drained && len > self.compacted_len + policy.drained_compact_growth {
            return true;
        }
        let live_estimate = 256 * (self.engine.pending() as u64 + 1);
        len >= policy.compact_min_bytes && len > policy.compact_ratio * live_estimate
    }

    /// Compacts if [`Session::compaction_due`]; a failure is logged and retried when next due.
    pub fn compact_if_due(&mut self) {
        if self.compaction_due() {
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "repro-line journal compaction failed; will retry");
            }
        }
    }

    /// Rewrites the journal as a snapshot of the live state.
    pub fn compact(&mut self) -> Result<(), StorageError> {
        let _ = self.engine.take_journal(); // the snapshot supersedes it
        let buf = self.snapshot();
        self.store.replace(&buf)?;
        self.unwritten.clear();
        self.compacted_len = buf.len() as u64;
        Ok(())
    }

    /// [`Session::compact_if_due`] in phases, so the rewrite does not hold the callers'
    /// lock: this (under the lock) takes the snapshot and marks the journal's end; the
    /// driver runs [`Compaction::write`] without the lock, then
    /// [`Session::finish_compaction`]. `None`: not due, or done here in one step (a store
    /// without phases, or bytes still unwritten after a failed append: the snapshot
    /// supersedes those, which only a one-step rewrite may drop).
    pub fn begin_compaction(&mut self) -> Option<Compaction> {
        self.persist_journal(); // so the journal holds everything the snapshot does
        if !self.compaction_due() {
            return None;
        }
        let staged = match self.unwritten.is_empty() {
            true => self.store.stage(),
            false => None,
        };
        let Some(staged) = staged else {
            self.compact_if_due();
            return None;
        };
        self.compacting = true;
        Some(Compaction {
            snapshot: self.snapshot(),
            staged,
        })
    }

    /// Installs a [`Compaction`]: the records appended since it began follow the snapshot.
    /// A failure leaves the old journal whole; it is logged and retried when next due.
    pub fn finish_compaction(&mut self, compaction: Compaction) {
        self.compacting = false;
        let Compaction { snapshot, staged } = compaction;
        if staged.written().is_none() {
            return; // `write` failed and said so
        }
        let since = self.store.byte_len().saturating_sub(staged.marker);
        match self.store.install(staged) {
            Ok(()) => self.compacted_len = snapshot.len() as u64 + since,
            Err(e) => {
                tracing::warn!(error = %e, "repro-line journal compaction failed; will retry")
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        journal::snapshot(
            &self.meta(),
            self.engine.backoff(),
            self.engine.live(),
            &self.checkpoints,
        )
    }

    /// A v7 UUID: the call's millisecond, then random bits.
    fn next_op_id(&mut self, now_ms: u64) -> Uuid {
        v7(now_ms, self.rng.next_u64(), self.rng.next_u64())
    }
}

/// What `uuid::Builder::from_unix_timestamp_millis` makes of `now_ms` and the 10 random bytes
/// `r1` (little endian) then `r2`'s low two: the millisecond's low 48 bits big endian, then
/// the random bytes under the version and variant bits. Through the random-bytes builder the
/// device ID already needs: the crate's own v7 encoder was ~100 B gzip of the wasm build.
fn v7(now_ms: u64, r1: u64, r2: u64) -> Uuid {
    // The 16 bytes as one little-endian u128 (no slice copies): bytes 0..6 the millisecond's
    // big-endian low 48 bits, 6..14 `r1`, 14..16 `r2`'s low two.
    let time = ((now_ms << 16).swap_bytes() & 0xFFFF_FFFF_FFFF) as u128;
    let bytes = time | (r1 as u128) << 48 | ((r2 & 0xFFFF) as u128) << 112;
    uuid::Builder::from_random_bytes(bytes.to_le_bytes())
        .with_version(uuid::Version::SortRand)
        .into_uuid()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn op_ids_are_the_uuid_crates_v7(now_ms in any::<u64>(), r1 in any::<u64>(), r2 in any::<u64>()) {
            let mut random = [0u8; 10];
            random[..8].copy_from_slice(&r1.to_le_bytes());
            random[8..].copy_from_slice(&r2.to_le_bytes()[..2]);
            let expect = uuid::Builder::from_unix_timestamp_millis(now_ms, &random).into_uuid();
            prop_assert_eq!(super::v7(now_ms, r1, r2), expect);
        }
    }
}
