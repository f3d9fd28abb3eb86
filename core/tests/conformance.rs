//! Runs `conformance/scenarios.json` against `repro_line_core::Client` and an in-process
//! emulator over loopback. The Kotlin host tests run the same file through the UniFFI
//! bindings; the format is described in `conformance/README.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_core::{Client, Config, DeliveryStatus, Error, Event, FlushOutcome, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig};
use serde_json::{Map, Value};

const TOKEN: &str = "conformance-token";

fn scenarios_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/scenarios.json")
}

/// The stable error kind of `conformance/scenarios.json`: core's kind, by its variant name.
fn kind(e: &Error) -> String {
    format!("{:?}", e.kind())
}

fn status_text(s: &DeliveryStatus) -> String {
    match s {
        DeliveryStatus::Delivered => "Delivered".into(),
        DeliveryStatus::Duplicate => "Duplicate".into(),
        DeliveryStatus::Rejected { code, .. } => format!("Rejected:{code}"),
        DeliveryStatus::Dropped { reason } => format!("Dropped:{reason:?}"),
    }
}

fn outcome_text(r: &FlushOutcome) -> &'static str {
    match r {
        FlushOutcome::Drained => "Drained",
        FlushOutcome::TimedOut { .. } => "TimedOut",
        FlushOutcome::Paused { .. } => "Paused",
    }
}

/// A string value: plain, or `{"repeat": S, "times": N}`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let s = o["repeat"].as_str().expect("repeat is a string");
            let n = o["times"].as_u64().expect("times is a number");
            s.repeat(n as usize)
        }
        other => panic!("expected a string value, got {other}"),
    }
}

fn opt_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(text(v)),
    }
}

struct Options {
    endpoint: String,
    token: String,
    default_channel_id: Option<String>,
    debounce_ms: u64,
    request_timeout_ms: u64,
    flush_timeout_ms: u64,
}

impl Options {
    fn new(defaults: &Map<String, Value>, scenario: &Value, emu: &Emulator) -> Options {
        let mut merged = defaults.clone();
        if let Some(cfg) = scenario.get("config").and_then(Value::as_object) {
            for (k, v) in cfg {
                merged.insert(k.clone(), v.clone());
            }
        }
        let num = |k: &str| merged.get(k).and_then(Value::as_u64).expect(k);
        Options {
            endpoint: opt_text(merged.get("endpoint")).unwrap_or_else(|| emu.url()),
            token: opt_text(merged.get("sdk_token")).unwrap_or_else(|| TOKEN.into()),
            default_channel_id: opt_text(merged.get("default_channel_id")),
            debounce_ms: num("debounce_ms"),
            request_timeout_ms: num("request_timeout_ms"),
            flush_timeout_ms: num("flush_timeout_ms"),
        }
    }

    fn open(&self, dir: &Path) -> Result<Client, Error> {
        let mut c = Config::new(
            self.token.clone(),
            self.endpoint.clone(),
            Storage::Directory(dir.to_path_buf()),
        );
        c.default_channel_id = self.default_channel_id.clone();
        c.debounce = Duration::from_millis(self.debounce_ms);
        c.request_timeout = Duration::from_millis(self.request_timeout_ms);
        Client::new(c)
    }
}

/// (seq, status, the report's LINE user ID: a token link's is its `sub`).
type Reports = Arc<Mutex<Vec<(u64, String, Option<String>)>>>;

fn attach(client: &Client, reports: &Reports) {
    let sink = Arc::clone(reports);
    client.set_listener(Arc::new(move |e: &Event| {
        if let Event::Op(r) = e {
            sink.lock()
                .unwrap()
                .push((r.seq, status_text(&r.status), r.kind.line_user_id()));
        }
    }));
}

