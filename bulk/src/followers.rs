//! `line followers`: every follower's user ID from the LINE Messaging API,
//! `GET {api_base}/v2/bot/followers/ids?limit=1000[&start=NEXT]`, written as a
//! Format 2 CSV. Follows `next` until it is absent; on 429 and 5xx waits
//! (`Retry-After` when given, else exponential backoff) and tries again.
//!
//! The channel access token only ever goes into the `Authorization` header:
//! it is kept in a [`Secret`] whose `Debug` hides it, and error texts are
//! scrubbed of it.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use repro_line_core::net::{self, Jitter};
use serde::{Deserialize, Serialize};

use crate::scan::IdKey;
use crate::Error;

pub const DEFAULT_API_BASE: &str = "https://api.line.me";
/// The API's largest page.
pub const PAGE_LIMIT: u32 = 1000;
/// A LINE page is ~36 KB; anything far larger is not a follower page.
const MAX_BODY: usize = 8 << 20;

/// A credential: never shown by `Debug` or `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    fn expose(&self) -> &str {
        &self.0
    }
    /// Removes the secret from a text that might echo it.
    fn scrub(&self, text: &str) -> String {
        if self.0.len() >= 4 {
            text.replace(&self.0, "***")
        } else {
            text.to_string()
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct FollowersOptions {
    pub api_base: String,
    pub token: Secret,
    pub out: PathBuf,
    pub limit: u32,
    /// Consecutive failed attempts for one page before giving up.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one stops with an error.
    pub max_retry_after: Duration,
    pub request_timeout: Duration,
}

impl FollowersOptions {
    pub fn new(token: Secret, out: PathBuf) -> Self {
        FollowersOptions {
            api_base: DEFAULT_API_BASE.to_string(),
            token,
            out,
            limit: PAGE_LIMIT,
            max_retries: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(15 * 60),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Progress, for a bar or a log line.
#[derive(Debug, Clone)]
pub enum FollowersEvent {
    Page {
        pages: u64,
        followers: u64,
    },
    Waiting {
        reason: String,
        wait: Duration,
        attempt: u32,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowersReport {
    pub out: PathBuf,
    pub followers: u64,
    pub pages: u64,
    pub retries: u64,
    /// IDs in the response that are not valid LINE user IDs (left out).
    pub invalid_skipped: u64,
    pub elapsed_s: f64,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(rename = "userIds", default)]
    user_ids: Vec<String>,
    #[serde(default)]
    next: Option<String>,
}

/// Exponential backoff with ±20 % jitter so parallel clients spread out.
fn backoff(opts: &FollowersOptions, attempt: u32, jitter: &mut Jitter) -> Duration {
    net::backoff(
        opts.initial_backoff,
        opts.max_backoff,
        attempt,
        jitter.factor(0.2),
    )
}

fn client(opts: &FollowersOptions) -> Result<reqwest::Client, Error> {
    let tls = net::tls_client_config().map_err(|e| Error::Internal(e.to_string()))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(opts.request_timeout)
        .connect_timeout(opts.request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("repro-line/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client setup: {e}")))
}

/// Fetches every follower ID into `opts.out` (written beside it, then renamed:
/// a failed run leaves no partial file).
pub fn fetch_followers(
    opts: &FollowersOptions,
    progress: &mut dyn FnMut(&FollowersEvent),
) -> Result<FollowersReport, Error> {
    let started = Instant::now();
    if opts.token.expose().trim().is_empty() {
        return Err(Error::Usage("the channel access token is empty".into()));
    }
    let base = opts.api_base.trim_end_matches('/');
    // The token goes in a header: https unless loopback, refused before connecting.
    crate::s3::check_endpoint_url("--api-base", base)?;
    let url = format!("{base}/v2/bot/followers/ids");
    let werr = |source| Error::Write {
        path: opts.out.clone(),
        source,
    };
    let dir = match opts.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".repro-line-followers-")
        .tempfile_in(&dir)
        .map_err(werr)?;
    let mut w = BufWriter::new(tmp.reopen().map_err(werr)?);
    w.write_all(b"line_user_id\n").map_err(werr)?;

    let client = client(opts)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("async runtime: {e}")))?;
    let mut report = FollowersReport {
        out: opts.out.clone(),
        followers: 0,
        pages: 0,
        retries: 0,
        invalid_skipped: 0,
        elapsed_s: 0.0,
    };
    let mut next: Option<String> = None;
    loop {
        let page = runtime.block_on(fetch_page(
            &client,
            &url,
            opts,
            next.as_deref(),
            &mut report.retries,
            progress,
        ))?;
        for id in &page.user_ids {
            let valid = repro_line_core::validate::line_user_id(id).is_ok()
                && IdKey::from_valid(id.as_bytes()).is_some();
            if valid {
                w.write_all(id.as_bytes()).map_err(werr)?;
                w.write_all(b"\n").map_err(werr)?;
                report.followers += 1;
            } else {
                report.invalid_skipped += 1;
            }
        }
        report.pages += 1;
        progress(&FollowersEvent::Page {
            pages: report.pages,
            followers: report.followers,
        });
        match page.next {
            Some(n) if !n.is_empty() => {
                if next.as_deref() == Some(n.as_str()) {
                    return Err(Error::Line(
                        "the API returned the same `next` twice; stopping rather than looping"
                            .into(),
                    ));
                }
                next = Some(n);
            }
            _ => break,
        }
    }
    w.flush().map_err(werr)?;
    drop(w);
    tmp.persist(&opts.out).map_err(|e| werr(e.error))?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn fetch_page(
    client: &reqwest::Client,
    url: &str,
    opts: &FollowersOptions,
    start: Option<&str>,
    retries: &mut u64,
    progress: &mut dyn FnMut(&FollowersEvent),
) -> Result<Page, Error> {
    let mut attempt = 0u32;
    let mut jitter = Jitter::from_os_rng();
    loop {
        let mut full = format!("{url}?limit={}", opts.limit);
        if let Some(s) = start {
            full.push_str("&start=");
            full.push_str(&percent_encode(s));
        }
        let req = client.get(&full).bearer_auth(opts.token.expose());
        let (reason, wait) = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| net::parse_retry_after(v, now_ms()))
                    .map(Duration::from_millis);
                if status.is_success() {
                    match read_body(resp).await {
                        Ok(body) => {
                            return serde_json::from_slice::<Page>(&body)
                                .map_err(|e| Error::Line(format!("unexpected response body: {e}")))
                        }
                        Err(e) => (
                            format!("reading the response failed: {}", opts.token.scrub(&e)),
                            backoff(opts, attempt, &mut jitter),
                        ),
                    }
                } else if status.as_u16() == 429 || status.is_server_error() {
                    let wait = match retry_after {
                        Some(w) if w > opts.max_retry_after => {
                            return Err(Error::Line(format!(
                                "HTTP {status}: Retry-After asks to wait {} s; try again later",
                                w.as_secs()
                            )))
                        }
                        Some(w) => w,
                        None => backoff(opts, attempt, &mut jitter),
                    };
                    (format!("HTTP {}", status.as_u16()), wait)
                } else {
                    let body = read_body(resp).await.unwrap_or_default();
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    let hint = match status.as_u16() {
                        401 => " (the channel access token was rejected: check it, and that it belongs to this channel)",
                        403 => " (this endpoint needs a verified or premium LINE Official Account)",
                        _ => "",
                    };
                    return Err(Error::Line(format!(
                        "HTTP {status}{hint}: {}",
                        opts.token.scrub(&text)
                    )));
                }
            }
            Err(e) => (
                format!("request failed: {}", opts.token.scrub(&e.to_string())),
                backoff(opts, attempt, &mut jitter),
            ),
        };
        attempt += 1;
        if attempt > opts.max_retries {
            return Err(Error::Line(format!(
                "gave up after {} attempts; last: {reason}",
                attempt
            )));
        }
        *retries += 1;
        progress(&FollowersEvent::Waiting {
            reason,
            wait,
            attempt,
        });
        tokio::time::sleep(wait).await;
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("response larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Query-string encoding: RFC 3986 unreserved characters pass, the rest is %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Milliseconds since the epoch (the clock `Retry-After` dates are read against).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_encoded() {
        assert_eq!(percent_encode("a+b/c=d_e"), "a%2Bb%2Fc%3Dd_e");
    }

    #[test]
    fn secret_is_hidden() {
        let s = Secret::new("tok-123456".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.scrub("bad token tok-123456!"), "bad token ***!");
        let o = FollowersOptions::new(s, PathBuf::from("f.csv"));
        assert!(!format!("{o:?}").contains("tok-123456"));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let o = FollowersOptions::new(Secret::new("t".into()), PathBuf::new());
        let j = &mut Jitter::new(1);
        for _ in 0..100 {
            assert!(backoff(&o, 0, j) <= Duration::from_millis(1200));
            assert!(backoff(&o, 3, j) >= Duration::from_millis(6400));
            assert!(backoff(&o, 30, j) <= Duration::from_secs(72));
            assert!(backoff(&o, 30, j) >= Duration::from_secs(48));
        }
    }
}
