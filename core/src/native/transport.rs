//! HTTP for the native driver: reqwest with the TLS set-up of [`crate::net`].

use crate::protocol::{HEADER_RETRY_COUNT, HEADER_TOKEN, MAX_RESPONSE_BYTES};
use crate::retry::Outcome;
use crate::session::Request;
use crate::Error;

use super::Config;

pub(super) struct Http {
    client: reqwest::Client,
    url: String,
    user_agent: String,
}

impl Http {
    pub(super) fn new(url: String, config: &Config) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::net::tls_client_config()?)
            .timeout(config.request_timeout)
            .connect_timeout(
                config
                    .request_timeout
                    .min(std::time::Duration::from_secs(10)),
            )
            .no_proxy()
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client setup: {e}")))?;
        Ok(Http {
            client,
            url,
            user_agent: format!(
                "repro-line/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.platform
            ),
        })
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    pub(super) async fn send(&self, token: &str, request: &Request) -> Outcome {
        let result = self
            .client
            .post(&self.url)
            .header(HEADER_TOKEN, token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header(HEADER_RETRY_COUNT, request.retry_count.to_string())
            .body(request.body.clone())
            .send()
            .await;
        let mut response = match result {
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
        tracing::debug!(
            status,
            ops = request.op_count,
            retry = request.retry_count,
            "batch answered"
        );
        Outcome::Response {
            status,
            retry_after,
            body,
        }
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
