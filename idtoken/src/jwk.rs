//! LINE's JWKS (`GET {line_api}/oauth2/v2.1/certs`): EC P-256 public keys by `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::IdTokenError;

/// One public key as LINE publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// A key set; keys that are not EC P-256 are kept but never match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The EC P-256 key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| {
            k.kid.as_deref() == Some(kid) && k.kty == "EC" && k.crv.as_deref() == Some("P-256")
        })
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }
}

impl Jwk {
    /// SEC1 uncompressed point `04 || x || y`, the form ring verifies with.
    fn point(&self) -> Option<Vec<u8>> {
        let x = URL_SAFE_NO_PAD.decode(self.x.as_deref()?).ok()?;
        let y = URL_SAFE_NO_PAD.decode(self.y.as_deref()?).ok()?;
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let mut p = Vec::with_capacity(65);
        p.push(4);
        p.extend_from_slice(&x);
        p.extend_from_slice(&y);
        Some(p)
    }

    /// Verifies a JWS ES256 signature (the 64-byte `r || s` form).
    pub(crate) fn verify_es256(
        &self,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), IdTokenError> {
        let point = self.point().ok_or(IdTokenError::BadSignature)?;
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(message, signature)
            .map_err(|_| IdTokenError::BadSignature)
    }
}

/// When to (re)fetch LINE's JWKS: pure policy, the caller does the request.
/// Fetches when empty or older than `max_age_ms`, and on an unknown `kid` (LINE rotated
/// its keys) at most once per `min_refetch_ms`, so forged kids cannot make us hammer LINE.
#[derive(Debug, Clone)]
pub struct KeyCache {
    keys: Jwks,
    fetched_at_ms: Option<u64>,
    pub max_age_ms: u64,
    pub min_refetch_ms: u64,
}

impl KeyCache {
    pub fn new(max_age_ms: u64, min_refetch_ms: u64) -> KeyCache {
        KeyCache {
            keys: Jwks::default(),
            fetched_at_ms: None,
            max_age_ms,
            min_refetch_ms,
        }
    }

    pub fn keys(&self) -> &Jwks {
        &self.keys
    }

    /// Whether a token with this `kid` (its header's, if readable) calls for a fetch now.
    pub fn should_fetch(&self, kid: Option<&str>, now_ms: u64) -> bool {
        let Some(at) = self.fetched_at_ms else {
            return true;
        };
        let age = now_ms.saturating_sub(at);
        if age >= self.max_age_ms {
            return true;
        }
        kid.is_some_and(|k| !self.keys.contains(k)) && age >= self.min_refetch_ms
    }

    /// Records a fetch attempt; `None` (it failed) keeps the old keys but still counts
    /// for the rate limit.
    pub fn fetched(&mut self, keys: Option<Jwks>, now_ms: u64) {
        if let Some(k) = keys {
            self.keys = k;
        }
        self.fetched_at_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kid: &str) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                kid: Some(kid.into()),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
                x: None,
                y: None,
            }],
        }
    }

    #[test]
    fn refetch_policy_is_rate_limited() {
        let mut c = KeyCache::new(3_600_000, 60_000);
        assert!(c.should_fetch(None, 0), "empty cache fetches");
        c.fetched(Some(set("a")), 1_000);
        assert!(!c.should_fetch(Some("a"), 2_000));
        assert!(
            !c.should_fetch(Some("b"), 2_000),
            "unknown kid, but fetched 1 s ago"
        );
        assert!(
            c.should_fetch(Some("b"), 61_000),
            "unknown kid after the minimum interval"
        );
        c.fetched(None, 61_000);
        assert!(c.keys().contains("a"), "a failed fetch keeps the keys");
        assert!(
            !c.should_fetch(Some("b"), 62_000),
            "a failed fetch counts for the limit"
        );
        assert!(c.should_fetch(Some("a"), 61_000 + 3_600_000), "max age");
    }

    #[test]
    fn jwks_parses_lines_shape() {
        let j: Jwks = serde_json::from_str(
            r#"{"keys":[{"kty":"EC","alg":"ES256","use":"sig","kid":"k","crv":"P-256","x":"AA","y":"AA"},{"kty":"RSA","kid":"r","n":"x","e":"AQAB"}]}"#,
        )
        .unwrap();
        assert!(j.contains("k"));
        assert!(!j.contains("r"), "only EC P-256 keys match");
    }
}
