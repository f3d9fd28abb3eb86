//! Per-op decisions made before the store transaction: the protocol's validation
//! rules, the app's identity policy, and ID-token verification (LINE's JWKS, cached).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use repro_line_core::protocol::{
    parse_rfc3339_millis, ApiError, OpKind, WireOp, CODE_INVALID_CHANNEL_ID, CODE_INVALID_ID_TOKEN,
    CODE_INVALID_LINE_USER_ID, CODE_INVALID_USER_ID, CODE_RAW_LINE_ID_REFUSED,
    CODE_UNLINK_UNSUPPORTED, MESSAGE_RAW_LINE_ID_REFUSED, MESSAGE_UNLINK_UNSUPPORTED,
};
use repro_line_core::validate;
use repro_line_idtoken::{Checks, Jwks, KeyCache};

use crate::config::{AppConfig, Identity};
use crate::store::Action;

fn reject(code: u32, message: String) -> Action {
    Action::Reject(ApiError { code, message })
}

/// LINE's JWKS, fetched on demand: at start, when older than an hour, and on an unknown
/// `kid` at most once a minute (a forged kid cannot make the gateway hammer LINE).
pub struct LineKeys {
    url: String,
    cache: Mutex<KeyCache>,
    /// Why the last fetch failed; `None` after a success.
    last_error: Mutex<Option<String>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl LineKeys {
    pub fn new(line_api: &str) -> LineKeys {
        LineKeys {
            url: format!(
                "{}{}",
                line_api.trim_end_matches('/'),
                repro_line_idtoken::CERTS_PATH
            ),
            cache: Mutex::new(KeyCache::new(3_600_000, 60_000)),
            last_error: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key set to verify a token with this `kid`, refreshed first when the policy says so.
    /// `Err` when the kid is unknown and LINE's JWKS could not be fetched: the token cannot
    /// be judged now, so the batch is answered 503 (retried), never 1008.
    pub async fn keys_for(
        &self,
        client: &reqwest::Client,
        kid: Option<&str>,
    ) -> Result<Jwks, String> {
        if self.cache().should_fetch(kid, crate::now_ms()) {
            let _one = self.fetching.lock().await;
            // Another request may have fetched while this one waited.
            if self.cache().should_fetch(kid, crate::now_ms()) {
                let fetched = self.fetch(client).await;
                if let Err(e) = &fetched {
                    tracing::warn!(url = %self.url, error = %e, "cannot fetch LINE's JWKS");
                }
                *crate::lock(&self.last_error) = fetched.as_ref().err().cloned();
                self.cache().fetched(fetched.ok(), crate::now_ms());
            }
        }
        let keys = self.cache().keys().clone();
        let known = kid.is_some_and(|k| keys.contains(k));
        match crate::lock(&self.last_error).clone() {
            Some(e) if !known => Err(format!("LINE's JWKS is unavailable: {e}")),
            _ => Ok(keys),
        }
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<Jwks, String> {
        let resp = client
            .get(&self.url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))
    }
}

/// The action for each op of a batch, in request order; `Err` when a token cannot be
/// judged now (LINE's keys unavailable).
pub async fn decide(
    app: &AppConfig,
    ops: &[WireOp],
    keys: &LineKeys,
    client: &reqwest::Client,
    grace_ms: u64,
    now_ms: u64,
) -> Result<Vec<Action>, String> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(decide_one(app, op, keys, client, grace_ms, now_ms).await?);
    }
    Ok(out)
}

async fn decide_one(
    app: &AppConfig,
    op: &WireOp,
    keys: &LineKeys,
    client: &reqwest::Client,
    grace_ms: u64,
    now_ms: u64,
) -> Result<Action, String> {
    let served = |channel_id: &str| -> Result<usize, Action> {
        validate::channel_id(channel_id)
            .map_err(|e| reject(CODE_INVALID_CHANNEL_ID, e.to_string()))?;
        app.channels
            .iter()
            .position(|c| c.id == channel_id)
            .ok_or_else(|| {
                reject(
                    CODE_INVALID_CHANNEL_ID,
                    format!("channel ID {channel_id} is not a Repro LINE channel this gateway serves for the app"),
                )
            })
    };
    let user = |user_id: &str| {
        validate::user_id(user_id).map_err(|e| reject(CODE_INVALID_USER_ID, e.to_string()))
    };
    Ok(match &op.kind {
        OpKind::SetUserId { user_id } => match user(user_id) {
            Ok(()) => Action::SetUserId(user_id.clone()),
            Err(a) => a,
        },
        OpKind::UnlinkLineId { .. } => {
            reject(CODE_UNLINK_UNSUPPORTED, MESSAGE_UNLINK_UNSUPPORTED.into())
        }
        OpKind::LinkLineId {
            user_id,
            line_user_id,
            channel_id,
        } => {
            if app.identity == Identity::IdToken {
                return Ok(reject(
                    CODE_RAW_LINE_ID_REFUSED,
                    MESSAGE_RAW_LINE_ID_REFUSED.into(),
                ));
            }
            if let Err(e) = validate::line_user_id(line_user_id) {
                return Ok(reject(CODE_INVALID_LINE_USER_ID, e.to_string()));
            }
            if let Err(a) = served(channel_id).and_then(|_| user(user_id)) {
                return Ok(a);
            }
            Action::Link {
                user_id: user_id.clone(),
                line_user_id: line_user_id.clone(),
                channel_id: channel_id.clone(),
            }
        }
        OpKind::LinkLineIdToken {
            user_id,
            id_token,
            channel_id,
        } => {
            let channel = match served(channel_id).and_then(|i| user(user_id).map(|()| i)) {
                Ok(i) => &app.channels[i],
                Err(a) => return Ok(a),
            };
            // The header's kid (unverified) only picks the keys; verify decides.
            let kid = repro_line_idtoken::parse(id_token)
                .ok()
                .and_then(|p| p.header.kid);
            let jwks = keys.keys_for(client, kid.as_deref()).await?;
            let secrets: &HashMap<String, String> = &channel.login_channel_secrets;
            let checks = Checks {
                allowed_audiences: &channel.login_channels,
                hs256_secrets: secrets,
                call_at_ms: parse_rfc3339_millis(&op.at).unwrap_or(0),
                now_ms,
                grace_ms,
            };
            match repro_line_idtoken::verify(id_token, &jwks, &checks) {
                Ok(v) => Action::Link {
                    user_id: user_id.clone(),
                    line_user_id: v.sub,
                    channel_id: channel_id.clone(),
                },
                Err(e) => reject(CODE_INVALID_ID_TOKEN, format!("invalid ID token: {e}")),
            }
        }
    })
}
