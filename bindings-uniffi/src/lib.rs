//! `repro-line-ffi`: the UniFFI adapter that the Android (Kotlin) and iOS (Swift) SDKs call.
//!
//! This crate only maps types: every rule, the queue, retries and delivery live in
//! `repro-line-core`. One object, [`ReproLine`], wraps [`repro_line_core::Client`].
//!
//! * Every exported call returns `Result<_, ReproLineError>` and runs inside `catch_unwind`,
//!   so a Rust panic reaches the app as `ReproLineError::Internal` (Kotlin
//!   `ReproLineException.Internal`, a Swift `throw`) and never unwinds into foreign code or
//!   aborts the process. (UniFFI catches panics too, but turns them into an untyped
//!   `InternalException` in Kotlin and a `try!` crash in Swift for non-throwing functions.)
//! * No `async` exports: the generated Kotlin needs only JNA, the Swift only Foundation.
//! * The listener is a foreign trait called on the SDK's background thread.
//! * HTTP is the app's: [`HttpTransport`] is a synchronous foreign trait that the SDK's
//!   `repro-line` thread calls once per batch (Kotlin `HttpURLConnection`, Swift
//!   `URLSession`), so the library holds no HTTP, TLS or async runtime and the device's
//!   trust store and proxy settings apply. Synchronous because that thread exists only to
//!   deliver (blocking it costs nothing) and async foreign traits do not compile under
//!   Swift 6 in current UniFFI.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use repro_line_core as rl;

uniffi::setup_scaffolding!();

mod fast;
mod presetup;
pub use presetup::{max_buffered_calls, ReplayFailure, ReproLineSdk, MAX_BUFFERED_CALLS};

// ---------------------------------------------------------------- configuration

/// Client settings. Only the first three are required; every `None` uses the core's default
/// (request timeout 30 s, debounce 200 ms, 100 ops per request, 10,000 queued ops, 7 days).
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReproLineConfig {
    /// The Repro SDK token.
    pub sdk_token: String,
    /// Base URL of the ingestion endpoint; `https` unless the host is loopback.
    pub endpoint: String,
    /// A private directory for the durable queue (created if missing), e.g. Android
    /// `context.filesDir/repro-line` or iOS `Application Support/repro-line`.
    pub storage_dir: String,
    /// Channel used when a call passes none.
    #[uniffi(default = None)]
    pub default_channel_id: Option<String>,
    #[uniffi(default = None)]
    pub request_timeout_ms: Option<u64>,
    /// How long the first call of a burst waits for company before a request is sent.
    #[uniffi(default = None)]
    pub debounce_ms: Option<u64>,
    /// Ops per request, 1 to 100.
    #[uniffi(default = None)]
    pub max_batch_ops: Option<u32>,
    /// Queue bound; beyond it the oldest op not in flight is dropped (`QueueFull`).
    #[uniffi(default = None)]
    pub max_queue_ops: Option<u32>,
    /// Undelivered ops older than this are dropped (`Expired`).
    #[uniffi(default = None)]
    pub max_op_age_ms: Option<u64>,
    /// `<platform>` in the User-Agent; defaults to the OS name (`android`, `ios`, `linux`).
    #[uniffi(default = None)]
    pub platform: Option<String>,
}

