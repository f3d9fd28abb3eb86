//! HTTP: one hyper connection task per socket (not `axum::serve`), so a fault
//! can drop the connection without answering and the client sees a reset.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use repro_line_core::protocol::{
    decode_batch_request, BatchRequest, BatchResponse, BATCH_PATH, CODE_MALFORMED_BATCH,
    HEADER_RETRY_COUNT, HEADER_TOKEN, MAX_BODY_BYTES,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::faults::{Fault, FaultSpec, Injector};
use crate::http::{
    empty, error, error_code, json, method_not_allowed, now_ms, read_body, ReadBody, Resp,
};
use crate::shared::{Inner, Shared};
use crate::state::RequestRecord;

/// Request log entries kept (oldest dropped beyond it), so a long soak cannot grow memory without bound.
const MAX_LOG: usize = 200_000;
/// Largest body an admin route reads.
const MAX_ADMIN_BODY: usize = 64 << 10;

/// Per connection: who is calling, and the switch a fault flips to drop the connection.
struct Conn {
    peer: SocketAddr,
    kill: Notify,
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
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
            // A second handle on the socket, so a reset can set SO_LINGER 0 after hyper owns the stream.
            let abort = AbortHandle::new(&stream);
            let conn = Arc::new(Conn {
                peer,
                kill: Notify::new(),
            });
            let service_conn = Arc::clone(&conn);
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let conn = Arc::clone(&service_conn);
                async move {
                    match handle(&shared, &conn, req).await {
                        Some(resp) => Ok::<_, Infallible>(resp),
                        None => {
                            conn.kill.notify_one();
                            std::future::pending().await
                        }
                    }
                }
            });
            let http = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                done = http => if let Err(e) = done {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                },
                _ = conn.kill.notified() => {
                    // Dropping the connection future closes hyper's handle; the last close (ours) sends RST.
                    abort.arm();
                    tracing::debug!(%peer, "connection reset by fault injection");
                }
            }
        });
    }
}

/// Sets SO_LINGER 0 on a duplicated socket handle: the final close then sends RST
/// instead of FIN, which a client reports as a connection error, never as a response.
struct AbortHandle(Option<socket2::Socket>);

impl AbortHandle {
    fn new(stream: &tokio::net::TcpStream) -> AbortHandle {
        let dup = socket2::SockRef::from(stream).try_clone();
        if let Err(e) = &dup {
            tracing::debug!(error = %e, "cannot duplicate the socket; resets will be plain closes");
        }
        AbortHandle(dup.ok())
    }

