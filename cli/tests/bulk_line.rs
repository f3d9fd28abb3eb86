//! `repro-line line followers` against a tiny LINE-like HTTP server on loopback:
//! paging with `next`, a 429 with Retry-After, the token never printed.

mod bulk_common;
use bulk_common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "secret-channel-token-0123456789";

/// What the server saw: (request line, authorization header).
type Log = Arc<Mutex<Vec<(String, String)>>>;

/// Serves `respond(path, n-th request for that path)` → (status, extra headers, body).
fn serve(respond: impl Fn(&str, usize) -> (u16, String, String) + Send + 'static) -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut auth = String::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h
                    .strip_prefix("authorization: ")
                    .or_else(|| h.strip_prefix("Authorization: "))
                {
                    auth = v.trim().to_string();
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.lock()
                .unwrap()
                .push((request.trim().to_string(), auth));
            let n = counts.entry(path.clone()).or_default();
            let (status, headers, body) = respond(&path, *n);
            *n += 1;
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (port, log)
}

fn ids_json(range: std::ops::Range<u64>) -> String {
    let ids: Vec<String> = range.map(|i| format!("\"{}\"", line_id(i))).collect();
    ids.join(",")
}

#[test]
fn pages_through_followers_and_honours_429() {
    let (port, log) = serve(|path, n| match path {
        "/v2/bot/followers/ids?limit=1000" => (
            200,
            String::new(),
            format!(
                "{{\"userIds\":[{}],\"next\":\"pg/2+x=\"}}",
                ids_json(0..1000)
            ),
        ),
        "/v2/bot/followers/ids?limit=1000&start=pg%2F2%2Bx%3D" if n == 0 => (
            429,
            "Retry-After: 1\r\n".into(),
            "{\"message\":\"Too many requests\"}".into(),
        ),
        "/v2/bot/followers/ids?limit=1000&start=pg%2F2%2Bx%3D" => (
            200,
            String::new(),
            format!("{{\"userIds\":[{}]}}", ids_json(1000..1500)),
        ),
        _ => (404, String::new(), "{}".into()),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("followers.csv");
    let started = std::time::Instant::now();
    let o = run_env(
        &[
            "line",
            "followers",
            "--channel-token-env",
            "TEST_LINE_TOKEN",
            "--api-base",
            &format!("http://127.0.0.1:{port}"),
            "-o",
            s(&out),
        ],
        &[("TEST_LINE_TOKEN", TOKEN)],
    );
    assert_code(&o, 0);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut want = String::from("line_user_id\n");
    for i in 0..1500 {
        want.push_str(&line_id(i));
        want.push('\n');
    }
    assert_eq!(text, want);
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
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for (_, auth) in log.iter() {
        assert_eq!(auth, &format!("Bearer {TOKEN}"));
    }
    // The output is a valid Format 2 import file.
    assert_code(&run(&["csv", "validate", s(&out), "--format", "2"]), 0);
}

#[test]
fn rejected_token_exits_2_without_printing_it() {
    let (port, _) = serve(|_, _| {
        (
            401,
            String::new(),
            format!("{{\"message\":\"Authentication failed: {TOKEN}\"}}"),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.csv");
    let o = run_env(
        &[
            "line",
            "followers",
            "--channel-token-env",
            "TEST_LINE_TOKEN",
            "--api-base",
            &format!("http://127.0.0.1:{port}"),
            "-o",
            s(&out),
        ],
        &[("TEST_LINE_TOKEN", TOKEN)],
    );
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
