//! The adapter from Rust: error mapping, the panic guard, listener forwarding and delivery
//! against the emulator. The same API is exercised from Kotlin by bindings-android/host-tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_emulator::{Emulator, EmulatorConfig};
use reproline_ffi::{
    debug_panic_for_tests, validate_channel_id, validate_line_user_id, validate_user_id, CallKind,
    DeliveryListener, DeliveryReport, DeliveryState, DeliveryStatus, DropReason, FlushOutcome,
    HttpOutcome, HttpRequest, HttpTransport, PauseReason, ReproLine, ReproLineConfig,
    ReproLineError, ReproLineSdk, MAX_BUFFERED_CALLS,
};

const TOKEN: &str = "adapter-token";
const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

fn config(url: &str, dir: &std::path::Path) -> ReproLineConfig {
    ReproLineConfig {
        sdk_token: TOKEN.into(),
        endpoint: url.into(),
        storage_dir: dir.to_string_lossy().into_owned(),
        default_channel_id: Some("1234567890".into()),
        request_timeout_ms: Some(5_000),
        debounce_ms: Some(20),
        max_batch_ops: None,
        max_queue_ops: None,
        max_op_age_ms: None,
        platform: None,
    }
}

/// The FFI's transport seam served by core's built-in reqwest transport (the Kotlin host
/// tests serve it with HttpURLConnection).
struct Reqwest(repro_line_core::native::ReqwestTransport);

impl HttpTransport for Reqwest {
    fn send(&self, r: HttpRequest) -> HttpOutcome {
        use repro_line_core::retry::Outcome;
        use repro_line_core::HttpTransport as _;
        let outcome = self.0.send(repro_line_core::HttpRequest {
            url: r.url,
            headers: r.headers.into_iter().collect(),
            body: r.body,
            timeout: Duration::from_millis(u64::try_from(r.timeout_ms).unwrap()),
        });
        match outcome {
            Outcome::Response {
                status,
                retry_after,
                body,
            } => HttpOutcome::Response {
                status,
                retry_after,
                body,
            },
            Outcome::Network {
                timeout: true,
                message,
            } => HttpOutcome::Timeout { message },
            Outcome::Network { message, .. } => HttpOutcome::NetworkError { message },
        }
    }
}

fn transport() -> Arc<dyn HttpTransport> {
    let t = repro_line_core::native::ReqwestTransport::new(Duration::from_secs(5)).unwrap();
    Arc::new(Reqwest(t))
}

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        token: TOKEN.into(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

#[derive(Default)]
struct Recorder {
    reports: Mutex<Vec<(DeliveryReport, String)>>,
    states: Mutex<Vec<DeliveryState>>,
}

impl DeliveryListener for Recorder {
    fn on_report(&self, report: DeliveryReport) {
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        self.reports.lock().unwrap().push((report, thread));
    }
    fn on_state_change(&self, state: DeliveryState) {
        self.states.lock().unwrap().push(state);
    }
}

#[test]
fn errors_keep_their_kind_and_the_rule_text() {
    let dir = tempfile::tempdir().unwrap();
    let client = ReproLine::new(config("http://127.0.0.1:9", dir.path()), transport()).unwrap();
    let e = client.set_line_user_id(LINE.into(), None).unwrap_err();
    assert!(matches!(e, ReproLineError::UserIdNotSet(_)), "{e:?}");
    assert!(e.to_string().contains("call set_user_id before linking"));
    let e = client.set_user_id(String::new()).unwrap_err();
    assert!(matches!(e, ReproLineError::InvalidUserId(_)), "{e:?}");
    client.set_user_id("u".into()).unwrap();
    let e = client.set_line_user_id("nope".into(), None).unwrap_err();
    assert!(matches!(e, ReproLineError::InvalidLineUserId(_)), "{e:?}");
    assert!(e
        .to_string()
        .contains("a LINE user ID is U followed by 32 ASCII letters or digits"));
    let e = client
        .unlink_line_user_id(LINE.into(), Some("12-34".into()))
        .unwrap_err();
    assert!(matches!(e, ReproLineError::InvalidChannelId(_)), "{e:?}");
    client.shutdown(0).unwrap();
    assert!(matches!(
        client.set_user_id("u".into()),
        Err(ReproLineError::ShutDown(_))
    ));

    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        ReproLine::new(
            config("http://repro.example.com", other.path()),
            transport()
        ),
        Err(ReproLineError::InsecureEndpoint(_))
    ));
    let mut no_channel = config("http://127.0.0.1:9", other.path());
    no_channel.default_channel_id = None;
    let c = ReproLine::new(no_channel, transport()).unwrap();
    c.set_user_id("u".into()).unwrap();
    assert!(matches!(
        c.set_line_user_id(LINE.into(), None),
        Err(ReproLineError::MissingChannelId(_))
    ));
    drop(c);
    let mut bad = config("http://127.0.0.1:9", other.path());
    bad.max_batch_ops = Some(0);
    assert!(matches!(
        ReproLine::new(bad, transport()),
        Err(ReproLineError::InvalidConfig(_))
    ));

    assert!(validate_user_id("ok".into()).is_ok());
    assert!(matches!(
        validate_line_user_id("x".into()),
        Err(ReproLineError::InvalidLineUserId(_))
    ));
    assert!(matches!(
        validate_channel_id("".into()),
        Err(ReproLineError::InvalidChannelId(_))
    ));
}

