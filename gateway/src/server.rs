//! HTTP: one hyper connection task per socket, with a header read timeout (slowloris),
//! a body read timeout and size limit, CORS for configured origins only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use repro_line_core::protocol::{
    decode_batch_request, BatchResponse, BATCH_PATH, HEADER_TOKEN, MAX_BODY_BYTES,
};
use repro_line_http::{read_body, ReadBody as Body};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::{lock, now_ms, Shared};

type Resp = Response<Full<Bytes>>;

/// An oversized body is read (and dropped) up to this much, so the client finishes
/// sending and sees the 413 rather than a reset.
const DRAIN_CAP: u64 = 4 << 20;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    let header_timeout = Duration::from_secs_f64(shared.config.header_timeout_secs);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.notified() => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(&shared, peer, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

/// Counts a request in flight until dropped (graceful shutdown waits for zero).
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

async fn handle(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(shared);
    let origin = req.headers().get(ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = route(shared, peer, req).await;
    add_cors(&shared.cors_origins, origin.as_ref(), preflight, &mut resp);
    resp
}

async fn route(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::OPTIONS, _) => empty(StatusCode::NO_CONTENT),
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET, "/readyz") => readyz(shared).await,
        (Method::GET, "/metrics") => metrics(shared),
        (Method::POST, BATCH_PATH) => {
            let started = Instant::now();
            let resp = batch(shared, peer, req).await;
            shared
                .metrics
                .request(resp.status().as_u16(), started.elapsed().as_secs_f64());
            resp
        }
        (_, BATCH_PATH) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

async fn batch(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let now = now_ms();
    if let Err(secs) = lock(&shared.ip_limits).check(&peer.ip().to_canonical(), now) {
        return too_many(secs);
    }
    let Some(app_index) = app_for(shared, req.headers().get(HEADER_TOKEN)) else {
        return error(StatusCode::UNAUTHORIZED, "missing or unknown X-Repro-Token");
    };
    let app = &shared.config.apps[app_index];
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body_timeout = Duration::from_secs_f64(shared.config.body_timeout_secs);
    let body = match tokio::time::timeout(
        body_timeout,
        read_body(req.into_body(), MAX_BODY_BYTES, DRAIN_CAP),
    )
    .await
    {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            )
        }
        Ok(Body::TooLarge) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body above 256 KiB"),
        Ok(Body::Broken(e)) => {
            return error(StatusCode::BAD_REQUEST, &format!("unreadable body: {e}"))
        }
        Ok(Body::Full(b)) => b,
    };
    let batch = match decode_batch_request(content_type.as_deref(), &body) {
        Ok(b) => b,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return json(status, &serde_json::json!({ "error": e.api_error() }));
        }
    };
    if let Err(secs) = lock(&shared.device_limits).check(&(app_index, batch.device_id), now) {
        return too_many(secs);
    }
    let grace_ms = shared.config.id_token_grace_secs.saturating_mul(1000);
    let actions = match crate::ops::decide(
        app,
        &batch.ops,
        &shared.keys,
        &shared.client,
        grace_ms,
        now,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "ID tokens cannot be verified now; batch answered 503");
            let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, &e);
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(5u32));
            return resp;
        }
    };
    let ops: Vec<_> = batch
        .ops
        .iter()
        .zip(actions)
        .map(|(op, action)| (op.op_id, op.seq, action))
        .collect();
    let applied = shared
        .store
        .apply_batch(&app.name, &batch.device_id, ops, now_ms())
        .await;
    match applied {
        Ok(results) => {
            shared.metrics.ops(&results);
            tracing::debug!(app = %app.name, device = %batch.device_id, ops = results.len(), "batch committed");
            json(StatusCode::OK, &BatchResponse { results })
        }
        Err(e) => {
            tracing::error!(error = %e, "store failed; batch rolled back");
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable; retry later",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(1u32));
            resp
        }
    }
}

/// The app whose token this is; every configured token is compared in constant time.
fn app_for(shared: &Shared, token: Option<&HeaderValue>) -> Option<usize> {
    let token = token?.as_bytes();
    let mut found = None;
    for (i, app) in shared.config.apps.iter().enumerate() {
        for t in &app.tokens {
            if bool::from(t.as_bytes().ct_eq(token)) {
                found = Some(i);
            }
        }
    }
    found
}

async fn readyz(shared: &Shared) -> Resp {
    let mut reasons = Vec::new();
    if let Err(e) = tokio::task::block_in_place(|| shared.store.ping()) {
        reasons.push(format!("store: {e}"));
    }
    if let Err(e) = crate::s3::probe(&shared.client, &shared.config.s3).await {
        reasons.push(e);
    }
    if let Some(e) = lock(&shared.export_error).clone() {
        reasons.push(format!("last export failed: {e}"));
    }
    if reasons.is_empty() {
        json(StatusCode::OK, &serde_json::json!({"ready": true}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"ready": false, "reasons": reasons}),
        )
    }
}

fn metrics(shared: &Shared) -> Resp {
    let backlog = tokio::task::block_in_place(|| shared.store.backlog()).unwrap_or_default();
    let age = backlog
        .oldest_pending_ms
        .map_or(0.0, |t| now_ms().saturating_sub(t) as f64 / 1000.0);
    let mut body = shared.metrics.render(backlog.pending_rows, age);
    if let Some(t) = shared.store.timings() {
        t.render(&mut body);
    }
    let mut resp = text(StatusCode::OK, &body);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

fn too_many(secs: u64) -> Resp {
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn text(status: StatusCode, body: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// `{"error": {"code", "message"}}`; outside the protocol's codes the code is the HTTP status.
fn error(status: StatusCode, message: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": {"code": status.as_u16(), "message": message}}),
    )
}

fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

fn add_cors(origins: &[String], origin: Option<&HeaderValue>, preflight: bool, resp: &mut Resp) {
    if origins.is_empty() {
        return;
    }
    let h = resp.headers_mut();
    h.insert(hyper::header::VARY, HeaderValue::from_static("origin"));
    let Some(value) = origin.filter(|o| o.to_str().is_ok_and(|o| origins.iter().any(|a| a == o)))
    else {
        return;
    };
    h.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, value.clone());
    // A browser SDK must read Retry-After on 429/503.
    h.insert(
        hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    if preflight {
        h.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, x-repro-token, x-retry-count"),
        );
        h.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            hyper::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}
