//! Permanent misconfigurations are refused at once or named, never retried in
//! silence; CLI errors name the flag the user typed (issue 11, items 9 and 15).

mod sdk_common;

use sdk_common::*;

#[test]
fn an_invalid_token_or_port_is_refused_at_once() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut c = bin();
    c.args([
        "send",
        "--endpoint",
        &emu.url(),
        "--token",
        "tok\nen",
        "--user-id",
        "u1",
    ])
    .arg("--state-dir")
    .arg(&state);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("sdk_token"), "{}", stderr(&out));

    let out = send("https://127.0.0.1:99999", &state, "u1", "30")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid port"), "{}", stderr(&out));
    assert_eq!(emu.stats().requests, 0);
}

/// https to a plain-HTTP server was retried forever with no message.
#[test]
fn a_tls_failure_is_named_when_the_wait_expires() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let https = emu.url().replace("http://", "https://");
    let out = send(&https, &dir.path().join("state"), "u1", "3")
        .output()
        .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{message}");
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert!(message.contains("stay queued"), "{message}");
    assert!(json(&out)["last_error"]
        .as_str()
        .unwrap()
        .starts_with("TLS handshake failed"));
}

#[test]
fn a_wrong_endpoint_path_names_the_status_and_url() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("{}/wrong", emu.url());
    let out = send(&endpoint, &dir.path().join("state"), "u1", "10")
        .output()
        .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{message}");
    assert!(message.contains("EndpointMisconfigured"), "{message}");
    assert!(
        message.contains(&format!("HTTP 404 from {endpoint}/v1/identity/batch")),
        "{message}"
    );
}

#[test]
fn errors_name_the_flags_the_user_typed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut c = send("http://127.0.0.1:9", &state, "u1", "0");
    c.args(["--line-user-id", &line_id(1)]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--channel-id"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Config."), "{}", stderr(&out));

    let csv = dir.path().join("m.csv");
    write_csv(&csv, 0, 2);
    let mut c = bin();
    c.args([
        "register",
        "--endpoint",
        "http://127.0.0.1:9",
        "--token",
        TOKEN,
    ])
    .args(["--channel-id", "not a channel!"])
    .arg("--state-dir")
    .arg(&state)
    .arg("--csv")
    .arg(&csv);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("--channel-id"), "{message}");
    assert!(!message.contains("row 1"), "{message}");
}
