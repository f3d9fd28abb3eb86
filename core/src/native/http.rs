//! The driver's one I/O seam towards the endpoint: a synchronous transport called
//! from the SDK's own `repro-line` thread.
//!
//! Why synchronous and called (rather than the platform polling "what next?"): the
//! driver already owns a thread whose only job is delivery, so a blocking `send`
//! there costs nothing, keeps the engine's order and retry logic in one place, and
//! maps 1:1 to a UniFFI foreign trait that Kotlin (`HttpURLConnection`) and Swift
//! (`URLSession` + a semaphore) implement in a few lines. Async foreign traits are
//! avoided on purpose: their Swift 6 output does not compile in current UniFFI.

use std::time::Duration;

use crate::protocol::{HEADER_RETRY_COUNT, HEADER_TOKEN};
use crate::retry::Outcome;
use crate::session::Request;

/// One batch request, ready to send: `POST url` with these headers and body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    /// Name/value pairs, names lower-case; includes the SDK token (never log them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The whole request (connect + send + response) must end within this.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("headers", &self.headers.len())
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends batch requests for the driver. Called on the `repro-line` thread only, one request
/// at a time; it may block for up to the request's timeout.
///
/// The outcome maps to the engine's: any HTTP response (any status) is
/// [`Outcome::Response`] with its `Retry-After` header and at most
/// [`crate::protocol::MAX_RESPONSE_BYTES`] of body; no response (DNS, connect, TLS,
/// reset) is [`Outcome::Network`], with `timeout: true` when the timeout passed. The
/// message leads with what failed (`DNS: …`, `TLS handshake failed: …`, `connect: …`).
/// A panic inside is caught and treated as a network failure.
pub trait HttpTransport: Send + Sync {
    fn send(&self, request: HttpRequest) -> Outcome;

    /// Called at shutdown from another thread: end an in-flight `send` early if you can
    /// (its ops stay queued and are resent on the next start). The default does nothing,
    /// so shutdown waits for the request to end.
    fn interrupt(&self) {}
}

/// The headers of docs/protocol.md for one request.
pub(super) fn build_request(
    url: &str,
    token: &str,
    user_agent: &str,
    timeout: Duration,
    request: &Request,
) -> HttpRequest {
    HttpRequest {
        url: url.to_owned(),
        headers: vec![
            (HEADER_TOKEN.to_owned(), token.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), user_agent.to_owned()),
            (
                HEADER_RETRY_COUNT.to_owned(),
                request.retry_count.to_string(),
            ),
        ],
        body: request.body.clone(),
        timeout,
    }
}

/// `repro-line/<version> (<platform>)`.
pub(super) fn user_agent(platform: &str) -> String {
    format!("repro-line/{} ({platform})", env!("CARGO_PKG_VERSION"))
}
