//! The emulator in its own process, so a bench client's CPU is measured alone.
//! Prints `{"url": …}` once listening; each `stats` line on stdin is answered
//! with one JSON line of the emulator's counters; EOF on stdin stops it.
//! `rl-emulator-server [--faults SPEC]` (built with `--features emulator`).

use std::io::{BufRead, Write};

use repro_line_benches::{Args, TOKEN};
use repro_line_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

fn main() {
    let args = Args::from_env();
    let emu = Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: args.str_or("faults", "").parse().expect("fault spec"),
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", json!({"url": emu.url()}));
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "stats" {
            let stats = serde_json::to_value(emu.stats()).unwrap_or_default();
            let _ = writeln!(out, "{stats}");
            let _ = out.flush();
        }
    }
}
