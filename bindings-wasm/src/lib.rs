//! repro-line for browsers: the platform-neutral `repro_line_core::Session`
//! driven by `fetch`, `setTimeout` and `localStorage`. Validation, ordering,
//! exactly-once, coalescing and the retry policy are the Session's; this crate
//! only does I/O, like core's native driver (`core/src/native/mod.rs`).
//!
//! Tabs: the page's JS (npm/src/index.js) holds a Web Lock; the tab holding it is
//! the *leader*, owns the journal in `localStorage` and is the only one that
//! sends, so two tabs never send the same op concurrently. Other tabs are
//! *followers*: a call is validated against a read-only copy of the journal
//! ("shadow" Session over memory) plus the tab's own unsent calls, then
//! persisted in the tab's inbox key (see `inbox.rs`); the leader picks it up
//! on the `storage` event. The coordination itself (what an inbox entry holds,
//! the follower's view, the leader's merge) is in `tabs.rs`, free of I/O.
//! When the leader's page goes away the browser hands the lock to the next
//! tab, which opens the journal and carries on.
//!
//! Nothing here throws into the page except the validation errors of explicit
//! calls: storage failures fall back to memory and are reported through the
//! state callback, listener exceptions are swallowed, network failures are
//! outcomes.

pub mod abi;
#[cfg(target_arch = "wasm32")]
mod alloc;
mod http;
mod inbox;
mod js;
mod store;
mod tabs;

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use repro_line_core::engine::{DeliveryStatus, Event};
use repro_line_core::session::Next;
use repro_line_core::{DeliveryState, Error, Policy, Session};

use crate::inbox::Kind;
use crate::store::{Change, LocalStore, Notes, SharedNotes};

// Used directly, not through `lol_alloc::AssumeSingleThreaded`: that wrapper forwards only
// `alloc` and `dealloc`, so every `realloc` would copy, even within a block's size class.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

/// The largest delay `setTimeout` honours (longer ones fire at once).
const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// The delivery client. Reached from the page through `abi.rs`'s exports (by handle, numbers
/// only; npm/src/wasm.js); apps use `ReproLine.setup`.
pub struct Client {
    inner: RefCell<Inner>,
}

struct Inner {
    // Leader: over the journal. Follower: a shadow over a copy of it (validation and counts only).
    session: Session,
    leader: bool,
    // Follower: the journal changed since the shadow was built.
    stale: bool,
    // Leader: an inbox changed.
    ingest: bool,
    default_channel: Option<String>,
    url: String,
    token: String,
    // The namespace of the journal's keys (see `store.rs`); `None`: memory only (no journal, no tabs).
    journal_ns: Option<String>,
    inbox_prefix: String,
    // Follower: this tab's inbox key and calls not yet taken by the leader.
    follower: tabs::Follower,
    // Shared with a leader's `LocalStore`: its notes and its end-of-task write.
    notes: SharedNotes,
    // The page's listeners and I/O (npm/src/index.js); the driver is idle until `listen` gives them.
    page: Option<js::Page>,
    // The batch of the request out now (one at a time); its outcome comes through `Client::call`.
    in_flight: Option<u64>,
    // The page's JS has a `TICK` queued for the end of this task: another wake need not ask again.
    woken: bool,
    hidden: bool,
    stopped: bool,
    requests: u32,
}

/// The options as npm/src/index.js passes them: names already mapped, numbers only where the page gave
/// numbers (NaN: the default). The rules are `Policy::validate`'s and core's checks, applied here.
#[derive(Clone, Debug)]
pub struct Options {
    pub sdk_token: String,
    pub endpoint: String,
    pub default_channel: Option<String>,
    pub namespace: Option<String>,
    /// `storage: "memory"`.
    pub memory: bool,
    pub leader: bool,
    pub slot: u32,
    pub storage_budget_bytes: f64,
    pub request_timeout_ms: f64,
    pub debounce_ms: f64,
    pub max_batch_ops: f64,
    pub max_queue_ops: f64,
    pub max_op_age_ms: f64,
}

