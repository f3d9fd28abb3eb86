//! The sans-IO delivery engine: a state machine fed with calls, responses and
//! the current time, answering what to do next (send this batch, wait until T,
//! or idle). It owns no socket, thread, clock or file: drivers do the I/O and
//! `store::journal` persists the [`JournalEntry`]s it emits. Tests drive it with
//! a simulated clock.
//!
//! Invariants: at most one batch in flight; batches are taken from the head of
//! the queue, so ops reach the endpoint in call order; a failed batch is resent
//! as the head with the same op_ids; only ops never sent are coalesced.

use uuid::Uuid;

use crate::policy::Policy;
use crate::protocol::{self, Op, OpKind, OpResult, OpStatus, Outcome};
use crate::retry::{self, PauseReason, Verdict};

/// Seqs per `Done` record: ~50 KiB of payload at most, far below the codec's frame limit.
const DONE_RECORD_MAX_SEQS: usize = 5_000;

/// The engine's former config type: its limits are now part of [`Policy`].
pub type EngineConfig = Policy;

/// Defines [`DropReason`] and [`DeliveryStatus`], once: core expands it with its derives and
/// the FFI crate with `#[uniffi::remote(Enum)]`, which needs the definition written out again
/// (a UniFFI derive here would make them an external component's types, renaming them in
/// Kotlin and Swift). The docs below are what app developers read in the bindings too.
#[doc(hidden)]
#[macro_export]
macro_rules! define_delivery_enums {
    ($(#[$drop:meta])* ; $(#[$status:meta])*) => {
        /// Why an op left the queue without reaching the endpoint.
        $(#[$drop])*
        pub enum DropReason {
            /// The queue was full; the oldest op not in flight was dropped to make room.
            QueueFull,
            /// Older than the maximum op age (`max_op_age_ms`) and still not delivered.
            Expired,
            /// The endpoint answered 400 for its batch (a bug; never resent).
            MalformedBatch,
            /// The endpoint answered 413 for this op alone.
            PayloadTooLarge,
            /// `set_opted_in(false)` purged it.
            OptedOut,
        }

        /// The final outcome of one call.
        $(#[$status])*
        pub enum DeliveryStatus {
            /// Applied by the endpoint.
            Delivered,
            /// The endpoint had already applied it (an earlier response was lost); nothing to do.
            Duplicate,
            /// Refused by the endpoint, never retried: a protocol code (1002 user ID not
            /// registered, 1004–1006 invalid input, 1007 raw LINE ID refused, 1008 invalid ID
            /// token, 1009 unlink not supported) or the HTTP status of another 4xx answer.
            Rejected { code: u32, message: String },
            /// Removed from the queue without delivery.
            Dropped { reason: DropReason },
        }
    };
}

define_delivery_enums!(
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)];
    #[derive(Debug, Clone, PartialEq, Eq)]
);

impl DropReason {
    /// The snake_case name (the web's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::MalformedBatch => "malformed_batch",
            DropReason::PayloadTooLarge => "payload_too_large",
            DropReason::OptedOut => "opted_out",
        }
    }
}

/// One report per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub op_id: Uuid,
    pub seq: u64,
    pub kind: OpKind,
    pub status: DeliveryStatus,
}

/// Pipeline-wide changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Paused(PauseReason),
    Resumed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Op(DeliveryReport),
    State(DeliveryState),
}

/// A change of the queue's durable state, for the driver to persist in order
/// (`store::journal` maps each to a record). Losing one is harmless: a lost `Done`
/// resends an op (answered `duplicate`), a lost `Merged` sends an op that was
/// coalesced away (same final state), a lost `Sent` or `Backoff` only retries sooner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    /// Op `seq` was coalesced into op `into`; it is reported with `into`'s outcome.
    Merged { seq: u64, into: u64 },
    /// Every op up to `through` has been sent at least once (so it is never coalesced).
    Sent { through: u64 },
    /// Ops that left the queue (delivered, rejected or dropped).
    Done { seqs: Vec<u64> },
    /// The head batch failed `attempt` times; do not send before `until_ms`, a wait granted at `granted_at_ms`.
    Backoff {
        until_ms: u64,
        attempt: u32,
        granted_at_ms: u64,
    },
}

