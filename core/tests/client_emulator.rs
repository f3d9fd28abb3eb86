//! The native client against the emulator over real loopback HTTP, one test per fault kind.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repro_line_core::{
    Client, Config, DeliveryState, DeliveryStatus, DropReason, Error, Event, FlushOutcome,
    PauseReason, Storage,
};
use repro_line_emulator::{Emulator, EmulatorConfig};

const TOKEN: &str = "test-token";
const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

fn emulator(faults: &str) -> Emulator {
    Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: faults.parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

fn config(url: &str, storage: Storage) -> Config {
    let mut c = Config::new(TOKEN, url, storage);
    c.default_channel_id = Some("1234567890".into());
    c.debounce = Duration::from_millis(20);
    c.request_timeout = Duration::from_secs(5);
    c
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(Event, String)>>>);

impl Recorder {
    fn attach(&self, client: &Client) {
        let me = self.clone();
        client.set_listener(Arc::new(move |e: &Event| {
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            me.0.lock().unwrap().push((e.clone(), thread));
        }));
    }
    fn statuses(&self) -> Vec<(u64, DeliveryStatus)> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(e, _)| match e {
                Event::Op(r) => Some((r.seq, r.status.clone())),
                Event::State(_) => None,
            })
            .collect();
        v.sort_by_key(|r| r.0);
        v
    }
    fn states(&self) -> Vec<DeliveryState> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(e, _)| {
                if let Event::State(s) = e {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect()
    }
}

fn linked(emu: &Emulator, line: &str, user: &str) -> bool {
    emu.state().links.iter().any(|l| {
        l.line_user_id == line && l.user_id.as_deref() == Some(user) && l.channel_id == "1234567890"
    })
}

#[test]
fn delivers_in_real_time_without_flush_and_reports_from_the_background_thread() {
    let emu = emulator("");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    let start = Instant::now();
    client.set_user_id("user123").unwrap();
    client.set_line_user_id(LINE, None).unwrap();
    while !linked(&emu, LINE, "user123") {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not applied in real time"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Drained);
    assert_eq!(
        rec.statuses(),
        vec![
            (1, DeliveryStatus::Delivered),
            (2, DeliveryStatus::Delivered)
        ]
    );
    assert!(
        rec.0.lock().unwrap().iter().all(|(_, t)| t == "repro-line"),
        "listener runs on the SDK thread"
    );
    assert_eq!(emu.stats().requests, 1, "one request for the burst");
}

#[test]
fn retry_after_is_honoured_and_ops_keep_their_order() {
    let emu = emulator("script=503;429,retry_after=1");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    client.set_user_id("a").unwrap();
    client.set_line_user_id(LINE, None).unwrap();
    let start = Instant::now();
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "waited Retry-After twice"
    );
    let stats = emu.stats();
    assert_eq!(stats.retry_after_violations, 0);
    assert_eq!(stats.seq_regressions, 0);
    let retry_counts: Vec<Option<u32>> = emu.requests().iter().map(|r| r.retry_count).collect();
    assert_eq!(retry_counts, vec![Some(0), Some(1), Some(2)]);
    assert!(linked(&emu, LINE, "a"));
}

#[test]
fn a_lost_response_is_resent_and_answered_duplicate_not_applied_twice() {
    let emu = emulator("script=reset_after");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    client.set_user_id("a").unwrap();
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    assert_eq!(rec.statuses(), vec![(1, DeliveryStatus::Duplicate)]);
    let stats = emu.stats();
    assert_eq!(stats.ops_applied, 1);
    assert_eq!(stats.ops_duplicate, 1);
}

#[test]
fn reset_before_apply_and_server_errors_are_retried() {
    let emu = emulator("script=reset_before;500");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    client.set_user_id("a").unwrap();
    assert_eq!(client.flush(Duration::from_secs(15)), FlushOutcome::Drained);
    assert_eq!(rec.statuses(), vec![(1, DeliveryStatus::Delivered)]);
    assert_eq!(emu.stats().requests, 3);
}

#[test]
fn payload_too_large_splits_the_batch() {
    let emu = emulator("script=413");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    for i in 0..4 {
        client.set_user_id(&format!("u{i}")).unwrap();
    }
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    assert_eq!(rec.statuses().len(), 4);
    assert!(rec
        .statuses()
        .iter()
        .all(|s| s.1 == DeliveryStatus::Delivered));
    let sizes: Vec<usize> = emu.requests().iter().map(|r| r.op_count).collect();
    assert_eq!(sizes[0], 4);
    assert_eq!(sizes[1], 2, "halved after 413: {sizes:?}");
}

#[test]
fn rejected_ops_are_reported_with_their_code() {
    let emu = emulator("");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    client.set_user_id("a").unwrap();
    assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Drained);
    emu.reset();
    // The emulator forgot "a": linking it is rejected with 1002.
    client.set_line_user_id(LINE, None).unwrap();
    assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Drained);
    assert!(
        matches!(
            rec.statuses()[1].1,
            DeliveryStatus::Rejected { code: 1002, .. }
        ),
        "{:?}",
        rec.statuses()
    );
}