/// What `Client::call` does; the numbers are the boundary with npm/src/index.js.
pub(crate) const SET_USER_ID: u32 = 0;
pub(crate) const LINK: u32 = 1;
pub(crate) const LINK_TOKEN: u32 = 2;
pub(crate) const UNLINK: u32 = 3;
pub(crate) const OPT_IN: u32 = 4;
pub(crate) const OPT_OUT: u32 = 5;
pub(crate) const FLUSH: u32 = 6;
const SET_SDK_TOKEN: u32 = 7;
const PROMOTE: u32 = 8;
const STORAGE_EVENT: u32 = 9;
const PAGE_HIDDEN: u32 = 10;
const PAGE_SHOWN: u32 = 11;
const SHUTDOWN: u32 = 12;
/// The journal's end-of-task write (`io.f()` queues it; 13 and up are `http`'s).
const STORE_WRITE: u32 = 15;

/// The page's boundary (`abi.rs` reaches these by handle).
impl Client {
    // Every call and page event, by number (see the constants): `a` is the user ID, LINE user ID,
    // ID token or SDK token, `b` the channel or the `storage` event's key. Throws `"code:message"`.
    pub fn call(&self, what: u32, a: &str, b: Option<String>) -> Result<(), String> {
        if what <= FLUSH {
            // The inbox line's opt-in field (see `inbox.rs`).
            let a = match what {
                OPT_IN => "1",
                OPT_OUT => "0",
                _ => a,
            };
            return self.enqueue(Kind {
                what,
                a: a.to_owned(),
                b,
            });
        }
        match what {
            STORE_WRITE => {
                self.write_pending();
                Ok(())
            }
            _ => {
                if what == SET_SDK_TOKEN {
                    repro_line_core::policy::check_sdk_token(a).map_err(|e| error_js(&e))?;
                }
                // The rest under one borrow (none while a listener calls back in), then `settle`.
                if let Ok(mut s) = self.inner.try_borrow_mut() {
                    match what {
                        // A new token from now on; resumes after `auth_failed`.
                        SET_SDK_TOKEN => {
                            s.token = a.to_owned();
                            s.session.resume();
                            s.wake();
                        }
                        // This tab now holds the delivery lock.
                        PROMOTE => {
                            s.promote();
                            s.wake();
                        }
                        STORAGE_EVENT => s.on_storage(b.as_deref()),
                        PAGE_HIDDEN | PAGE_SHOWN => s.page_hidden(what == PAGE_HIDDEN),
                        // Stops delivering; queued calls stay in the journal for the next page.
                        SHUTDOWN => {
                            s.stopped = true;
                            s.wake();
                        }
                        http::TICK => s.tick(),
                        _ => {
                            if let Some(outcome) = http::outcome(what, a, b) {
                                s.on_outcome(&outcome);
                            }
                        }
                    }
                    settle(s);
                }
                Ok(())
            }
        }
    }

    // The page's listeners (each call's final outcome and pause/resume; storage changes and
    // warnings: primitives, made into objects by npm/src/index.js) and I/O (the driver's requests
    // and timers), see `js::Page`; delivery starts here.
    pub fn listen(&self, page: js::Page) {
        if let Ok(mut s) = self.inner.try_borrow_mut() {
            s.page = Some(page);
            s.wake();
            settle(s);
        }
    }

    // What the getters read, under one borrow (one copy of `with`); a string is put in the
    // buffer (`abi::give`) and its length returned: 0 paused (`"auth_failed"`,
    // `"endpoint_misconfigured"` or ""), 1 deviceId, 2 userId (or "": a user ID is never empty);
    // 3 pendingOps (calls accepted and not yet reported; in a follower: as far as this tab can
    // see), 4 optedIn, 5 isLeader, 6 persistent (the journal is in `localStorage`; false: memory
    // only), 7 requestsSent (booleans as 0/1). While the state is borrowed (a listener calling
    // in): optedIn 1, the other numbers 0, the strings "" (the number 0 is read as "").
    pub fn get(&self, what: u32) -> u32 {
        self.with(|s| match what {
            0 => abi::give(s.session.engine().paused().map_or("", |r| r.as_str())),
            1 => abi::give(&repro_line_core::text::uuid_text(&s.session.device_id())),
            2 => abi::give(s.session.user_id().unwrap_or_default()),
            3 => s.session.pending_ops() as u32,
            4 => s.session.opted_in() as u32,
            5 => s.leader as u32,
            6 => store::lock(&s.notes).persistent as u32,
            _ => s.requests,
        })
        .unwrap_or((what == 4) as u32)
    }
}

