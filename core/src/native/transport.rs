//! The built-in transport (feature `native`, for the CLI and Rust users): reqwest with
//! the TLS set-up of [`crate::net`]. The mobile SDKs do not use it: they send with the platform's
//! own stack (device trust store and proxies) through [`HttpTransport`].

use std::time::Duration;

use crate::protocol::MAX_RESPONSE_BYTES;
use crate::retry::Outcome;
use crate::Error;

use super::http::{HttpRequest, HttpTransport};

/// The built-in [`HttpTransport`] (feature `native`): reqwest on its own tokio
/// current-thread runtime, driven by `block_on` on the driver's thread.
pub struct ReqwestTransport {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// Ends an in-flight request at shutdown (see [`HttpTransport::interrupt`]).
    stopping: tokio::sync::Notify,
}

impl ReqwestTransport {
    /// `connect_timeout` bounds the TCP + TLS set-up; each request's own timeout bounds the whole.
    pub fn new(connect_timeout: Duration) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::net::tls_client_config()?)
            .connect_timeout(connect_timeout)
            .no_proxy()
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client setup: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the HTTP runtime: {e}")))?;
        Ok(ReqwestTransport {
            client,
            runtime,
            stopping: tokio::sync::Notify::new(),
        })
    }

    async fn send_async(&self, request: HttpRequest) -> Outcome {
        let mut builder = self
            .client
            .post(&request.url)
            .timeout(request.timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return network(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read at most MAX_RESPONSE_BYTES: a hostile or broken server cannot make us buffer more.
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return network(&e),
            }
        }
        tracing::debug!(status, "batch answered");
        Outcome::Response {
            status,
            retry_after,
            body,
        }
    }
}

impl HttpTransport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> Outcome {
        self.runtime.block_on(async {
            tokio::select! {
                outcome = self.send_async(request) => outcome,
                // Do not make the app wait a request timeout at exit: the batch is resent next start.
                _ = self.stopping.notified() => Outcome::Network {
                    timeout: false,
                    message: "interrupted: the client is shutting down".into(),
                },
            }
        })
    }

    fn interrupt(&self) {
        // notify_one stores a permit, so an interrupt just before `send` still ends it.
        self.stopping.notify_one();
    }
}

fn network(e: &reqwest::Error) -> Outcome {
    // reqwest errors carry the URL but never headers, so the token cannot leak through them.
    let message = describe(e);
    tracing::debug!(error = %message, "batch request failed");
    Outcome::Network {
        timeout: e.is_timeout(),
        message,
    }
}

/// The whole error chain, led by what failed: `DNS: …`, `TLS handshake failed: …`,
/// `connect: …`, `timeout: …` (reqwest's own message stops at "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if e.is_timeout() {
        "timeout"
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "DNS"
    } else if lower.contains("tls")
        || lower.contains("certificate")
        || lower.contains("corrupt message")
        || lower.contains("handshake")
    {
        "TLS handshake failed"
    } else if e.is_connect() {
        "connect"
    } else {
        "network"
    };
    format!("{kind}: {chain}")
}
