//! Cold start: `Client::new` on a store that holds N pending ops.
//!
//! `rl-cold prepare --dir D --pending 10000` fills D (endpoint down, so nothing leaves).
//! `rl-cold measure --dir D` (a fresh process) times `Client::new` and the RSS it adds.

use std::time::{Duration, Instant};

use repro_line_benches::{down_endpoint, line_id, proc_status_kib, Args, CHANNEL, TOKEN};
use repro_line_core::{Client, Config, Storage};
use serde_json::json;

fn config(dir: &str) -> Config {
    let mut c = Config::new(
        TOKEN,
        down_endpoint(),
        Storage::Directory(std::path::PathBuf::from(dir)),
    );
    c.default_channel_id = Some(CHANNEL.into());
    c
}

fn main() {
    let args = Args::from_env();
    let command = std::env::args().nth(1).unwrap_or_default();
    let dir = args.get("dir").expect("--dir").to_owned();
    match command.as_str() {
        "prepare" => {
            let pending = args.num("pending", 10_000);
            let _ = std::fs::remove_dir_all(&dir);
            let client = Client::new(config(&dir)).expect("client");
            client.set_user_id("bench-user").expect("set_user_id");
            for i in 1..pending {
                client
                    .set_line_user_id(&line_id(i), None)
                    .expect("call accepted");
            }
            let left = client.pending_ops();
            client.shutdown(Duration::ZERO);
            let bytes = std::fs::metadata(format!("{dir}/journal.log"))
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "{}",
                json!({"bench": "cold-prepare", "pending": left, "journal_bytes": bytes})
            );
        }
        "measure" => {
            let rss_before = proc_status_kib("VmRSS");
            let start = Instant::now();
            let client = Client::new(config(&dir)).expect("client");
            let new_ms = start.elapsed().as_secs_f64() * 1e3;
            let restored = client.recovery().restored_ops;
            let pending = client.pending_ops();
            let rss_after = proc_status_kib("VmRSS");
            // Let the delivery thread make its first (failing) attempt, then look again.
            std::thread::sleep(Duration::from_millis(200));
            let rss_settled = proc_status_kib("VmRSS");
            client.shutdown(Duration::ZERO);
            println!(
                "{}",
                json!({
                    "bench": "cold",
                    "new_ms": new_ms,
                    "restored_ops": restored,
                    "pending": pending,
                    "rss_before_kib": rss_before,
                    "rss_growth_kib": rss_after.saturating_sub(rss_before),
                    "rss_growth_settled_kib": rss_settled.saturating_sub(rss_before),
                    "hwm_kib": proc_status_kib("VmHWM"),
                })
            );
        }
        other => panic!("usage: rl-cold prepare|measure --dir D (got {other:?})"),
    }
}