// Opening, and the end-of-task write (the page reaches the operations through `call`: the calls
// through `enqueue`, the rest as `Inner`'s methods under one borrow).
impl Client {
    pub fn open(options: Options) -> Result<Client, String> {
        Inner::new(&options)
            .map_err(|e| error_js(&e))
            .map(|inner| Client {
                inner: RefCell::new(inner),
            })
    }

    /// The journal's end-of-task write (what `io.f()` asked for).
    pub fn write_pending(&self) {
        // Under a shared borrow: the write reaches only `localStorage` and the store's notes.
        if let Ok(s) = self.inner.try_borrow() {
            store::lock(&s.notes).flush();
        }
    }
}

impl Client {
    fn enqueue(&self, kind: Kind) -> Result<(), String> {
        let Ok(mut s) = self.inner.try_borrow_mut() else {
            // `error_js(&Error::Internal("re-entrant call".into()))`, spelled out.
            return Err("internal:internal error: re-entrant call".into());
        };
        let result = s.call(kind);
        settle(s);
        result.map_err(|e| error_js(&e))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        let mut s = self.inner.try_borrow_mut().ok()?;
        // A follower's view first (a leader's `refresh_shadow` does nothing).
        s.refresh_shadow();
        Some(f(&mut s))
    }
}

/// The callbacks an operation queued, run once the state is no longer borrowed (a callback may
/// call back in). One copy for every operation.
#[inline(never)]
fn settle(mut s: std::cell::RefMut<'_, Inner>) {
    s.schedule_write();
    // A follower's view has none (tabs.rs drops them where it applies a call to it).
    let events = s.session.take_events();
    let states = std::mem::take(&mut store::lock(&s.notes).changes);
    let (leader, page) = (s.leader, s.page);
    drop(s);
    // An exception in the app's listener must not stop delivery (the loader catches it).
    let Some(page) = page else {
        return;
    };
    for e in &events {
        emit_event(&page, e);
    }
    for c in &states {
        page.state(c.kind, leader, c.persistent, &c.reason);
    }
}

/// The Session on the journal in `localStorage` under `journal` (a leader's), or in memory on a
/// copy of `bytes` (a follower's shadow: a copy of the journal; else none). One place that opens
/// (and replays) it, for `Inner::new`, a promoted follower and the follower's view.
fn open_session(
    cfg: &Policy,
    channel: &Option<String>,
    journal: Option<&String>,
    bytes: Vec<u8>,
    notes: &SharedNotes,
) -> Result<Session, Error> {
    // Seeded here rather than by core's `Session::open` (uuid's v4 through getrandom): a page
    // without crypto.getRandomValues gets this error instead of a trap, and the wasm is smaller.
    // Before the store: its error exit then has no store to drop (-12 B gzip), and such a page
    // fails before touching localStorage.
    let seed = js::random_u128()
        .ok_or_else(|| Error::Internal("crypto.getRandomValues is not available".into()))?;
    let store = match journal {
        Some(ns) => LocalStore::open(ns.clone(), Arc::clone(notes)),
        None => LocalStore::memory(bytes),
    };
    Session::open_seeded(cfg.clone(), channel.clone(), Box::new(store), seed)
}

