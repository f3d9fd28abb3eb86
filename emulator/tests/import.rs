//! The dashboard-style import endpoint over real loopback HTTP: the semantics of
//! each import type and format (seen through `GET /admin/state`), whole-file
//! rejection with errors.csv, warnings, auth, bad queries and unknown jobs.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use repro_line_emulator::{Emulator, EmulatorState, LineUser, LinkStatus};
use reqwest::Method;
use serde_json::json;

const OTHER_CHANNEL: &str = "9876543210";

fn lid(i: u32) -> String {
    format!("U{i:032x}")
}

fn post_import(http: &Http, emu: &Emulator, channel: &str, kind: &str, csv: &str) -> Reply {
    http.send(
        http.request(
            Method::POST,
            format!(
                "{}/v1/line_user_imports?channel_id={channel}&type={kind}",
                emu.url()
            ),
        )
        .header("x-repro-token", TOKEN)
        .header("content-type", "text/csv")
        .body(csv.to_owned()),
    )
    .unwrap()
}

fn get(http: &Http, emu: &Emulator, path: &str) -> Reply {
    http.send(
        http.request(Method::GET, format!("{}{path}", emu.url()))
            .header("x-repro-token", TOKEN),
    )
    .unwrap()
}

/// Polls the job until it has left `Uploading`; returns its JSON.
fn wait_job(http: &Http, emu: &Emulator, job_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(http, emu, &format!("/v1/line_user_imports/{job_id}"));
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let job = reply.json();
        if job["status"] != "Uploading" {
            return job;
        }
        assert!(Instant::now() < deadline, "job {job_id} still Uploading");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// POST, check the 202, wait for the job to finish.
fn import(http: &Http, emu: &Emulator, channel: &str, kind: &str, csv: &str) -> serde_json::Value {
    let reply = post_import(http, emu, channel, kind, csv);
    assert_eq!(
        reply.status,
        202,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let accepted = reply.json();
    assert_eq!(accepted["status"], "Uploading");
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("/v1/line_user_imports/{job_id}")
    );
    let job = wait_job(http, emu, &job_id);
    assert_eq!(job["job_id"], job_id.as_str());
    assert_eq!(job["channel_id"], channel);
    assert_eq!(job["type"], kind);
    job
}

fn completed(job: &serde_json::Value) {
    assert_eq!(job["status"], "Import Completed", "{job}");
    assert_eq!(job["errors"], 0, "{job}");
    assert!(job["message"].is_null(), "{job}");
    assert!(job["finished_at"].as_str().unwrap().ends_with('Z'), "{job}");
}

/// The imported LINE users, read over HTTP.
fn line_users(http: &Http, emu: &Emulator) -> Vec<LineUser> {
    let reply = http
        .send(http.request(Method::GET, format!("{}/admin/state", emu.url())))
        .unwrap();
    assert_eq!(reply.status, 200);
    let state: EmulatorState = serde_json::from_slice(&reply.body).unwrap();
    state.line_users
}

fn entry(channel: &str, i: u32, user_id: Option<&str>, status: LinkStatus) -> LineUser {
    LineUser {
        channel_id: channel.into(),
        line_user_id: lid(i),
        user_id: user_id.map(Into::into),
        status,
    }
}

use LinkStatus::{Blocked, Deliverable};

#[test]
fn deliverable_format_1_links_and_format_2_adds_broadcast_only_entries() {
    let emu = start("");
    let http = Http::new();
    let f1 = format!(
        "line_user_id,user_id\n{},alice\n{},\"bob, jr\"\n",
        lid(1),
        lid(2)
    );
    let job = import(&http, &emu, CHANNEL, "deliverable", &f1);
    completed(&job);
    assert_eq!(
        json!([job["format"], job["rows"], job["imported"], job["created"]]),
        json!([1, 2, 2, 2]),
        "{job}"
    );
    assert_eq!(job["bytes"], f1.len());
    assert_eq!(
        line_users(&http, &emu),
        [
            entry(CHANNEL, 1, Some("alice"), Deliverable),
            entry(CHANNEL, 2, Some("bob, jr"), Deliverable),
        ]
    );

    // Format 2: a known ID keeps its link; an unknown one is broadcast only.
    let job = import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id\n{}\n{}\n", lid(1), lid(3)),
    );
    completed(&job);
    assert_eq!(
        json!([job["format"], job["created"]]),
        json!([2, 1]),
        "{job}"
    );
    assert_eq!(
        line_users(&http, &emu),
        [
            entry(CHANNEL, 1, Some("alice"), Deliverable),
            entry(CHANNEL, 2, Some("bob, jr"), Deliverable),
            entry(CHANNEL, 3, None, Deliverable),
        ]
    );

    // Format 1 again relinks: a new user_id replaces the old one; a broadcast-only entry gets linked.
    completed(&import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!(
            "line_user_id,user_id\n{},alice2\n{},carol\n",
            lid(1),
            lid(3)
        ),
    ));
    let users = line_users(&http, &emu);
    assert_eq!(users[0], entry(CHANNEL, 1, Some("alice2"), Deliverable));
    assert_eq!(users[2], entry(CHANNEL, 3, Some("carol"), Deliverable));
}

