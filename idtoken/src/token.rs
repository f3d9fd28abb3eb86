//! The compact JWT form: `base64url(header).base64url(claims).base64url(signature)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::{IdTokenError, MAX_TOKEN_BYTES};

/// The JOSE header fields the verifier looks at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The claims the verifier checks (others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// LINE sets one LINE Login channel ID (a string, not an array).
    pub aud: String,
    /// Seconds since the epoch.
    pub exp: u64,
}

/// A token split and decoded, NOT verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    pub header: Header,
    pub claims: Claims,
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWT; any deviation is `Malformed` naming what is wrong.
pub fn parse(token: &str) -> Result<ParsedToken<'_>, IdTokenError> {
    let bad = |m: &str| IdTokenError::Malformed(m.to_owned());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad("longer than 8 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| IdTokenError::Malformed(format!("{what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&decode(h, "header")?)
        .map_err(|_| bad("header is not a JSON object with a string alg"))?;
    let claims: Claims = serde_json::from_slice(&decode(c, "claims")?)
        .map_err(|_| bad("claims lack string iss, sub, aud or a numeric exp"))?;
    let signature = decode(s, "signature")?;
    Ok(ParsedToken {
        header,
        claims,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header),
            b64(claims),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    const CLAIMS: &str = r#"{"iss":"https://access.line.me","sub":"U4af4980629a1b2c3d4e5f60718293a4b","aud":"1234567890","exp":1795867200,"name":"x"}"#;

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#,
            CLAIMS,
            &[1, 2, 3],
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.header.alg, "ES256");
        assert_eq!(p.header.kid.as_deref(), Some("k1"));
        assert_eq!(p.claims.aud, "1234567890");
        assert_eq!(p.claims.exp, 1_795_867_200);
        assert_eq!(p.signature, vec![1, 2, 3]);
        assert_eq!(p.signing_input, &t[..t.rfind('.').unwrap()]);
    }

    #[test]
    fn every_malformation_is_named() {
        let good = token(r#"{"alg":"ES256"}"#, CLAIMS, &[1]);
        let cases = [
            (good[..good.rfind('.').unwrap()].to_owned(), "three"),
            (format!("{good}.x"), "three"),
            (format!("!{good}"), "header is not base64url"),
            (token("[]", CLAIMS, &[1]), "header is not a JSON"),
            (
                token(r#"{"alg":"ES256"}"#, r#"{"iss":"x"}"#, &[1]),
                "claims lack",
            ),
            (format!("{good}="), "signature is not base64url"),
            ("a".repeat(MAX_TOKEN_BYTES + 1), "8 KiB"),
            (String::new(), "three"),
        ];
        for (t, want) in cases {
            let err = parse(&t).unwrap_err();
            assert!(matches!(err, IdTokenError::Malformed(_)), "{err}");
            assert!(err.to_string().contains(want), "{t:.60}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn arbitrary_dotted_base64_never_panics(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,90}") {
            let _ = parse(&format!("{a}.{b}.{c}"));
        }

        #[test]
        fn any_claims_round_trip(sub in "[A-Za-z0-9]{0,40}", aud in "[0-9]{1,12}", exp in 0u64..=u32::MAX as u64) {
            let claims = serde_json::json!({"iss": crate::LINE_ISSUER, "sub": sub, "aud": aud, "exp": exp}).to_string();
            let t = token(r#"{"alg":"HS256"}"#, &claims, b"sig");
            let p = parse(&t).unwrap();
            proptest::prop_assert_eq!(p.claims.sub, sub);
            proptest::prop_assert_eq!(p.claims.aud, aud);
            proptest::prop_assert_eq!(p.claims.exp, exp);
        }
    }
}
