//! Minting for the emulator and tests: an ES256 key pair, its JWKS, signed tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::{Jwk, Jwks, LINE_ISSUER};

#[derive(Debug, thiserror::Error)]
#[error("cannot create an ES256 key: {0}")]
pub struct MintError(String);

/// An ES256 signing key with a `kid`, like one of LINE's.
pub struct Minter {
    kid: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Minter {
    pub fn generate(kid: &str) -> Result<Minter, MintError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| MintError(e.to_string()))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| MintError(e.to_string()))?;
        Ok(Minter {
            kid: kid.to_owned(),
            key,
            rng,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as LINE's `/oauth2/v2.1/certs` serves it.
    pub fn jwks(&self) -> Jwks {
        let point = self.key.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        Jwks {
            keys: vec![Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                kid: Some(self.kid.clone()),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                y: Some(URL_SAFE_NO_PAD.encode(y)),
            }],
        }
    }

    /// A LINE-shaped ID token for `sub`, issued for LINE Login channel `aud`.
    pub fn mint(&self, sub: &str, aud: &str, exp_secs: u64) -> String {
        let claims = serde_json::json!({
            "iss": LINE_ISSUER, "sub": sub, "aud": aud, "exp": exp_secs,
            "iat": exp_secs.saturating_sub(3600), "amr": ["linesso"],
        });
        self.sign_raw(
            &serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}).to_string(),
            &claims.to_string(),
        )
    }

    /// Signs any header and claims JSON with this key (tests build bad tokens with it).
    pub fn sign_raw(&self, header_json: &str, claims_json: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header_json),
            URL_SAFE_NO_PAD.encode(claims_json)
        );
        // Signing fails only if the system RNG does; the empty signature then never verifies.
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The public key's SEC1 bytes (what an HS256-with-public-key attack uses as the secret).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }
}

/// An HS256 token (LINE's older form, keyed with the channel secret), or any HMAC forgery.
pub fn sign_hs256(secret: &[u8], header_json: &str, claims_json: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}
