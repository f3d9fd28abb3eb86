//! `repro-line line followers` against the emulator's LINE follower endpoint:
//! paging with `next`, a 429 with Retry-After, the token never printed.

mod bulk_common;
use bulk_common::*;

use std::time::{Duration, Instant};

const TOKEN: &str = "secret-channel-token-0123456789";

fn followers(api_base: &str, out: &std::path::Path) -> std::process::Output {
    run_env(
        &[
            "line",
            "followers",
            "--channel-token-env",
            "TEST_LINE_TOKEN",
            "--api-base",
            api_base,
            "-o",
            s(out),
        ],
        &[("TEST_LINE_TOKEN", TOKEN)],
    )
}

#[test]
fn pages_through_followers_and_honours_429() {
    let emu = emulator();
    // Two pages of 1000 and 500; the second request gets a 429 with Retry-After: 2.
    // The emulator serves them only to `Bearer TOKEN`, and its `next` cursors hold
    // `/`, `+` and `=`, which it refuses unless percent-encoded.
    emu.set_line_followers(TOKEN, (0..1500).map(line_id).collect(), 2);
    emu.set_line_retry_after(Some(2));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("followers.csv");
    let started = Instant::now();
    let o = followers(&emu.url(), &out);
    assert_code(&o, 0);
    // The client's own first backoff is at most 1.2 s: only Retry-After makes it 2.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, format2((0..1500).map(line_id)));
    let err = stderr(&o);
    assert!(
        err.contains("1500 followers in 2 pages (1 retries)"),
        "{err}"
    );
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(
        !err.contains(TOKEN) && !stdout(&o).contains(TOKEN),
        "token printed"
    );
    // The output is a valid Format 2 import file.
    assert_code(&run(&["csv", "validate", s(&out), "--format", "2"]), 0);
}

#[test]
fn rejected_token_exits_2_without_printing_it() {
    let emu = emulator();
    emu.set_line_followers("another-channel-token", vec![line_id(1)], 0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.csv");
    let o = followers(&emu.url(), &out);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(TOKEN), "token printed: {err}");
    assert!(!out.exists(), "no partial output");

    // A missing variable is a usage error too.
    let o = run(&[
        "line",
        "followers",
        "--channel-token-env",
        "NO_SUCH_VAR_FOR_TEST",
        "-o",
        s(&out),
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("NO_SUCH_VAR_FOR_TEST"));
}