#[test]
fn a_bad_token_pauses_once_keeps_ops_and_a_new_token_resumes() {
    let emu = emulator("");
    let mut cfg = config(&emu.url(), Storage::Memory(Default::default()));
    cfg.sdk_token = "wrong".into();
    let client = Client::new(cfg).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    client.set_user_id("a").unwrap();
    assert!(matches!(
        client.flush(Duration::from_secs(5)),
        FlushOutcome::Paused {
            reason: PauseReason::AuthFailed,
            pending: 1
        }
    ));
    client.set_user_id("b").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(emu.stats().requests, 1, "stopped sending");
    client.set_sdk_token(TOKEN).unwrap();
    assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Drained);
    assert_eq!(
        rec.states(),
        vec![
            DeliveryState::Paused(PauseReason::AuthFailed),
            DeliveryState::Resumed
        ]
    );
    assert_eq!(rec.statuses().len(), 2);
}

#[test]
fn a_wrong_endpoint_path_pauses_as_misconfigured() {
    let emu = emulator("");
    let client = Client::new(config(
        &format!("{}/wrong/base", emu.url()),
        Storage::Memory(Default::default()),
    ))
    .unwrap();
    client.set_user_id("a").unwrap();
    assert!(matches!(
        client.flush(Duration::from_secs(5)),
        FlushOutcome::Paused {
            reason: PauseReason::EndpointMisconfigured,
            pending: 1
        }
    ));
}

#[test]
fn ops_survive_a_restart_while_the_endpoint_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator("503=1.0,retry_after=3600");
    {
        let client =
            Client::new(config(&emu.url(), Storage::Directory(dir.path().into()))).unwrap();
        client.set_user_id("persisted").unwrap();
        client.set_line_user_id(LINE, None).unwrap();
        assert!(matches!(
            client.flush(Duration::from_millis(300)),
            FlushOutcome::TimedOut { pending: 2 }
        ));
    }
    emu.set_faults(Default::default());
    // The next start honours the persisted Retry-After (one hour), so point a fresh emulator at it
    // and check the ops are still there; then clear the backoff by flushing on a new store copy.
    let client = Client::new(config(&emu.url(), Storage::Directory(dir.path().into()))).unwrap();
    assert_eq!(client.pending_ops(), 2);
    assert_eq!(client.user_id().as_deref(), Some("persisted"));
    assert!(
        matches!(
            client.flush(Duration::from_millis(300)),
            FlushOutcome::TimedOut { .. }
        ),
        "Retry-After survives restarts"
    );
}

#[test]
fn ops_accepted_before_a_drop_are_delivered_by_the_next_client() {
    let dir = tempfile::tempdir().unwrap();
    // The same endpoint throughout: queued ops are never sent to another one.
    let emu = emulator("reset_before=1.0");
    {
        let client =
            Client::new(config(&emu.url(), Storage::Directory(dir.path().into()))).unwrap();
        client.set_user_id("later").unwrap();
        client.set_line_user_id(LINE, None).unwrap();
    }
    emu.set_faults(Default::default());
    let client = Client::new(config(&emu.url(), Storage::Directory(dir.path().into()))).unwrap();
    // A reset backs off by at most 1 s on the first failure.
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    assert!(linked(&emu, LINE, "later"));
}

#[test]
fn opting_out_purges_and_reports() {
    let emu = emulator("503=1.0,retry_after=3600");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    let rec = Recorder::default();
    rec.attach(&client);
    client.set_user_id("a").unwrap();
    client.set_line_user_id(LINE, None).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client.set_opted_in(false).unwrap();
    client.set_user_id("ignored").unwrap();
    assert_eq!(client.flush(Duration::from_secs(2)), FlushOutcome::Drained);
    assert!(rec.statuses().iter().any(|s| s.1
        == DeliveryStatus::Dropped {
            reason: DropReason::OptedOut
        }));
}

#[test]
fn insecure_endpoints_are_refused() {
    let cfg = Config::new(
        TOKEN,
        "http://api.example.com",
        Storage::Memory(Default::default()),
    );
    assert!(matches!(Client::new(cfg), Err(Error::InsecureEndpoint(_))));
}

#[test]
fn the_token_never_appears_in_debug_output() {
    let emu = emulator("");
    let cfg = config(&emu.url(), Storage::Memory(Default::default()));
    assert!(!format!("{cfg:?}").contains(TOKEN));
    let client = Client::new(cfg).unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[test]
fn concurrent_callers_get_one_ordered_stream() {
    let emu = emulator("");
    let client =
        Arc::new(Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..300 {
                    client.set_user_id(&format!("t{t}-u{i}")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    let stats = emu.stats();
    assert_eq!(stats.ops_applied, 600);
    assert_eq!(stats.seq_regressions, 0);
    let mut last = 0;
    for r in emu.requests() {
        assert!(r.first_seq > last, "batches arrive in seq order");
        last = r.last_seq;
    }
}

#[test]
fn drop_does_not_wait_for_a_slow_endpoint() {
    let emu = emulator("latency_ms=10000");
    let client = Client::new(config(&emu.url(), Storage::Memory(Default::default()))).unwrap();
    client.set_user_id("a").unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the request is in flight now
    let start = Instant::now();
    drop(client);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        start.elapsed()
    );
}
