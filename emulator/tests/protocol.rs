//! docs/protocol.md over real loopback HTTP: results, auth, malformed batches,
//! links, persistence, CORS and the admin routes.

mod common;

use common::*;
use repro_line_core::protocol::WireOp;
use repro_line_emulator::{Emulator, EmulatorConfig, EmulatorState, Link, LinkStatus, Stats};
use reqwest::Method;
use uuid::Uuid;

#[test]
fn results_are_applied_duplicate_or_rejected_in_request_order() {
    let emu = start("");
    let http = Http::new();
    let device = Uuid::new_v4();
    let ops = vec![
        op(1, link("alice", LINE_A)), // before set_user_id: not registered
        op(2, set("alice")),
        op(3, link("alice", LINE_A)),
        op(
            4,
            link("alice", "U4af4980629a1b2c3d4e5f60718293a4"), // 32 characters
        ),
        op(
            5,
            repro_line_core::protocol::OpKind::LinkLineId {
                user_id: "alice".into(),
                line_user_id: LINE_A.into(),
                channel_id: "12-34".into(),
            },
        ),
        op(6, set("")),
        op(7, set("bob\n")),
    ];
    let ids: Vec<Uuid> = ops.iter().map(|o| o.op_id).collect();
    let reply = http.post(&emu, batch(device, ops.clone()));
    assert_eq!(reply.status, 200);
    let v = reply.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    for (r, id) in results.iter().zip(&ids) {
        assert_eq!(r["op_id"], id.to_string(), "one result per op, in order");
    }
    assert_eq!(
        reply.statuses(),
        ["rejected", "applied", "applied", "rejected", "rejected", "rejected", "rejected"]
    );
    let codes: Vec<Option<u64>> = results
        .iter()
        .map(|r| r.get("error").map(|e| e["code"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            Some(1002),
            None,
            None,
            Some(1004),
            Some(1005),
            Some(1006),
            Some(1006)
        ]
    );
    assert!(
        results[1].get("error").is_none(),
        "no error key unless rejected"
    );

    // The same batch again, plus one new op: every old op_id is a duplicate, whatever it was.
    let mut again = ops;
    again.push(op(8, set("carol")));
    let reply = http.post(&emu, batch(device, again));
    assert_eq!(
        reply.statuses(),
        [
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "applied"
        ]
    );

    let state = emu.state();
    assert_eq!(state.users, ["alice", "carol"]);
    assert_eq!(state.devices.len(), 1);
    assert_eq!(state.devices[0].device_id, device.to_string());
    assert_eq!(state.devices[0].current_user_id.as_deref(), Some("carol"));
    assert_eq!(state.devices[0].max_seq, 8);
    assert_eq!(
        state.links,
        [Link {
            channel_id: CHANNEL.into(),
            line_user_id: LINE_A.into(),
            user_id: Some("alice".into()),
            status: LinkStatus::Deliverable
        }]
    );
    let s = emu.stats();
    assert_eq!((s.requests, s.batches_ok), (2, 2));
    assert_eq!((s.ops_applied, s.ops_duplicate, s.ops_rejected), (3, 7, 5));
    assert_eq!(s.seq_regressions, 0);
}

#[test]
fn a_duplicate_is_detected_across_devices_and_within_one_batch() {
    let emu = start("");
    let http = Http::new();
    let o = op(1, set("alice"));
    let reply = http.post(&emu, batch(Uuid::new_v4(), vec![o.clone(), o.clone()]));
    assert_eq!(reply.statuses(), ["applied", "duplicate"]);
    let reply = http.post(&emu, batch(Uuid::new_v4(), vec![o]));
    assert_eq!(reply.statuses(), ["duplicate"]);
}

#[test]
fn wrong_or_missing_token_is_401_with_an_error_body_and_applies_nothing() {
    let emu = start("");
    let http = Http::new();
    let body = batch(Uuid::new_v4(), vec![op(1, set("alice"))]);
    for token in [None, Some("nope"), Some("")] {
        let reply = http.post_batch(&emu, token, body.clone()).unwrap();
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.json()["error"]["code"], 401);
        assert!(reply.json()["error"]["message"].is_string());
    }
    assert_eq!(emu.state(), EmulatorState::default());

    // Rotation: the old token stops working, the new one works, the op is still new.
    emu.set_token("rotated");
    assert_eq!(http.post(&emu, body.clone()).status, 401);
    let reply = http.post_batch(&emu, Some("rotated"), body).unwrap();
    assert_eq!(reply.statuses(), ["applied"]);
    assert_eq!(emu.stats().requests, 5);
}

