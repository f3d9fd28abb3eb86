//! The driver: one background thread (`repro-line`) that runs the engine and sends
//! through an [`HttpTransport`]: the built-in reqwest one (feature `native`) or the
//! app's (the mobile SDKs use the platform's HTTP stack; feature `driver` alone has no
//! async runtime, HTTP or TLS code). Calls lock the session, append one record to the
//! store and wake the thread; they never wait for the network.

#[cfg(all(test, feature = "native"))]
mod compaction_tests;
mod http;
mod state_dir;
#[cfg(feature = "native")]
mod transport;

pub use http::{HttpRequest, HttpTransport};
#[cfg(feature = "native")]
pub use transport::ReqwestTransport;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::engine::Event;
use crate::policy::{self, Policy};
use crate::protocol::Outcome;
use crate::session::{Call, Compaction, Next, RecoveryReport, Session};
use crate::store::file::FileStore;
use crate::store::{MemoryStore, Store};
use crate::{endpoint, Error, PauseReason};

/// Where the queue lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A directory holding the journal (created 0700 if missing). Use the app's private files
    /// dir. One client at a time (`Error::StateDirInUse`), bound to the endpoint its queued
    /// calls were made for (`Error::StateDirBoundToEndpoint`).
    Directory(PathBuf),
    /// In memory: for tests; clones share content, so a "restart" can reuse it.
    Memory(MemoryStore),
}

/// Client settings. `Debug` never prints the token.
#[derive(Clone)]
pub struct Config {
    pub sdk_token: String,
    /// Base URL; `https` unless the host is loopback.
    pub endpoint: String,
    pub storage: Storage,
    /// Channel used when a call passes none.
    pub default_channel_id: Option<String>,
    pub request_timeout: Duration,
    /// Ops per request, 1..=100.
    pub max_batch_ops: usize,
    /// Queue bound after coalescing; the oldest op not in flight is dropped beyond it.
    pub max_queue_ops: usize,
    /// Undelivered ops older than this are dropped (reported `Expired`).
    pub max_op_age: Duration,
    /// How long the first call of a burst waits for company before a request is sent.
    pub debounce: Duration,
    /// `<platform>` in the User-Agent, e.g. `android`, `ios`; defaults to the OS name.
    pub platform: String,
}

impl Config {
    /// Defaults from the docs: timeout 30 s, 100 ops per batch, 10,000 queued, 7 days, 200 ms debounce.
    pub fn new(
        sdk_token: impl Into<String>,
        endpoint: impl Into<String>,
        storage: Storage,
    ) -> Config {
        let d = Policy::default();
        Config {
            sdk_token: sdk_token.into(),
            endpoint: endpoint.into(),
            storage,
            default_channel_id: None,
            request_timeout: Duration::from_millis(d.request_timeout_ms),
            max_batch_ops: d.max_batch_ops,
            max_queue_ops: d.max_queue_ops,
            max_op_age: Duration::from_millis(d.max_op_age_ms),
            debounce: Duration::from_millis(d.debounce_ms),
            platform: std::env::consts::OS.to_owned(),
        }
    }

    /// The validated policy: these settings over the native defaults.
    pub fn policy(&self) -> Result<Policy, Error> {
        let policy = Policy {
            max_batch_ops: self.max_batch_ops,
            max_queue_ops: self.max_queue_ops,
            max_op_age_ms: duration_ms(self.max_op_age),
            debounce_ms: duration_ms(self.debounce),
            // Rounded up: a sub-millisecond timeout is still above zero.
            request_timeout_ms: duration_ms(self.request_timeout)
                .max(u64::from(!self.request_timeout.is_zero())),
            ..Policy::default()
        };
        policy.validate()?;
        Ok(policy)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("sdk_token", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("storage", &self.storage)
            .field("default_channel_id", &self.default_channel_id)
            .field("request_timeout", &self.request_timeout)
            .field("max_batch_ops", &self.max_batch_ops)
            .field("max_queue_ops", &self.max_queue_ops)
            .field("max_op_age", &self.max_op_age)
            .field("debounce", &self.debounce)
            .field("platform", &self.platform)
            .finish()
    }
}

/// Receives one report per call and the pause/resume state, on the SDK's background thread.
/// Keep it quick; a panic inside is caught and logged.
pub trait DeliveryListener: Send + Sync {
    fn on_event(&self, event: &Event);