#[test]
fn blocked_import_blocks_known_entries_and_creates_unknown_ones() {
    let emu = start("");
    let http = Http::new();
    completed(&import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id,user_id\n{},alice\n{},bob\n", lid(1), lid(2)),
    ));
    // The same IDs on another channel are other entries.
    completed(&import(
        &http,
        &emu,
        OTHER_CHANNEL,
        "deliverable",
        &format!("line_user_id,user_id\n{},alice\n", lid(1)),
    ));

    // Format 2 blocked (the documented one): 1 is blocked and keeps its link; 3 is new.
    let job = import(
        &http,
        &emu,
        CHANNEL,
        "blocked",
        &format!("line_user_id\n{}\n{}\n", lid(1), lid(3)),
    );
    completed(&job);
    assert_eq!(
        json!([job["imported"], job["created"]]),
        json!([2, 1]),
        "{job}"
    );
    assert_eq!(
        line_users(&http, &emu),
        [
            entry(CHANNEL, 1, Some("alice"), Blocked),
            entry(CHANNEL, 2, Some("bob"), Deliverable),
            entry(CHANNEL, 3, None, Blocked),
            entry(OTHER_CHANNEL, 1, Some("alice"), Deliverable),
        ]
    );

    // Format 1 blocked: a known entry only changes status (its user_id stays);
    // an unknown one is created blocked with the file's user_id.
    completed(&import(
        &http,
        &emu,
        CHANNEL,
        "blocked",
        &format!(
            "line_user_id,user_id\n{},mallory\n{},dave\n",
            lid(2),
            lid(4)
        ),
    ));
    // A deliverable import unblocks (Format 2 keeps the link).
    completed(&import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id\n{}\n", lid(1)),
    ));
    assert_eq!(
        line_users(&http, &emu),
        [
            entry(CHANNEL, 1, Some("alice"), Deliverable),
            entry(CHANNEL, 2, Some("bob"), Blocked),
            entry(CHANNEL, 3, None, Blocked),
            entry(CHANNEL, 4, Some("dave"), Blocked),
            entry(OTHER_CHANNEL, 1, Some("alice"), Deliverable),
        ]
    );
}