fn check_call(step: &Value, result: Result<(), Error>, at: &str) {
    match (step.get("error").and_then(Value::as_str), result) {
        (None, Ok(())) => {}
        (None, Err(e)) => panic!("{at}: expected success, got {} ({e})", kind(&e)),
        (Some(want), Ok(())) => panic!("{at}: expected {want}, the call succeeded"),
        (Some(want), Err(e)) => {
            assert_eq!(kind(&e), want, "{at}: wrong error kind ({e})");
            if let Some(part) = step.get("message_contains").and_then(Value::as_str) {
                assert!(
                    e.to_string().contains(part),
                    "{at}: message {:?} lacks {part:?}",
                    e.to_string()
                );
            }
        }
    }
}

fn check_state(emu: &Emulator, step: &Value, at: &str) {
    let state = emu.state();
    let mut users = state.users.clone();
    users.sort();
    let want_users: Vec<String> = step["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(text)
        .collect();
    assert_eq!(users, want_users, "{at}: users");
    let device_user = state
        .devices
        .first()
        .and_then(|d| d.current_user_id.clone());
    assert_eq!(
        device_user,
        opt_text(step.get("device_user_id")),
        "{at}: device user"
    );
    let mut links: Vec<(String, String, Option<String>)> = state
        .links
        .iter()
        .map(|l| {
            (
                l.channel_id.clone(),
                l.line_user_id.clone(),
                l.user_id.clone(),
            )
        })
        .collect();
    links.sort();
    let mut want_links: Vec<(String, String, Option<String>)> = step["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| {
            (
                text(&l["channel_id"]),
                text(&l["line_user_id"]),
                opt_text(l.get("user_id")),
            )
        })
        .collect();
    want_links.sort();
    assert_eq!(links, want_links, "{at}: links");
}

/// The token of a `link_id_token` step: `{literal}` or `{mint, forge?}` (see the file's description).
fn id_token(emu: &Emulator, spec: &Value) -> String {
    if let Some(literal) = spec.get("literal") {
        return text(literal);
    }
    let mint = &spec["mint"];
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let expires_in = mint
        .get("expires_in_s")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let token = emu.mint_id_token(
        &text(&mint["line_user_id"]),
        &text(&mint["login_channel_id"]),
        (now_s + expires_in) as u64,
    );
    match spec.get("forge").and_then(Value::as_str) {
        None => token,
        Some("signature") => {
            let at = token.rfind('.').expect("three parts") + 1;
            let first = if token[at..].starts_with('A') {
                "B"
            } else {
                "A"
            };
            format!("{}{first}{}", &token[..at], &token[at + 1..])
        }
        Some(other) => panic!("unknown forge {other:?}"),
    }
}