    /// Start-up found the journal damaged (`report.is_damaged()`): calls may have been
    /// lost. Called once, on the first listener set, on the caller's thread.
    fn on_recovery(&self, _report: &RecoveryReport) {}

    /// A request failed for a new reason (`DNS: …`, `TLS handshake failed: …`,
    /// `HTTP 404 from URL`); the calls stay queued. Called before the pause or
    /// retry it causes is reported, once per change of reason.
    fn on_request_failed(&self, _error: &str) {}
}

impl<F: Fn(&Event) + Send + Sync> DeliveryListener for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// How `flush` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Every call was reported.
    Drained,
    /// The timeout passed with `pending` calls still queued.
    TimedOut { pending: usize },
    /// Delivery is paused; waiting longer would not help.
    Paused { reason: PauseReason, pending: usize },
}

/// Bounded spin before [`Shared::session`] sleeps (a few µs).
const SESSION_LOCK_SPINS: u32 = 1000;

struct Shared {
    session: Mutex<Session>,
    /// Signalled whenever calls are reported or delivery pauses.
    progress: Condvar,
    wake: Wake,
    /// Sends the driver's requests; interrupted at shutdown (its ops stay queued and are resent later).
    transport: Arc<dyn HttpTransport>,
    listener: RwLock<Option<Arc<dyn DeliveryListener>>>,
    /// Reports made before any listener was set (a restored op can be answered
    /// before the app registers one); the first listener gets them.
    unheard: Mutex<Vec<Event>>,
    /// The damage report still owed to the first listener.
    recovery_unreported: AtomicBool,
    token: RwLock<String>,
    /// Set by calls after an append; the driver fsyncs and clears it.
    dirty: AtomicBool,
    stop: AtomicBool,
    requests: AtomicU64,
    /// Why the last request failed (cleared by a success), for `Client::last_error`.
    last_error: Mutex<Option<String>>,
    /// Set while the driver works under the session lock (a poll or a batch's outcome),
    /// which takes far longer than a call's append: callers then sleep rather than spin.
    driver_in_session: AtomicBool,
    /// Events taken from the session but not yet handed to the listener; `flush` waits for them.
    dispatching: AtomicUsize,
    /// Runs between a compaction's write and its install (tests hold the driver there).
    #[cfg(test)]
    compaction_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl Shared {
    /// The driver's long sections under the session lock (see `driver_in_session`).
    fn as_driver<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        self.driver_in_session.store(true, Ordering::Relaxed);
        let result = f(&mut self.session.lock().unwrap_or_else(|e| e.into_inner()));
        self.driver_in_session.store(false, Ordering::Relaxed);
        result
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        // The lock is held for about one write(2); spinning that long is cheaper than
        // sleeping in the kernel and being woken, which is what a second calling
        // thread would otherwise pay at the tail.
        for _ in 0..SESSION_LOCK_SPINS {
            if self.driver_in_session.load(Ordering::Relaxed) {
                break; // the driver holds it for a whole batch: sleep instead
            }
            match self.session.try_lock() {
                Ok(guard) => return guard,
                // The session is left consistent by every method, so a poisoned lock is still usable.
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
            }
        }
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The SDK client. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Client {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Held until shutdown (or drop): released once the delivery thread has stopped and
    /// nothing more can be written, so the next client may open the dir.
    state_dir: Mutex<Option<state_dir::StateDir>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &*self.shared.session())
            .finish()
    }
}

impl Client {
    /// Opens the store, restores pending ops and starts the delivery thread, sending with
    /// the built-in reqwest transport.
    #[cfg(feature = "native")]
    pub fn new(config: Config) -> Result<Client, Error> {
        let connect_timeout = config.request_timeout.min(Duration::from_secs(10));
        let transport = ReqwestTransport::new(connect_timeout)?;
        Client::with_transport(config, Arc::new(transport))
    }