#[test]
fn a_panic_becomes_an_internal_error() {
    let e = debug_panic_for_tests("boom".into()).unwrap_err();
    assert_eq!(
        e,
        ReproLineError::Internal("internal error: repro-line panicked: boom".into())
    );
}

#[test]
fn delivers_and_forwards_reports_and_states_from_the_sdk_thread() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let client = ReproLine::new(config(&emu.url(), dir.path()), transport()).unwrap();
    client.set_delivery_listener(rec.clone()).unwrap();
    client.set_user_id("user123".into()).unwrap();
    client.set_line_user_id(LINE.into(), None).unwrap();
    assert_eq!(client.flush(10_000).unwrap(), FlushOutcome::Drained);
    let reports = rec.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 2);
    assert!(reports
        .iter()
        .all(|(r, t)| r.status == DeliveryStatus::Delivered && t == "repro-line"));
    assert_eq!(
        reports[1].0.call,
        CallKind::LinkLineId {
            user_id: "user123".into(),
            line_user_id: LINE.into(),
            channel_id: "1234567890".into()
        }
    );
    assert_eq!(client.user_id().unwrap().as_deref(), Some("user123"));
    assert_eq!(client.pending_ops().unwrap(), 0);
    assert!(emu
        .state()
        .links
        .iter()
        .any(|l| l.line_user_id == LINE && l.user_id.as_deref() == Some("user123")));

    // A wrong token pauses with the reason; a new token resumes.
    client.set_sdk_token("wrong".into()).unwrap();
    client.set_user_id("user456".into()).unwrap();
    assert_eq!(
        client.flush(10_000).unwrap(),
        FlushOutcome::Paused {
            reason: PauseReason::AuthFailed,
            pending: 1
        }
    );
    client.set_sdk_token(TOKEN.into()).unwrap();
    assert_eq!(client.flush(10_000).unwrap(), FlushOutcome::Drained);
    let states = rec.states.lock().unwrap().clone();
    assert_eq!(
        states,
        vec![
            DeliveryState::Paused {
                reason: PauseReason::AuthFailed
            },
            DeliveryState::Resumed
        ]
    );
}

#[test]
fn opt_out_reports_dropped_opted_out() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let mut cfg = config("http://127.0.0.1:9", dir.path());
    cfg.debounce_ms = Some(60_000); // nothing is in flight when opting out
    let client = ReproLine::new(cfg, transport()).unwrap();
    client.set_delivery_listener(rec.clone()).unwrap();
    client.set_user_id("u".into()).unwrap();
    client.set_opted_in(false).unwrap();
    assert!(!client.opted_in().unwrap());
    assert_eq!(client.flush(5_000).unwrap(), FlushOutcome::Drained);
    let reports = rec.reports.lock().unwrap().clone();
    assert_eq!(
        reports
            .iter()
            .map(|(r, _)| r.status.clone())
            .collect::<Vec<_>>(),
        vec![DeliveryStatus::Dropped {
            reason: DropReason::OptedOut
        }]
    );
}

