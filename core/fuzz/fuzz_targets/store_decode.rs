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
    // Appending a valid frame after any garbage must still recover it (resynchronisation),
    // unless a frame begun in the garbage reaches into it and is intact with the marker's
    // bytes: that frame's checksum must then match, which the fuzzer can forge (it sees the
    // compared values) but damage only does once in 2^32. The marker's first byte then lies
    // inside that frame, in no skipped range.
    let mut tail = data.to_vec();
    let marker = repro_line_core::store::Record::Sent { through: 424_242 };
    codec::encode_into(&mut tail, &marker);
    assert_eq!(
        codec::decode_all(&tail[data.len()..]).records,
        [marker.clone()]
    );
    let with_tail = codec::decode_all(&tail);
    let swallowed = !with_tail
        .skipped
        .iter()
        .any(|s| s.offset <= data.len() && data.len() < s.offset + s.len);
    assert!(
        swallowed || with_tail.records.last() == Some(&marker),
        "a valid frame after garbage was lost"
    );
});
