//! The journal decoder on arbitrary bytes: never panics, accounts for every
//! byte (records + skipped ranges), and whatever it decodes re-encodes to
//! bytes that decode to the same records with nothing skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repro_line_core::store::codec;

fuzz_target!(|data: &[u8]| {
    let decoded = codec::decode_all(data);
    let skipped: usize = decoded.skipped.iter().map(|s| s.len).sum();
    assert!(skipped <= data.len());
    let mut last_end = 0;
    for s in &decoded.skipped {
        assert!(s.len > 0, "empty skipped range");
        assert!(
            s.offset >= last_end,
            "skipped ranges overlap or go backwards"
        );
        last_end = s.offset + s.len;
        assert!(last_end <= data.len());
    }
    let mut again = Vec::new();
    for r in &decoded.records {
        codec::encode_into(&mut again, r);
    }
    let redecoded = codec::decode_all(&again);
    assert!(redecoded.skipped.is_empty());
    assert_eq!(redecoded.records, decoded.records);
    // Appending a valid frame after any garbage must still recover it (resynchronisation).
    let mut tail = data.to_vec();
    let marker = repro_line_core::store::Record::Sent { through: 424_242 };
    codec::encode_into(&mut tail, &marker);
    let with_tail = codec::decode_all(&tail);
    assert_eq!(
        with_tail.records.last(),
        Some(&marker),
        "a valid frame after garbage was lost"
    );
});