impl ReproLineConfig {
    fn into_core(self) -> rl::Config {
        let mut c = rl::Config::new(
            self.sdk_token,
            self.endpoint,
            rl::Storage::Directory(PathBuf::from(self.storage_dir)),
        );
        c.default_channel_id = self.default_channel_id;
        if let Some(ms) = self.request_timeout_ms {
            c.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.debounce_ms {
            c.debounce = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_batch_ops {
            c.max_batch_ops = to_usize(n);
        }
        if let Some(n) = self.max_queue_ops {
            c.max_queue_ops = to_usize(n);
        }
        if let Some(ms) = self.max_op_age_ms {
            c.max_op_age = Duration::from_millis(ms);
        }
        if let Some(p) = self.platform {
            c.platform = p;
        }
        c
    }
}

// ---------------------------------------------------------------- errors

/// Every failure of the API. The message states the rule that was broken, e.g.
/// "a LINE user ID is U followed by 32 ASCII letters or digits (33 characters)".
/// Variant names are stable (the conformance scenarios use them as error kinds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum ReproLineError {
    #[error("{0}")]
    InvalidLineUserId(String),
    #[error("{0}")]
    InvalidUserId(String),
    #[error("{0}")]
    InvalidChannelId(String),
    #[error("{0}")]
    MissingChannelId(String),
    #[error("{0}")]
    UserIdNotSet(String),
    /// The ID token is not a compact JWT whose `sub` is a LINE user ID (the message never holds the token).
    #[error("{0}")]
    InvalidIdToken(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InsecureEndpoint(String),
    /// The queue could not be read or written; the call was not accepted.
    #[error("{0}")]
    Storage(String),
    /// `shutdown` was called on this client.
    #[error("{0}")]
    ShutDown(String),
    /// A bug: includes a Rust panic caught at the boundary.
    #[error("{0}")]
    Internal(String),
    /// Another client (in this process or another) holds the storage directory.
    #[error("{0}")]
    StateDirInUse(String),
    /// The storage directory holds undelivered calls for another endpoint.
    #[error("{0}")]
    StateDirBoundToEndpoint(String),
}

impl From<rl::Error> for ReproLineError {
    fn from(e: rl::Error) -> Self {
        use rl::ErrorKind as K;
        let m = e.to_string();
        // Core's kind table; the FFI variants mirror it one-to-one (their names are the kinds').
        match e.kind() {
            K::InvalidLineUserId => ReproLineError::InvalidLineUserId(m),
            K::InvalidUserId => ReproLineError::InvalidUserId(m),
            K::InvalidChannelId => ReproLineError::InvalidChannelId(m),
            K::MissingChannelId => ReproLineError::MissingChannelId(m),
            K::UserIdNotSet => ReproLineError::UserIdNotSet(m),
            K::InvalidIdToken => ReproLineError::InvalidIdToken(m),
            K::InvalidConfig => ReproLineError::InvalidConfig(m),
            K::InsecureEndpoint => ReproLineError::InsecureEndpoint(m),
            K::Storage => ReproLineError::Storage(m),
            K::ShutDown => ReproLineError::ShutDown(m),
            K::StateDirInUse => ReproLineError::StateDirInUse(m),
            K::StateDirBoundToEndpoint => ReproLineError::StateDirBoundToEndpoint(m),
            K::Internal => ReproLineError::Internal(m),
        }
    }
}

/// Runs `f`, turning a panic into `ReproLineError::Internal`.
fn guarded<T>(f: impl FnOnce() -> Result<T, ReproLineError>) -> Result<T, ReproLineError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown payload".to_owned());
            Err(ReproLineError::Internal(format!(
                "internal error: repro-line panicked: {what}"
            )))
        }
    }
}

// ---------------------------------------------------------------- delivery reports

