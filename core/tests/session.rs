//! Sessions over real stores: restart, corruption, full disks, opt-out, validation.

use repro_line_core::session::{Next, Session};
use repro_line_core::store::file::FileStore;
use repro_line_core::Policy;
use repro_line_core::{Error, MemoryStore, StorageError, Store};

const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
const T0: u64 = 1_795_867_200_000;

fn open(store: impl Store + 'static) -> Session {
    Session::open(
        Policy::default(),
        Some("1234567890".into()),
        Box::new(store),
    )
    .unwrap()
}

fn body_ops(session: &mut Session, now: u64) -> Vec<serde_json::Value> {
    session.request_flush();
    match session.poll(now) {
        Next::Send(req) => {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            v["ops"].as_array().unwrap().clone()
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn validation_happens_before_anything_is_stored() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    let before = mem.snapshot();
    assert_eq!(s.set_line_user_id(T0, LINE, None), Err(Error::UserIdNotSet));
    assert!(matches!(
        s.set_user_id(T0, ""),
        Err(Error::InvalidUserId { .. })
    ));
    assert!(matches!(
        s.set_user_id(T0, &"x".repeat(192)),
        Err(Error::InvalidUserId { .. })
    ));
    s.set_user_id(T0, "user123").unwrap();
    assert!(matches!(
        s.set_line_user_id(T0, "U123", None),
        Err(Error::InvalidLineUserId { .. })
    ));
    assert!(matches!(
        s.set_line_user_id(T0, LINE, Some("bad channel")),
        Err(Error::InvalidChannelId { .. })
    ));
    assert_eq!(s.pending_ops(), 1, "only the valid call was accepted");
    assert!(mem.snapshot().len() > before.len());
}

#[test]
fn missing_channel_is_a_typed_error() {
    let mut s = Session::open(Policy::default(), None, Box::new(MemoryStore::new())).unwrap();
    s.set_user_id(T0, "u").unwrap();
    assert_eq!(
        s.set_line_user_id(T0, LINE, None),
        Err(Error::MissingChannelId)
    );
    s.set_line_user_id(T0, LINE, Some("42")).unwrap();
}

#[test]
fn restart_keeps_ops_device_user_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (device, first_ids) = {
        let mut s = open(FileStore::open(dir.path()).unwrap());
        s.set_user_id(T0, "user123").unwrap();
        s.set_line_user_id(T0, LINE, None).unwrap();
        let ops = body_ops(&mut s, T0 + 1); // sent once: never coalesced after restart
        (
            s.device_id(),
            ops.iter().map(|o| o["op_id"].clone()).collect::<Vec<_>>(),
        )
    };
    let mut s = open(FileStore::open(dir.path()).unwrap());
    assert_eq!(s.device_id(), device);
    assert_eq!(s.user_id(), Some("user123"));
    assert_eq!(s.pending_ops(), 2);
    s.set_user_id(T0 + 5, "user456").unwrap();
    let ops = body_ops(&mut s, T0 + 10);
    assert_eq!(
        ops.iter()
            .map(|o| o["op_id"].clone())
            .take(2)
            .collect::<Vec<_>>(),
        first_ids,
        "same op_ids after restart"
    );
    let seqs: Vec<u64> = ops.iter().map(|o| o["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3], "seq continues, never reused");
}

#[test]
fn corrupted_and_truncated_stores_keep_every_intact_op() {
    let mem = MemoryStore::new();
    {
        let mut s = open(mem.clone());
        for i in 0..20 {
            s.set_user_id(T0 + i, &format!("user{i}")).unwrap();
        }
    }
    let clean = mem.snapshot();
    // Truncation at every byte of the tail: never panics, loses at most the torn record.
    for cut in (clean.len() - 200)..clean.len() {
        mem.overwrite(clean[..cut].to_vec());
        let intact = repro_line_core::store::codec::decode_all(&clean[..cut])
            .records
            .iter()
            .filter(|r| matches!(r, repro_line_core::store::Record::Op(_)))
            .count();
        let s = open(mem.clone());
        assert_eq!(s.pending_ops(), intact, "cut {cut}: every complete op kept");
        assert!(intact >= 16);
    }
    // A flipped byte in the middle costs one record.
    let mut bad = clean.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    mem.overwrite(bad);
    let s = open(mem.clone());
    assert!(s.recovery().skipped_bytes > 0);
    assert!(s.pending_ops() >= 19);
    // Pure garbage: starts empty, with a new device.
    mem.overwrite(vec![0xAB; 4096]);
    let s = open(mem.clone());
    assert_eq!(s.pending_ops(), 0);
    assert_eq!(s.recovery().skipped_bytes, 4096);
}

#[test]
fn a_full_store_refuses_the_call_and_loses_nothing_accepted() {
    let mem = MemoryStore::with_capacity_limit(2_000);
    let mut s = open(mem.clone());
    let mut accepted = 0;
    let err = loop {
        match s.set_user_id(T0, &format!("user{accepted}")) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, Error::Storage(StorageError::Full(_))),
        "{err}"
    );
    assert!(err.to_string().contains("full"));
    assert_eq!(s.pending_ops(), accepted);
    assert_eq!(
        s.user_id(),
        Some(format!("user{}", accepted - 1).as_str()),
        "the refused call changed nothing"
    );
    let reopened = open(mem.clone());
    assert_eq!(reopened.pending_ops(), accepted);
}

#[test]
fn opt_out_is_persisted_purges_and_ignores_calls() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    s.set_user_id(T0, "a").unwrap();
    s.set_opted_in(false).unwrap();
    assert_eq!(s.pending_ops(), 0);
    s.set_user_id(T0, "b").unwrap();
    assert_eq!(s.pending_ops(), 0, "ignored while opted out");
    let mut s = open(mem.clone());
    assert!(!s.opted_in());
    s.set_opted_in(true).unwrap();
    s.set_user_id(T0, "c").unwrap();
    assert_eq!(s.pending_ops(), 1);
}

#[test]
fn read_only_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = FileStore::open(&file).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
}

