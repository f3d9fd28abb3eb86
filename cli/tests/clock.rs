//! A wait granted while the device clock was a year ahead stranded the queue once the
//! clock was corrected: `send --wait 10` → `timed_out`, 0 requests (issue 11, item 8).
//! The first run's journal gets the wait such a clock would have written.

mod sdk_common;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use repro_line_core::store::{codec, Record};
use sdk_common::*;

#[test]
fn a_wait_granted_under_a_wrong_clock_does_not_strand_the_queue() {
    let emu = emulator("503=1.0,retry_after=1");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = send(&emu.url(), &state, "time-traveller", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // A 2 s Retry-After granted when the clock read a year from now.
    let year_ahead = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 365 * 86_400_000;
    let mut frame = Vec::new();
    codec::encode_into(
        &mut frame,
        &Record::Backoff {
            until_ms: year_ahead + 2_001,
            attempt: 1,
            granted_at_ms: year_ahead,
        },
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(state.join("journal.log"))
        .unwrap()
        .write_all(&frame)
        .unwrap();

    emu.set_faults(Default::default());
    let out = send(&emu.url(), &state, "time-traveller", "15")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(emu.state().users.contains(&"time-traveller".to_string()));
}
