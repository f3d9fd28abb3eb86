//! `protocol::decode_batch_response` on arbitrary bytes: never panics, and
//! whatever it accepts re-serialises to JSON that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repro_line_core::protocol;

fuzz_target!(|body: &[u8]| {
    if let Ok(resp) = protocol::decode_batch_response(body) {
        let again = serde_json::to_vec(&resp).expect("a decoded response serialises");
        assert_eq!(protocol::decode_batch_response(&again).as_ref(), Ok(&resp));
    }
});