impl Inner {
    // Out of line (`call` and `Client::open` inline it otherwise): a smaller wasm, measured.
    // By reference: the options are dropped once, by `Client::open`, not on each of this
    // function's error exits (-33 B gzip, measured).
    #[inline(never)]
    fn new(o: &Options) -> Result<Inner, Error> {
        repro_line_core::policy::check_sdk_token(&o.sdk_token)?;
        let url = repro_line_core::endpoint::batch_url(&o.endpoint)?;
        // The web defaults (a smaller queue: see `Policy::web`), overridden by the options.
        let mut engine_cfg = Policy::web();
        let c = &mut engine_cfg;
        c.max_batch_ops = count(o.max_batch_ops, c.max_batch_ops);
        c.max_queue_ops = count(o.max_queue_ops, c.max_queue_ops);
        c.max_op_age_ms = ms(o.max_op_age_ms, c.max_op_age_ms);
        c.debounce_ms = ms(o.debounce_ms, c.debounce_ms);
        c.request_timeout_ms = ms(o.request_timeout_ms, c.request_timeout_ms);
        engine_cfg.validate()?;
        let default_channel = o.default_channel.clone().filter(|c| !c.is_empty());
        let ns = o.namespace.as_deref().unwrap_or("repro-line");
        let local = !o.memory && js::local_storage().is_some();
        // The journal's byte budget, kept in the notes its store will share.
        let notes: SharedNotes = Arc::new(Mutex::new(Notes::with_budget(count(
            o.storage_budget_bytes,
            512 * 1024,
        ))));
        // Without localStorage there is nothing to share between tabs: deliver from this one.
        let leader = !local || o.leader;
        let journal_ns = local.then(|| ns.to_owned());
        // Opened once: on the journal for a leader with localStorage, else in memory (a follower's
        // shadow comes from `refresh_shadow`).
        let journal = journal_ns.as_ref().filter(|_| leader);
        let session = open_session(&engine_cfg, &default_channel, journal, Vec::new(), &notes)?;
        let inbox_prefix = ns.to_owned() + ":in:";
        let mut inbox_key = inbox_prefix.clone();
        repro_line_core::text::push_u64(&mut inbox_key, u64::from(o.slot));
        let mut inner = Inner {
            session,
            leader,
            stale: true,
            ingest: true,
            default_channel,
            url,
            token: o.sdk_token.clone(),
            journal_ns,
            follower: tabs::Follower {
                inbox_key,
                mine: Vec::new(),
            },
            inbox_prefix,
            notes,
            page: None,
            in_flight: None,
            woken: false,
            hidden: false,
            stopped: false,
            requests: 0,
        };
        if !local {
            let mut n = store::lock(&inner.notes);
            if !o.memory {
                n.changes
                    .push(Change::memory("localStorage is not available".into()));
            }
        } else if !leader {
            // Adopt what a closed tab left in this slot's inbox; the leader may not have taken it yet.
            if let Some(ls) = js::local_storage() {
                inner.follower.mine = read_inbox(&ls, &inner.follower.inbox_key);
            }
            inner.refresh_shadow();
        }
        // What opening the journal appended is written now (no page yet: delivery starts with
        // `listen`); nothing for a view in memory.
        inner.schedule_write();
        Ok(inner)
    }

    // Out of line (`call` and `Client::open` inline it otherwise): a smaller wasm, measured.
    #[inline(never)]
    fn promote(&mut self) {
        if self.leader {
            return;
        }
        self.leader = true;
        if let Some(ns) = &self.journal_ns {
            // The policy the client was set up with (every Session of a client has it).
            let (cfg, channel) = (self.session.engine().config(), &self.default_channel);
            match open_session(cfg, channel, Some(ns), Vec::new(), &self.notes) {
                Ok(session) => self.session = session,
                Err(e) => self.warn(e.message()),
            }
        }
        self.ingest = true;
    }

    /// A `storage` event's key (`None` after `localStorage.clear()`: every key changed).
    // Out of line (`call` and `Client::open` inline it otherwise): a smaller wasm, measured.
    #[inline(never)]
    fn on_storage(&mut self, key: Option<&str>) {
        if self.leader {
            if !self.stopped && key.map_or(true, |k| k.starts_with(&self.inbox_prefix)) {
                // Only the inbox that changed: a scan of every key would grow with the journal's.
                self.ingest(key);
                self.wake();
            }
        } else if key.map_or(true, |k| {
            self.journal_ns
                .as_deref()
                .is_some_and(|ns| store::is_journal_key(ns, k))
        }) {
            self.stale = true;
        }
    }

    /// The page is going away or hidden: send what is queued now, with `keepalive`.
    fn page_hidden(&mut self, hidden: bool) {
        self.hidden = hidden;
        if hidden && self.leader {
            self.session.request_flush();
            self.wake();
        }
    }

    /// The timer of the driver's last wait ran out, or a wake: the driver's next step.
    fn tick(&mut self) {
        self.woken = false;
        // A request is out: its outcome takes the next step.
        if self.in_flight.is_none() {
            self.step();
        }
    }

    /// The outcome of the request out now: fed to the Session, then the next step.
    fn on_outcome(&mut self, outcome: &repro_line_core::retry::Outcome) {
        if let Some(batch) = self.in_flight.take() {
            self.session.on_outcome(js::now_ms(), batch, outcome);
            self.session.compact_if_due();
            self.step();
        }
    }

