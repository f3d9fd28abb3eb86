//! Delivery throughput and CPU per op of the client process: N identity ops
//! from the first call until the endpoint has answered every one, over loopback.
//! Runs alone in its process so `getrusage(RUSAGE_SELF)` is the client's CPU only.
//!
//! `rl-deliver --url URL --ops 100000 [--batch 100] [--debounce-ms 5]`
//! One `set_user_id`, then N-1 `set_line_user_id` with distinct LINE IDs (nothing coalesces).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use repro_line_benches::{proc_status_kib, usage, Args, CHANNEL, TOKEN};
use repro_line_core::{Client, Config, DeliveryStatus, Event, FlushOutcome, Storage};
use serde_json::json;

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    duplicate: AtomicU64,
    other: AtomicU64,
}

fn main() {
    let args = Args::from_env();
    let url = args.get("url").expect("--url").to_owned();
    let n = args.num("ops", 100_000);
    let dir = tempfile::tempdir_in(args.str_or("dir", "/tmp")).expect("temp dir");
    let mut config = Config::new(TOKEN, url, Storage::Directory(dir.path().join("state")));
    config.default_channel_id = Some(CHANNEL.into());
    config.max_batch_ops = args.num("batch", 100) as usize;
    config.debounce = Duration::from_millis(args.num("debounce-ms", 5));
    config.max_queue_ops = 1_000_000.max(n as usize);
    config.request_timeout = Duration::from_secs(30);

    let counts = Arc::new(Counts::default());
    let before = usage();
    let rss_before = proc_status_kib("VmRSS");
    let client = Client::new(config).expect("client");
    let c = Arc::clone(&counts);
    client.set_listener(Arc::new(move |e: &Event| {
        if let Event::Op(r) = e {
            match r.status {
                DeliveryStatus::Delivered => &c.delivered,
                DeliveryStatus::Duplicate => &c.duplicate,
                _ => &c.other,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
    }));

    let start = Instant::now();
    client.set_user_id("bench-user").expect("set_user_id");
    // IDs are formatted on the fly (into one buffer) so they do not count towards the peak RSS.
    let mut id = String::with_capacity(40);
    for i in 1..n {
        id.clear();
        let _ = write!(id, "U{i:032x}");
        client.set_line_user_id(&id, None).expect("call accepted");
    }
    let enqueued_at = start.elapsed();
    let after_enqueue = usage();
    let flush = client.flush(Duration::from_secs(600));
    let elapsed = start.elapsed();
    let after = usage();
    let requests = client.requests_sent();
    client.shutdown(Duration::from_secs(1));
    let journal = std::fs::metadata(dir.path().join("state/journal.log"))
        .map(|m| m.len())
        .unwrap_or(0);

    let cpu = after.cpu().saturating_sub(before.cpu());
    let enqueue_cpu = after_enqueue.cpu().saturating_sub(before.cpu());
    println!(
        "{}",
        json!({
            "bench": "deliver",
            "ops": n,
            "drained": flush == FlushOutcome::Drained,
            "elapsed_s": elapsed.as_secs_f64(),
            "enqueue_s": enqueued_at.as_secs_f64(),
            "ops_per_s": n as f64 / elapsed.as_secs_f64(),
            "cpu_s": cpu.as_secs_f64(),
            "user_s": (after.user.saturating_sub(before.user)).as_secs_f64(),
            "sys_s": (after.sys.saturating_sub(before.sys)).as_secs_f64(),
            "cpu_us_per_op": cpu.as_secs_f64() * 1e6 / n as f64,
            "enqueue_cpu_us_per_op": enqueue_cpu.as_secs_f64() * 1e6 / n as f64,
            "requests": requests,
            "delivered": counts.delivered.load(Ordering::Relaxed),
            "duplicate_reports": counts.duplicate.load(Ordering::Relaxed),
            "other_reports": counts.other.load(Ordering::Relaxed),
            "peak_rss_kib": after.max_rss_kib,
            "rss_before_client_kib": rss_before,
            "journal_bytes_after": journal,
        })
    );
}