#[test]
fn compaction_keeps_the_live_queue() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    s.set_user_id(T0, "keep").unwrap();
    s.compact().unwrap();
    let small = mem.snapshot().len();
    let s2 = open(mem.clone());
    assert_eq!(s2.pending_ops(), 1);
    assert_eq!(s2.user_id(), Some("keep"));
    assert!(small < 1000);
}

#[test]
fn an_opted_out_device_restores_nothing_even_if_the_purge_was_lost() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    s.set_user_id(T0, "a").unwrap();
    let before_purge = mem.snapshot().len();
    s.set_opted_in(false).unwrap();
    // Keep the opt-out meta record but drop everything after it (the purge's Done records).
    let bytes = mem.snapshot();
    let meta_end = repro_line_core::store::codec::decode_all(&bytes[..before_purge])
        .records
        .len();
    assert!(meta_end > 0);
    let mut cut = before_purge;
    while cut < bytes.len()
        && repro_line_core::store::codec::decode_all(&bytes[..cut])
            .records
            .len()
            < meta_end + 1
    {
        cut += 1;
    }
    mem.overwrite(bytes[..cut].to_vec());
    let s = open(mem.clone());
    assert!(!s.opted_in());
    assert_eq!(s.pending_ops(), 0);
}

fn applied(
    req: &repro_line_core::session::Request,
    status: &str,
) -> repro_line_core::retry::Outcome {
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let results: Vec<serde_json::Value> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| serde_json::json!({"op_id": o["op_id"], "status": status}))
        .collect();
    repro_line_core::retry::Outcome::Response {
        status: 200,
        retry_after: None,
        body: serde_json::to_vec(&serde_json::json!({ "results": results })).unwrap(),
    }
}

/// 58 ops acknowledged just before a SIGKILL were applied but never reported after the
/// restart (issue 11, item 5). An op now leaves the journal only once its report was
/// handed over, so a kill in between makes it come back and be reported again.
#[test]
fn a_report_lost_to_a_kill_is_made_after_the_restart() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    s.hold_done_until_reported();
    s.set_user_id(T0, "u1").unwrap();
    s.set_line_user_id(T0, LINE, None).unwrap();
    s.request_flush();
    let Next::Send(req) = s.poll(T0) else {
        panic!("no request")
    };
    s.on_outcome(T0, req.batch_id, &applied(&req, "applied"));
    assert_eq!(s.take_events().len(), 2, "reported to the driver");
    drop(s); // killed before the reports reached the app

    let mut s = open(mem.clone());
    s.hold_done_until_reported();
    assert_eq!(s.pending_ops(), 2, "both calls come back");
    s.request_flush();
    let Next::Send(req) = s.poll(T0 + 1_000) else {
        panic!("no request")
    };
    s.on_outcome(T0 + 1_000, req.batch_id, &applied(&req, "duplicate"));
    assert_eq!(s.take_events().len(), 2, "reported after the restart");
    let done = s.take_held_done();
    s.reported(done); // the app got them
    drop(s);

    let s = open(mem);
    assert_eq!(s.pending_ops(), 0, "exactly once without a kill");
}