    fn arm(&self) {
        if let Some(s) = &self.0 {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

/// `None`: close the connection without answering.
async fn handle(shared: &Arc<Shared>, conn: &Conn, req: Request<Incoming>) -> Option<Resp> {
    let origin = req.headers().get(ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = route(shared, conn, req).await?;
    add_cors(&shared.cors_origins, origin.as_ref(), preflight, &mut resp);
    Some(resp)
}

async fn route(shared: &Arc<Shared>, conn: &Conn, req: Request<Incoming>) -> Option<Resp> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return Some(empty(StatusCode::NO_CONTENT));
    }
    if path == BATCH_PATH {
        return match method {
            Method::POST => batch(shared, req).await,
            _ => Some(method_not_allowed("POST")),
        };
    }
    if path == repro_line_idtoken::CERTS_PATH && method == Method::GET {
        let keys = shared.lock().identity.keys.clone();
        return Some(json(StatusCode::OK, &keys));
    }
    if path == "/v2/bot/followers/ids" && method == Method::GET {
        let auth = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let (status, body, retry_after) = shared.lock().line.followers(auth, req.uri().query());
        let mut resp = json(status, &body);
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        return Some(resp);
    }
    if let Some(rest) = path.strip_prefix(crate::import::IMPORT_PATH) {
        if rest.is_empty() || rest.starts_with('/') {
            return Some(crate::import::route(shared, method, rest, req).await);
        }
    }
    if let Some(admin) = path.strip_prefix("/admin/") {
        // Admin routes need no token, so only this machine may use them.
        if !conn.peer.ip().to_canonical().is_loopback() {
            return Some(error(
                StatusCode::FORBIDDEN,
                "admin routes are loopback only",
            ));
        }
        return Some(self::admin(shared, admin, method, req).await);
    }
    Some(error(
        StatusCode::NOT_FOUND,
        &format!("no route for {path}"),
    ))
}

/// Body of `POST /admin/line/id-tokens`.
#[derive(Deserialize)]
struct MintRequest {
    line_user_id: String,
    login_channel_id: String,
    /// Unix seconds; default an hour from now.
    expires_at: Option<u64>,
}

#[derive(Serialize)]
struct Ok200<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    faults: Option<&'a str>,
}

async fn admin(shared: &Shared, route: &str, method: Method, req: Request<Incoming>) -> Resp {
    match (route, method) {
        ("state", Method::GET) => {
            let state = shared.lock().db.state();
            match state {
                Ok(state) => json(StatusCode::OK, &state),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("storage: {e}")),
            }
        }
        ("stats", Method::GET) => {
            let stats = shared.lock().stats.clone();
            json(StatusCode::OK, &stats)
        }
        ("requests", Method::GET) => {
            let log: Vec<RequestRecord> = shared.lock().log.iter().cloned().collect();
            json(StatusCode::OK, &log)
        }
        ("faults", Method::GET) => {
            let spec = shared.lock().injector.spec.to_string();
            json(
                StatusCode::OK,
                &Ok200 {
                    ok: true,
                    faults: Some(&spec),
                },
            )
        }
        ("faults", Method::PUT) => {
            let spec = match read_text(req).await {
                Ok(text) => text.parse::<FaultSpec>().map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match spec {
                Ok(spec) => {
                    let text = spec.to_string();
                    tracing::info!(faults = %text, "fault spec replaced");
                    shared.lock().injector = Injector::new(spec);
                    json(
                        StatusCode::OK,
                        &Ok200 {
                            ok: true,
                            faults: Some(&text),
                        },
                    )
                }
                Err(e) => error(StatusCode::BAD_REQUEST, &e),
            }
        }
        ("token", Method::PUT) => match read_text(req).await {
            Ok(t) if !t.trim().is_empty() => {
                shared.lock().token = t.trim().to_owned();
                tracing::info!("token replaced");
                json(
                    StatusCode::OK,
                    &Ok200 {
                        ok: true,
                        faults: None,
                    },
                )
            }
            Ok(_) => error(StatusCode::BAD_REQUEST, "the body must be the new token"),
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        },
        ("line/followers", Method::PUT) => match read_text(req).await.and_then(|t| {
            serde_json::from_str::<crate::line::FollowersSetup>(&t).map_err(|e| e.to_string())
        }) {
            Ok(setup) => {
                shared.lock().line.set(setup);
                empty(StatusCode::NO_CONTENT)
            }
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"channel_token\", \"user_ids\", \"rate_limit_every\"?}}: {e}"
                ),
            ),
        },
        ("line/id-tokens", Method::POST) => match read_text(req)
            .await
            .and_then(|t| serde_json::from_str::<MintRequest>(&t).map_err(|e| e.to_string()))
        {
            Ok(m) => {
                let exp = m.expires_at.unwrap_or(now_ms() / 1000 + 3600);
                let token = shared.lock().identity.minter.mint(
                    &m.line_user_id,
                    &m.login_channel_id,
                    exp,
                );
                json(StatusCode::OK, &serde_json::json!({"id_token": token}))
            }
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"line_user_id\", \"login_channel_id\", \"expires_at\"?: unix seconds}}: {e}"
                ),
            ),
        },
        ("line/login-channels", Method::PUT) => match read_text(req).await.and_then(|t| {
            serde_json::from_str::<HashMap<String, Vec<String>>>(&t).map_err(|e| e.to_string())
        }) {
            Ok(map) => {
                shared.lock().identity.login_channels = map;
                empty(StatusCode::NO_CONTENT)
            }
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"<Repro channel ID>\": [\"<LINE Login channel ID>\", …]}}: {e}"),
            ),
        },
        ("identity", Method::PUT) => match read_text(req)
            .await
            .and_then(|t| t.parse::<crate::Identity>())
        {
            Ok(mode) => {
                shared.lock().identity.mode = mode;
                empty(StatusCode::NO_CONTENT)
            }
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        },
        ("reset", Method::POST) => match shared.reset() {
            Ok(()) => json(
                StatusCode::OK,
                &Ok200 {
                    ok: true,
                    faults: None,
                },
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("storage: {e}")),
        },
        ("state" | "stats" | "requests", _) => method_not_allowed("GET"),
        ("faults", _) => method_not_allowed("GET, PUT"),
        ("token" | "identity" | "line/login-channels", _) => method_not_allowed("PUT"),
        ("line/id-tokens", _) => method_not_allowed("POST"),
        ("reset", _) => method_not_allowed("POST"),
        (other, _) => error(
            StatusCode::NOT_FOUND,
            &format!("no admin route /admin/{other}"),
        ),
    }
}

