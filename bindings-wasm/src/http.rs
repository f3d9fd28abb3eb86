//! One batch request over the browser's `fetch`, with a timeout through
//! `AbortController`. Maps every result onto core's `Outcome`; the retry policy
//! stays in core.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Object, Uint8Array};
use repro_line_core::protocol::{HEADER_RETRY_COUNT, HEADER_TOKEN, MAX_RESPONSE_BYTES};
use repro_line_core::retry::Outcome;
use repro_line_core::session::Request;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::js;

/// Browsers cap the bodies of all pending `keepalive` requests of a page at 64 KiB.
const KEEPALIVE_MAX_BODY: usize = 60 * 1024;

pub async fn send(
    url: &str,
    token: &str,
    request: &Request,
    timeout_ms: f64,
    keepalive: bool,
) -> Outcome {
    let init = Object::new();
    js::set(&init, "method", &"POST".into());
    let headers = Object::new();
    js::set(&headers, "content-type", &"application/json".into());
    js::set(&headers, HEADER_TOKEN, &token.into());
    let mut retry = String::new();
    js::push_u64(&mut retry, u64::from(request.retry_count));
    js::set(&headers, HEADER_RETRY_COUNT, &retry.into());
    js::set(&init, "headers", &headers);
    js::set(&init, "body", &Uint8Array::from(&request.body[..]));
    // Cookies are never needed (the token authenticates), and must not leak to the endpoint.
    js::set(&init, "credentials", &"omit".into());
    js::set(&init, "cache", &"no-store".into());
    if keepalive && request.body.len() <= KEEPALIVE_MAX_BODY {
        // Lets the request outlive the page (flush on pagehide / hidden).
        js::set(&init, "keepalive", &JsValue::TRUE);
    }
    let timed_out = Rc::new(Cell::new(false));
    let timer = js::AbortController::new().ok().map(|ctrl| {
        js::set(&init, "signal", &ctrl.signal());
        let flag = Rc::clone(&timed_out);
        let abort = Closure::once_into_js(move || {
            flag.set(true);
            ctrl.abort();
        });
        js::set_timeout(abort.unchecked_ref(), timeout_ms)
    });
    let outcome = exchange(url, &init).await;
    if let Some(t) = timer {
        js::clear_timeout(&t);
    }
    match outcome {
        Ok(o) => o,
        Err(e) => Outcome::Network {
            timeout: timed_out.get(),
            message: js::message(&e),
        },
    }
}

async fn exchange(url: &str, init: &Object) -> Result<Outcome, JsValue> {
    // `fetch` resolves to a Response or rejects.
    let resp: js::Response = JsFuture::from(js::fetch(url, init)?)
        .await?
        .unchecked_into();
    let status = resp.status();
    // Readable cross-origin only if the endpoint sends `Access-Control-Expose-Headers: Retry-After`.
    let retry_after = resp.headers().get("retry-after").ok().flatten();
    // The timeout's abort signal also ends a body that never finishes.
    let buf = JsFuture::from(resp.array_buffer()?).await?;
    let arr = Uint8Array::new(&buf);
    let len = (arr.length() as usize).min(MAX_RESPONSE_BYTES);
    let mut body = vec![0; len];
    arr.subarray(0, len as u32).copy_to(&mut body);
    Ok(Outcome::Response {
        status,
        retry_after,
        body,
    })
}
