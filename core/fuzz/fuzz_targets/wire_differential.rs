//! `wire`'s hand-written JSON readers against serde_json on arbitrary bytes: never
//! panic, and whatever they accept serde_json's derived `Deserialize` accepts as the
//! same value (they may refuse more: lone surrogates in skipped strings, deep nesting).
#![no_main]

use libfuzzer_sys::fuzz_target;
use repro_line_core::protocol::{BatchResponse, ErrorBody};
use repro_line_core::wire;

fuzz_target!(|body: &[u8]| {
    if let Ok(resp) = wire::batch_response(body) {
        let serde: BatchResponse = serde_json::from_slice(body).expect("serde_json accepts it too");
        assert_eq!(serde, resp);
    }
    if let Ok(err) = wire::error_body(body) {
        let serde: ErrorBody = serde_json::from_slice(body).expect("serde_json accepts it too");
        assert_eq!(serde, err);
    }
    if let Ok(sub) = wire::subject(body) {
        // A derived struct, as `id_token_subject` used: a `Value` would refuse numbers that
        // overflow f64 (`1E999`), which the derived struct skips like the reader does.
        #[derive(serde::Deserialize)]
        struct Claims {
            sub: String,
        }
        let serde: Claims = serde_json::from_slice(body).expect("serde_json accepts it too");
        assert_eq!(serde.sub, sub);
    }
});