async fn read_text(req: Request<Incoming>) -> Result<String, String> {
    match read_body(req.into_body(), MAX_ADMIN_BODY).await {
        ReadBody::Full(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| "the body is not UTF-8".to_owned())
        }
        ReadBody::TooLarge => Err(format!("the body is above {MAX_ADMIN_BODY} bytes")),
        ReadBody::Broken(e) => Err(format!("unreadable body: {e}")),
    }
}

/// A batch request as far as it could be understood, prepared outside the state lock.
struct BatchInput {
    arrived: Instant,
    at_ms: u64,
    token: Option<String>,
    retry_count: Option<u32>,
    too_large: bool,
    device_id: Option<Uuid>,
    /// The batch, or why it is malformed (400 / 1001).
    batch: Result<BatchRequest, String>,
}

async fn batch(shared: &Shared, req: Request<Incoming>) -> Option<Resp> {
    let arrived = Instant::now();
    let at_ms = now_ms();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let token = header(HEADER_TOKEN);
    let content_type = header(CONTENT_TYPE.as_str());
    let retry_count = header(HEADER_RETRY_COUNT).and_then(|v| v.trim().parse::<u32>().ok());
    let body = read_body(req.into_body(), MAX_BODY_BYTES).await;
    let latency = shared.lock().injector.spec.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let (too_large, device_id, batch) = match body {
        ReadBody::Full(bytes) => match decode_batch_request(content_type.as_deref(), &bytes) {
            Ok(b) => (false, Some(b.device_id), Ok(b)),
            Err(e) => (false, e.device_id(), Err(e.to_string())),
        },
        ReadBody::TooLarge => (true, None, Err("body above 256 KiB".to_owned())),
        ReadBody::Broken(e) => (false, None, Err(format!("unreadable body: {e}"))),
    };
    let input = BatchInput {
        arrived,
        at_ms,
        token,
        retry_count,
        too_large,
        device_id,
        batch,
    };
    let (resp, reset) = process(shared, input);
    (!reset).then_some(resp)
}

/// Everything under the state lock, with no `.await`. Returns the answer and whether to reset instead.
fn process(shared: &Shared, input: BatchInput) -> (Resp, bool) {
    let mut guard = shared.lock();
    let inner = &mut *guard;
    inner.stats.requests += 1;
    if let Some(device) = input.device_id {
        if inner
            .not_before
            .get(&device)
            .is_some_and(|nb| input.arrived < *nb)
        {
            inner.stats.retry_after_violations += 1;
            tracing::warn!(%device, "request before Retry-After ran out");
        }
    }
    let ops = input
        .batch
        .as_ref()
        .map(|b| b.ops.as_slice())
        .unwrap_or(&[]);
    let mut record = RequestRecord {
        at_ms: input.at_ms,
        device_id: input.device_id,
        retry_count: input.retry_count,
        status: 0,
        op_count: ops.len(),
        first_seq: ops.first().map_or(0, |o| o.seq),
        last_seq: ops.last().map_or(0, |o| o.seq),
        fault: None,
    };
    let (resp, reset) = decide(inner, &input, &mut record);
    record.status = if reset { 0 } else { resp.status().as_u16() };
    tracing::debug!(
        device = ?record.device_id,
        status = record.status,
        ops = record.op_count,
        fault = ?record.fault,
        "batch"
    );
    if inner.log.len() >= MAX_LOG {
        inner.log.pop_front();
    }
    inner.log.push_back(record);
    (resp, reset)
}