/// A request the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: u64,
    /// `X-Retry-Count`: 0 on the first attempt of a batch.
    pub retry_count: u32,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Batch),
    /// Nothing to do before this time (ms since the epoch) unless a call arrives.
    WaitUntil(u64),
    /// Nothing to do until a call, a flush or a resume.
    Idle,
}

/// [`Action`] with the batch left in the queue (see [`Engine::poll_lent`]).
pub(crate) enum Lent {
    Send { id: u64, retry_count: u32, n: usize },
    WaitUntil(u64),
    Idle,
}

/// A queued op plus the calls coalesced into it (reported with its outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub op: Op,
    pub merged: Vec<Op>,
    pub sent: bool,
}

impl Entry {
    /// `gone` was coalesced into this entry: its calls are reported with this one's outcome.
    pub(crate) fn absorb(&mut self, mut gone: Entry) {
        self.merged.push(gone.op);
        self.merged.append(&mut gone.merged);
    }

    /// What a slot holds once its entry was moved out (allocates nothing).
    pub(crate) fn vacant() -> Entry {
        Entry {
            op: vacant_op(),
            merged: Vec::new(),
            sent: false,
        }
    }
}

/// What an op's place holds once the op was moved out (allocates nothing). Moving ops out
/// of a list by reference, rather than consuming the list, keeps `vec::IntoIter<Op>`'s drop
/// code out of the wasm build.
pub(crate) fn vacant_op() -> Op {
    Op {
        op_id: Uuid::nil(),
        seq: 0,
        at_ms: 0,
        kind: OpKind::SetUserId {
            user_id: String::new(),
        },
    }
}

#[derive(Debug)]
pub struct Engine {
    cfg: Policy,
    /// The queue is `queue[head..]`: a `Vec` whose front slots are vacated as ops leave and
    /// reclaimed once they are half of it (amortised O(1) removal from the front), which
    /// needs much less code in the wasm build than a `VecDeque`.
    queue: Vec<Entry>,
    head: usize,
    in_flight: Option<(u64, usize)>,
    attempt: u32,
    not_before_ms: u64,
    /// When the wait until `not_before_ms` was granted (0: unknown).
    granted_at_ms: u64,
    /// Size of the batch to resend after a retryable failure.
    resend_len: Option<usize>,
    /// After a 413: (max ops per batch, ops still covered by that cap).
    split: Option<(usize, usize)>,
    paused: Option<PauseReason>,
    flush: bool,
    /// Calls not yet reported; kept as a count because callers ask on every call.
    pending_calls: usize,
    /// No queued op is older than this (a lower bound), so `expire` only walks the
    /// queue when the age cutoff passes it instead of on every poll.
    oldest_at_ms: u64,
    next_batch_id: u64,
    events: Vec<Event>,
    journal: Vec<JournalEntry>,
}

impl Engine {
    pub fn new(cfg: Policy) -> Self {
        Engine::restore(cfg, Vec::new(), (0, 0, 0))
    }

    /// Rebuilds the engine from recovered entries and the persisted backoff
    /// `(attempt, not_before_ms, granted_at_ms)`.
    // Inlined into the session's open: measured 8 B gzip smaller in the wasm build.
    #[inline(always)]
    pub fn restore(cfg: Policy, entries: Vec<Entry>, backoff: (u32, u64, u64)) -> Self {
        let (attempt, not_before_ms, granted_at_ms) = backoff;
        let mut pending_calls = 0;
        for e in &entries {
            pending_calls += 1 + e.merged.len();
        }
        Engine {
            cfg,
            oldest_at_ms: oldest_at_ms(&entries),
            queue: entries,
            head: 0,
            pending_calls,
            in_flight: None,
            attempt,
            not_before_ms,
            granted_at_ms,
            resend_len: None,
            split: None,
            paused: None,
            flush: false,
            next_batch_id: 1,
            events: Vec::new(),
            journal: Vec::new(),
        }
    }