/// A structurally valid token whose `sub` is `LINE` (unsigned: the session trusts nothing but its shape).
const ID_TOKEN: &str =
    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJVNGFmNDk4MDYyOWExYjJjM2Q0ZTVmNjA3MTgyOTNhNGIifQ.c2ln";

#[test]
fn a_token_link_is_checked_on_the_callers_thread() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    assert_eq!(
        s.link_line_id_token(T0, ID_TOKEN, None),
        Err(Error::UserIdNotSet)
    );
    s.set_user_id(T0, "user123").unwrap();
    let before = mem.snapshot();
    for bad in [
        "not a token",
        "a.b",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2ln",
    ] {
        let err = s.link_line_id_token(T0, bad, None).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdToken { .. }),
            "{bad}: {err:?}"
        );
    }
    assert!(matches!(
        s.link_line_id_token(T0, ID_TOKEN, Some("bad channel")),
        Err(Error::InvalidChannelId { .. })
    ));
    assert_eq!(mem.snapshot(), before, "refused calls store nothing");
    s.link_line_id_token(T0, ID_TOKEN, None).unwrap();
    assert_eq!(s.pending_ops(), 2);
}

/// A journal written before token links existed (tags 1–3 only) opens, takes a token link
/// (tag 4), and both survive a restart, sent exactly as accepted.
#[test]
fn token_links_round_trip_through_the_journal_next_to_old_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open(FileStore::open(dir.path()).unwrap());
        s.set_user_id(T0, "user123").unwrap();
        s.set_line_user_id(T0, LINE, None).unwrap();
    }
    let first = {
        let mut s = open(FileStore::open(dir.path()).unwrap());
        assert_eq!(s.pending_ops(), 2, "the old journal opened whole");
        s.link_line_id_token(T0 + 1, ID_TOKEN, Some("42")).unwrap();
        body_ops(&mut s, T0 + 2)
    };
    let mut s = open(FileStore::open(dir.path()).unwrap());
    assert!(s.recovery().skipped_bytes == 0 && !s.recovery().is_damaged());
    assert_eq!(s.pending_ops(), 3);
    let ops = body_ops(&mut s, T0 + 3);
    assert_eq!(ops, first, "same ops, ids and token after the restart");
    assert_eq!(ops[2]["type"], "link_line_id_token");
    assert_eq!(ops[2]["id_token"], ID_TOKEN);
    assert_eq!(ops[2]["channel_id"], "42");
    assert_eq!(ops[2]["user_id"], "user123");
}

/// Runs one scripted session (calls, a failed request, a retry, a success) on a fresh
/// memory store and returns the journal and every request body it produced.
fn scripted_run(seed: u128) -> (Vec<u8>, Vec<Vec<u8>>) {
    use repro_line_core::protocol::Outcome;
    let mem = MemoryStore::new();
    let mut s = Session::open_seeded(
        Policy::default(),
        Some("1234567890".into()),
        Box::new(mem.clone()),
        seed,
    )
    .unwrap();
    let mut bodies = Vec::new();
    s.set_user_id(T0, "user123").unwrap();
    s.set_line_user_id(T0 + 5, LINE, None).unwrap();
    s.unlink_line_user_id(T0 + 9, LINE, Some("42")).unwrap();
    let mut now = T0 + 1_000;
    let mut failures = 0;
    while s.pending_ops() > 0 {
        match s.poll(now) {
            Next::Send(req) => {
                let outcome = if failures < 2 {
                    failures += 1;
                    // A jittered backoff: the seed decides the next attempt's time.
                    Outcome::Response {
                        status: 503,
                        retry_after: None,
                        body: Vec::new(),
                    }
                } else {
                    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    let results: Vec<_> = v["ops"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|op| serde_json::json!({"op_id": op["op_id"], "status": "applied"}))
                        .collect();
                    Outcome::Response {
                        status: 200,
                        retry_after: None,
                        body: serde_json::to_vec(&serde_json::json!({ "results": results }))
                            .unwrap(),
                    }
                };
                bodies.push(req.body.clone());
                s.on_outcome(now, req.batch_id, &outcome);
            }
            Next::WaitUntil(t) => now = t,
            Next::Idle => panic!("idle with {} pending", s.pending_ops()),
        }
    }
    assert_eq!(s.take_events().len(), 3, "one report per call");
    (mem.snapshot(), bodies)
}