    // Out of line: a smaller wasm (measured with wasm-opt's one-caller limit; BENCHMARKS §8).
    #[inline(never)]
    fn call(&mut self, kind: Kind) -> Result<(), Error> {
        let now = js::now_ms();
        // One way to the Session for both roles: a follower's is its view (`refresh_shadow`
        // does nothing for a leader), and the call then waits in its inbox.
        self.refresh_shadow();
        tabs::apply(&mut self.session, now, &kind, None, None)?;
        if self.leader {
            self.wake();
        } else {
            let channel = self.default_channel.as_deref();
            self.follower.queue(&mut self.session, now, kind, channel);
            self.write_inbox();
        }
        Ok(())
    }

    fn write_inbox(&mut self) {
        let f = &self.follower;
        let result = match js::local_storage() {
            Some(ls) if f.mine.is_empty() => ls.remove_item(&f.inbox_key),
            Some(ls) => ls.set_item(&f.inbox_key, &inbox::encode(&f.mine)),
            None => Err("localStorage is not available".into()),
        };
        if let Err(e) = result {
            // Kept in `mine` and written again with the next call or refresh.
            self.warn("cannot write this tab's inbox: ".to_owned() + &e);
        }
    }

    /// Follower: rebuilds the shadow from the journal plus this tab's calls the leader has not taken.
    fn refresh_shadow(&mut self) {
        if self.leader || !self.stale {
            return;
        }
        self.stale = false;
        let (Some(ls), Some(ns)) = (js::local_storage(), &self.journal_ns) else {
            return;
        };
        let bytes = store::read(&ls, ns).map(|(_, _, b)| b).unwrap_or_default();
        let (cfg, channel) = (self.session.engine().config(), &self.default_channel);
        match open_session(cfg, channel, None, bytes, &self.notes) {
            Ok(mut shadow) => {
                let changed = self.follower.rebuild(&mut shadow);
                self.session = shadow;
                if changed {
                    self.write_inbox();
                }
            }
            Err(e) => self.warn(e.message()),
        }
    }

    /// Leader: reads the inbox `only` (every inbox if `None`) and feeds what it has not
    /// taken to the Session.
    fn ingest(&mut self, only: Option<&str>) {
        let Some(ls) = js::local_storage() else {
            return;
        };
        let mut inboxes = Vec::new();
        match only {
            Some(k) => inboxes.push((k.to_owned(), read_inbox(&ls, k))),
            None => {
                self.ingest = false;
                // By reference (a clone each): consuming a Vec<String> costs its own IntoIter
                // and drop guard in the wasm.
                for key in &store::keys_with_prefix(&ls, &self.inbox_prefix) {
                    inboxes.push((key.clone(), read_inbox(&ls, key)));
                }
            }
        }
        for warning in &tabs::ingest(&mut self.session, inboxes) {
            self.note(warning);
        }
        // After a full scan this tab's own inbox (from before it led) has been taken too.
        if only.is_none() && !self.follower.mine.is_empty() {
            self.follower.mine.clear();
            self.write_inbox();
        }
    }

    /// `warn` for a borrowed reason (a refused call of another tab's).
    fn note(&mut self, reason: &str) {
        self.warn(reason.to_owned());
    }

    /// A warning for the state listener.
    fn warn(&mut self, reason: String) {
        store::lock(&self.notes)
            .changes
            .push(Change::warning(reason));
    }

    /// Runs the driver's next step at the end of this task (after the outcome if a request is out).
    fn wake(&mut self) {
        // The journal's write first, as before the next step.
        self.schedule_write();
        if self.in_flight.is_none() && !self.woken {
            self.wait(0.0);
        }
    }

    /// `http::wait`, remembering whether a `TICK` is due at the end of this task.
    fn wait(&mut self, ms: f64) {
        if let Some(page) = &self.page {
            self.woken = ms == 0.0;
            http::wait(page, ms);
        }
    }

