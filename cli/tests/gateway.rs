//! `repro-line gateway` end to end on loopback: the real binary, moto as Repro's S3,
//! the emulator as LINE (its JWKS and minted ID tokens).

mod bulk_common;
mod gateway_common;

use std::time::Duration;

use bulk_common::*;
use gateway_common::*;
use repro_line_emulator::{Emulator, EmulatorConfig};
use repro_line_idtoken::mint::{sign_hs256, Minter};
use uuid::Uuid;

const LINE_A: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
const LINE_B: &str = "Ub0000000000000000000000000000001";
const LINE_C: &str = "Uc0000000000000000000000000000002";

fn token_link(user: &str, token: &str) -> String {
    format!(
        r#""type":"link_line_id_token","user_id":"{user}","id_token":"{token}","channel_id":"{CHANNEL}""#
    )
}

#[test]
fn sdk_clients_deliver_and_links_become_valid_format1_files_in_s3() {
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let config = write_config(dir.path(), &line.url(), &moto.url(), 0.5);
    let gw = GatewayProc::start(&config);

    // `repro-line send` and the Rust Client deliver raw links to the `identity = "any"` app.
    let o = run(&[
        "send",
        "--endpoint",
        &gw.url,
        "--token",
        RAW_TOKEN,
        "--state-dir",
        s(&dir.path().join("cli-state")),
        "--wait",
        "30",
        "--user-id",
        "alice",
        "--line-user-id",
        LINE_A,
        "--channel-id",
        CHANNEL,
    ]);
    assert_code(&o, 0);
    let mut cfg = repro_line_core::Config::new(
        RAW_TOKEN,
        &gw.url,
        repro_line_core::Storage::Directory(dir.path().join("sdk-state")),
    );
    cfg.default_channel_id = Some(CHANNEL.into());
    let client = repro_line_core::Client::new(cfg).unwrap();
    client.set_user_id("bob").unwrap();
    client.set_line_user_id(LINE_B, None).unwrap();
    // Last mapping wins: LINE_B moves to carol.
    client.set_user_id("carol").unwrap();
    client.set_line_user_id(LINE_B, None).unwrap();
    assert!(matches!(
        client.flush(Duration::from_secs(30)),
        repro_line_core::FlushOutcome::Drained
    ));

    // A verified token link to the `identity = "id_token"` app.
    let token = line.mint_id_token(LINE_C, LOGIN, now_s() + 3600);
    let device = Uuid::new_v4().to_string();
    let (status, body) = gw.post(
        VERIFIED_TOKEN,
        &batch_json(
            &device,
            &[
                (id(), 1, set("dave")),
                (id(), 2, token_link("dave", &token)),
            ],
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][1]["status"], "applied", "{body}");

    let raw_prefix = followed_prefix("rawapp");
    let rows = wait_for(30, "the raw app's export", || {
        let rows = moto.rows(&raw_prefix);
        (rows.len() >= 2).then_some(rows)
    });
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            (LINE_A.to_owned(), "alice".to_owned()),
            (LINE_B.to_owned(), "carol".to_owned())
        ]
    );
    let verified = wait_for(30, "the verified app's export", || {
        let rows = moto.rows(&followed_prefix("verifiedapp"));
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(verified, [(LINE_C.to_owned(), "dave".to_owned())]);
    // Names are <gateway-id>-<sequence>.csv, and every file passes `repro-line csv validate`.
    for key in moto
        .keys(&raw_prefix)
        .iter()
        .chain(&moto.keys(&followed_prefix("verifiedapp")))
    {
        let name = key.rsplit('/').next().unwrap();
        assert!(
            name.starts_with("gwtest-") && name.ends_with(".csv"),
            "{key}"
        );
        let local = write(dir.path(), name, moto.get(key));
        assert_code(&run(&["csv", "validate", s(&local)]), 0);
    }
    let (status, metrics) = gw.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("repro_gateway_ops_total{status=\"applied\",code=\"0\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("repro_gateway_pending_rows 0"),
        "{metrics}"
    );
    // The writer's and the export's stopwatch saw the commits and both files' uploads.
    let count = |series: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(count("repro_gateway_writer_commit_seconds_count") >= 1);
    assert_eq!(
        count("repro_gateway_writer_queue_wait_seconds_count"),
        count("repro_gateway_requests_total{status=\"200\"}"),
        "one queue wait per accepted batch"
    );
    assert!(count("repro_gateway_export_step_seconds_count{step=\"upload\"}") >= 2);
    assert_eq!(gw.get("/healthz").0, 200);
    assert_eq!(gw.get("/readyz").0, 200);
    client.shutdown(Duration::from_secs(5));
    assert!(gw.terminate().success());
}

#[test]
fn bad_tokens_raw_links_and_unlinks_are_rejected_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let gw = GatewayProc::start(&write_config(dir.path(), &line.url(), &moto.url(), 60.0));
    let exp = now_s() + 3600;
    let forger = Minter::generate("emulator-1").unwrap();
    let claims = |iss: &str| {
        serde_json::json!({"iss": iss, "sub": LINE_A, "aud": LOGIN, "exp": exp}).to_string()
    };
    let key = &line.jwks().keys[0];
    let public = format!("{}{}", key.x.clone().unwrap(), key.y.clone().unwrap());
    let good = line.mint_id_token(LINE_A, LOGIN, exp);
    let none = {
        let t = forger.sign_raw(r#"{"alg":"none"}"#, &claims("https://access.line.me"));
        format!("{}.", &t[..t.rfind('.').unwrap()])
    };
    let cases = [
        ("forged", forger.mint(LINE_A, LOGIN, exp), "signature"),
        (
            "expired",
            line.mint_id_token(LINE_A, LOGIN, now_s() - 600),
            "exp",
        ),
        (
            "wrong aud",
            line.mint_id_token(LINE_A, "1659999999", exp),
            "aud",
        ),
        (
            "wrong iss",
            line.sign_id_token_claims(&claims("https://evil.example")),
            "iss",
        ),
        ("alg none", none, "alg"),
        (
            "HS256 signed with the public key",
            sign_hs256(
                public.as_bytes(),
                r#"{"alg":"HS256","kid":"emulator-1"}"#,
                &claims("https://access.line.me"),
            ),
            "alg",
        ),
        // An ES256 signature is 86 base64url characters; 64 of them still decode.
        ("truncated", good[..good.len() - 22].to_owned(), "signature"),
    ];
    let device = Uuid::new_v4().to_string();
    let (status, _) = gw.post(
        VERIFIED_TOKEN,
        &batch_json(&device, &[(id(), 1, set("eve"))]),
    );
    assert_eq!(status, 200);
    let mut seq = 1;
    for (name, token, check) in &cases {
        seq += 1;
        let (status, body) = gw.post(
            VERIFIED_TOKEN,
            &batch_json(&device, &[(id(), seq, token_link("eve", token))]),
        );
        assert_eq!(status, 200, "{name}: {body}");
        let r = &body["results"][0];
        assert_eq!(r["status"], "rejected", "{name}: {body}");
        assert_eq!(r["error"]["code"], 1008, "{name}: {body}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid ID token: {check}")),
            "{name}: {message}"
        );
    }
    // Raw link → 1007, unlink → 1009, unknown token → 401, text/plain → 400, 300 KiB → 413.
    let (_, body) = gw.post(
        VERIFIED_TOKEN,
        &batch_json(&device, &[(id(), 20, link("eve", LINE_A))]),
    );
    assert_eq!(body["results"][0]["error"]["code"], 1007, "{body}");
    assert_eq!(
        body["results"][0]["error"]["message"],
        "raw LINE user IDs are not accepted; send an ID token"
    );
    let unlink = format!(
        r#""type":"unlink_line_id","user_id":"eve","line_user_id":"{LINE_A}","channel_id":"{CHANNEL}""#
    );
    let (_, body) = gw.post(VERIFIED_TOKEN, &batch_json(&device, &[(id(), 21, unlink)]));
    assert_eq!(body["results"][0]["error"]["code"], 1009, "{body}");
    assert_eq!(
        gw.post("nope", &batch_json(&device, &[(id(), 22, set("x"))]))
            .0,
        401
    );
    let (status, _, _) = http_with(
        gw.port,
        "POST",
        "/v1/identity/batch",
        &[
            ("X-Repro-Token", VERIFIED_TOKEN),
            ("Content-Type", "text/plain"),
        ],
        batch_json(&device, &[(id(), 23, set("x"))]).as_bytes(),
    );
    assert_eq!(status, 400);
    let big = vec![b' '; 300 * 1024];
    let (status, _, _) = http_with(
        gw.port,
        "POST",
        "/v1/identity/batch",
        &[
            ("X-Repro-Token", VERIFIED_TOKEN),
            ("Content-Type", "application/json"),
        ],
        &big,
    );
    assert_eq!(status, 413);
    // CORS only for the configured origin.
    let (_, head, _) = http_with(
        gw.port,
        "OPTIONS",
        "/v1/identity/batch",
        &[("Origin", "http://localhost:8080")],
        b"",
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: http://localhost:8080"),
        "{head}"
    );
    let (_, head, _) = http_with(
        gw.port,
        "OPTIONS",
        "/v1/identity/batch",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
    drop(moto);
}

