//! One client per state dir, bound to its endpoint; misconfiguration refused at
//! once; journal damage reported to the listener (issue 11, items 1, 3, 6, 9).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_core::{Client, Config, Error, Event, RecoveryReport, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig};

const TOKEN: &str = "state-dir-token";

fn emulator(faults: &str) -> Emulator {
    Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: faults.parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

fn config(endpoint: &str, dir: &std::path::Path) -> Config {
    let mut c = Config::new(TOKEN, endpoint, Storage::Directory(dir.to_path_buf()));
    c.default_channel_id = Some("1234567890".into());
    c
}

#[test]
fn a_second_client_on_the_same_dir_is_refused_until_the_first_is_gone() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let first = Client::new(config(&emu.url(), dir.path())).unwrap();
    let err = Client::new(config(&emu.url(), dir.path())).unwrap_err();
    assert_eq!(
        err,
        Error::StateDirInUse {
            dir: dir.path().display().to_string(),
            pid: Some(std::process::id()),
        }
    );
    assert!(err.to_string().contains("is in use"), "{err}");
    first.set_user_id("u1").unwrap();
    drop(first);
    let second = Client::new(config(&emu.url(), dir.path())).unwrap();
    assert_eq!(
        second.pending_ops(),
        1,
        "the first client's call is still there"
    );
}

#[test]
fn queued_calls_are_bound_to_their_endpoint() {
    let a = emulator("503=1.0,retry_after=3600");
    let b = emulator("");
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Client::new(config(&a.url(), dir.path())).unwrap();
        c.set_user_id("for-a").unwrap();
    }
    let err = Client::new(config(&b.url(), dir.path())).unwrap_err();
    assert!(
        matches!(&err, Error::StateDirBoundToEndpoint { pending: 1, bound, requested, .. }
            if bound.starts_with(&a.url()) && requested.starts_with(&b.url())),
        "{err:?}"
    );
    // A trailing slash is the same endpoint.
    let c = Client::new(config(&format!("{}/", a.url()), dir.path())).unwrap();
    assert_eq!(c.pending_ops(), 1);
    drop(c);
    assert_eq!(b.stats().requests, 0);
}

#[test]
fn a_token_that_cannot_be_sent_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["tok\nen", "tok en", "tök", "\t"] {
        let err = Client::new(config("http://127.0.0.1:9", dir.path())).and_then(|c| {
            c.set_sdk_token(bad)?;
            Ok(())
        });
        assert!(
            matches!(err, Err(Error::InvalidConfig(_))),
            "{bad:?}: {err:?}"
        );
        let mut c = config("http://127.0.0.1:9", dir.path());
        c.sdk_token = bad.into();
        assert!(
            matches!(Client::new(c), Err(Error::InvalidConfig(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn the_last_error_names_the_status_and_url() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("{}/nope", emu.url());
    let client = Client::new(config(&endpoint, dir.path())).unwrap();
    client.set_user_id("u").unwrap();
    client.flush(Duration::from_secs(5));
    assert_eq!(
        client.last_error().as_deref(),
        Some(format!("HTTP 404 from {endpoint}/v1/identity/batch").as_str())
    );
}

#[derive(Default)]
struct Recorder {
    recoveries: Mutex<Vec<RecoveryReport>>,
    reports: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl repro_line_core::DeliveryListener for Recorder {
    fn on_event(&self, event: &Event) {
        if matches!(event, Event::Op(_)) {
            self.reports.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_recovery(&self, report: &RecoveryReport) {
        self.recoveries.lock().unwrap().push(report.clone());
    }
    fn on_request_failed(&self, error: &str) {
        self.failures.lock().unwrap().push(error.to_owned());
    }
}

/// EndpointMisconfigured said neither the status nor the URL.
#[test]
fn the_listener_hears_why_requests_fail() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("{}/nope", emu.url());
    let client = Client::new(config(&endpoint, dir.path())).unwrap();
    let listener = Arc::new(Recorder::default());
    client.set_listener(listener.clone());
    client.set_user_id("u").unwrap();
    client.flush(Duration::from_secs(5));
    assert_eq!(
        listener.failures.lock().unwrap().clone(),
        vec![format!("HTTP 404 from {endpoint}/v1/identity/batch")]
    );
}

/// Damage inside the journal was only a tracing WARN.
#[test]
fn the_listener_hears_about_damage_inside_the_journal() {
    let emu = emulator("503=1.0,retry_after=3600");
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Client::new(config(&emu.url(), dir.path())).unwrap();
        for i in 0..50 {
            c.set_user_id(&format!("user-{i}")).unwrap();
        }
    }
    let journal = dir.path().join("journal.log");
    let mut bytes = std::fs::read(&journal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 40].fill(0xa5);
    std::fs::write(&journal, &bytes).unwrap();

    let c = Client::new(config(&emu.url(), dir.path())).unwrap();
    let rec = c.recovery();
    assert!(rec.is_damaged() && rec.lost_records >= 1, "{rec:?}");
    let listener = Arc::new(Recorder::default());
    c.set_listener(listener.clone());
    c.set_listener(listener.clone()); // told once, not per listener
    assert_eq!(listener.recoveries.lock().unwrap().clone(), vec![rec]);

    // A torn last append is not damage: its call was never accepted.
    drop(c);
    let mut bytes = std::fs::read(&journal).unwrap();
    let len = bytes.len();
    bytes.truncate(len - 3);
    std::fs::write(&journal, &bytes).unwrap();
    let c = Client::new(config(&emu.url(), dir.path())).unwrap();
    assert!(c.recovery().skipped_bytes > 0);
    assert!(!c.recovery().is_damaged(), "{:?}", c.recovery());
}

/// Reports made before the app set its listener were lost: a restored op can be
/// answered before `set_listener` returns.
#[test]
fn reports_made_before_the_listener_is_set_reach_it() {
    let emu = emulator("503=1.0,retry_after=1");
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Client::new(config(&emu.url(), dir.path())).unwrap();
        c.set_user_id("early").unwrap();
        c.flush(Duration::from_millis(300));
    }
    emu.set_faults(Default::default());
    let c = Client::new(config(&emu.url(), dir.path())).unwrap();
    // Let the restored op be delivered with no listener set.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.pending_ops() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.pending_ops(), 0);
    let listener = Arc::new(Recorder::default());
    c.set_listener(listener.clone());
    assert_eq!(listener.reports.load(Ordering::Relaxed), 1);
}
