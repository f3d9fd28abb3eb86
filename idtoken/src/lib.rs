//! repro-line-idtoken: verifies LINE ID tokens (protocol v1.1's `link_line_id_token`).
//! One verifier, shared by the gateway and the emulator, so both reject exactly the
//! same tokens. Pure and deterministic: the caller passes the key set, the clock and
//! the policy; fetching LINE's JWKS is the caller's I/O (see [`KeyCache`]).
//!
//! Checks, in order (each failure names its check, used as 1008 "invalid ID token: …"):
//! compact form → header (`alg` ES256 or HS256) → signature → `iss` → `aud` → `exp` → `sub`.

mod jwk;
#[cfg(feature = "mint")]
pub mod mint;
mod token;

pub use jwk::{Jwk, Jwks, KeyCache};
pub use token::{parse, Claims, Header, ParsedToken};

use std::collections::HashMap;

/// LINE's issuer for ID tokens.
pub const LINE_ISSUER: &str = "https://access.line.me";
/// Longest compact token accepted (LINE's are well under 2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default grace: how long after `exp` a queued op's token is still accepted.
pub const DEFAULT_GRACE_MS: u64 = 24 * 3600 * 1000;
/// Path of LINE's JWKS under the LINE API base URL.
pub const CERTS_PATH: &str = "/oauth2/v2.1/certs";

/// Why a token was refused. `Display` is the text after "invalid ID token: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("format: {0}")]
    Malformed(String),
    #[error("alg: {0:?} is not accepted (ES256, or HS256 where a channel secret is configured)")]
    UnsupportedAlg(String),
    #[error("alg: HS256 is accepted only for a LINE Login channel with a configured secret")]
    Hs256WithoutSecret,
    #[error("signature: no key with kid {0:?} in LINE's JWKS")]
    UnknownKey(String),
    #[error("signature: does not verify")]
    BadSignature,
    #[error("iss: expected {LINE_ISSUER}")]
    WrongIssuer,
    #[error("aud: not a LINE Login channel allowed for this channel")]
    WrongAudience,
    #[error("exp: the token expired before the call was made")]
    ExpiredBeforeCall,
    #[error("exp: the token expired more than {grace_secs} s before it was received")]
    ExpiredTooLongAgo { grace_secs: u64 },
    #[error("sub: not a valid LINE user ID")]
    InvalidSubject,
}

/// What a token is checked against, per op.
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    /// LINE Login channel IDs whose tokens may link to the op's Repro channel.
    pub allowed_audiences: &'a [String],
    /// LINE Login channel ID → channel secret, for HS256 tokens.
    pub hs256_secrets: &'a HashMap<String, String>,
    /// The op's `at` (call time), ms since the epoch.
    pub call_at_ms: u64,
    /// Receipt time, ms since the epoch.
    pub now_ms: u64,
    pub grace_ms: u64,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The LINE user ID to link.
    pub sub: String,
    /// The LINE Login channel the token was issued for.
    pub aud: String,
    pub exp_ms: u64,
}

/// Verifies `token` against `keys` (ES256) or the configured secret of its `aud` (HS256).
pub fn verify(token: &str, keys: &Jwks, checks: &Checks<'_>) -> Result<Verified, IdTokenError> {
    let parsed = parse(token)?;
    match parsed.header.alg.as_str() {
        "ES256" => {
            let kid = parsed.header.kid.clone().unwrap_or_default();
            let key = keys
                .find(&kid)
                .ok_or_else(|| IdTokenError::UnknownKey(kid.chars().take(64).collect()))?;
            key.verify_es256(parsed.signing_input.as_bytes(), &parsed.signature)?;
        }
        "HS256" => {
            // The secret is chosen by the claimed aud; a forged aud fails the MAC.
            let secret = checks
                .hs256_secrets
                .get(&parsed.claims.aud)
                .ok_or(IdTokenError::Hs256WithoutSecret)?;
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            ring::hmac::verify(&key, parsed.signing_input.as_bytes(), &parsed.signature)
                .map_err(|_| IdTokenError::BadSignature)?;
        }
        other => {
            return Err(IdTokenError::UnsupportedAlg(
                other.chars().take(16).collect(),
            ))
        }
    }
    let claims = parsed.claims;
    if claims.iss != LINE_ISSUER {
        return Err(IdTokenError::WrongIssuer);
    }
    if !checks.allowed_audiences.contains(&claims.aud) {
        return Err(IdTokenError::WrongAudience);
    }
    let exp_ms = claims.exp.saturating_mul(1000);
    if exp_ms < checks.call_at_ms {
        return Err(IdTokenError::ExpiredBeforeCall);
    }
    if exp_ms.saturating_add(checks.grace_ms) < checks.now_ms {
        return Err(IdTokenError::ExpiredTooLongAgo {
            grace_secs: checks.grace_ms / 1000,
        });
    }
    repro_line_core::validate::line_user_id(&claims.sub)
        .map_err(|_| IdTokenError::InvalidSubject)?;
    Ok(Verified {
        sub: claims.sub,
        aud: claims.aud,
        exp_ms,
    })
}
