//! Caller cost: how long `Client::set_line_user_id` takes to return with the
//! file store, per call, as a histogram (p50/p99), on 1 or more threads; and
//! the same workload as one rusqlite insert per call (WAL, synchronous=NORMAL).
//!
//! `rl-enqueue --mode file|sqlite --calls 200000 --threads 1 [--endpoint down|URL]`
//! `--calls` is per thread. The default endpoint is down (connection refused), so the
//! queue only grows; `max_queue_ops` is raised so nothing is dropped.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use repro_line_benches::{
    down_endpoint, latency_histogram, line_id, summary_us, Args, CHANNEL, TOKEN,
};
use repro_line_core::{Client, Config, Storage};
use serde_json::json;

fn main() {
    let args = Args::from_env();
    let mode = args.str_or("mode", "file").to_owned();
    let calls = args.num("calls", 200_000);
    let threads = args.num("threads", 1).max(1);
    let dir = tempfile::tempdir_in(args.str_or("dir", "/tmp")).expect("temp dir");
    let endpoint = match args.str_or("endpoint", "down") {
        "down" => down_endpoint(),
        url => url.to_owned(),
    };

    let (hist, wall, extra) = match mode.as_str() {
        "file" => run_client(&endpoint, dir.path(), calls, threads),
        "sqlite" => run_sqlite(dir.path(), calls, threads),
        other => panic!("unknown mode {other}"),
    };
    let total = calls * threads;
    let mut out = json!({
        "bench": "enqueue",
        "mode": mode,
        "threads": threads,
        "calls": total,
        "wall_s": wall.as_secs_f64(),
        "calls_per_s": total as f64 / wall.as_secs_f64(),
        "latency": summary_us(&hist),
    });
    out.as_object_mut()
        .expect("object")
        .extend(extra.as_object().cloned().unwrap_or_default());
    println!("{out}");
}

/// Runs `per_thread` timed calls of `f(thread, i)` on `threads` threads started together.
fn timed<F>(threads: u64, per_thread: u64, f: F) -> (Histogram<u64>, Duration)
where
    F: Fn(u64, u64) + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let f = Arc::clone(&f);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut h = latency_histogram();
                barrier.wait();
                for i in 0..per_thread {
                    let start = Instant::now();
                    f(t, i);
                    h.saturating_record(start.elapsed().as_nanos() as u64);
                }
                h
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all = latency_histogram();
    for h in handles {
        all.add(h.join().expect("bench thread"))
            .expect("same bounds");
    }
    (all, start.elapsed())
}

fn run_client(
    endpoint: &str,
    dir: &std::path::Path,
    per_thread: u64,
    threads: u64,
) -> (Histogram<u64>, Duration, serde_json::Value) {
    let mut config = Config::new(TOKEN, endpoint, Storage::Directory(dir.join("state")));
    config.default_channel_id = Some(CHANNEL.into());
    config.max_queue_ops = 1_000_000.max((per_thread * threads) as usize + 1);
    let client = Arc::new(Client::new(config).expect("client"));
    client.set_user_id("bench-user").expect("set_user_id");
    let ids: Arc<Vec<Vec<String>>> = Arc::new(
        (0..threads)
            .map(|t| (0..per_thread).map(|i| line_id((t << 40) | i)).collect())
            .collect(),
    );
    let c = Arc::clone(&client);
    let (hist, wall) = timed(threads, per_thread, move |t, i| {
        c.set_line_user_id(&ids[t as usize][i as usize], None)
            .expect("call accepted");
    });
    let pending = client.pending_ops();
    let journal = std::fs::metadata(dir.join("state/journal.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    client.shutdown(Duration::ZERO);
    (
        hist,
        wall,
        json!({"pending_after": pending, "journal_bytes": journal, "endpoint": endpoint}),
    )
}

fn run_sqlite(
    dir: &std::path::Path,
    per_thread: u64,
    threads: u64,
) -> (Histogram<u64>, Duration, serde_json::Value) {
    let conn = rusqlite::Connection::open(dir.join("queue.sqlite")).expect("sqlite open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE ops (seq INTEGER PRIMARY KEY, op_id BLOB NOT NULL, body TEXT NOT NULL);",
    )
    .expect("sqlite schema");
    let conn = Arc::new(Mutex::new((conn, 0u64)));
    let ids: Arc<Vec<Vec<String>>> = Arc::new(
        (0..threads)
            .map(|t| (0..per_thread).map(|i| line_id((t << 40) | i)).collect())
            .collect(),
    );
    let c = Arc::clone(&conn);
    let (hist, wall) = timed(threads, per_thread, move |t, i| {
        // The same per-call work as the SDK: validate, build the op (UUIDv7 + JSON), store it.
        let line = &ids[t as usize][i as usize];
        repro_line_core::validate::line_user_id(line).expect("valid");
        let op_id = uuid::Uuid::now_v7();
        let body = serde_json::to_string(&repro_line_core::protocol::OpKind::LinkLineId {
            user_id: "bench-user".into(),
            line_user_id: line.clone(),
            channel_id: CHANNEL.into(),
        })
        .expect("json");
        let mut guard = c.lock().expect("lock");
        guard.1 += 1;
        let seq = guard.1;
        guard
            .0
            .prepare_cached("INSERT INTO ops (seq, op_id, body) VALUES (?1, ?2, ?3)")
            .expect("prepare")
            .execute(rusqlite::params![seq as i64, &op_id.as_bytes()[..], body])
            .expect("insert");
    });
    let rows: i64 = conn
        .lock()
        .expect("lock")
        .0
        .query_row("SELECT count(*) FROM ops", [], |r| r.get(0))
        .expect("count");
    (hist, wall, json!({"rows": rows}))
}
