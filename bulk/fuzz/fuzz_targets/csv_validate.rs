//! Any bytes → the validator finishes with findings, never a panic, and the
//! answer does not depend on block size or thread count (the first byte picks
//! them, so small blocks exercise records that cross block boundaries).
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use repro_line_bulk::{validate_reader, FormatChoice, ValidateOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, body)) = data.split_first() else {
        return;
    };
    let format = match knob % 3 {
        0 => FormatChoice::Auto,
        1 => FormatChoice::One,
        _ => FormatChoice::Two,
    };
    let run = |block_size: usize, threads: usize| {
        let opts = ValidateOptions {
            format,
            block_size,
            threads,
            sample: usize::MAX,
            ..Default::default()
        };
        let size = Some(body.len() as u64);
        validate_reader(
            Path::new("fuzz.csv"),
            Cursor::new(body.to_vec()),
            size,
            &opts,
        )
        .expect("in-memory input is always readable")
    };
    let big = run(1 << 16, 1);
    let small = run(64 + (knob as usize % 7) * 13, 1 + (knob as usize / 7) % 3);
    assert_eq!(big.findings, small.findings);
    assert_eq!(big.rows, small.rows);
    assert!(big.errors + big.warnings == big.findings_total);
});
