//! The SDK-facing subcommands: demo, emulator, send, register.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use repro_line_core::protocol::IdToken;
use repro_line_core::{Call, Client, Config, DeliveryStatus, Error, Event, FlushOutcome, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig, FaultSpec};

/// Exit codes shared by `send` and `register`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_NOT_DELIVERED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_PENDING: i32 = 3;

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// SQLite file for the state (default: in memory).
    #[arg(long)]
    db: Option<PathBuf>,
    /// SDK token the emulator accepts in `X-Repro-Token`.
    #[arg(long, default_value = "dev-token")]
    token: String,
    /// Fault injection, e.g. "503=0.15,429=0.15,reset_after=0.1,retry_after=1,seed=7".
    #[arg(long)]
    faults: Option<String>,
    /// Allowed CORS origin for browser tests (repeatable; "*" for any).
    #[arg(long = "cors")]
    cors: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Connection {
    /// Ingestion endpoint base URL (https, or http on loopback).
    #[arg(long)]
    endpoint: String,
    /// SDK token (or set REPRO_LINE_TOKEN).
    #[arg(long, env = "REPRO_LINE_TOKEN", hide_env_values = true)]
    token: String,
    /// Directory holding the durable queue; reuse it to resume.
    #[arg(long, default_value = ".repro-line")]
    state_dir: PathBuf,
    /// Seconds to wait for delivery; ops still pending stay in the state dir (exit 3).
    #[arg(long, default_value_t = 60.0)]
    wait: f64,
    /// Print one JSON object with the counts.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    conn: Connection,
    #[arg(long)]
    user_id: String,
    #[arg(long)]
    line_user_id: Option<String>,
    /// Link with a LINE ID token instead (verified by the endpoint; never printed).
    #[arg(long, conflicts_with_all = ["line_user_id", "unlink"], value_parser = parse_id_token)]
    id_token: Option<IdToken>,
    #[arg(long)]
    channel_id: Option<String>,
    /// Unlink the LINE user ID instead of linking it.
    #[arg(long, requires = "line_user_id")]
    unlink: bool,
}

/// A newtype value so `{:?}` of the parsed arguments never shows the token.
fn parse_id_token(s: &str) -> Result<IdToken, std::convert::Infallible> {
    Ok(IdToken::new(s))
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    conn: Connection,
    /// CSV with the header `line_user_id,user_id`.
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    channel_id: String,
}

/// Counts reports by status; the listener runs on the SDK's thread.
#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    duplicate: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
}

