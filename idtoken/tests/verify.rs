//! Every check of the verifier against real ES256/HS256 tokens.

use std::collections::HashMap;

use repro_line_idtoken::mint::{sign_hs256, Minter};
use repro_line_idtoken::{verify, Checks, IdTokenError, LINE_ISSUER};

const SUB: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
const LOGIN: &str = "1650000000";
const NOW_S: u64 = 1_795_867_200;

fn checks<'a>(allowed: &'a [String], secrets: &'a HashMap<String, String>) -> Checks<'a> {
    Checks {
        allowed_audiences: allowed,
        hs256_secrets: secrets,
        call_at_ms: NOW_S * 1000 - 60_000,
        now_ms: NOW_S * 1000,
        grace_ms: 24 * 3600 * 1000,
    }
}

fn claims(iss: &str, sub: &str, aud: &str, exp: u64) -> String {
    serde_json::json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp}).to_string()
}

#[test]
fn a_minted_token_verifies_and_yields_its_sub() {
    let m = Minter::generate("k1").unwrap();
    let allowed = vec![LOGIN.to_owned()];
    let none = HashMap::new();
    let v = verify(
        &m.mint(SUB, LOGIN, NOW_S + 3600),
        &m.jwks(),
        &checks(&allowed, &none),
    )
    .unwrap();
    assert_eq!((v.sub.as_str(), v.aud.as_str()), (SUB, LOGIN));
}

#[test]
fn each_attack_fails_its_named_check() {
    let m = Minter::generate("k1").unwrap();
    let other = Minter::generate("k1").unwrap();
    let keys = m.jwks();
    let allowed = vec![LOGIN.to_owned()];
    let none = HashMap::new();
    let c = checks(&allowed, &none);
    let es = r#"{"alg":"ES256","kid":"k1"}"#;
    let good = m.mint(SUB, LOGIN, NOW_S + 3600);
    let pubkey = m.public_key_bytes();
    let cases: Vec<(&str, String, &str)> = vec![
        ("forged", other.mint(SUB, LOGIN, NOW_S + 3600), "signature"),
        (
            "unknown kid",
            m.sign_raw(
                r#"{"alg":"ES256","kid":"zz"}"#,
                &claims(LINE_ISSUER, SUB, LOGIN, NOW_S + 3600),
            ),
            "signature: no key",
        ),
        ("wrong aud", m.mint(SUB, "999", NOW_S + 3600), "aud"),
        (
            "wrong iss",
            m.sign_raw(
                es,
                &claims("https://evil.example", SUB, LOGIN, NOW_S + 3600),
            ),
            "iss",
        ),
        (
            "expired before call",
            m.mint(SUB, LOGIN, NOW_S - 120),
            "exp",
        ),
        ("bad sub", m.mint("Uabc", LOGIN, NOW_S + 3600), "sub"),
        (
            "alg none",
            {
                let t = m.sign_raw(
                    r#"{"alg":"none"}"#,
                    &claims(LINE_ISSUER, SUB, LOGIN, NOW_S + 3600),
                );
                format!("{}.", &t[..t.rfind('.').unwrap()])
            },
            "alg",
        ),
        (
            "HS256 with the public key",
            sign_hs256(
                &pubkey,
                r#"{"alg":"HS256","kid":"k1"}"#,
                &claims(LINE_ISSUER, SUB, LOGIN, NOW_S + 3600),
            ),
            "alg: HS256",
        ),
        ("truncated", good[..good.len() - 10].to_owned(), "signature"),
        (
            "cut in two",
            good[..good.rfind('.').unwrap()].to_owned(),
            "format",
        ),
        (
            "tampered claims",
            {
                let parts: Vec<&str> = good.split('.').collect();
                let evil = m.sign_raw(
                    es,
                    &claims(
                        LINE_ISSUER,
                        "U00000000000000000000000000000000",
                        LOGIN,
                        NOW_S + 3600,
                    ),
                );
                format!(
                    "{}.{}.{}",
                    parts[0],
                    evil.split('.').nth(1).unwrap(),
                    parts[2]
                )
            },
            "signature: does not verify",
        ),
    ];
    for (name, token, check) in cases {
        let err = verify(&token, &keys, &c).unwrap_err();
        assert!(err.to_string().starts_with(check), "{name}: {err}");
    }
}

#[test]
fn a_queued_call_keeps_its_token_for_the_grace_period_only() {
    let m = Minter::generate("k").unwrap();
    let allowed = vec![LOGIN.to_owned()];
    let none = HashMap::new();
    // Called while valid, delivered 23 h after exp: accepted. 25 h after: refused.
    let exp = NOW_S - 23 * 3600;
    let mut c = checks(&allowed, &none);
    c.call_at_ms = (exp - 60) * 1000;
    assert!(verify(&m.mint(SUB, LOGIN, exp), &m.jwks(), &c).is_ok());
    let exp = NOW_S - 25 * 3600;
    c.call_at_ms = (exp - 60) * 1000;
    let err = verify(&m.mint(SUB, LOGIN, exp), &m.jwks(), &c).unwrap_err();
    assert_eq!(err, IdTokenError::ExpiredTooLongAgo { grace_secs: 86_400 });
}

#[test]
fn hs256_only_with_the_channel_secret() {
    let allowed = vec![LOGIN.to_owned()];
    let secrets = HashMap::from([(LOGIN.to_owned(), "channel-secret".to_owned())]);
    let body = claims(LINE_ISSUER, SUB, LOGIN, NOW_S + 3600);
    let hs = r#"{"alg":"HS256"}"#;
    let keys = Minter::generate("k").unwrap().jwks();
    let ok = sign_hs256(b"channel-secret", hs, &body);
    assert_eq!(
        verify(&ok, &keys, &checks(&allowed, &secrets)).unwrap().sub,
        SUB
    );
    let wrong = sign_hs256(b"guess", hs, &body);
    assert_eq!(
        verify(&wrong, &keys, &checks(&allowed, &secrets)).unwrap_err(),
        IdTokenError::BadSignature
    );
    let none = HashMap::new();
    assert_eq!(
        verify(&ok, &keys, &checks(&allowed, &none)).unwrap_err(),
        IdTokenError::Hs256WithoutSecret
    );
}