/// What a call asked the endpoint to do. (Not `Operation`: that clashes with Foundation in Swift.)
// A mirror of core's `OpKind`, not the type itself: `OpKind::LinkLineIdToken` carries the
// ID token, a secret that must never reach the app's listener; this shape reports its `sub`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum CallKind {
    SetUserId {
        user_id: String,
    },
    LinkLineId {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
    UnlinkLineId {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
    /// A link with a LINE ID token. `line_user_id` is the token's `sub`, read unverified
    /// for display (the endpoint links only what it verifies); the token itself, a
    /// secret, is never reported.
    LinkLineIdToken {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
}

// Core's own types cross the FFI where their shape fits it. They are declared to UniFFI as
// remote types (below) rather than derived in core behind a feature: a type derived in
// another crate becomes an "external type" of that crate's UniFFI component, generated into
// its own Kotlin package and Swift module, which would rename the public types the wrappers
// and apps use (`com.repro.line.ffi.DropReason`, module `ReproLineBindings`). The remote
// declaration is checked by the compiler: UniFFI's generated code matches every variant of
// the core type, so a variant added in core fails this build until it is listed here.
pub use rl::{DeliveryStatus, DropReason, PauseReason};

// The definitions are core's own (one macro each, the text written once).
repro_line_core::define_delivery_enums!(#[uniffi::remote(Enum)]; #[uniffi::remote(Enum)]);

/// One report per accepted call, delivered once.
// A mirror: core's op ID is a `Uuid` and its call an `OpKind` (see `CallKind`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeliveryReport {
    /// The op's UUID as sent to the endpoint.
    pub op_id: String,
    /// Per-device sequence number; increases with each call.
    pub seq: u64,
    pub call: CallKind,
    pub status: DeliveryStatus,
}

repro_line_core::define_pause_reason!(#[uniffi::remote(Enum)]);

/// Pipeline-wide changes.
// A mirror: core's `Paused(PauseReason)` is a tuple variant, which UniFFI would expose with
// a positional field (`v1`) instead of the `reason` the wrappers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeliveryState {
    /// Nothing is sent until the cause is fixed; calls are still queued.
    Paused {
        reason: PauseReason,
    },
    Resumed,
}

/// How `flush` ended.
// A mirror: core counts `pending` in `usize`, which UniFFI does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FlushOutcome {
    /// Every call was reported to the listener.
    Drained,
    /// The timeout passed with `pending` calls still queued (they stay queued).
    TimedOut { pending: u64 },
    /// Delivery is paused; waiting longer would not help.
    Paused { reason: PauseReason, pending: u64 },
}

/// Implemented by the app. Called on the SDK's background thread (never the caller's or the
/// UI thread): keep it quick and hop to the main thread yourself. An exception thrown inside
/// is caught and logged; delivery continues.
#[uniffi::export(with_foreign)]
pub trait DeliveryListener: Send + Sync {
    /// The final outcome of one call.
    fn on_report(&self, report: DeliveryReport);
    /// Delivery paused or resumed.
    fn on_state_change(&self, state: DeliveryState);
}

struct Forward(Arc<dyn DeliveryListener>);

impl rl::DeliveryListener for Forward {
    fn on_event(&self, event: &rl::Event) {
        match event {
            rl::Event::Op(r) => self.0.on_report(DeliveryReport::from(r)),
            rl::Event::State(s) => self.0.on_state_change(DeliveryState::from(*s)),
        }
    }
}

// ---------------------------------------------------------------- HTTP, by the app

/// One batch request: `POST url` with `headers` (the SDK token among them: never log them)
/// and `body`. The whole exchange must end within `timeout_ms`.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    pub url: String,
    /// Lower-case names: `x-repro-token`, `content-type`, `user-agent`, `x-retry-count`.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub timeout_ms: i32,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum HttpOutcome {
    /// Any HTTP response, whatever its status, with its `Retry-After` header and body
    /// (the SDK reads at most 1 MiB of it).
    Response {
        status: u16,
        retry_after: Option<String>,
        body: Vec<u8>,
    },
    /// No response: DNS, connect, TLS, reset. `message` leads with what failed
    /// (`DNS: …`, `connect: …`, `TLS handshake failed: …`); never the headers.
    NetworkError { message: String },
    /// `timeout_ms` passed without a complete response.
    Timeout { message: String },
}

/// Implemented by the SDK's platform layer (not by apps): sends one request and blocks
/// until it ends. Called on the SDK's `repro-line` thread only, one request at a time.
/// Must not throw: map every failure to an [`HttpOutcome`] (a throw is treated as a
/// network error and the batch is retried).
#[uniffi::export(with_foreign)]
pub trait HttpTransport: Send + Sync {
    fn send(&self, request: HttpRequest) -> HttpOutcome;
}

/// Core's transport seam, served by the platform's [`HttpTransport`].
struct PlatformHttp(Arc<dyn HttpTransport>);

impl rl::HttpTransport for PlatformHttp {
    fn send(&self, request: rl::HttpRequest) -> rl::retry::Outcome {
        let rl::HttpRequest {
            url,
            headers,
            body,
            timeout,
        } = request;
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let outcome = self.0.send(HttpRequest {
            url,
            headers: headers.into_iter().collect(),
            body,
            timeout_ms,
        });
        match outcome {
            HttpOutcome::Response {
                status,
                retry_after,
                mut body,
            } => {
                body.truncate(rl::protocol::MAX_RESPONSE_BYTES);
                rl::retry::Outcome::Response {
                    status,
                    retry_after,
                    body,
                }
            }
            HttpOutcome::NetworkError { message } => rl::retry::Outcome::Network {
                timeout: false,
                message,
            },
            HttpOutcome::Timeout { message } => rl::retry::Outcome::Network {
                timeout: true,
                message,
            },
        }
    }
}

// ---------------------------------------------------------------- the client