impl Tally {
    fn listen(self: &Arc<Self>, client: &Client, verbose: bool) {
        let tally = Arc::clone(self);
        client.set_listener(Arc::new(move |event: &Event| {
            let Event::Op(report) = event else {
                if let Event::State(state) = event {
                    eprintln!("delivery state: {state:?}");
                }
                return;
            };
            let counter = match &report.status {
                DeliveryStatus::Delivered => &tally.delivered,
                DeliveryStatus::Duplicate => &tally.duplicate,
                DeliveryStatus::Rejected { code, message } => {
                    eprintln!("op seq {} rejected: {code} {message}", report.seq);
                    &tally.rejected
                }
                DeliveryStatus::Dropped { reason } => {
                    eprintln!("op seq {} dropped: {reason:?}", report.seq);
                    &tally.dropped
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if verbose {
                eprintln!("op seq {}: {:?}", report.seq, report.status);
            }
        }));
    }

    fn json(&self, client: &Client, extra: serde_json::Value) -> serde_json::Value {
        let mut v = serde_json::json!({
            "delivered": self.delivered.load(Ordering::Relaxed),
            "duplicate": self.duplicate.load(Ordering::Relaxed),
            "rejected": self.rejected.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "pending": client.pending_ops(),
            "requests": client.requests_sent(),
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v
    }
}

fn open_client(conn: &Connection, default_channel: Option<String>) -> Result<Client, Error> {
    let mut config = Config::new(
        &conn.token,
        &conn.endpoint,
        Storage::Directory(conn.state_dir.clone()),
    );
    config.default_channel_id = default_channel;
    config.platform = "cli".into();
    Client::new(config)
}

/// What a run must account for: the calls it restored from the state dir (an
/// earlier run's) plus the calls it enqueued. Exit 0 needs every one delivered.
struct Accounting {
    restored: u64,
    enqueued: u64,
    /// Records destroyed by journal damage found at start.
    lost_records: u64,
}

/// Prints what start-up found damaged; calls in lost records may never be delivered.
fn report_damage(client: &Client, conn: &Connection) -> u64 {
    let r = client.recovery();
    if r.is_damaged() {
        eprintln!(
            "warning: the journal in {} was damaged: {} record(s) lost ({} bytes skipped); calls in them may never be delivered",
            conn.state_dir.display(),
            r.lost_records,
            r.skipped_bytes
        );
    }
    r.lost_records as u64
}

/// Waits until `deadline`, then maps the outcome to the exit code and prints the summary.
fn finish(
    client: &Client,
    tally: &Tally,
    conn: &Connection,
    deadline: Instant,
    extra: serde_json::Value,
    acct: &Accounting,
) -> i32 {
    let result = client.shutdown(deadline.saturating_duration_since(Instant::now()));
    let last_error = client.last_error();
    let because = || {
        last_error
            .as_deref()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default()
    };
    let (state, mut code) = match result {
        FlushOutcome::Drained => ("drained", EXIT_OK),
        FlushOutcome::TimedOut { pending } => {
            eprintln!(
                "--wait expired: {pending} call(s) stay queued in {}; run again with the same --state-dir to deliver them{}",
                conn.state_dir.display(),
                because()
            );
            ("timed_out", EXIT_PENDING)
        }
        FlushOutcome::Paused { reason, pending } => {
            eprintln!(
                "delivery paused: {reason:?}{}; {pending} call(s) stay queued in {}",
                because(),
                conn.state_dir.display()
            );
            ("paused", EXIT_PENDING)
        }
    };
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let ok = load(&tally.delivered) + load(&tally.duplicate);
    let responsible = acct.restored + acct.enqueued;
    if code == EXIT_OK && ok < responsible {
        eprintln!(
            "{} of the {responsible} call(s) this run is responsible for ({} restored from {}) were not delivered",
            responsible - ok,
            acct.restored,
            conn.state_dir.display()
        );
        code = EXIT_NOT_DELIVERED;
    }
    if code == EXIT_OK && load(&tally.rejected) + load(&tally.dropped) + acct.lost_records > 0 {
        code = EXIT_NOT_DELIVERED;
    }
    let mut extra = extra;
    if let Some(obj) = extra.as_object_mut() {
        obj.insert("state".into(), state.into());
        obj.insert("responsible".into(), responsible.into());
        obj.insert("restored".into(), acct.restored.into());
        obj.insert("lost_records".into(), acct.lost_records.into());
        if let Some(e) = &last_error {
            obj.insert("last_error".into(), e.clone().into());
        }
    }
    let summary = tally.json(client, extra);
    if conn.json {
        println!("{summary}");
    } else {
        println!(
            "delivered {} duplicate {} rejected {} dropped {} pending {} requests {} ({state})",
            summary["delivered"],
            summary["duplicate"],
            summary["rejected"],
            summary["dropped"],
            summary["pending"],
            summary["requests"]
        );
    }
    code
}

fn wait_deadline(conn: &Connection) -> Result<Instant, i32> {
    if !(conn.wait.is_finite() && conn.wait >= 0.0) {
        eprintln!("--wait must be a number of seconds ≥ 0");
        return Err(EXIT_BAD_INPUT);
    }
    Ok(Instant::now() + Duration::from_secs_f64(conn.wait.min(1e9)))
}

pub fn send(args: SendArgs) -> i32 {
    let deadline = match wait_deadline(&args.conn) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let links = args.line_user_id.is_some() || args.id_token.is_some();
    if links && args.channel_id.is_none() {
        eprintln!(
            "error: --line-user-id and --id-token need --channel-id (Repro's LINE channel ID)"
        );
        return EXIT_BAD_INPUT;
    }
    if !links && args.channel_id.is_some() {
        eprintln!("error: --channel-id needs --line-user-id or --id-token");
        return EXIT_BAD_INPUT;
    }
    if let Some(Err(e)) = args
        .channel_id
        .as_deref()
        .map(repro_line_core::validate::channel_id)
    {
        eprintln!("error: --channel-id: {e}");
        return EXIT_BAD_INPUT;
    }
    let client = match open_client(&args.conn, None) {
        Ok(c) => c,
        Err(e) => return bad_input(&e),
    };
    let tally = Arc::new(Tally::default());
    tally.listen(&client, false);
    let lost_records = report_damage(&client, &args.conn);
    let mut calls = vec![Call::SetUserId(args.user_id.clone())];
    if let Some(line) = &args.line_user_id {
        let channel = args.channel_id.as_deref();
        calls.push(if args.unlink {
            Call::unlink(line, channel)
        } else {
            Call::link(line, channel)
        });
    }
    if let Some(token) = &args.id_token {
        calls.push(Call::link_id_token(token, args.channel_id.as_deref()));
    }
    if let Err(e) = client.apply(&calls, None) {
        return bad_input(&e);
    }
    let acct = Accounting {
        restored: client.recovery().restored_calls as u64,
        enqueued: calls.len() as u64,
        lost_records,
    };
    finish(
        &client,
        &tally,
        &args.conn,
        deadline,
        serde_json::json!({}),
        &acct,
    )
}

/// Rows are enqueued in chunks; each chunk and the resume checkpoint are one atomic append.
const REGISTER_CHUNK_ROWS: usize = 50;
/// Keep the queue below its bound so a large CSV never triggers QueueFull drops.
const REGISTER_MAX_PENDING: usize = 5_000;

pub fn register(args: RegisterArgs) -> i32 {
    let deadline = match wait_deadline(&args.conn) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // The channel is one flag, not a CSV cell: its error names the flag.
    if let Err(e) = repro_line_core::validate::channel_id(&args.channel_id) {
        eprintln!("error: --channel-id: {e}");
        return EXIT_BAD_INPUT;
    }
    // Read once: the bytes are both parsed and hashed, so `--csv <(…)` works and the
    // checkpoint belongs to exactly this content.
    let bytes = match std::fs::read(&args.csv) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.csv.display());
            return EXIT_BAD_INPUT;
        }
    };
    if let Err(message) = check_register_csv(&args.csv, &bytes) {
        eprintln!("{message}");
        return EXIT_BAD_INPUT;
    }
    let rows = match read_register_csv(&args.csv, &bytes) {
        Ok(rows) => rows,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_BAD_INPUT;
        }
    };
    // Check every row before enqueueing any, so bad input never leaves a half-registered file.
    for (i, (line, user)) in rows.iter().enumerate() {
        let check = repro_line_core::validate::user_id(user)
            .and_then(|_| repro_line_core::validate::line_user_id(line));
        if let Err(e) = check {
            eprintln!(
                "{}: row {} (line {}): {e}",
                args.csv.display(),
                i + 1,
                i + 2
            );
            return EXIT_BAD_INPUT;
        }
    }
    let client = match open_client(&args.conn, Some(args.channel_id.clone())) {
        Ok(c) => c,
        Err(e) => return bad_input(&e),
    };
    let tally = Arc::new(Tally::default());
    tally.listen(&client, false);
    let lost_records = report_damage(&client, &args.conn);
    let digest = content_digest(&bytes);
    // Keyed by content (and endpoint, channel): a new export at the same path, an
    // edited row or another pipe's output starts from row 1.
    let key = format!(
        "register:v2:{}:{}:{digest}",
        args.conn.endpoint.trim().trim_end_matches('/'),
        args.channel_id
    );
    // After damage (checkpoints are dropped by the SDK then) nothing is taken as enqueued.
    let done_before = client.checkpoint(&key).unwrap_or(0).min(rows.len() as u64) as usize;
    if done_before > 0 {
        eprintln!(
            "resumed: rows 1..{done_before} of this content (sha256 {}…) were enqueued by an earlier run; enqueueing rows {}..{}",
            &digest[..12],
            done_before + 1,
            rows.len()
        );
    }
    let progress = indicatif::ProgressBar::new(rows.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows enqueued {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress.set_position(done_before as u64);
    let restored = client.recovery().restored_calls as u64;
    let mut next = done_before;
    let acct = |next: usize| Accounting {
        restored,
        enqueued: 2 * (next - done_before) as u64,
        lost_records,
    };
    while next < rows.len() {
        while client.pending_ops() > REGISTER_MAX_PENDING {
            if Instant::now() >= deadline {
                progress.abandon();
                eprintln!(
                    "--wait expired with {} rows not yet enqueued; re-run to resume",
                    rows.len() - next
                );
                return finish(
                    &client,
                    &tally,
                    &args.conn,
                    deadline,
                    serde_json::json!({"rows": rows.len(), "enqueued_rows": next, "resumed_from_row": done_before}),
                    &acct(next),
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let end = (next + REGISTER_CHUNK_ROWS).min(rows.len());
        let calls: Vec<Call> = rows[next..end]
            .iter()
            .flat_map(|(line, user)| [Call::SetUserId(user.clone()), Call::link(line, None)])
            .collect();
        if let Err(e) = client.apply(&calls, Some((&key, end as u64))) {
            progress.abandon();
            eprintln!(
                "cannot enqueue rows {}..{}: {e}; delivering what is queued",
                next + 1,
                end
            );
            let code = finish(
                &client,
                &tally,
                &args.conn,
                deadline,
                serde_json::json!({"rows": rows.len(), "enqueued_rows": next, "resumed_from_row": done_before}),
                &acct(next),
            );
            return code.max(EXIT_NOT_DELIVERED);
        }
        next = end;
        progress.set_position(next as u64);
    }
    progress.finish_and_clear();
    finish(
        &client,
        &tally,
        &args.conn,
        deadline,
        serde_json::json!({"rows": rows.len(), "resumed_from_row": done_before}),
        &acct(next),
    )
}

/// The rules of `csv validate` (Format 1), from the bulk crate: one rule set, so a file
/// `register` accepts is one `csv validate` passes (a LINE ID on two user IDs, extra
/// columns and a repeated header column are refused, each naming its rule).
fn check_register_csv(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let opts = repro_line_bulk::ValidateOptions {
        format: repro_line_bulk::FormatChoice::One,
        sample: 10,
        ..Default::default()
    };
    let report = repro_line_bulk::validate_reader(
        path,
        std::io::Cursor::new(bytes.to_vec()),
        Some(bytes.len() as u64),
        &opts,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    if report.errors == 0 {
        return Ok(());
    }
    let mut message = String::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.severity == repro_line_bulk::Severity::Error)
    {
        message.push_str(&format!(
            "{}: line {}: {} ({})\n",
            path.display(),
            f.line,
            f.message,
            f.rule.id()
        ));
    }
    message.push_str(&format!(
        "{}: {} error(s); nothing was enqueued (`repro-line csv validate {}` lists them all)",
        path.display(),
        report.errors,
        path.display()
    ));
    Err(message)
}

/// SHA-256 of the CSV bytes, hex.
fn content_digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads `line_user_id,user_id` rows (either column order; header required).
fn read_register_csv(path: &Path, bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: bad header: {e}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let (Some(line_col), Some(user_col)) = (col("line_user_id"), col("user_id")) else {
        return Err(format!(
            "{}: the first line must be the header `line_user_id,user_id` (found `{}`)",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 1))?;
        let get = |c: usize| record.get(c).unwrap_or_default().to_owned();
        rows.push((get(line_col), get(user_col)));
    }
    Ok(rows)
}

fn bad_input(e: &Error) -> i32 {
    eprintln!("error: {e}");
    EXIT_BAD_INPUT
}

pub fn emulator(args: EmulatorArgs) -> i32 {
    let faults = match args
        .faults
        .as_deref()
        .map(str::parse::<FaultSpec>)
        .transpose()
    {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("bad --faults: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let config = EmulatorConfig {
        port: args.port,
        db: args.db,
        token: args.token,
        faults,
        cors_origins: args.cors,
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the emulator: {e}");
            return EXIT_NOT_DELIVERED;
        }
    };
    println!("listening on {}", emulator.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

pub fn demo() -> i32 {
    match run_demo() {
        Ok(()) => EXIT_OK,
        Err(message) => {
            eprintln!("demo failed: {message}");
            EXIT_NOT_DELIVERED
        }
    }
}

fn run_demo() -> Result<(), String> {
    let token = "demo-token";
    let emulator = Emulator::start(EmulatorConfig {
        port: 0,
        token: token.into(),
        ..EmulatorConfig::default()
    })
    .map_err(|e| e.to_string())?;
    println!("emulator listening on {}", emulator.url());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::new(
        token,
        emulator.url(),
        Storage::Directory(dir.path().to_path_buf()),
    );
    config.default_channel_id = Some("1234567890".into());
    config.platform = "cli-demo".into();
    let client = Client::new(config).map_err(|e| e.to_string())?;
    client.set_listener(Arc::new(|event: &Event| {
        if let Event::Op(r) = event {
            println!(
                "  report: seq {} {} → {:?}",
                r.seq,
                r.kind.as_str(),
                r.status
            );
        }
    }));
    let line_user_id = format!("U{}", uuid::Uuid::new_v4().simple());
    println!("setUserId(\"demo-user-001\")");
    client
        .set_user_id("demo-user-001")
        .map_err(|e| e.to_string())?;
    println!("setLineUserId(\"{line_user_id}\", channel 1234567890)");
    client
        .set_line_user_id(&line_user_id, None)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    match client.shutdown(Duration::from_secs(10)) {
        FlushOutcome::Drained => println!("delivered in {} ms", started.elapsed().as_millis()),
        other => return Err(format!("not delivered: {other:?}")),
    }
    let state = emulator.state();
    println!("emulator state:");
    println!(
        "{}",
        serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?
    );
    let linked = state
        .links
        .iter()
        .any(|l| l.line_user_id == line_user_id && l.user_id.as_deref() == Some("demo-user-001"));
    if !linked {
        return Err("the emulator does not show the link".into());
    }
    println!("registered link: channel 1234567890 / {line_user_id} → demo-user-001");
    Ok(())
}