/// Real SDK clients (the Rust `Client`, each with its own state dir) deliver set + link calls
/// through a proxy that drops every 5th response after the gateway applied the batch, while
/// the gateway is killed with SIGKILL at random moments and restarted on the same store and
/// port. Every call is reported applied or duplicate; every link is exported exactly once,
/// each device's links in its call (seq) order.
#[test]
fn kill_9_and_resets_after_apply_with_sdk_clients_lose_nothing_and_apply_nothing_twice() {
    use repro_line_core::{Client, Config, DeliveryStatus, Event, Storage};
    use std::sync::{Arc, Mutex};
    const CLIENTS: u64 = 4;
    const PAIRS: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let port = free_port();
    let config = write_config_on(dir.path(), port, &line.url(), &moto.url(), 0.2);
    let proxy = ResetProxy::start(port, 5);
    let line_of = |c: u64, i: u64| format!("U{:032x}", (c << 16) + i);
    let user_of = |c: u64, i: u64| format!("c{c}-u{i}");

    let mut gw = GatewayProc::start(&config);
    let reports: Arc<Mutex<Vec<(u64, DeliveryStatus)>>> = Arc::default();
    let callers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mut cfg = Config::new(
                RAW_TOKEN,
                proxy.url(),
                Storage::Directory(dir.path().join(format!("sdk-{c}"))),
            );
            cfg.default_channel_id = Some(CHANNEL.into());
            cfg.debounce = Duration::from_millis(20);
            cfg.max_batch_ops = 8;
            cfg.request_timeout = Duration::from_secs(5);
            let client = Client::new(cfg).unwrap();
            let sink = Arc::clone(&reports);
            client.set_listener(Arc::new(move |e: &Event| {
                if let Event::Op(r) = e {
                    sink.lock().unwrap().push((c, r.status.clone()));
                }
            }));
            std::thread::spawn(move || {
                for i in 0..PAIRS {
                    client.set_user_id(&user_of(c, i)).unwrap();
                    client.set_line_user_id(&line_of(c, i), None).unwrap();
                    std::thread::sleep(Duration::from_millis(60));
                }
                client
            })
        })
        .collect();
    // Three kills at random moments while the calls are made (~1.8 s) and delivered.
    for _ in 0..3 {
        let pause = 200 + (Uuid::new_v4().as_u128() % 600) as u64;
        std::thread::sleep(Duration::from_millis(pause));
        gw.kill9();
        gw = GatewayProc::start(&config);
    }
    let clients: Vec<Client> = callers.into_iter().map(|t| t.join().unwrap()).collect();
    for client in &clients {
        let flushed = client.flush(Duration::from_secs(60));
        assert_eq!(flushed, repro_line_core::FlushOutcome::Drained);
    }
    for client in clients {
        client.shutdown(Duration::from_secs(5));
    }
    // The graceful stop exports what is left.
    assert!(gw.terminate().success());

    let reports = reports.lock().unwrap().clone();
    assert_eq!(
        reports.len() as u64,
        CLIENTS * PAIRS * 2,
        "one report per call"
    );
    let duplicates = reports
        .iter()
        .filter(|(_, s)| *s == DeliveryStatus::Duplicate)
        .count();
    assert!(
        reports
            .iter()
            .all(|(_, s)| matches!(s, DeliveryStatus::Delivered | DeliveryStatus::Duplicate)),
        "every call applied or duplicate: {reports:?}"
    );
    assert!(proxy.resets.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(
        duplicates > 0,
        "a reset after apply is answered duplicate on resend"
    );

    // Rows in applied order: files by their sequence number, rows within a file.
    let prefix = followed_prefix("rawapp");
    let mut keys = moto.keys(&prefix);
    keys.sort_by_key(|k| {
        k.rsplit('-')
            .next()
            .and_then(|n| n.trim_end_matches(".csv").parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    let mut rows = Vec::new();
    for key in &keys {
        for row in moto.get(key).lines().skip(1) {
            let (l, u) = row.split_once(',').unwrap();
            rows.push((l.to_owned(), u.to_owned()));
        }
    }
    let mut sorted = rows.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), rows.len(), "a link was exported twice");
    let mut want: Vec<(String, String)> = (0..CLIENTS)
        .flat_map(|c| (0..PAIRS).map(move |i| (line_of(c, i), user_of(c, i))))
        .collect();
    want.sort();
    assert_eq!(sorted, want, "every link is exported, to its user");
    for c in 0..CLIENTS {
        let order: Vec<String> = rows
            .iter()
            .filter(|(_, u)| u.starts_with(&format!("c{c}-")))
            .map(|(l, _)| l.clone())
            .collect();
        let expected: Vec<String> = (0..PAIRS).map(|i| line_of(c, i)).collect();
        assert_eq!(order, expected, "device {c}'s links in seq order");
    }
}

#[test]
fn while_s3_is_down_rows_wait_and_readyz_says_why_then_they_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let moto = MotoAt::start(port);
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let gw = GatewayProc::start(&write_config(dir.path(), &line.url(), &moto.url(), 0.3));
    assert_eq!(gw.get("/readyz").0, 200);
    moto.stop();
    let device = Uuid::new_v4().to_string();
    let (status, body) = gw.post(
        RAW_TOKEN,
        &batch_json(
            &device,
            &[(id(), 1, set("zoe")), (id(), 2, link("zoe", LINE_A))],
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(body["results"][1]["status"], "applied");
    let reason = wait_for(20, "readyz to fail", || {
        let (status, body) = gw.get("/readyz");
        (status == 503).then_some(body)
    });
    assert!(
        reason.contains("S3") || reason.contains("export"),
        "{reason}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let (_, metrics) = gw.get("/metrics");
    assert!(
        metrics.contains("repro_gateway_pending_rows 1"),
        "{metrics}"
    );
    let moto = MotoAt::start(port);
    let rows = wait_for(30, "the export after S3 came back", || {
        let rows = moto.rows(&followed_prefix("rawapp"));
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(rows, [(LINE_A.to_owned(), "zoe".to_owned())]);
    wait_for(10, "readyz to recover", || {
        (gw.get("/readyz").0 == 200).then_some(())
    });
    assert!(gw.terminate().success());
}

#[test]
fn abuse_limits_rate_limit_and_slow_headers() {
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let config = write_config(dir.path(), &line.url(), &moto.url(), 60.0);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("device_rate = 1000.0", "device_rate = 1.0");
    std::fs::write(&config, text).unwrap();
    let gw = GatewayProc::start(&config);
    // One device: a burst of 2 passes, the third is 429 with Retry-After; another device is unaffected.
    let device = Uuid::new_v4().to_string();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for seq in 1..=3 {
        let (status, head, _) = http_with(
            gw.port,
            "POST",
            "/v1/identity/batch",
            &[
                ("X-Repro-Token", RAW_TOKEN),
                ("Content-Type", "application/json"),
            ],
            batch_json(&device, &[(id(), seq, set("rita"))]).as_bytes(),
        );
        statuses.push(status);
        if status == 429 {
            retry_after = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after: ")
                    .map(str::to_owned)
            });
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    let other = Uuid::new_v4().to_string();
    assert_eq!(
        gw.post(RAW_TOKEN, &batch_json(&other, &[(id(), 1, set("sam"))]))
            .0,
        200
    );
    // Slowloris: a request head that never completes is cut off after header_timeout_secs (2).
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /v1/identity/batch HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(gw.terminate().success());
}

/// LINE's JWKS unreachable: a token cannot be judged, so the batch is 503 (the SDK retries),
/// never a final 1008; ops without tokens still go through.
#[test]
fn an_unreachable_jwks_is_a_503_not_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let dead_line_api = format!("http://127.0.0.1:{}", free_port());
    let gw = GatewayProc::start(&write_config(dir.path(), &dead_line_api, &moto.url(), 60.0));
    let minter = Minter::generate("k1").unwrap();
    let token = minter.mint(LINE_A, LOGIN, now_s() + 3600);
    let device = Uuid::new_v4().to_string();
    let (status, head, _) = http_with(
        gw.port,
        "POST",
        "/v1/identity/batch",
        &[
            ("X-Repro-Token", VERIFIED_TOKEN),
            ("Content-Type", "application/json"),
        ],
        batch_json(
            &device,
            &[(id(), 1, set("ann")), (id(), 2, token_link("ann", &token))],
        )
        .as_bytes(),
    );
    assert_eq!(status, 503);
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let (status, body) = gw.post(
        VERIFIED_TOKEN,
        &batch_json(&device, &[(id(), 3, set("ann"))]),
    );
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (200, &serde_json::json!("applied"))
    );
    assert!(gw.terminate().success());
}