/// The SDK client. Thread-safe; methods never wait for the network except `flush` and
/// `shutdown`. Calls are validated on the caller's thread, stored durably, and delivered
/// in call order by one background thread.
#[derive(uniffi::Object)]
pub struct ReproLine {
    client: rl::Client,
}

#[uniffi::export]
impl ReproLine {
    /// Opens (or creates) the queue in `config.storage_dir`, restores pending calls and starts
    /// the delivery thread, which sends through `transport`.
    #[uniffi::constructor]
    pub fn new(
        config: ReproLineConfig,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Arc<ReproLine>, ReproLineError> {
        guarded(|| {
            let client =
                rl::Client::with_transport(config.into_core(), Arc::new(PlatformHttp(transport)))?;
            Ok(Arc::new(ReproLine { client }))
        })
    }

    /// `setUserID`: 1 to 191 characters, no control characters. Persisted before returning.
    pub fn set_user_id(&self, user_id: String) -> Result<(), ReproLineError> {
        guarded(|| Ok(self.client.set_user_id(&user_id)?))
    }

    /// `linkLineID`: links the LINE user ID to the current user ID. `channel_id` `None` uses
    /// the configured default channel.
    #[uniffi::method(default(channel_id = None))]
    pub fn set_line_user_id(
        &self,
        line_user_id: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        guarded(|| {
            Ok(self
                .client
                .set_line_user_id(&line_user_id, channel_id.as_deref())?)
        })
    }

    /// `linkLineIDToken`: links the LINE user ID in the LINE Login ID token's `sub`, once the
    /// endpoint verifies the token. Checked here: a compact JWT of at most 8 KiB whose `sub`
    /// is a LINE user ID, and a user ID set. `channel_id` is Repro's LINE channel ID (not the
    /// LINE Login channel); `None` uses the configured default channel.
    #[uniffi::method(default(channel_id = None))]
    pub fn link_line_id_token(
        &self,
        id_token: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        guarded(|| {
            Ok(self
                .client
                .link_line_id_token(&id_token, channel_id.as_deref())?)
        })
    }

    /// `unlinkLineID`: removes the link if it belongs to the current user ID.
    #[uniffi::method(default(channel_id = None))]
    pub fn unlink_line_user_id(
        &self,
        line_user_id: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        guarded(|| {
            Ok(self
                .client
                .unlink_line_user_id(&line_user_id, channel_id.as_deref())?)
        })
    }

    /// `optIn`: persisted. Opting out purges the queue (reported `Dropped(OptedOut)`); while
    /// opted out, calls are validated, accepted and ignored.
    pub fn set_opted_in(&self, opted_in: bool) -> Result<(), ReproLineError> {
        guarded(|| Ok(self.client.set_opted_in(opted_in)?))
    }

    pub fn opted_in(&self) -> Result<bool, ReproLineError> {
        guarded(|| Ok(self.client.opted_in()))
    }

    /// The last user ID set (persisted across restarts).
    pub fn user_id(&self) -> Result<Option<String>, ReproLineError> {
        guarded(|| Ok(self.client.user_id()))
    }

    /// A random UUID created on first start and persisted with the queue.
    pub fn device_id(&self) -> Result<String, ReproLineError> {
        guarded(|| Ok(self.client.device_id()))
    }

    /// Calls accepted but not yet reported.
    pub fn pending_ops(&self) -> Result<u64, ReproLineError> {
        guarded(|| Ok(to_u64(self.client.pending_ops())))
    }

    /// Sends everything now and BLOCKS until every call is reported, delivery pauses, or
    /// `timeout_ms` passes. Never call it on the UI thread.
    pub fn flush(&self, timeout_ms: u64) -> Result<FlushOutcome, ReproLineError> {
        guarded(|| {
            Ok(FlushOutcome::from(
                self.client.flush(Duration::from_millis(timeout_ms)),
            ))
        })
    }

    /// Flushes for up to `timeout_ms` (blocking), then stops the delivery thread. Undelivered
    /// calls stay stored for the next start; later calls fail with `ShutDown`.
    pub fn shutdown(&self, timeout_ms: u64) -> Result<FlushOutcome, ReproLineError> {
        guarded(|| {
            Ok(FlushOutcome::from(
                self.client.shutdown(Duration::from_millis(timeout_ms)),
            ))
        })
    }

    /// Uses a new SDK token from now on and resumes delivery paused by `AuthFailed`.
    pub fn set_sdk_token(&self, sdk_token: String) -> Result<(), ReproLineError> {
        guarded(|| Ok(self.client.set_sdk_token(&sdk_token)?))
    }

    /// Registers the listener, replacing any previous one.
    pub fn set_delivery_listener(
        &self,
        listener: Arc<dyn DeliveryListener>,
    ) -> Result<(), ReproLineError> {
        guarded(|| {
            self.client.set_listener(Arc::new(Forward(listener)));
            Ok(())
        })
    }
}

// ---------------------------------------------------------------- stateless helpers

/// The user ID rule, checked without a client (the wrappers use it for calls made before setup).
#[uniffi::export]
pub fn validate_user_id(user_id: String) -> Result<(), ReproLineError> {
    guarded(|| Ok(rl::validate::user_id(&user_id)?))
}

/// The LINE user ID rule, checked without a client.
#[uniffi::export]
pub fn validate_line_user_id(line_user_id: String) -> Result<(), ReproLineError> {
    guarded(|| Ok(rl::validate::line_user_id(&line_user_id)?))
}

/// The ID token checks of `link_line_id_token` (shape, a `sub` that is a LINE user ID),
/// without a client. The token is otherwise not trusted: the endpoint verifies it.
#[uniffi::export]
pub fn validate_id_token(id_token: String) -> Result<(), ReproLineError> {
    guarded(|| Ok(rl::validate::id_token(&id_token).map(drop)?))
}

/// The channel ID rule, checked without a client.
#[uniffi::export]
pub fn validate_channel_id(channel_id: String) -> Result<(), ReproLineError> {
    guarded(|| Ok(rl::validate::channel_id(&channel_id)?))
}

/// The SDK version (the crate version).
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// FOR TESTS ONLY: panics inside the Rust adapter so a test can prove a panic reaches the
/// app as `ReproLineError::Internal` instead of crashing the process. Never call it in an app.
#[uniffi::export]
pub fn debug_panic_for_tests(message: String) -> Result<(), ReproLineError> {
    guarded(|| panic!("{message}"))
}

// ---------------------------------------------------------------- conversions

impl From<&rl::DeliveryReport> for DeliveryReport {
    fn from(r: &rl::DeliveryReport) -> Self {
        DeliveryReport {
            op_id: r.op_id.to_string(),
            seq: r.seq,
            call: CallKind::from(&r.kind),
            status: r.status.clone(),
        }
    }
}

impl From<&rl::protocol::OpKind> for CallKind {
    fn from(k: &rl::protocol::OpKind) -> Self {
        use rl::protocol::OpKind;
        match k.clone() {
            OpKind::SetUserId { user_id } => CallKind::SetUserId { user_id },
            OpKind::LinkLineId {
                user_id,
                line_user_id,
                channel_id,
            } => CallKind::LinkLineId {
                user_id,
                line_user_id,
                channel_id,
            },
            OpKind::UnlinkLineId {
                user_id,
                line_user_id,
                channel_id,
            } => CallKind::UnlinkLineId {
                user_id,
                line_user_id,
                channel_id,
            },
            OpKind::LinkLineIdToken {
                user_id,
                id_token,
                channel_id,
            } => CallKind::LinkLineIdToken {
                user_id,
                line_user_id: rl::protocol::id_token_subject(&id_token).unwrap_or_default(),
                channel_id,
            },
        }
    }
}

impl From<rl::DeliveryState> for DeliveryState {
    fn from(s: rl::DeliveryState) -> Self {
        match s {
            rl::DeliveryState::Paused(reason) => DeliveryState::Paused { reason },
            rl::DeliveryState::Resumed => DeliveryState::Resumed,
        }
    }
}

impl From<rl::FlushOutcome> for FlushOutcome {
    fn from(r: rl::FlushOutcome) -> Self {
        match r {
            rl::FlushOutcome::Drained => FlushOutcome::Drained,
            rl::FlushOutcome::TimedOut { pending } => FlushOutcome::TimedOut {
                pending: to_u64(pending),
            },
            rl::FlushOutcome::Paused { reason, pending } => FlushOutcome::Paused {
                reason,
                pending: to_u64(pending),
            },
        }
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