/// `link_line_id_token` against the emulator with a minted token: applied, reported with the
/// token's `sub`; a malformed token is a typed error naming the rule, without the token.
#[test]
fn a_token_link_is_delivered_and_reported_with_its_sub() {
    const LOGIN: &str = "1650000000";
    let emu = Emulator::start(EmulatorConfig {
        token: TOKEN.into(),
        identity: repro_line_emulator::Identity::IdToken,
        login_channels: [("1234567890".to_owned(), vec![LOGIN.to_owned()])].into(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = emu.mint_id_token(LINE, LOGIN, now_s + 3600);
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let client = ReproLine::new(config(&emu.url(), dir.path()), transport()).unwrap();
    client.set_delivery_listener(rec.clone()).unwrap();
    let e = client.link_line_id_token(token.clone(), None).unwrap_err();
    assert!(matches!(e, ReproLineError::UserIdNotSet(_)), "{e:?}");
    client.set_user_id("user123".into()).unwrap();
    let forged = format!("{token}x.y");
    let e = client.link_line_id_token(forged.clone(), None).unwrap_err();
    assert!(matches!(e, ReproLineError::InvalidIdToken(_)), "{e:?}");
    assert!(e.to_string().contains("compact JWT"), "{e}");
    assert!(!e.to_string().contains(&token[..20]), "token in {e}");
    client.link_line_id_token(token, None).unwrap();
    assert_eq!(client.flush(10_000).unwrap(), FlushOutcome::Drained);
    let reports = rec.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].0.status, DeliveryStatus::Delivered);
    assert_eq!(
        reports[1].0.call,
        CallKind::LinkLineIdToken {
            user_id: "user123".into(),
            line_user_id: LINE.into(),
            channel_id: "1234567890".into()
        }
    );
    assert!(emu
        .state()
        .links
        .iter()
        .any(|l| l.line_user_id == LINE && l.user_id.as_deref() == Some("user123")));
}

#[test]
fn calls_before_setup_are_validated_bounded_and_replayed_in_order() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    let sdk = ReproLineSdk::new();
    assert!(!sdk.is_set_up());
    assert_eq!(sdk.device_id().unwrap(), None);
    sdk.set_user_id("early".into()).unwrap();
    // Invalid input throws at once, before setup too, and is not kept.
    assert!(matches!(
        sdk.link_line_id("nope".into(), None),
        Err(ReproLineError::InvalidLineUserId(_))
    ));
    assert!(sdk.opted_in().unwrap());
    for _ in 2..MAX_BUFFERED_CALLS {
        sdk.link_line_id(LINE.into(), None).unwrap();
    }
    sdk.set_user_id("later".into()).unwrap();
    let full = sdk.set_user_id("one too many".into()).unwrap_err();
    assert!(matches!(full, ReproLineError::Storage(_)), "{full:?}");
    assert!(full
        .to_string()
        .contains("calls are waiting for ReproLine.setup"));
    assert_eq!(sdk.pending_ops().unwrap(), MAX_BUFFERED_CALLS as u64);
    assert_eq!(sdk.user_id().unwrap().as_deref(), Some("later"));

    let rec = Arc::new(Recorder::default());
    let failures = sdk
        .setup(config(&emu.url(), dir.path()), transport(), rec.clone())
        .unwrap();
    assert_eq!(failures, vec![]);
    assert!(sdk.is_set_up());
    let again = sdk.setup(config(&emu.url(), dir.path()), transport(), rec.clone());
    assert!(matches!(again, Err(ReproLineError::InvalidConfig(_))));
    // After setup, calls go straight to the client.
    sdk.unlink_line_id(LINE.into(), None).unwrap();
    let client = sdk.client().unwrap();
    assert_eq!(client.flush(15_000).unwrap(), FlushOutcome::Drained);
    let reports = rec.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), MAX_BUFFERED_CALLS + 1, "one report per call");
    let calls: Vec<CallKind> = {
        let mut by_seq = reports.clone();
        by_seq.sort_by_key(|(r, _)| r.seq);
        by_seq.into_iter().map(|(r, _)| r.call).collect()
    };
    assert_eq!(
        calls[0],
        CallKind::SetUserId {
            user_id: "early".into()
        }
    );
    assert_eq!(
        calls[MAX_BUFFERED_CALLS - 1],
        CallKind::SetUserId {
            user_id: "later".into()
        },
        "replayed in call order"
    );
    // Linked by "early"; the unlink by "later" (not the owner) changes nothing.
    let links = emu.state().links;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].user_id.as_deref(), Some("early"));
    assert!(sdk.close(0).is_some());
    assert!(!sdk.is_set_up());

    // A link buffered before any user ID is refused at replay, with its kind.
    let orphan = ReproLineSdk::new();
    orphan.link_line_id(LINE.into(), None).unwrap();
    let other = tempfile::tempdir().unwrap();
    let failures = orphan
        .setup(config(&emu.url(), other.path()), transport(), rec)
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].kind, "UserIdNotSet");
    assert!(failures[0]
        .message
        .contains("call set_user_id before linking"));
    orphan.close(0);
}