#[test]
fn one_error_rejects_the_whole_file_and_errors_csv_says_where() {
    let emu = start("");
    let http = Http::new();
    completed(&import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id,user_id\n{},alice\n", lid(1)),
    ));
    let before = emu.state();

    // Line 2 is fine and line 4 too, but line 3 is not a LINE user ID: nothing is applied.
    let csv = format!(
        "line_user_id,user_id\n{},alice-new\nU123,bob\n{},carol\n",
        lid(1),
        lid(2)
    );
    let job = import(&http, &emu, CHANNEL, "deliverable", &csv);
    assert_eq!(job["status"], "Error", "{job}");
    assert_eq!(
        json!([job["errors"], job["imported"]]),
        json!([1, 0]),
        "{job}"
    );
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported"),
        "{job}"
    );
    assert_eq!(emu.state(), before, "state unchanged");
    assert_eq!(line_users(&http, &emu), before.line_users);

    let reply = get(
        &http,
        &emu,
        &format!(
            "/v1/line_user_imports/{}/errors.csv",
            job["job_id"].as_str().unwrap()
        ),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        "line,column,value,rule,severity\n3,line_user_id,U123,line_user_id.invalid,error\n"
    );

    // A bad header: no format, still an Error job with the finding on line 1.
    let job = import(&http, &emu, CHANNEL, "blocked", "lineUserId\nU1\n");
    assert_eq!(job["status"], "Error");
    assert!(job["format"].is_null(), "{job}");
    let csv = get(
        &http,
        &emu,
        &format!(
            "/v1/line_user_imports/{}/errors.csv",
            job["job_id"].as_str().unwrap()
        ),
    );
    let text = String::from_utf8(csv.body).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,,lineUserId,header.invalid,error"),
        "{text}"
    );
    // An empty body is a file too: file.empty.
    let job = import(&http, &emu, CHANNEL, "deliverable", "");
    assert_eq!(job["status"], "Error");
    assert_eq!(emu.state(), before);
}

#[test]
fn a_file_with_only_warnings_is_imported_and_lists_them() {
    let emu = start("");
    let http = Http::new();
    let upper = format!("U{}", "A".repeat(32));
    // Line 3 repeats line 2 (duplicate), line 4 has no user_id, line 5 is not lowercase hex.
    let csv = format!(
        "line_user_id,user_id\n{a},alice\n{a},alice\n{b},\n{upper},carol\n",
        a = lid(1),
        b = lid(2)
    );
    let job = import(&http, &emu, CHANNEL, "deliverable", &csv);
    completed(&job);
    assert_eq!(
        json!([job["rows"], job["warnings"], job["imported"]]),
        json!([4, 3, 3]),
        "{job}"
    );
    let mut want = vec![
        entry(CHANNEL, 1, Some("alice"), Deliverable),
        entry(CHANNEL, 2, None, Deliverable),
        LineUser {
            channel_id: CHANNEL.into(),
            line_user_id: upper.clone(),
            user_id: Some("carol".into()),
            status: Deliverable,
        },
    ];
    want.sort_by(|a, b| a.line_user_id.cmp(&b.line_user_id));
    assert_eq!(line_users(&http, &emu), want);
    let reply = get(
        &http,
        &emu,
        &format!(
            "/v1/line_user_imports/{}/errors.csv",
            job["job_id"].as_str().unwrap()
        ),
    );
    let text = String::from_utf8(reply.body).unwrap();
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[3])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("3", "line_user_id.duplicate"),
            ("4", "user_id.empty"),
            ("5", "line_user_id.not_lower_hex"),
        ],
        "{text}"
    );
    assert!(
        text.lines().skip(1).all(|l| l.ends_with(",warning")),
        "{text}"
    );

    // No findings at all: errors.csv is just the header.
    let job = import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id\n{}\n", lid(9)),
    );
    completed(&job);
    let reply = get(
        &http,
        &emu,
        &format!(
            "/v1/line_user_imports/{}/errors.csv",
            job["job_id"].as_str().unwrap()
        ),
    );
    assert_eq!(reply.body, b"line,column,value,rule,severity\n");
}

