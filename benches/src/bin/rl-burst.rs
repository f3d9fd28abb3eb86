//! Requests per burst with the default debounce (200 ms) and batch size (100):
//! `rl-burst --url URL --calls 1000` makes the calls back to back, waits (without
//! `flush`, which would skip the debounce) until every call is reported, and
//! prints the requests the client sent. The orchestrator also reads the
//! endpoint's own request counter before and after.

use std::time::{Duration, Instant};

use repro_line_benches::{line_id, Args, CHANNEL, TOKEN};
use repro_line_core::{Client, Config, Storage};
use serde_json::json;

fn main() {
    let args = Args::from_env();
    let url = args.get("url").expect("--url").to_owned();
    let calls = args.num("calls", 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(TOKEN, url, Storage::Directory(dir.path().join("state")));
    config.default_channel_id = Some(CHANNEL.into());
    let debounce = config.debounce;
    let client = Client::new(config).expect("client");
    // Start the user outside the measured burst: its first request is not part of it.
    client.set_user_id("burst-user").expect("set_user_id");
    client.flush(Duration::from_secs(30));
    // Let the delivery thread poll the now-empty queue once, which ends the flush
    // (calls made in the instant after `flush` returns would otherwise skip the debounce).
    std::thread::sleep(Duration::from_millis(args.num("settle-ms", 50)));
    let base = client.requests_sent();

    let offset = args.num("offset", 0);
    let start = Instant::now();
    for i in 0..calls {
        client
            .set_line_user_id(&line_id(offset + i), None)
            .expect("call accepted");
    }
    let burst = start.elapsed();
    while client.pending_ops() > 0 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let drained = start.elapsed();
    let requests = client.requests_sent() - base;
    let pending = client.pending_ops();
    client.shutdown(Duration::from_secs(1));
    println!(
        "{}",
        json!({
            "bench": "burst",
            "calls": calls,
            "burst_ms": burst.as_secs_f64() * 1e3,
            "within_debounce": burst < debounce,
            "debounce_ms": debounce.as_millis() as u64,
            "requests": requests,
            "drained_ms": drained.as_secs_f64() * 1e3,
            "pending": pending,
        })
    );
}