#[test]
fn a_seeded_session_replays_byte_for_byte() {
    let (journal, bodies) = scripted_run(7);
    assert_eq!(bodies.len(), 3, "two failures, then the success");
    assert_eq!(
        scripted_run(7),
        (journal.clone(), bodies.clone()),
        "same seed, same inputs: the same journal and requests"
    );
    // The seed is the only randomness: another one gives other IDs (device, ops).
    let (other_journal, other_bodies) = scripted_run(8);
    assert_ne!(other_journal, journal);
    assert_ne!(other_bodies[0], bodies[0]);
    // Op IDs are v7 UUIDs of the call's millisecond.
    let v: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
    let first = uuid::Uuid::parse_str(v["ops"][0]["op_id"].as_str().unwrap()).unwrap();
    assert_eq!(first.get_version_num(), 7);
    let (secs, nanos) = first.get_timestamp().unwrap().to_unix();
    assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, T0);
}

/// `user123` and 80 links, all delivered: the journal grew past the drained-compaction threshold.
fn deliver_81_calls(s: &mut Session) {
    s.set_user_id(T0, "user123").unwrap();
    for i in 0..80 {
        s.set_line_user_id(T0, &format!("U{i:032}"), None).unwrap();
    }
    s.request_flush();
    let Next::Send(req) = s.poll(T0 + 1_000) else {
        panic!("no request")
    };
    s.on_outcome(T0 + 1_000, req.batch_id, &applied(&req, "applied"));
}

/// Compaction is the driver's step: an outcome never rewrites the journal by itself
/// (a rewrite + fsync + rename must not hide inside a call the app waits on).
#[test]
fn a_drained_journal_is_compacted_when_the_driver_asks() {
    let mem = MemoryStore::new();
    let mut s = open(mem.clone());
    deliver_81_calls(&mut s);
    assert_eq!(s.pending_ops(), 0);
    let before = mem.snapshot().len();
    assert!(before > 4096, "the journal grew ({before} bytes)");
    assert!(s.compaction_due(), "a drained, grown journal is due");
    assert_eq!(
        mem.snapshot().len(),
        before,
        "but not compacted by the outcome"
    );
    s.compact_if_due();
    let after = mem.snapshot().len();
    assert!(
        after < 512,
        "compacted to the device's meta ({after} bytes)"
    );
    assert!(!s.compaction_due());
    drop(s);
    let s = open(mem);
    assert_eq!((s.pending_ops(), s.user_id()), (0, Some("user123")));
}

/// A kill between a compaction's write and its install (the driver's two phases) leaves
/// the old journal whole; the next open discards the staged snapshot.
#[test]
fn a_compaction_killed_before_its_install_leaves_the_old_journal_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = open(FileStore::open(tmp.path()).unwrap());
    deliver_81_calls(&mut s);
    let mut compaction = s.begin_compaction().expect("due: the journal grew");
    assert!(!s.compaction_due(), "one compaction at a time");
    // A call made during the rewrite goes to the old journal.
    s.set_line_user_id(T0 + 2_000, LINE, None).unwrap();
    let journal = tmp.path().join("journal.log");
    let before = std::fs::read(&journal).unwrap();
    compaction.write();
    assert!(tmp.path().join("journal.log.staged").exists());
    drop(compaction); // killed here: never installed
    drop(s);
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    let s = open(FileStore::open(tmp.path()).unwrap());
    assert_eq!((s.pending_ops(), s.user_id()), (1, Some("user123")));
    assert!(!tmp.path().join("journal.log.staged").exists());
}
