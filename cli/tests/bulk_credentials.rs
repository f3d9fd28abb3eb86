//! Issue 11 items 10 and 15 (S3 keys): credentials never go in cleartext off
//! loopback, and keys S3 or Repro would not take are refused up front.
//!
//! These machines may send traffic only to loopback, so the refusals are
//! tested with http URLs to a non-loopback host *name* that does not exist:
//! the URL check must refuse them before any connection (or DNS lookup).

mod bulk_common;
use bulk_common::*;

const OFF_LOOPBACK: &str = "http://example.invalid:9/";

#[test]
fn followers_refuses_cleartext_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.csv");
    let o = run_env(
        &[
            "line",
            "followers",
            "--channel-token-env",
            "TEST_LINE_TOKEN",
            "--api-base",
            OFF_LOOPBACK,
            "-o",
            s(&out),
        ],
        &[("TEST_LINE_TOKEN", "secret-token-1234")],
    );
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("--api-base") && err.contains("use https"),
        "{err}"
    );
    assert!(!err.contains("secret-token-1234"));
    assert!(!out.exists());
}

#[test]
fn s3_upload_refuses_cleartext_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "users.csv", format1(3));
    let o = s3_upload(&f, "deliverable", OFF_LOOPBACK, &[], &S3_CREDS);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("--endpoint-url") && err.contains("use https"),
        "{err}"
    );
    // Refused before anything else ran (no validation summary, no upload).
    assert!(!err.contains("VALID"), "{err}");

    // The same for an endpoint named in the environment.
    let mut env = S3_CREDS.to_vec();
    env.push(("AWS_ENDPOINT_URL", OFF_LOOPBACK));
    let o = run_env(
        &[
            "s3",
            "upload",
            s(&f),
            "--app-id",
            S3_APP,
            "--channel-id",
            S3_CHANNEL,
            "--type",
            "deliverable",
        ],
        &env,
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("AWS_ENDPOINT_URL"), "{}", stderr(&o));
}

fn key(name: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "s3",
        "key",
        "--app-id",
        "app1",
        "--channel-id",
        "1234567890",
        "--type",
        "deliverable",
        "--keep-name",
    ];
    args.extend_from_slice(extra);
    args.push(name);
    run(&args)
}

#[test]
fn keys_s3_would_not_take_are_refused() {
    let long = format!("{}.csv", "a".repeat(1000));
    let o = key(&long, &[]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("at most 1024"), "{}", stderr(&o));
    // Just under the limit is fine.
    let fits = format!("{}.csv", "a".repeat(900));
    assert_code(&key(&fits, &[]), 0);

    for name in ["a?b.csv", "a#b.csv", "100%.csv", "a\\b.csv"] {
        let o = key(name, &[]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("not allowed"), "{name}: {}", stderr(&o));
    }
    for bucket in ["a/b c", "AB", "x", "bucket-"] {
        let o = key("users.csv", &["--bucket", bucket]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("--bucket"), "{bucket}: {}", stderr(&o));
    }
}
