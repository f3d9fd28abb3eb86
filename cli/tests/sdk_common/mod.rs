//! Helpers for the SDK subcommand tests: the real binary against a real emulator on loopback.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use repro_line_emulator::{Emulator, EmulatorConfig};

pub const TOKEN: &str = "cli-token";
pub const CHANNEL: &str = "1234567890";

pub fn emulator(faults: &str) -> Emulator {
    Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: faults.parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repro-line"));
    c.env_remove("REPRO_LINE_TOKEN")
        .env_remove("REPRO_LINE_LOG");
    c
}

/// `register` with the usual flags; `extra` goes last.
pub fn register(endpoint: &str, state: &Path, csv: &Path, wait: &str) -> Command {
    let mut c = bin();
    c.args(["register", "--endpoint", endpoint, "--token", TOKEN])
        .args(["--channel-id", CHANNEL, "--json", "--wait", wait])
        .arg("--state-dir")
        .arg(state)
        .arg("--csv")
        .arg(csv);
    c
}

pub fn send(endpoint: &str, state: &Path, user: &str, wait: &str) -> Command {
    let mut c = bin();
    c.args(["send", "--endpoint", endpoint, "--token", TOKEN])
        .args(["--user-id", user, "--json", "--wait", wait])
        .arg("--state-dir")
        .arg(state);
    c
}

pub fn line_id(i: usize) -> String {
    format!("U{:032x}", 0x5151_0000u64 + i as u64)
}

/// Writes `line_user_id,user_id` rows `from..to` (user `member-i`), returning them.
pub fn write_csv(path: &Path, from: usize, to: usize) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = (from..to)
        .map(|i| (line_id(i), format!("member-{i:05}")))
        .collect();
    let mut text = String::from("line_user_id,user_id\n");
    for (l, u) in &rows {
        text.push_str(&format!("{l},{u}\n"));
    }
    std::fs::write(path, text).unwrap();
    rows
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "stdout is not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every row linked to its user on the emulator.
pub fn assert_linked(emu: &Emulator, rows: &[(String, String)]) {
    let links = emu.state().links;
    for (line, user) in rows {
        assert!(
            links.iter().any(|l| &l.line_user_id == line
                && l.user_id.as_deref() == Some(user.as_str())
                && l.channel_id == CHANNEL),
            "{line} is not linked to {user}"
        );
    }
}