/// Order: real 413, then the injected fault (it models the network and gateway in
/// front of the app), then the token, then the batch's structure, then the ops.
fn decide(inner: &mut Inner, input: &BatchInput, record: &mut RequestRecord) -> (Resp, bool) {
    if input.too_large {
        return (
            error(StatusCode::PAYLOAD_TOO_LARGE, "body above 256 KiB"),
            false,
        );
    }
    let fault = inner.injector.next_fault();
    if fault != Fault::None {
        *inner
            .stats
            .faults
            .entry(fault.name().to_owned())
            .or_default() += 1;
        record.fault = Some(fault.name().to_owned());
    }
    let injected = |status: StatusCode| (error(status, "injected fault"), false);
    match fault {
        Fault::Status429 | Fault::Status503 => {
            let secs = inner.injector.spec.retry_after_secs;
            if let Some(device) = input.device_id {
                // checked_add: a huge retry_after must not overflow Instant.
                if let Some(nb) = Instant::now().checked_add(Duration::from_secs(secs)) {
                    inner.not_before.insert(device, nb);
                }
            }
            let status = if fault == Fault::Status429 {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut resp = error(status, "injected fault");
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            return (resp, false);
        }
        Fault::Status401 => return injected(StatusCode::UNAUTHORIZED),
        Fault::Status403 => return injected(StatusCode::FORBIDDEN),
        Fault::Status413 => return injected(StatusCode::PAYLOAD_TOO_LARGE),
        Fault::Status500 => return injected(StatusCode::INTERNAL_SERVER_ERROR),
        Fault::ResetBefore => return (empty(StatusCode::OK), true),
        Fault::None | Fault::ResetAfter => {}
    }
    let reset = fault == Fault::ResetAfter;
    if input.token.as_deref() != Some(inner.token.as_str()) {
        return (
            error(StatusCode::UNAUTHORIZED, "missing or invalid X-Repro-Token"),
            reset,
        );
    }
    let batch = match &input.batch {
        Ok(b) => b,
        Err(message) => {
            return (
                error_code(StatusCode::BAD_REQUEST, CODE_MALFORMED_BATCH, message),
                reset,
            )
        }
    };
    let identity = crate::state::IdentityCheck {
        id_token_only: inner.identity.mode == crate::Identity::IdToken,
        keys: &inner.identity.keys,
        login_channels: &inner.identity.login_channels,
        now_ms: input.at_ms,
        grace_ms: inner.identity.grace_ms,
    };
    match inner
        .db
        .apply_batch(&batch.device_id, &batch.ops, &identity)
    {
        Ok((results, tally)) => {
            let stats = &mut inner.stats;
            stats.batches_ok += 1;
            stats.ops_applied += tally.applied;
            stats.ops_duplicate += tally.duplicate;
            stats.ops_rejected += tally.rejected;
            stats.seq_regressions += tally.seq_regressions;
            if tally.seq_regressions > 0 {
                tracing::warn!(device = %batch.device_id, n = tally.seq_regressions, "seq regression");
            }
            (json(StatusCode::OK, &BatchResponse { results }), reset)
        }
        Err(e) => {
            tracing::error!(error = %e, "storage failed; batch rolled back");
            (
                error(StatusCode::INTERNAL_SERVER_ERROR, &format!("storage: {e}")),
                false,
            )
        }
    }
}

fn add_cors(origins: &[String], origin: Option<&HeaderValue>, preflight: bool, resp: &mut Resp) {
    if origins.is_empty() {
        return;
    }
    let allowed = match origin.and_then(|o| o.to_str().ok()) {
        Some(o) if origins.iter().any(|a| a == o) => Some(HeaderValue::from_str(o).ok()),
        _ if origins.iter().any(|a| a == "*") => Some(Some(HeaderValue::from_static("*"))),
        _ => None,
    };
    let h = resp.headers_mut();
    // The answer depends on Origin whenever specific origins are listed.
    h.insert(hyper::header::VARY, HeaderValue::from_static("origin"));
    let Some(Some(value)) = allowed else { return };
    h.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
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
            HeaderValue::from_static("POST, GET, PUT"),
        );
        h.insert(
            hyper::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}