#[test]
fn malformed_batches_are_400_code_1001() {
    let emu = start("");
    let http = Http::new();
    let device = Uuid::new_v4();
    let hundred_and_one: Vec<_> = (1..=101).map(|i| op(i, set("a"))).collect();
    let hundred: Vec<_> = (1..=100).map(|i| op(i, set("a"))).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{not json".to_vec()),
        ("empty body", Vec::new()),
        ("no ops", batch(device, vec![])),
        ("101 ops", batch(device, hundred_and_one)),
        ("missing ops", format!(r#"{{"device_id":"{device}"}}"#).into_bytes()),
        ("bad device", br#"{"device_id":"x","ops":[]}"#.to_vec()),
        (
            "unknown type",
            format!(
                r#"{{"device_id":"{device}","ops":[{{"op_id":"{}","seq":1,"at":"x","type":"delete_everything"}}]}}"#,
                Uuid::now_v7()
            )
            .into_bytes(),
        ),
        (
            "seq out of range",
            format!(
                r#"{{"device_id":"{device}","ops":[{{"op_id":"{}","seq":18446744073709551615,"at":"x","type":"set_user_id","user_id":"a"}}]}}"#,
                Uuid::now_v7()
            )
            .into_bytes(),
        ),
        ("array", b"[]".to_vec()),
        ("at not a time", batch(device, vec![WireOp { at: "yesterday".into(), ..op(1, set("a")) }])),
        ("at not UTC", batch(device, vec![WireOp { at: "2026-11-28T21:00:00.123+09:00".into(), ..op(1, set("a")) }])),
        ("seq 0", batch(device, vec![op(0, set("a"))])),
        ("invalid utf-8", vec![0xff, 0xfe, 0x00]),
    ];
    for (name, body) in cases {
        let reply = http.post(&emu, body);
        assert_eq!(reply.status, 400, "{name}");
        assert_eq!(reply.json()["error"]["code"], 1001, "{name}");
    }
    // A well-formed batch sent as text/plain is malformed too (docs/protocol.md: JSON only).
    let reply = http
        .send(
            http.request(Method::POST, format!("{}/v1/identity/batch", emu.url()))
                .header("x-repro-token", TOKEN)
                .header("content-type", "text/plain")
                .body(batch(device, vec![op(1, set("a"))])),
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Content-Type must be application/json"));
    assert_eq!(emu.state(), EmulatorState::default());
    // 100 ops is the maximum and is fine.
    assert_eq!(http.post(&emu, batch(device, hundred)).status, 200);
}

#[test]
fn a_body_above_256_kib_is_413_and_the_client_reads_the_answer() {
    let emu = start("");
    let http = Http::new();
    let device = Uuid::new_v4();
    let long = "x".repeat(180);
    // 100 ops of ~3 KiB each ≈ 300 KiB of otherwise valid JSON.
    let ops: Vec<_> = (1..=100)
        .map(|i| op(i, set(&format!("{long}{}", "y".repeat(2800)))))
        .collect();
    let body = batch(device, ops);
    assert!(body.len() > 256 * 1024);
    let reply = http.post(&emu, body);
    assert_eq!(reply.status, 413);
    // Far above the limit too (several MiB), still an answer rather than a reset.
    let reply = http.post(&emu, vec![b' '; 6 << 20]);
    assert_eq!(reply.status, 413);
    assert_eq!(emu.state(), EmulatorState::default());
    assert_eq!(
        emu.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [413, 413]
    );
}

#[test]
fn link_takes_over_from_another_user_and_unlink_only_removes_its_own() {
    let emu = start("");
    let http = Http::new();
    let (d1, d2) = (Uuid::new_v4(), Uuid::new_v4());
    let r = http.post(
        &emu,
        batch(
            d1,
            vec![
                op(1, set("alice")),
                op(2, link("alice", LINE_A)),
                op(3, link("alice", LINE_B)),
            ],
        ),
    );
    assert_eq!(r.statuses(), ["applied"; 3]);
    let r = http.post(
        &emu,
        batch(d2, vec![op(1, set("bob")), op(2, link("bob", LINE_A))]),
    );
    assert_eq!(r.statuses(), ["applied"; 2]);
    let holder = |emu: &Emulator, line: &str| {
        emu.state()
            .links
            .into_iter()
            .find(|l| l.line_user_id == line)
            .and_then(|l| l.user_id)
    };
    assert_eq!(holder(&emu, LINE_A).as_deref(), Some("bob"), "taken over");
    assert_eq!(
        emu.state().links.len(),
        2,
        "one link per (channel, LINE user)"
    );

    // alice unlinking LINE_A (now bob's) is applied but changes nothing.
    let before = emu.state().links;
    let r = http.post(&emu, batch(d1, vec![op(4, unlink("alice", LINE_A))]));
    assert_eq!(r.statuses(), ["applied"]);
    assert_eq!(emu.state().links, before);
    // Unlinking something nobody holds is applied too.
    let r = http.post(
        &emu,
        batch(
            d1,
            vec![op(5, unlink("alice", "Uffffffffffffffffffffffffffffffff"))],
        ),
    );
    assert_eq!(r.statuses(), ["applied"]);
    // The holder's unlink removes it.
    let r = http.post(&emu, batch(d2, vec![op(3, unlink("bob", LINE_A))]));
    assert_eq!(r.statuses(), ["applied"]);
    assert_eq!(holder(&emu, LINE_A), None);
    assert_eq!(holder(&emu, LINE_B).as_deref(), Some("alice"));
    // Unlink validates like link.
    let r = http.post(&emu, batch(d2, vec![op(4, unlink("bob", "nope"))]));
    assert_eq!(r.json()["results"][0]["error"]["code"], 1004);
}

#[test]
fn a_file_database_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmulatorConfig {
        db: Some(dir.path().join("state.sqlite")),
        ..EmulatorConfig::default()
    };
    let http = Http::new();
    let device = Uuid::new_v4();
    let ops = vec![op(1, set("alice")), op(2, link("alice", LINE_A))];
    let first = Emulator::start(cfg.clone()).unwrap();
    assert_eq!(
        http.post(&first, batch(device, ops.clone())).statuses(),
        ["applied"; 2]
    );
    let state = first.state();
    first.shutdown();

    let second = Emulator::start(cfg).unwrap();
    assert_eq!(second.state(), state);
    assert_eq!(second.stats(), Stats::default(), "counters are per run");
    assert_eq!(
        http.post(&second, batch(device, ops)).statuses(),
        ["duplicate"; 2],
        "op_ids seen before the restart"
    );
    let r = http.post(&second, batch(device, vec![op(1, set("bob"))]));
    assert_eq!(r.statuses(), ["applied"]);
    assert_eq!(second.stats().seq_regressions, 1, "max_seq survives too");
}

#[test]
fn cors_preflight_and_headers() {
    let http = Http::new();
    let preflight = |emu: &Emulator, origin: &str| {
        http.send(
            http.request(Method::OPTIONS, format!("{}/v1/identity/batch", emu.url()))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type, x-repro-token",
                ),
        )
        .unwrap()
    };
    let emu = Emulator::start(EmulatorConfig {
        cors_origins: vec!["http://localhost:8080".into()],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let r = preflight(&emu, "http://localhost:8080");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://localhost:8080"
    );
    let allow = r.headers["access-control-allow-headers"].to_str().unwrap();
    for h in ["content-type", "x-repro-token", "x-retry-count"] {
        assert!(allow.contains(h), "{allow}");
    }
    assert!(r.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = preflight(&emu, "http://evil.example");
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // Actual requests carry the origin and expose Retry-After.
    let reply = http
        .send(
            http.request(Method::POST, format!("{}/v1/identity/batch", emu.url()))
                .header("origin", "http://localhost:8080")
                .header("x-repro-token", TOKEN)
                .header("content-type", "application/json")
                .body(batch(Uuid::new_v4(), vec![op(1, set("a"))])),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "http://localhost:8080"
    );
    assert!(reply.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("retry-after"));

    let any = Emulator::start(EmulatorConfig {
        cors_origins: vec!["*".into()],
        ..EmulatorConfig::default()
    })
    .unwrap();
    assert_eq!(
        preflight(&any, "http://whatever:1").headers["access-control-allow-origin"],
        "*"
    );

    let none = start("");
    let r = preflight(&none, "http://localhost:8080");
    assert!(
        r.headers.get("access-control-allow-origin").is_none(),
        "CORS off by default"
    );
}

#[test]
fn admin_routes() {
    let emu = start("");
    let http = Http::new();
    let admin = |method: Method, route: &str, body: &str| {
        http.send(
            http.request(method, format!("{}/admin/{route}", emu.url()))
                .body(body.to_owned()),
        )
        .unwrap()
    };
    let device = Uuid::new_v4();
    http.post(
        &emu,
        batch(
            device,
            vec![op(1, set("alice")), op(2, link("alice", LINE_A))],
        ),
    );

    let state: EmulatorState =
        serde_json::from_slice(&admin(Method::GET, "state", "").body).unwrap();
    assert_eq!(state, emu.state());
    let stats: Stats = serde_json::from_slice(&admin(Method::GET, "stats", "").body).unwrap();
    assert_eq!(stats, emu.stats());
    let log: Vec<repro_line_emulator::RequestRecord> =
        serde_json::from_slice(&admin(Method::GET, "requests", "").body).unwrap();
    assert_eq!(log, emu.requests());
    assert_eq!(log[0].device_id, Some(device));
    assert_eq!(log[0].retry_count, Some(0));
    assert_eq!(
        (log[0].op_count, log[0].first_seq, log[0].last_seq),
        (2, 1, 2)
    );

    // Faults: a bad spec names the key; a good one takes effect.
    let r = admin(Method::PUT, "faults", "503=0.5,bogus=1");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bogus"));
    let r = admin(Method::PUT, "faults", "script=500");
    assert_eq!(r.status, 200);
    assert!(r.json()["faults"].as_str().unwrap().contains("script=500"));
    assert_eq!(
        http.post(&emu, batch(device, vec![op(3, set("x"))])).status,
        500
    );
    assert_eq!(admin(Method::GET, "faults", "").json()["ok"], true);

    // Token.
    assert_eq!(admin(Method::PUT, "token", "t2\n").status, 200);
    assert_eq!(
        http.post(&emu, batch(device, vec![op(3, set("x"))])).status,
        401
    );
    assert_eq!(
        http.post_batch(&emu, Some("t2"), batch(device, vec![op(3, set("x"))]))
            .unwrap()
            .status,
        200
    );
    assert_eq!(admin(Method::PUT, "token", "  ").status, 400);

    // Reset.
    assert_eq!(admin(Method::POST, "reset", "").status, 200);
    assert_eq!(emu.state(), EmulatorState::default());
    assert_eq!(emu.stats(), Stats::default());
    assert!(emu.requests().is_empty());

    assert_eq!(admin(Method::DELETE, "state", "").status, 405);
    assert_eq!(admin(Method::GET, "nothing", "").status, 404);
    assert_eq!(
        http.send(http.request(Method::GET, format!("{}/v1/identity/batch", emu.url())))
            .unwrap()
            .status,
        405
    );
}

#[test]
fn garbage_never_takes_the_server_down() {
    use std::io::{Read, Write};
    let emu = start("");
    let http = Http::new();
    let junk: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/identity/batch HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /v1/identity/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x00\x01\x02\x03",
        b"POST /v1/identity/batch HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", // cut short
    ];
    for bytes in junk {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", emu.port())).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut Vec::new());
    }
    let mut seed = 0x1234_5678_u64;
    for len in [1, 7, 64, 300, 4096] {
        let body: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert_eq!(http.post(&emu, body).status, 400);
    }
    assert_eq!(
        http.post(&emu, batch(Uuid::new_v4(), vec![op(1, set("ok"))]))
            .status,
        200
    );
}

#[test]
fn pushes_100k_ops_in_1000_batches() {
    let emu = start("");
    let http = Http::new();
    let device = Uuid::new_v4();
    let started = std::time::Instant::now();
    let mut seq = 0;
    let bodies: Vec<Vec<u8>> = (0..1000)
        .map(|_| {
            let ops = (0..100)
                .map(|i| {
                    seq += 1;
                    if i % 2 == 0 {
                        op(seq, set(&format!("user{seq}")))
                    } else {
                        op(seq, link(&format!("user{}", seq - 1), LINE_A))
                    }
                })
                .collect();
            batch(device, ops)
        })
        .collect();
    for body in bodies {
        assert_eq!(http.post(&emu, body).status, 200);
    }
    let elapsed = started.elapsed();
    let s = emu.stats();
    assert_eq!(s.ops_applied, 100_000);
    assert_eq!(s.seq_regressions, 0);
    eprintln!("100k ops in {elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(120), "{elapsed:?}");
}

#[test]
fn start_reports_a_port_in_use() {
    let emu = start("");
    let err = Emulator::start(EmulatorConfig {
        port: emu.port(),
        ..EmulatorConfig::default()
    })
    .err()
    .expect("second bind fails");
    assert!(err.to_string().contains("cannot listen"), "{err}");
    assert!(emu.url().ends_with(&format!(":{}", emu.port())));
    assert!(emu.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn an_empty_token_is_refused_at_start() {
    let err = Emulator::start(EmulatorConfig {
        token: " ".into(),
        ..EmulatorConfig::default()
    })
    .err()
    .expect("an empty token must not start");
    assert!(err.to_string().contains("token must not be empty"), "{err}");
}