    /// Opens the store, restores pending ops and starts the delivery thread, sending with
    /// `transport` (called on the `repro-line` thread only).
    pub fn with_transport(
        config: Config,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Client, Error> {
        let policy = config.policy()?;
        let url = endpoint::batch_url(&config.endpoint)?;
        policy::check_sdk_token(&config.sdk_token)?;
        let sync_interval = Duration::from_millis(policy.sync_interval_ms);
        // The lock comes first: nothing in the directory is read or written without it.
        let state_dir = match &config.storage {
            Storage::Directory(dir) => Some(state_dir::StateDir::acquire(dir)?),
            Storage::Memory(_) => None,
        };
        let store: Box<dyn Store> = match &config.storage {
            Storage::Directory(dir) => Box::new(FileStore::open(dir)?),
            Storage::Memory(m) => Box::new(m.clone()),
        };
        let mut session = Session::open(policy, config.default_channel_id.clone(), store)?;
        session.hold_done_until_reported();
        if let Some(d) = &state_dir {
            d.bind_endpoint(&url, session.pending_ops())?;
        }
        let recovery_damaged = session.recovery().is_damaged();
        let http = Http {
            url,
            user_agent: http::user_agent(&config.platform),
            timeout: config.request_timeout,
        };
        let shared = Arc::new(Shared {
            session: Mutex::new(session),
            progress: Condvar::new(),
            wake: Wake::default(),
            transport,
            listener: RwLock::new(None),
            unheard: Mutex::new(Vec::new()),
            recovery_unreported: AtomicBool::new(recovery_damaged),
            token: RwLock::new(config.sdk_token.clone()),
            dirty: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            last_error: Mutex::new(None),
            dispatching: AtomicUsize::new(0),
            driver_in_session: AtomicBool::new(false),
            #[cfg(test)]
            compaction_hook: Mutex::new(None),
        });
        let driver_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("repro-line".into())
            .spawn(move || drive(driver_shared, http, sync_interval))
            .map_err(|e| Error::Internal(format!("cannot start the delivery thread: {e}")))?;
        Ok(Client {
            shared,
            thread: Mutex::new(Some(thread)),
            state_dir: Mutex::new(state_dir),
        })
    }

    /// `setUserID`.
    pub fn set_user_id(&self, user_id: &str) -> Result<(), Error> {
        self.call(|s, now| s.set_user_id(now, user_id))
    }

    /// `linkLineID`; `None` uses `Config::default_channel_id`.
    pub fn set_line_user_id(
        &self,
        line_user_id: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.call(|s, now| s.set_line_user_id(now, line_user_id, channel_id))
    }

    /// `linkLineIDToken`: links the LINE user ID in the ID token's `sub` once the endpoint
    /// verifies the token. Checked here: the token's shape and its `sub`; `None` uses
    /// `Config::default_channel_id` (Repro's LINE channel ID, not the LINE Login channel).
    pub fn link_line_id_token(
        &self,
        id_token: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.call(|s, now| s.link_line_id_token(now, id_token, channel_id))
    }

    /// `unlinkLineID`; `None` uses `Config::default_channel_id`.
    pub fn unlink_line_user_id(
        &self,
        line_user_id: &str,
        channel_id: Option<&str>,
    ) -> Result<(), Error> {
        self.call(|s, now| s.unlink_line_user_id(now, line_user_id, channel_id))
    }

    /// `optIn`: persisted. While opted out, calls are accepted and ignored, and the queue is purged.
    pub fn set_opted_in(&self, opted_in: bool) -> Result<(), Error> {
        self.call(|s, _| s.set_opted_in(opted_in))
    }

    /// Several calls, accepted all-or-nothing with one store append, plus an optional
    /// progress checkpoint stored atomically with them (see `checkpoint`).
    pub fn apply(&self, calls: &[Call], checkpoint: Option<(&str, u64)>) -> Result<(), Error> {
        self.call(|s, now| s.apply(now, calls, checkpoint))
    }

    /// The last checkpoint stored under `key` by `apply`.
    pub fn checkpoint(&self, key: &str) -> Option<u64> {
        self.shared.session().checkpoint(key)
    }

    /// Why the last request failed, e.g. `DNS: …`, `TLS handshake failed: …` or
    /// `HTTP 404 from https://…/v1/identity/batch`; `None` once a request succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// HTTP requests sent since this client started.
    pub fn requests_sent(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    pub fn opted_in(&self) -> bool {
        self.shared.session().opted_in()
    }

    pub fn user_id(&self) -> Option<String> {
        self.shared.session().user_id().map(str::to_owned)
    }

    /// A random UUID created on first start and persisted with the queue.
    pub fn device_id(&self) -> String {
        self.shared.session().device_id().to_string()
    }

    /// Calls accepted but not yet reported.
    pub fn pending_ops(&self) -> usize {
        self.shared.session().pending_ops()
    }

    /// What the last start recovered from the store.
    pub fn recovery(&self) -> RecoveryReport {
        self.shared.session().recovery().clone()
    }

    /// Registers the listener (replacing any previous one). The first listener also
    /// gets, on this thread, a damage report from start-up and the reports made before it.
    pub fn set_listener(&self, listener: Arc<dyn DeliveryListener>) {
        if self
            .shared
            .recovery_unreported
            .swap(false, Ordering::AcqRel)
        {
            let report = self.recovery();
            if catch_unwind(AssertUnwindSafe(|| listener.on_recovery(&report))).is_err() {
                tracing::error!("repro-line delivery listener panicked; continuing");
            }
        }
        let mut slot = self
            .shared
            .listener
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Under the write lock, so the driver cannot buffer an event after this drain.
        let unheard = std::mem::take(
            &mut *self
                .shared
                .unheard
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for event in &unheard {
            if catch_unwind(AssertUnwindSafe(|| listener.on_event(event))).is_err() {
                tracing::error!("repro-line delivery listener panicked; continuing");
            }
        }
        *slot = Some(listener);
    }

    /// Uses a new SDK token from now on and resumes delivery after `AuthFailed`.
    pub fn set_sdk_token(&self, token: &str) -> Result<(), Error> {
        policy::check_sdk_token(token)?;
        *self.shared.token.write().unwrap_or_else(|e| e.into_inner()) = token.to_owned();
        self.shared.session().resume();
        self.shared.wake.notify();
        Ok(())
    }

    /// Sends everything now (skipping the debounce) and blocks until the queue is empty,
    /// delivery pauses, or `timeout` passes. Do not call it from a UI thread.
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        let deadline = Instant::now() + timeout;
        let mut session = self.shared.session();
        session.request_flush();
        self.shared.wake.notify();
        loop {
            let pending = session.pending_ops();
            let reported = !session.engine().has_events()
                && self.shared.dispatching.load(Ordering::Acquire) == 0;
            if pending == 0 && reported {
                return FlushOutcome::Drained;
            }
            if let Some(reason) = session.engine().paused().filter(|_| pending > 0) {
                return FlushOutcome::Paused { reason, pending };
            }
            let now = Instant::now();
            if now >= deadline || self.shared.stop.load(Ordering::Acquire) {
                return FlushOutcome::TimedOut { pending };
            }
            session = match self.shared.progress.wait_timeout(session, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Flushes for up to `timeout`, then stops the delivery thread. Undelivered ops stay in the
    /// store for the next start, and the state dir is released for the next client. Later calls
    /// return `Error::ShutDown`.
    pub fn shutdown(&self, timeout: Duration) -> FlushOutcome {
        let result = self.flush(timeout);
        self.stop_thread();
        result
    }

    fn stop_thread(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify();
        self.shared.transport.interrupt();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        if let Some(s) = self.shared.session().syncer() {
            let _ = s.sync();
        }
        self.state_dir
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn call(&self, f: impl FnOnce(&mut Session, u64) -> Result<(), Error>) -> Result<(), Error> {
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        let plan_changed = {
            let mut session = self.shared.session();
            let before = session.engine().queued_ops();
            f(&mut session, now_ms())?;
            let after = session.engine().queued_ops();
            let full = session.engine().config().max_batch_ops;
            // The driver waits for the head op's debounce; only a first op or a
            // full batch moves that moment, so other calls need not wake it. Reports
            // (an opt-out purge, a drop at the queue bound) are dispatched at once.
            (before == 0 && after > 0)
                || (before < full && after >= full)
                || session.engine().has_events()
        };
        // The first append since the driver's last fsync wakes it to schedule the next
        // one; later appends ride on that sync (group commit).
        let first_unsynced = !self.shared.dirty.swap(true, Ordering::AcqRel);
        if plan_changed || first_unsynced {
            self.shared.wake.notify();
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Ops stay in the store; only the in-flight request (if any) is waited for.
        self.stop_thread();
    }
}

/// Where and how the driver's requests go (fixed at start).
struct Http {
    url: String,
    user_agent: String,
    timeout: Duration,
}

/// Wakes the driver: a call made its plan change, a flush, a new token, shutdown.
/// A wake that comes while the driver is busy is kept, so none is lost.
#[derive(Default)]
struct Wake {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }

    /// Sleeps until notified or `deadline` (forever when `None`).
    fn wait(&self, deadline: Option<Instant>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while !*pending {
            pending = match deadline {
                None => self.cv.wait(pending).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        break;
                    }
                    self.cv
                        .wait_timeout(pending, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        *pending = false;
    }
}

fn drive(shared: Arc<Shared>, http: Http, sync_interval: Duration) {
    let mut last_sync: Option<Instant> = None;
    while !shared.stop.load(Ordering::Acquire) {
        let (next, events) = shared.as_driver(|s| (s.poll(now_ms()), take_events(&shared, s)));
        dispatch(&shared, events);
        // A pending fsync bounds how long the driver may sleep.
        let mut sync_at = None;
        if shared.dirty.load(Ordering::Acquire) {
            let due = last_sync.map_or_else(Instant::now, |t| t + sync_interval);
            if due <= Instant::now() {
                shared.dirty.store(false, Ordering::Release);
                sync_store(&shared);
                last_sync = Some(Instant::now());
            } else {
                sync_at = Some(due);
            }
        }
        match next {
            Next::Send(request) => {
                let token = shared
                    .token
                    .read()
                    .map(|t| t.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let outgoing = http::build_request(
                    &http.url,
                    &token,
                    &http.user_agent,
                    http.timeout,
                    &request,
                );
                let sent = catch_unwind(AssertUnwindSafe(|| shared.transport.send(outgoing)));
                let outcome = sent.unwrap_or_else(|_| {
                    tracing::error!("repro-line HTTP transport panicked; the batch is retried");
                    Outcome::Network {
                        timeout: false,
                        message: "network: the HTTP transport failed unexpectedly".into(),
                    }
                });
                if shared.stop.load(Ordering::Acquire) {
                    // Shutting down: the batch stays queued and is resent next start.
                    break;
                }
                let failure = match &outcome {
                    Outcome::Network { message, .. } => Some(message.clone()),
                    Outcome::Response { status: 200, .. } => None,
                    Outcome::Response { status, .. } => {
                        Some(format!("HTTP {status} from {}", http.url))
                    }
                };
                let changed = {
                    let mut last = shared.last_error.lock().unwrap_or_else(|e| e.into_inner());
                    let changed = failure.is_some() && *last != failure;
                    *last = failure.clone();
                    changed
                };
                if let Some(message) = failure.filter(|_| changed) {
                    // Each new reason once, not every retry of the same one.
                    let listener = shared.listener.read().ok().and_then(|l| l.clone());
                    if let Some(l) = listener {
                        if catch_unwind(AssertUnwindSafe(|| l.on_request_failed(&message))).is_err()
                        {
                            tracing::error!("repro-line delivery listener panicked; continuing");
                        }
                    }
                }
                let (compaction, events) = shared.as_driver(|s| {
                    s.on_outcome(now_ms(), request.batch_id, &outcome);
                    // Before the events are taken: their held `Done` records block it.
                    (s.begin_compaction(), take_events(&shared, s))
                });
                finish_compaction(&shared, compaction);
                dispatch(&shared, events);
            }
            Next::WaitUntil(t) => {
                let at = Instant::now() + Duration::from_millis(t.saturating_sub(now_ms()));
                shared
                    .wake
                    .wait(Some(sync_at.map_or(at, |s: Instant| s.min(at))));
            }
            Next::Idle => shared.wake.wait(sync_at),
        }
    }
}

fn sync_store(shared: &Shared) {
    let syncer = shared.session().syncer();
    if let Some(s) = syncer {
        if let Err(e) = s.sync() {
            tracing::warn!(error = %e, "repro-line fsync failed");
        }
    }
}

/// Reports kept for a listener not yet set (one queue's worth).
const MAX_UNHEARD: usize = 10_000;

/// Events taken from the session, with the `Done` records to journal once they reached the app.
struct Taken {
    events: Vec<Event>,
    done: Vec<crate::engine::JournalEntry>,
}

/// Takes the session's events, counting them as in dispatch (under the session lock).
fn take_events(shared: &Shared, session: &mut Session) -> Taken {
    let events = session.take_events();
    shared.dispatching.fetch_add(events.len(), Ordering::AcqRel);
    Taken {
        events,
        done: session.take_held_done(),
    }
}

/// Hands events to the listener, journals that they were reported, then wakes `flush`
/// waiters: a flush that returns has had its reports delivered.
fn dispatch(shared: &Shared, taken: Taken) {
    let Taken { events, done } = taken;
    if events.is_empty() {
        if !done.is_empty() {
            let compaction = {
                let mut session = shared.session();
                session.reported(done);
                session.begin_compaction()
            };
            finish_compaction(shared, compaction);
        }
        return;
    }
    let guard = shared.listener.read().unwrap_or_else(|e| e.into_inner());
    let listener = guard.clone();
    if listener.is_none() {
        let mut unheard = shared.unheard.lock().unwrap_or_else(|e| e.into_inner());
        for event in &events {
            log_event(event);
        }
        // Bounded: an app that never sets a listener must not grow without limit.
        let room = MAX_UNHEARD.saturating_sub(unheard.len());
        unheard.extend(events.iter().take(room).cloned());
    }
    drop(guard);
    if let Some(l) = &listener {
        for event in &events {
            log_event(event);
            if catch_unwind(AssertUnwindSafe(|| l.on_event(event))).is_err() {
                tracing::error!("repro-line delivery listener panicked; continuing");
            }
        }
    }
    let reported_any = !done.is_empty();
    let compaction = {
        let mut session = shared.session();
        session.reported(done);
        // Before waking `flush`: a drained queue's journal is small when it returns.
        reported_any.then(|| session.begin_compaction()).flatten()
    };
    finish_compaction(shared, compaction);
    {
        // Under the session lock, so a waiter cannot check between the decrement and its wait.
        let _session = shared.session();
        shared.dispatching.fetch_sub(events.len(), Ordering::AcqRel);
    }
    shared.progress.notify_all();
}

/// The slow part of a compaction (writing and fsyncing the snapshot) runs without the
/// session lock, so calls are not held up by it; only the install takes the lock again.
fn finish_compaction(shared: &Shared, compaction: Option<Compaction>) {
    if let Some(mut c) = compaction {
        c.write();
        #[cfg(test)]
        if let Some(hook) = &*shared
            .compaction_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            hook();
        }
        shared.session().finish_compaction(c);
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Op(r) => {
            tracing::debug!(seq = r.seq, op_id = %r.op_id, status = ?r.status, "op finished")
        }
        Event::State(s) => tracing::warn!(state = ?s, "repro-line delivery state changed"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