#[test]
fn token_query_and_job_ids_are_checked() {
    let emu = start("");
    let http = Http::new();
    let csv = format!("line_user_id\n{}\n", lid(1));
    let url = format!(
        "{}/v1/line_user_imports?channel_id={CHANNEL}&type=deliverable",
        emu.url()
    );

    // Same token as the batch route.
    for token in [None, Some("nope")] {
        let mut req = http.request(Method::POST, url.clone()).body(csv.clone());
        if let Some(t) = token {
            req = req.header("x-repro-token", t);
        }
        let reply = http.send(req).unwrap();
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.json()["error"]["code"], 401);
    }
    emu.set_token("rotated");
    assert_eq!(
        post_import(&http, &emu, CHANNEL, "deliverable", &csv).status,
        401
    );
    emu.set_token(TOKEN);

    // Each bad query names its rule.
    for (query, rule) in [
        ("channel_id=1&type=friends", "type.invalid"),
        ("channel_id=1", "type.missing"),
        ("type=blocked", "channel_id.missing"),
        ("channel_id=12-34&type=blocked", "channel_id.invalid"),
        ("channel_id=1&type=blocked&type=blocked", "query.repeated"),
        ("channelId=1&type=blocked", "query.unknown"),
    ] {
        let reply = http
            .send(
                http.request(
                    Method::POST,
                    format!("{}/v1/line_user_imports?{query}", emu.url()),
                )
                .header("x-repro-token", TOKEN)
                .body(csv.clone()),
            )
            .unwrap();
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.json()["error"]["rule"], rule, "{query}");
        assert!(reply.json()["error"]["message"].is_string());
    }
    // A form or JSON body is not a CSV upload.
    let reply = http
        .send(
            http.request(Method::POST, url.clone())
                .header("x-repro-token", TOKEN)
                .header("content-type", "multipart/form-data; boundary=x")
                .body(csv.clone()),
        )
        .unwrap();
    assert_eq!(reply.status, 415);

    // Unknown jobs, with or without a well-formed ID; job routes need the token too.
    let unknown = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/line_user_imports/{unknown}"),
        format!("/v1/line_user_imports/{unknown}/errors.csv"),
        "/v1/line_user_imports/not-a-job".to_owned(),
    ] {
        assert_eq!(get(&http, &emu, &path).status, 404, "{path}");
    }
    let job = import(&http, &emu, CHANNEL, "deliverable", &csv);
    let job_path = format!("/v1/line_user_imports/{}", job["job_id"].as_str().unwrap());
    let anonymous = http
        .send(http.request(Method::GET, format!("{}{job_path}", emu.url())))
        .unwrap();
    assert_eq!(anonymous.status, 401);
    let reply = http
        .send(
            http.request(Method::DELETE, format!("{}{job_path}", emu.url()))
                .header("x-repro-token", TOKEN),
        )
        .unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(get(&http, &emu, "/v1/line_user_imports").status, 405);
    assert_eq!(line_users(&http, &emu).len(), 1, "only the one good import");
}

#[test]
fn a_body_above_the_limit_is_refused_with_413() {
    let emu = start("");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", emu.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Refused on Content-Length alone, before any of the body is sent.
    let head = format!(
        "POST /v1/line_user_imports?channel_id={CHANNEL}&type=deliverable HTTP/1.1\r\nHost: x\r\nX-Repro-Token: {TOKEN}\r\nContent-Type: text/csv\r\nContent-Length: 600000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(emu.state().line_users.is_empty());
}

#[test]
fn reset_forgets_imported_users_and_jobs() {
    let emu = start("");
    let http = Http::new();
    let job = import(
        &http,
        &emu,
        CHANNEL,
        "deliverable",
        &format!("line_user_id,user_id\n{},alice\n", lid(1)),
    );
    completed(&job);
    assert_eq!(emu.state().line_users.len(), 1);
    let reply = http
        .send(http.request(Method::POST, format!("{}/admin/reset", emu.url())))
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(line_users(&http, &emu).is_empty());
    let path = format!("/v1/line_user_imports/{}", job["job_id"].as_str().unwrap());
    assert_eq!(get(&http, &emu, &path).status, 404);
}
