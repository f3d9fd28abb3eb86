//! One batch request over the browser's `fetch`, with a timeout through
//! `AbortController`. Maps every result onto core's `Outcome`; the retry policy
//! stays in core.
//!
//! The request itself is a few lines of JS (`post` below): building the `fetch`
//! options, headers and abort timer through bindings took ~2 KB of wasm; the
//! JS is smaller and is minified with the rest of the package.

use js_sys::{Array, Promise, Uint8Array};
use repro_line_core::protocol::{HEADER_RETRY_COUNT, HEADER_TOKEN, MAX_RESPONSE_BYTES};
use repro_line_core::retry::Outcome;
use repro_line_core::session::Request;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js;

/// Browsers cap the bodies of all pending `keepalive` requests of a page at 64 KiB.
const KEEPALIVE_MAX_BODY: usize = 60 * 1024;

// Resolves `[status, retryAfter | null, body bytes]`; rejects `[timedOut, message]`. Cookies are
// never sent (the token authenticates, and they must not leak to the endpoint); `keepalive` lets
// the request outlive the page (flush on pagehide / hidden). The timer also ends a body that never
// finishes. `Retry-After` is readable cross-origin only if the endpoint sends
// `Access-Control-Expose-Headers: Retry-After`.
#[wasm_bindgen(inline_js = "
export function post(url, tokenHeader, token, retryHeader, retry, body, ms, keepalive) {
  const c = new AbortController();
  let late = false;
  const t = setTimeout(() => { late = true; c.abort(); }, ms);
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [tokenHeader]: token, [retryHeader]: '' + retry },
    body: body.slice(),
    credentials: 'omit',
    cache: 'no-store',
    keepalive,
    signal: c.signal,
  })
    .then(async (r) => [r.status, r.headers.get('retry-after'), new Uint8Array(await r.arrayBuffer())])
    .catch((e) => { throw [late, String((e && e.message) || e)]; })
    .finally(() => clearTimeout(t));
}
")]
extern "C" {
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(catch)]
    fn post(
        url: &str,
        token_header: &str,
        token: &str,
        retry_header: &str,
        retry: u32,
        body: &[u8],
        timeout_ms: f64,
        keepalive: bool,
    ) -> Result<Promise, JsValue>;
}

pub async fn send(
    url: &str,
    token: &str,
    request: &Request,
    timeout_ms: f64,
    keepalive: bool,
) -> Outcome {
    let keepalive = keepalive && request.body.len() <= KEEPALIVE_MAX_BODY;
    let sent = post(
        url,
        HEADER_TOKEN,
        token,
        HEADER_RETRY_COUNT,
        request.retry_count,
        &request.body,
        timeout_ms,
        keepalive,
    );
    let result = match sent {
        Ok(p) => JsFuture::from(p).await,
        Err(e) => Err(Array::of2(&JsValue::FALSE, &e).into()),
    };
    match result {
        Ok(r) => {
            let r: Array = r.unchecked_into();
            let arr: Uint8Array = r.get(2).unchecked_into();
            let len = (arr.length() as usize).min(MAX_RESPONSE_BYTES);
            let mut body = vec![0; len];
            arr.subarray(0, len as u32).copy_to(&mut body);
            Outcome::Response {
                status: r.get(0).as_f64().unwrap_or(0.0) as u16,
                retry_after: r.get(1).as_string(),
                body,
            }
        }
        Err(e) => {
            let e = Array::from(&e);
            Outcome::Network {
                timeout: e.get(0).is_truthy(),
                message: js::message(&e.get(1)),
            }
        }
    }
}