fn run(defaults: &Map<String, Value>, scenario: &Value) {
    let name = scenario["name"].as_str().expect("name");
    let emu = Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let opts = Options::new(defaults, scenario, &emu);
    let dir = tempfile::tempdir().expect("tempdir");

    if let Some(want) = scenario.get("open_error").and_then(Value::as_str) {
        let err = opts
            .open(dir.path())
            .err()
            .unwrap_or_else(|| panic!("{name}: expected {want} when opening"));
        assert_eq!(kind(&err), want, "{name}: open error ({err})");
        if let Some(part) = scenario
            .get("open_message_contains")
            .and_then(Value::as_str)
        {
            assert!(err.to_string().contains(part), "{name}: {err}");
        }
        return;
    }

    let reports: Reports = Arc::default();
    let mut client = opts.open(dir.path()).expect("open");
    attach(&client, &reports);

    for (i, step) in scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let what = step["do"].as_str().expect("do");
        let at = format!("{name} step {i} ({what})");
        match what {
            "set_user_id" => check_call(step, client.set_user_id(&text(&step["user_id"])), &at),
            "link" => check_call(
                step,
                client.set_line_user_id(
                    &text(&step["line_user_id"]),
                    opt_text(step.get("channel_id")).as_deref(),
                ),
                &at,
            ),
            "link_id_token" => check_call(
                step,
                client.link_line_id_token(
                    &id_token(&emu, &step["token"]),
                    opt_text(step.get("channel_id")).as_deref(),
                ),
                &at,
            ),
            "unlink" => check_call(
                step,
                client.unlink_line_user_id(
                    &text(&step["line_user_id"]),
                    opt_text(step.get("channel_id")).as_deref(),
                ),
                &at,
            ),
            "opt_in" => check_call(
                step,
                client.set_opted_in(step["value"].as_bool().expect("value")),
                &at,
            ),
            "flush" => {
                let outcome = client.flush(Duration::from_millis(opts.flush_timeout_ms));
                assert_eq!(
                    outcome_text(&outcome),
                    step["outcome"].as_str().expect("outcome"),
                    "{at}: {outcome:?}"
                );
                let mut got = std::mem::take(&mut *reports.lock().unwrap());
                got.sort_by_key(|r| r.0);
                if let Some(want) = step.get("report_line_user_ids") {
                    let lines: Vec<Option<String>> = got.iter().map(|r| r.2.clone()).collect();
                    let want: Vec<Option<String>> = want
                        .as_array()
                        .expect("report_line_user_ids")
                        .iter()
                        .map(|v| opt_text(Some(v)))
                        .collect();
                    assert_eq!(lines, want, "{at}: report LINE user IDs");
                }
                let got: Vec<String> = got.into_iter().map(|r| r.1).collect();
                let want: Vec<String> = step["reports"]
                    .as_array()
                    .expect("reports")
                    .iter()
                    .map(text)
                    .collect();
                assert_eq!(got, want, "{at}: reports");
            }
            "expect_client" => {
                if let Some(v) = step.get("user_id") {
                    assert_eq!(client.user_id(), opt_text(Some(v)), "{at}: user_id");
                }
                if let Some(v) = step.get("pending_ops").and_then(Value::as_u64) {
                    assert_eq!(client.pending_ops() as u64, v, "{at}: pending_ops");
                }
                if let Some(v) = step.get("opted_in").and_then(Value::as_bool) {
                    assert_eq!(client.opted_in(), v, "{at}: opted_in");
                }
            }
            "expect_state" => check_state(&emu, step, &at),
            "restart" => {
                drop(client);
                client = opts.open(dir.path()).expect("reopen");
                attach(&client, &reports);
            }
            "reset_emulator" => emu.reset(),
            "set_identity" => emu.set_identity(
                step["mode"]
                    .as_str()
                    .expect("mode")
                    .parse()
                    .expect("identity mode"),
            ),
            "set_login_channels" => emu.set_login_channels(
                serde_json::from_value(step["channels"].clone()).expect("channels"),
            ),
            "set_faults" => emu.set_faults(
                step["spec"]
                    .as_str()
                    .expect("spec")
                    .parse()
                    .expect("fault spec"),
            ),
            other => panic!("{at}: unknown step {other:?}"),
        }
    }
    drop(client);
    let stats = emu.stats();
    assert_eq!(stats.seq_regressions, 0, "{name}: seq regressions");
    assert_eq!(stats.retry_after_violations, 0, "{name}: Retry-After");
}

#[test]
fn scenarios() {
    let raw = std::fs::read_to_string(scenarios_file()).expect("read scenarios.json");
    let doc: Value = serde_json::from_str(&raw).expect("scenarios.json is JSON");
    assert_eq!(doc["format"], 1);
    let defaults = doc["defaults"].as_object().expect("defaults").clone();
    let scenarios = doc["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() >= 10);
    // Error kinds named in the file are the ones this runner can produce.
    let kinds: Vec<&str> = doc["error_kinds"]
        .as_array()
        .expect("error_kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in scenarios {
        for k in s["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|st| st.get("error").and_then(Value::as_str))
            .chain(s.get("open_error").and_then(Value::as_str))
        {
            assert!(kinds.contains(&k), "unknown error kind {k}");
        }
    }
    // Scenarios are independent (own emulator, own directory): run them in parallel.
    std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|s| {
                let defaults = &defaults;
                let name = s["name"].as_str().unwrap_or("?").to_owned();
                (name, scope.spawn(move || run(defaults, s)))
            })
            .collect();
        let failed: Vec<String> = handles
            .into_iter()
            .filter_map(|(name, h)| h.join().err().map(|_| name))
            .collect();
        assert!(failed.is_empty(), "failed scenarios: {failed:?}");
    });
}
