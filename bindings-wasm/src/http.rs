//! The driver's I/O boundary with npm/src/index.js, in primitives only.
//!
//! The page's JS does the I/O and nothing else (`io` in npm/src/index.js):
//! it POSTs one batch through `fetch` with an abort timer, or arms one timer,
//! and hands the result back through `Client.call` (`TICK`, `NETWORK`,
//! `RESPONSE + status`). Every decision (what to send, when, retries, backoff,
//! Retry-After) stays in core's Session. Awaiting a `Promise` from Rust took
//! wasm-bindgen-futures and its closures: ~3 KB more wasm than this.

use repro_line_core::protocol::{HEADER_RETRY_COUNT, HEADER_TOKEN, MAX_RESPONSE_BYTES};
use repro_line_core::retry::Outcome;
use repro_line_core::session::Request;

use crate::js;

/// Browsers cap the bodies of all pending `keepalive` requests of a page at 64 KiB.
const KEEPALIVE_MAX_BODY: usize = 60 * 1024;

/// `Client.call` codes of the I/O's results (npm/src/index.js uses the same numbers).
pub const TICK: u32 = 13;
/// A failed fetch: `a` the message, `b` present if the abort timer ended it.
pub const NETWORK: u32 = 14;
/// An answer: `RESPONSE + status`, `a` the body, `b` the `Retry-After` header.
pub const RESPONSE: u32 = 1000;

/// Asks the page's JS to `TICK` after `ms` (0: at the end of this task; below 0: never).
/// Replaces any timer armed before.
pub fn wait(io: &js::Page, ms: f64) {
    io.wait(ms);
}

/// Asks the page's JS to POST `request`, ending it after `timeout_ms`; `keepalive`: the page is
/// hidden or going away and the request must outlive it. `Err`: the JS threw (nothing was sent).
pub fn post(
    io: &js::Page,
    url: &str,
    token: &str,
    request: &Request,
    timeout_ms: f64,
    keepalive: bool,
) -> Result<(), js::JsError> {
    let keepalive = keepalive && request.body.len() <= KEEPALIVE_MAX_BODY;
    io.post(
        timeout_ms,
        url,
        HEADER_TOKEN,
        token,
        HEADER_RETRY_COUNT,
        request.retry_count,
        &request.body,
        keepalive,
    )
}

/// The outcome of a `NETWORK` or `RESPONSE + status` call, for core; `None` for other codes.
// Out of line: a smaller wasm (measured with wasm-opt's one-caller limit; BENCHMARKS §8).
#[inline(never)]
pub fn outcome(what: u32, a: &str, b: Option<String>) -> Option<Outcome> {
    match what {
        NETWORK => Some(Outcome::Network {
            timeout: b.is_some(),
            message: a.to_owned(),
        }),
        RESPONSE.. => {
            let body = a.as_bytes();
            Some(Outcome::Response {
                status: (what - RESPONSE).min(u32::from(u16::MAX)) as u16,
                retry_after: b,
                body: body[..body.len().min(MAX_RESPONSE_BYTES)].to_vec(),
            })
        }
        _ => None,
    }
}