    pub fn config(&self) -> &Policy {
        &self.cfg
    }

    /// Calls not yet reported (queued ops plus the calls coalesced into them).
    pub fn pending(&self) -> usize {
        self.pending_calls
    }

    /// Ops that will be sent (after coalescing).
    pub fn queued_ops(&self) -> usize {
        self.queue.len() - self.head
    }

    pub fn entries(&self) -> std::slice::Iter<'_, Entry> {
        self.live().iter()
    }

    /// The queue, head first.
    pub fn live(&self) -> &[Entry] {
        &self.queue[self.head..]
    }

    pub fn paused(&self) -> Option<PauseReason> {
        self.paused
    }

    pub fn has_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// `(attempt, not_before_ms, granted_at_ms)`.
    pub fn backoff(&self) -> (u32, u64, u64) {
        (self.attempt, self.not_before_ms, self.granted_at_ms)
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Entries the driver must persist, in order.
    pub fn take_journal(&mut self) -> Vec<JournalEntry> {
        std::mem::take(&mut self.journal)
    }

    pub fn has_journal(&self) -> bool {
        !self.journal.is_empty()
    }

    /// Queues a call, coalescing it with the tail where the endpoint's final state cannot change.
    /// The caller has already persisted the op, so a store failure never half-accepts a call.
    pub fn enqueue(&mut self, op: Op) {
        self.pending_calls += 1;
        self.oldest_at_ms = self.oldest_at_ms.min(op.at_ms);
        let mut entry = Entry {
            op,
            merged: Vec::new(),
            sent: false,
        };
        while self.queue.len() > self.head {
            let Some(tail) = self.queue.last_mut().filter(|t| !t.sent) else {
                break;
            };
            if tail.op.kind == entry.op.kind {
                // Applying the same op twice in a row is the same as once: keep the first.
                self.journal.push(JournalEntry::Merged {
                    seq: entry.op.seq,
                    into: tail.op.seq,
                });
                tail.absorb(entry);
                return;
            }
            if is_unlink_then_link(&tail.op.kind, &entry.op.kind) {
                // unlink(u,c,L) then link(u,c,L) ends linked to u from any start: keep the link.
                let Some(tail) = self.queue.pop() else {
                    break;
                };
                self.journal.push(JournalEntry::Merged {
                    seq: tail.op.seq,
                    into: entry.op.seq,
                });
                entry.absorb(tail);
                continue;
            }
            break;
        }
        self.queue.push(entry);
        self.enforce_capacity();
    }

    /// Skips the debounce until the queue is empty.
    pub fn request_flush(&mut self) {
        self.flush = true;
    }

    /// Ends a pause (new token, or the app asked to retry).
    pub fn resume(&mut self) {
        if self.paused.take().is_some() {
            self.events.push(Event::State(DeliveryState::Resumed));
        }
    }

    /// Drops every op that is not in flight (opt-out).
    pub fn purge(&mut self, reason: DropReason) {
        let keep = self.in_flight.map_or(0, |(_, n)| n);
        let mut removed = self.queue.split_off(self.head + keep);
        self.resend_len = self.resend_len.map(|n| n.min(keep));
        self.finish(&mut removed, None, &DeliveryStatus::Dropped { reason });
    }

    /// What to do now.
    pub fn poll(&mut self, now_ms: u64) -> Action {
        match self.poll_lent(now_ms) {
            Lent::Send { id, retry_count, n } => Action::Send(Batch {
                id,
                retry_count,
                ops: self.live()[..n].iter().map(|e| e.op.clone()).collect(),
            }),
            Lent::WaitUntil(t) => Action::WaitUntil(t),
            Lent::Idle => Action::Idle,
        }
    }

    /// [`Engine::poll`] without copying the batch: its ops are the first `n` of [`Engine::live`]
    /// (the session encodes them in place; the copy's clone code is no longer in the wasm).
    pub(crate) fn poll_lent(&mut self, now_ms: u64) -> Lent {
        self.expire(now_ms);
        if self.paused.is_some() || self.in_flight.is_some() {
            return Lent::Idle;
        }
        let queued = self.queued_ops();
        if queued == 0 {
            self.flush = false;
            return Lent::Idle;
        }
        self.bound_wait(now_ms);
        let head = &self.queue[self.head];
        if now_ms < self.not_before_ms {
            return Lent::WaitUntil(self.not_before_ms);
        }
        let due_at = head.op.at_ms.saturating_add(self.cfg.debounce_ms);
        let due = self.flush
            || head.sent
            || queued >= self.cfg.max_batch_ops
            || now_ms >= due_at
            || head.op.at_ms > now_ms; // the wall clock went back: do not wait on it
        if !due {
            return Lent::WaitUntil(due_at);
        }
        let mut n = self.cfg.max_batch_ops.min(queued);
        if let Some(len) = self.resend_len {
            n = n.min(len.max(1));
        }
        if let Some((cap, _)) = self.split {
            n = n.min(cap);
        }
        let mut newly_sent = None;
        for e in &mut self.queue[self.head..self.head + n] {
            if !e.sent {
                e.sent = true;
                newly_sent = Some(e.op.seq);
            }
        }
        if let Some(through) = newly_sent {
            self.journal.push(JournalEntry::Sent { through });
        }
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.in_flight = Some((id, n));
        Lent::Send {
            id,
            retry_count: self.attempt,
            n,
        }
    }

    /// Feeds the outcome of batch `batch_id`. `jitter` in [0, 1] comes from the driver's RNG.
    pub fn on_outcome(&mut self, now_ms: u64, batch_id: u64, outcome: &Outcome, jitter: f64) {
        let n = match self.in_flight {
            Some((id, n)) if id == batch_id => n,
            _ => return,
        };
        self.in_flight = None;
        let live = self.live();
        let answer =
            protocol::classify_with(outcome, now_ms, n.min(live.len()), |i| live[i].op.op_id);
        // The verdicts that drop the batch share the one call below, each with its status.
        let status = match retry::decide(&self.cfg, self.attempt, answer, now_ms, jitter) {
            Verdict::Results(mut resp) => {
                self.batch_done(n, Some(&mut resp.results), &DeliveryStatus::Delivered);
                return;
            }
            Verdict::RetryAt { not_before_ms } => {
                self.attempt = self.attempt.saturating_add(1);
                self.not_before_ms = not_before_ms;
                self.granted_at_ms = now_ms;
                self.resend_len = Some(n);
                self.journal_backoff();
                return;
            }
            Verdict::Split if n > 1 => {
                let remaining = self.split.map_or(n, |(_, r)| r.max(n));
                self.split = Some((n.div_ceil(2), remaining));
                self.resend_len = None;
                self.reset_backoff();
                return;
            }
            Verdict::Split => dropped(DropReason::PayloadTooLarge),
            Verdict::DropMalformed => dropped(DropReason::MalformedBatch),
            Verdict::DropRejected { status, message } => DeliveryStatus::Rejected {
                code: u32::from(status),
                message,
            },
            Verdict::Pause(reason) => {
                self.resend_len = Some(n);
                if self.paused != Some(reason) {
                    self.paused = Some(reason);
                    self.events
                        .push(Event::State(DeliveryState::Paused(reason)));
                }
                return;
            }
        };
        self.batch_done(n, None, &status);
    }

    /// The head batch of `n` ops leaves: with its results, or one status for all.
    fn batch_done(&mut self, n: usize, results: Option<&mut [OpResult]>, status: &DeliveryStatus) {
        self.leave_front(n, results, status);
        self.batch_left(n);
    }

    /// The first `n` queued entries leave, finished in place (see [`Engine::finish`]), and
    /// their slots are vacated.
    fn leave_front(&mut self, n: usize, results: Option<&mut [OpResult]>, status: &DeliveryStatus) {
        let n = n.min(self.queued_ops());
        // Out of `self` while `finish` (which never reads the queue) journals and reports.
        let mut queue = std::mem::take(&mut self.queue);
        self.finish(&mut queue[self.head..self.head + n], results, status);
        self.queue = queue;
        self.head += n;
        reclaim_vacated(&mut self.queue, &mut self.head);
    }

    /// The head batch of `n` ops left the queue: the next batch starts fresh.
    fn batch_left(&mut self, n: usize) {
        if self.queued_ops() == 0 {
            // A flush ends with the queue it was asked for; later calls wait for the debounce again.
            self.flush = false;
        }
        self.resend_len = None;
        self.split = match self.split {
            Some((cap, remaining)) if remaining > n => Some((cap, remaining - n)),
            _ => None,
        };
        self.reset_backoff();
    }

    fn reset_backoff(&mut self) {
        if self.attempt != 0 || self.not_before_ms != 0 {
            self.attempt = 0;
            self.not_before_ms = 0;
            self.granted_at_ms = 0;
            self.journal_backoff();
        }
    }

    fn journal_backoff(&mut self) {
        self.journal.push(JournalEntry::Backoff {
            until_ms: self.not_before_ms,
            attempt: self.attempt,
            granted_at_ms: self.granted_at_ms,
        });
    }

    /// A wait never outlasts what was granted. When the clock is found before the grant
    /// (it moved backwards) or the wait reaches further than the granted interval from
    /// now, it is cut to that interval from now, and the cut is journaled. An older
    /// journal's wait (grant time unknown) is held to the longest grant, Retry-After's cap.
    // Out of line: measured 3 B gzip smaller in the wasm build than inlined into poll_lent.
    #[inline(never)]
    fn bound_wait(&mut self, now_ms: u64) {
        if self.not_before_ms <= now_ms {
            return;
        }
        let interval = match self.granted_at_ms {
            0 => self.cfg.retry_after_cap_ms + 1,
            g => self.not_before_ms.saturating_sub(g),
        };
        let latest = now_ms.saturating_add(interval);
        if now_ms < self.granted_at_ms || self.not_before_ms > latest {
            self.not_before_ms = self.not_before_ms.min(latest);
            self.granted_at_ms = now_ms;
            self.journal_backoff();
        }
    }

    fn expire(&mut self, now_ms: u64) {
        let Some(cutoff) = now_ms.checked_sub(self.cfg.max_op_age_ms) else {
            return;
        };
        if cutoff <= self.oldest_at_ms {
            return;
        }
        // Removals only raise the true minimum, so recomputing it here keeps the bound exact.
        self.oldest_at_ms = oldest_at_ms(self.live());
        let keep = self.in_flight.map_or(0, |(_, n)| n);
        if oldest_at_ms(&self.live()[keep.min(self.queued_ops())..]) >= cutoff {
            return;
        }
        // In place: expired entries move out (their slots vacated), kept ones move down to `w`.
        let mut expired = Vec::new();
        let mut removed_from_resend = 0;
        let mut w = self.head;
        for r in self.head..self.queue.len() {
            let i = r - self.head;
            if i >= keep && self.queue[r].op.at_ms < cutoff {
                if self.resend_len.is_some_and(|n| i < n) {
                    removed_from_resend += 1;
                }
                expired.push(std::mem::replace(&mut self.queue[r], Entry::vacant()));
            } else {
                self.queue.swap(w, r);
                w += 1;
            }
        }
        self.queue.truncate(w);
        self.oldest_at_ms = oldest_at_ms(self.live());
        if let Some(n) = self.resend_len {
            let left = n - removed_from_resend;
            self.resend_len = (left > 0).then_some(left);
            if left == 0 {
                self.reset_backoff();
            }
        }
        self.finish(
            &mut expired,
            None,
            &DeliveryStatus::Dropped {
                reason: DropReason::Expired,
            },
        );
    }

    fn enforce_capacity(&mut self) {
        let keep = self.in_flight.map_or(0, |(_, n)| n);
        while self.queued_ops() > self.cfg.max_queue_ops.max(1) && self.queued_ops() > keep {
            // The oldest op not in flight moves to the head (the batch in flight after it,
            // O(batch) swaps), then leaves from the front.
            for i in (self.head..self.head + keep).rev() {
                self.queue.swap(i, i + 1);
            }
            if let Some(n) = self.resend_len {
                self.resend_len = (n > 1).then(|| n - 1);
            }
            self.leave_front(
                1,
                None,
                &DeliveryStatus::Dropped {
                    reason: DropReason::QueueFull,
                },
            );
        }
    }

    /// Journals the removal of `entries` and reports every call of them (and the calls
    /// coalesced into them) with `status`, or with its result's status when `results` (a
    /// batch's answer, in queue order) is given: entries past the results leave unreported.
    /// Their ops are moved out (a coalesced list keeps its buffer until the slot is dropped).
    fn finish(
        &mut self,
        entries: &mut [Entry],
        mut results: Option<&mut [OpResult]>,
        status: &DeliveryStatus,
    ) {
        self.journal_done(entries);
        for (i, entry) in entries.iter_mut().enumerate() {
            let own;
            let status = match &mut results {
                None => status,
                Some(results) => {
                    let Some(result) = results.get_mut(i) else {
                        break;
                    };
                    own = match result.status {
                        OpStatus::Applied => DeliveryStatus::Delivered,
                        OpStatus::Duplicate => DeliveryStatus::Duplicate,
                        OpStatus::Rejected => {
                            let (code, message) = result
                                .error
                                .take()
                                .map(|e| (e.code, e.message))
                                .unwrap_or_else(|| (0, "rejected without an error".into()));
                            DeliveryStatus::Rejected { code, message }
                        }
                    };
                    &own
                }
            };
            self.report(entry, status);
        }
    }

    /// Journals the removal of `entries`, in records of bounded size (a purge of a huge
    /// queue must not produce one frame the decoder would refuse as corrupt).
    fn journal_done(&mut self, entries: &[Entry]) {
        let mut seqs = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            seqs.push(e.op.seq);
            if seqs.len() == DONE_RECORD_MAX_SEQS || i + 1 == entries.len() {
                self.journal.push(JournalEntry::Done {
                    seqs: std::mem::take(&mut seqs),
                });
            }
        }
    }

    /// One report per call: the entry's op and the calls coalesced into it.
    /// Moves the entry's ops out (by reference: see [`vacant_op`]).
    // Inlined into finish's loop: measured 4 B gzip smaller in the wasm build.
    #[inline(always)]
    fn report(&mut self, entry: &mut Entry, status: &DeliveryStatus) {
        self.pending_calls = self.pending_calls.saturating_sub(1 + entry.merged.len());
        self.report_op(&mut entry.op, status);
        for op in &mut entry.merged {
            self.report_op(op, status);
        }
    }

    fn report_op(&mut self, op: &mut Op, status: &DeliveryStatus) {
        let op = std::mem::replace(op, vacant_op());
        self.events.push(Event::Op(DeliveryReport {
            op_id: op.op_id,
            seq: op.seq,
            kind: op.kind,
            status: status.clone(),
        }));
    }
}

