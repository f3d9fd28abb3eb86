//! `repro-line gateway` on PostgreSQL (`store = "postgres://…"`): the real binary, a
//! real PostgreSQL on loopback (scripts/ensure-postgres.sh, URL in
//! REPRO_LINE_TEST_PG_URL), moto as Repro's S3. Each test gets its own database.

mod bulk_common;
mod gateway_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bulk_common::*;
use gateway_common::*;
use repro_line_emulator::{Emulator, EmulatorConfig};
use uuid::Uuid;

/// A fresh database on the test server; `None` (with the reason printed) when there is
/// no server locally. On CI a missing server is a failure, not a skip.
fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("REPRO_LINE_TEST_PG_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but REPRO_LINE_TEST_PG_URL is not set: scripts/test.sh runs scripts/ensure-postgres.sh"
        );
        eprintln!(
            "skipped: REPRO_LINE_TEST_PG_URL is not set (export REPRO_LINE_TEST_PG_URL=$(bash scripts/ensure-postgres.sh))"
        );
        return None;
    };
    let name = format!("gw_{}", Uuid::new_v4().simple());
    let o = Command::new("psql")
        .args([base.as_str(), "-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql on PATH (scripts/ensure-postgres.sh installs postgresql)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (server, _db) = base.rsplit_once('/').expect("a URL ending in /DB");
    Some(format!("{server}/{name}"))
}

/// The shared test config, on PostgreSQL, as replica `gateway_id`.
fn pg_config(dir: &Path, id: &str, pg: &str, line_api: &str, s3: &str) -> PathBuf {
    let sub = dir.join(id);
    std::fs::create_dir_all(&sub).unwrap();
    let path = write_config(&sub, line_api, s3, 0.2);
    let text: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("store = ") {
                format!("store = \"{pg}\"")
            } else if l.starts_with("gateway_id = ") {
                format!("gateway_id = \"{id}\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    path
}

fn statuses(reply: &serde_json::Value) -> Vec<String> {
    reply["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn postgres_store_keeps_the_protocol_semantics_and_exports_format1_files() {
    let Some(pg) = fresh_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let config = pg_config(dir.path(), "gwpg", &pg, &line.url(), &moto.url());
    let gw = GatewayProc::start(&config);
    let device = Uuid::new_v4().to_string();
    let (la, lb) = (
        "Ua0000000000000000000000000000001",
        "Ub0000000000000000000000000000002",
    );
    // In request order the link comes first; in seq order the set does: both applied.
    let first = batch_json(
        &device,
        &[(id(), 2, link("alice", la)), (id(), 1, set("alice"))],
    );
    let (status, reply) = gw.post(RAW_TOKEN, &first);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(statuses(&reply), ["applied", "applied"], "{reply}");
    // A link for a user never set is 1002; the same LINE ID moving to bob is applied.
    let (status, reply) = gw.post(
        RAW_TOKEN,
        &batch_json(
            &device,
            &[
                (id(), 3, link("ghost", lb)),
                (id(), 4, set("bob")),
                (id(), 5, link("bob", la)),
                (id(), 6, link("bob", lb)),
            ],
        ),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        statuses(&reply),
        ["rejected", "applied", "applied", "applied"]
    );
    assert_eq!(reply["results"][0]["error"]["code"], 1002, "{reply}");

    // Restarted on the same database: the first batch is a duplicate, not applied again.
    assert!(gw.terminate().success());
    let gw = GatewayProc::start(&config);
    let (status, reply) = gw.post(RAW_TOKEN, &first);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(statuses(&reply), ["duplicate", "duplicate"], "{reply}");
    // op_ids are per app: the same op_id is new to the other app.
    let op = id();
    let other = batch_json(&Uuid::new_v4().to_string(), &[(op.clone(), 1, set("x"))]);
    assert_eq!(statuses(&gw.post(RAW_TOKEN, &other).1), ["applied"]);
    assert_eq!(statuses(&gw.post(VERIFIED_TOKEN, &other).1), ["applied"]);

    let prefix = followed_prefix("rawapp");
    // Three links applied; within one file the last mapping of `la` (bob) wins, so
    // (la, alice) is there only if an earlier pass exported it on its own.
    let want = [
        (la.to_owned(), "bob".to_owned()),
        (lb.to_owned(), "bob".to_owned()),
    ];
    let rows = wait_for(30, "the export", || {
        let rows = moto.rows(&prefix);
        want.iter().all(|w| rows.contains(w)).then_some(rows)
    });
    let mut others: Vec<_> = rows.iter().filter(|r| !want.contains(r)).collect();
    others.dedup();
    assert!(
        others.is_empty() || others == [&(la.to_owned(), "alice".to_owned())],
        "{rows:?}"
    );
    assert!(rows.len() <= 3, "{rows:?}");
    for key in moto.keys(&prefix) {
        let name = key.rsplit('/').next().unwrap();
        assert!(name.starts_with("gwpg-") && name.ends_with(".csv"), "{key}");
        let local = write(dir.path(), name, moto.get(&key));
        assert_code(&run(&["csv", "validate", s(&local)]), 0);
    }
    assert_eq!(gw.get("/readyz").0, 200);
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("repro_gateway_pending_rows 0"),
        "{metrics}"
    );
    assert!(gw.terminate().success());
}

#[test]
fn two_replicas_on_postgres_one_killed_mid_load_the_other_exports_every_link_once() {
    let Some(pg) = fresh_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let moto = MotoAt::start(free_port());
    let line = Emulator::start(EmulatorConfig::default()).unwrap();
    let a = GatewayProc::start(&pg_config(dir.path(), "gwa", &pg, &line.url(), &moto.url()));
    let b = GatewayProc::start(&pg_config(dir.path(), "gwb", &pg, &line.url(), &moto.url()));
    let ports = [a.port, b.port];
    let a_dead = Arc::new(AtomicBool::new(false));
    // Devices alternate between the replicas (a load balancer); a batch that fails on
    // one is retried, unchanged, on the other.
    let senders: Vec<_> = (0..3u64)
        .map(|t| {
            let a_dead = Arc::clone(&a_dead);
            std::thread::spawn(move || {
                let device = Uuid::new_v4().to_string();
                let mut answered = Vec::new();
                for i in 0..120u64 {
                    let line_id = format!("U{:032x}", (t << 20) + i);
                    let user = format!("user{t}-{i}");
                    let body = batch_json(
                        &device,
                        &[
                            (id(), 2 * i + 1, set(&user)),
                            (id(), 2 * i + 2, link(&user, &line_id)),
                        ],
                    );
                    let mut target = (i + t) as usize;
                    loop {
                        let port = if a_dead.load(Ordering::SeqCst) {
                            ports[1]
                        } else {
                            ports[target % 2]
                        };
                        match try_post(port, RAW_TOKEN, &body) {
                            Some((200, reply)) => {
                                let st = statuses(&reply);
                                assert!(
                                    st.iter().all(|s| s == "applied" || s == "duplicate"),
                                    "{reply}"
                                );
                                answered.push(line_id);
                                break;
                            }
                            _ => {
                                target += 1;
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    a_dead.store(true, Ordering::SeqCst);
    a.kill9();
    let mut answered: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert_eq!(answered.len(), 360);
    // B carries on; its graceful stop exports what is left, including what A had claimed.
    let (status, _) = b.get("/readyz");
    assert_eq!(status, 200);
    assert!(b.terminate().success());
    let prefix = followed_prefix("rawapp");
    let keys = moto.keys(&prefix);
    assert!(
        keys.iter().any(|k| k.contains("/gwa-")) && keys.iter().any(|k| k.contains("/gwb-")),
        "both replicas exported: {keys:?}"
    );
    let mut exported: Vec<String> = moto.rows(&prefix).into_iter().map(|(l, _)| l).collect();
    exported.sort();
    let before = exported.len();
    exported.dedup();
    assert_eq!(before, exported.len(), "a row was exported in two files");
    answered.sort();
    assert_eq!(
        exported, answered,
        "every answered link is exported exactly once"
    );
}
