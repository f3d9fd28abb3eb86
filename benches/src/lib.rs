//! Shared helpers of the repro-line bench binaries (run by `scripts/bench.sh`).
//! Every binary prints one JSON object on stdout so the orchestrator
//! (`scripts/bench-run.py`) can build the tables of BENCHMARKS.md.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// The token every bench client and server uses.
pub const TOKEN: &str = "bench-token";
/// The channel every link op uses.
pub const CHANNEL: &str = "1234567890";

/// A distinct, valid LINE user ID for call `i` (distinct so nothing is coalesced).
pub fn line_id(i: u64) -> String {
    format!("U{i:032x}")
}

/// CPU time and peak RSS of this process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    /// `ru_maxrss`, KiB on Linux.
    pub max_rss_kib: u64,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// `getrusage(RUSAGE_SELF)`: every thread of this process, nothing else.
pub fn usage() -> Usage {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss as u64,
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`), 0 if unreadable.
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A latency histogram in nanoseconds, 1 ns to 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// p50/p90/p99/p99.9/max/mean of a nanosecond histogram, in microseconds.
pub fn summary_us(h: &Histogram<u64>) -> Value {
    let us = |ns: u64| (ns as f64 / 1000.0 * 100.0).round() / 100.0;
    json!({
        "count": h.len(),
        "p50_us": us(h.value_at_quantile(0.50)),
        "p90_us": us(h.value_at_quantile(0.90)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
        "mean_us": (h.mean() / 1000.0 * 100.0).round() / 100.0,
    })
}

/// Minimal `--name value` argument parsing for the bench binaries.
pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Args {
        Args(std::env::args().skip(1).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let flag = format!("--{name}");
        self.0
            .iter()
            .position(|a| *a == flag)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }

    pub fn num(&self, name: &str, default: u64) -> u64 {
        self.get(name)
            .map(|v| v.replace('_', "").parse().expect("numeric argument"))
            .unwrap_or(default)
    }

    pub fn str_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.0.contains(&format!("--{name}"))
    }
}

/// An endpoint nobody listens on: connection refused at once, so the queue only grows.
/// Binds a port and closes it, so the number is free but unused.
pub fn down_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ids_are_valid_and_distinct() {
        assert_eq!(line_id(0).len(), 33);
        assert_ne!(line_id(1), line_id(2));
        assert!(repro_line_core::validate::line_user_id(&line_id(u64::MAX)).is_ok());
    }

    #[test]
    fn usage_reads_this_process() {
        let u = usage();
        assert!(u.max_rss_kib > 0);
        assert!(proc_status_kib("VmRSS") > 0);
    }
}
