//! The JWT parser and the verifier take untrusted bytes from every SDK request:
//! neither may panic, and a parsed token's signing input is a prefix of the input.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use repro_line_idtoken::{parse, verify, Checks, Jwks};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = parse(token) {
        assert!(token.starts_with(p.signing_input));
    }
    let allowed = vec!["1650000000".to_owned()];
    let secrets = HashMap::from([("1650000000".to_owned(), "secret".to_owned())]);
    let checks = Checks {
        allowed_audiences: &allowed,
        hs256_secrets: &secrets,
        call_at_ms: 0,
        now_ms: 0,
        grace_ms: 0,
    };
    let _ = verify(token, &Jwks::default(), &checks);
});