    /// The journal's end-of-task write, if something was appended: queued by the page's JS, or
    /// done now before `listen` gave the I/O (or in the unit tests, which give none).
    fn schedule_write(&mut self) {
        let mut n = store::lock(&self.notes);
        if !std::mem::take(&mut n.write) {
            return;
        }
        match &self.page {
            Some(page) => {
                // Not under the lock: JS that threw out of `write_later` would leave it held,
                // and the next `setup()` locks these notes again to flush them.
                drop(n);
                page.write_later();
            }
            None => n.flush(),
        }
    }

    /// The driver's next step: mirrors core's native `drive` (poll → send or wait), no policy of
    /// its own. The page's JS does the I/O and calls back later (`tick`, `on_outcome`), never
    /// from within this borrow.
    fn step(&mut self) {
        let Some(page) = self.page else {
            return;
        };
        if self.stopped || !self.leader {
            return self.wait(-1.0);
        }
        if self.ingest {
            self.ingest(None);
        }
        let compact = std::mem::take(&mut store::lock(&self.notes).compact);
        if compact {
            if let Err(e) = self.session.compact() {
                self.warn(e.message());
            }
        }
        let now = js::now_ms();
        match self.session.poll(now) {
            Next::Send(r) => {
                self.requests = self.requests.wrapping_add(1);
                let sent = http::post(
                    &page,
                    &self.url,
                    &self.token,
                    &r,
                    self.session.engine().config().request_timeout_ms as f64,
                    self.hidden,
                );
                match sent {
                    Ok(()) => self.in_flight = Some(r.batch_id),
                    Err(e) => {
                        // Nothing went out: a network failure for core's retry policy.
                        let outcome = repro_line_core::retry::Outcome::Network {
                            timeout: false,
                            message: e,
                        };
                        self.session.on_outcome(now, r.batch_id, &outcome);
                        self.wake();
                    }
                }
            }
            Next::WaitUntil(t) => {
                self.wait((t.saturating_sub(now) as f64).min(MAX_TIMER_MS));
            }
            Next::Idle => self.wait(-1.0),
        }
    }
}

/// The entries in inbox `key` (none if it is absent or unreadable). One copy for the follower's
/// adoption and the leader's ingest.
/// An option's count: NaN is `default`; otherwise truncated, saturating (`as`).
#[inline(never)]
fn count(v: f64, default: usize) -> usize {
    if v.is_nan() {
        default
    } else {
        v as usize
    }
}

/// An option's number: NaN is `default`; otherwise rounded up, at least 0 (`as` saturates).
#[inline(never)]
fn ms(v: f64, default: u64) -> u64 {
    if v.is_nan() {
        default
    } else {
        v.max(0.0).ceil() as u64
    }
}

fn read_inbox(ls: &js::Storage, key: &str) -> Vec<inbox::Entry> {
    match ls.get_item(key) {
        Ok(Some(t)) => inbox::decode(&t),
        _ => Vec::new(),
    }
}

/// `"code:message"`; npm/src/index.js turns it into a `ReproLineError`.
fn error_js(e: &Error) -> String {
    e.kind().as_str().to_owned() + ":" + &e.message()
}

/// One report to `listener`; npm/src/index.js builds the `OpReport`/`StateReport` object from it.
fn emit_event(cb: &js::Page, e: &Event) {
    match e {
        Event::Op(r) => {
            // A token link reports its unverified `sub`, never the token (a secret).
            let line = r.kind.line_user_id().unwrap_or_default();
            let channel = r.kind.channel_id().unwrap_or_default();
            let (status, code, text) = match &r.status {
                DeliveryStatus::Delivered => ("delivered", 0, ""),
                DeliveryStatus::Duplicate => ("duplicate", 0, ""),
                DeliveryStatus::Rejected { code, message } => ("rejected", *code, message.as_str()),
                DeliveryStatus::Dropped { reason } => ("dropped", 0, reason.as_str()),
            };
            let id = repro_line_core::text::uuid_text(&r.op_id);
            let seq = r.seq as f64;
            cb.op(
                &id,
                seq,
                r.kind.as_str(),
                r.kind.user_id(),
                &line,
                channel,
                status,
                code,
                text,
            )
        }
        Event::State(state) => {
            let (kind, reason) = match state {
                DeliveryState::Paused(r) => ("paused", r.as_str()),
                DeliveryState::Resumed => ("resumed", ""),
            };
            cb.op("", 0.0, kind, reason, "", "", "", 0, "")
        }
    }
}
