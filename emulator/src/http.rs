//! The HTTP helpers every emulator route uses (responses, bodies, query
//! strings, the clock), in their own file so the routes (`server`, `import`,
//! `line`) depend on it instead of on each other.

use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// An oversized body is still read (and discarded) up to this size, so the client has
/// finished sending and reliably sees the 413 instead of a reset mid-upload.
const DRAIN_CAP: u64 = 8 << 20;
pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) use repro_line_http::ReadBody;

/// [`repro_line_http::read_body`] with the emulator's drain cap.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> ReadBody {
    repro_line_http::read_body(body, limit, DRAIN_CAP).await
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `{"error": {"code", "message"}}`; outside the protocol's codes the code is the HTTP status.
pub(crate) fn error(status: StatusCode, message: &str) -> Resp {
    error_code(status, u32::from(status.as_u16()), message)
}

pub(crate) fn error_code(status: StatusCode, code: u32, message: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Resp {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    resp.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

pub(crate) fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `a=1&b=x%2By` → `[("a", "1"), ("b", "x+y")]`: form decoding (`+` is a space,
/// `%XX` a byte); a malformed `%` sequence is kept as written.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_form_decode() {
        assert_eq!(
            query_pairs(Some("a=1&&b=x%2By+z&c&d=%zz%4")),
            [("a", "1"), ("b", "x+y z"), ("c", ""), ("d", "%zz%4")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(query_pairs(None).is_empty());
    }
}
