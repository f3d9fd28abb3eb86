//! `repro-line register` is SIGKILLed at random moments while the endpoint
//! answers 30% of requests with 503/429 (Retry-After: 1) and drops 10% of
//! connections after applying; restarted with the same state dir it must end
//! with every row linked, no op applied twice, Retry-After never violated and
//! seq never going backwards.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repro_line_emulator::{Emulator, EmulatorConfig};

const TOKEN: &str = "crash-token";
const CHANNEL: &str = "1234567890";

fn write_csv(path: &std::path::Path, rows: usize) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = (0..rows)
        .map(|i| {
            (
                format!("U{:032x}", 0xabc0_0000u64 + i as u64),
                format!("member-{i:05}"),
            )
        })
        .collect();
    let mut text = String::from("line_user_id,user_id\n");
    for (l, u) in &rows {
        text.push_str(&format!("{l},{u}\n"));
    }
    std::fs::write(path, text).unwrap();
    rows
}

/// Deterministic pseudo-random kill delays (no RNG crate needed for a test).
fn delays(seed: u64, n: usize) -> Vec<Duration> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(300 + x % 1500)
        })
        .collect()
}

fn run_register_under_faults(rows: usize, kills: usize, seed: u64, faults: &str) {
    let emu = Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: format!("{faults},retry_after=1,seed={seed}")
            .parse()
            .unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("members.csv");
    let expected = write_csv(&csv, rows);
    let state = dir.path().join("state");
    let register = || {
        Command::new(env!("CARGO_BIN_EXE_repro-line"))
            .args([
                "register",
                "--endpoint",
                &emu.url(),
                "--token",
                TOKEN,
                "--channel-id",
                CHANNEL,
                "--json",
                "--wait",
                "300",
            ])
            .arg("--state-dir")
            .arg(&state)
            .arg("--csv")
            .arg(&csv)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    for delay in delays(seed, kills) {
        let mut child = register();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // Half the requests fail and each failure waits ≥ 1 s (Retry-After or backoff), so the
    // budget grows with the batches to deliver: ~2.5 s per 100 ops is typical, 5 s is generous.
    let budget = Duration::from_secs((rows as u64 / 10).max(600));
    let started = Instant::now();
    let output = loop {
        let out = register().wait_with_output().unwrap();
        if out.status.code() != Some(3) || started.elapsed() > budget {
            break out;
        }
    };
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert_eq!(output.status.code(), Some(0), "final run: {summary}");
    assert_eq!(summary["pending"], 0);

    let links = emu.state().links;
    for (line, user) in &expected {
        assert!(
            links.iter().any(|l| &l.line_user_id == line
                && l.user_id.as_deref() == Some(user.as_str())
                && l.channel_id == CHANNEL),
            "missing link for {user}"
        );
    }
    assert_eq!(links.len(), expected.len());
    let stats = emu.stats();
    assert_eq!(
        stats.ops_applied,
        2 * rows as u64,
        "every row's set_user_id + link applied exactly once"
    );
    assert_eq!(stats.retry_after_violations, 0);
    assert_eq!(stats.seq_regressions, 0);
    assert!(
        stats.faults.values().sum::<u64>() > 0,
        "faults were injected"
    );
    // scripts/soak.sh copies this line into RELIABILITY.md.
    println!(
        "soak: rows={rows} kills={kills} seed={seed} faults={faults} delivery_s={:.0} stats={}",
        started.elapsed().as_secs_f64(),
        serde_json::to_string(&stats).unwrap_or_default()
    );
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The CI-sized run of the acceptance test. `scripts/soak.sh` runs the
/// full soak through the same code with REPRO_LINE_SOAK_ROWS=20000, REPRO_LINE_SOAK_KILLS=10.
#[test]
fn register_survives_sigkills_and_faults() {
    let rows = env_or("REPRO_LINE_SOAK_ROWS", 2_000);
    let kills = env_or("REPRO_LINE_SOAK_KILLS", 3);
    let seed = env_or("REPRO_LINE_SOAK_SEED", 0x5eed) as u64;
    run_register_under_faults(rows, kills, seed, "503=0.15,429=0.15,reset_after=0.1");
}

/// The soak's fault mix adds resets before applying and plain 500s.
#[test]
fn register_survives_the_full_fault_mix() {
    let rows = env_or("REPRO_LINE_SOAK_ROWS", 1_000);
    let kills = env_or("REPRO_LINE_SOAK_KILLS", 3);
    let seed = env_or("REPRO_LINE_SOAK_SEED", 0xfa17) as u64 + 1;
    run_register_under_faults(
        rows,
        kills,
        seed,
        "503=0.15,429=0.15,reset_after=0.1,reset_before=0.05,500=0.05",
    );
}