/// Drops the vacated front `entries[..head]` of a queue kept as `entries[head..]` once it is
/// at least half of `entries`: moving the live rest down is then paid for by the removals that
/// vacated it, so removal from the front is amortised O(1). The engine's queue and the
/// journal's replay queue both use it.
pub(crate) fn reclaim_vacated(entries: &mut Vec<Entry>, head: &mut usize) {
    if *head == entries.len() {
        entries.clear();
        *head = 0;
    } else if *head * 2 >= entries.len() {
        *entries = entries.split_off(*head);
        *head = 0;
    }
}

fn dropped(reason: DropReason) -> DeliveryStatus {
    DeliveryStatus::Dropped { reason }
}

fn oldest_at_ms(queue: &[Entry]) -> u64 {
    let mut oldest = u64::MAX;
    for e in queue {
        oldest = oldest.min(e.op.at_ms);
    }
    oldest
}

fn is_unlink_then_link(first: &OpKind, then: &OpKind) -> bool {
    matches!(
        (first, then),
        (
            OpKind::UnlinkLineId { user_id: u1, line_user_id: l1, channel_id: c1 },
            OpKind::LinkLineId { user_id: u2, line_user_id: l2, channel_id: c2 },
        ) if u1 == u2 && l1 == l2 && c1 == c2
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(engine: &mut Engine, seq: u64) {
        engine.enqueue(Op {
            op_id: Uuid::from_u128(u128::from(seq)),
            seq,
            at_ms: 1_000,
            kind: OpKind::SetUserId {
                user_id: format!("u{seq}"),
            },
        });
    }

    fn dropped(events: Vec<Event>) -> Vec<u64> {
        let mut seqs = Vec::new();
        for e in events {
            if let Event::Op(r) = e {
                assert_eq!(
                    r.status,
                    DeliveryStatus::Dropped {
                        reason: DropReason::QueueFull
                    }
                );
                seqs.push(r.seq);
            }
        }
        seqs
    }

    /// A full queue drops the oldest op not in flight on every call, in call order, and the
    /// vacated front slots are reclaimed: the storage stays within twice the queue bound.
    #[test]
    fn a_full_queue_drops_in_order_behind_the_batch_in_flight_and_stays_bounded() {
        let mut engine = Engine::new(Policy {
            max_batch_ops: 3,
            max_queue_ops: 10,
            debounce_ms: 0,
            ..Policy::default()
        });
        for seq in 1..=10 {
            set(&mut engine, seq);
        }
        let Action::Send(batch) = engine.poll(1_000) else {
            panic!("a batch is due");
        };
        for seq in 11..=500 {
            set(&mut engine, seq);
            assert_eq!(dropped(engine.take_events()), [seq - 7], "call {seq}");
            assert!(
                engine.queue.len() <= 2 * 10 + 1,
                "{} slots",
                engine.queue.len()
            );
        }
        let seqs: Vec<u64> = engine.entries().map(|e| e.op.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 494, 495, 496, 497, 498, 499, 500]);
        let results = batch
            .ops
            .iter()
            .map(|op| format!(r#"{{"op_id":"{}","status":"applied"}}"#, op.op_id))
            .collect::<Vec<_>>()
            .join(",");
        let body = format!(r#"{{"results":[{results}]}}"#);
        engine.on_outcome(
            1_000,
            batch.id,
            &Outcome::Response {
                status: 200,
                retry_after: None,
                body: body.into_bytes(),
            },
            0.5,
        );
        let delivered: Vec<(u64, DeliveryStatus)> = engine
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Op(r) => Some((r.seq, r.status)),
                Event::State(_) => None,
            })
            .collect();
        assert_eq!(
            delivered,
            [1, 2, 3].map(|s| (s, DeliveryStatus::Delivered)).to_vec()
        );
        assert_eq!(engine.queued_ops(), 7);
        assert_eq!(engine.pending(), 7);
    }
}
