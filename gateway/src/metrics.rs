//! Counters and the latency histogram for `/metrics` (Prometheus text format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use repro_line_core::protocol::OpResult;

use crate::stopwatch::Histogram;

/// Upper bounds of the request latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Inner {
    /// (status, code) → count; code 0 for applied/duplicate.
    ops: BTreeMap<(&'static str, u32), u64>,
    /// HTTP status → count.
    requests: BTreeMap<u16, u64>,
    export_failures: u64,
    files_uploaded: u64,
}

pub struct Metrics {
    inner: Mutex<Inner>,
    /// Lock-free, like the writer's stopwatch.
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            inner: Mutex::default(),
            latency: Histogram::new(&BUCKETS),
        }
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ops(&self, results: &[OpResult]) {
        let mut m = self.lock();
        for r in results {
            let status = match r.status {
                repro_line_core::protocol::OpStatus::Applied => "applied",
                repro_line_core::protocol::OpStatus::Duplicate => "duplicate",
                repro_line_core::protocol::OpStatus::Rejected => "rejected",
            };
            let code = r.error.as_ref().map_or(0, |e| e.code);
            *m.ops.entry((status, code)).or_default() += 1;
        }
    }

    pub fn request(&self, status: u16, seconds: f64) {
        *self.lock().requests.entry(status).or_default() += 1;
        self.latency.observe(seconds);
    }

    pub fn export_failed(&self) {
        self.lock().export_failures += 1;
    }

    pub fn file_uploaded(&self) {
        self.lock().files_uploaded += 1;
    }

    /// The exposition; gauges from the store are passed in.
    pub fn render(&self, pending_rows: u64, oldest_pending_age_s: f64) -> String {
        let m = self.lock();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP repro_gateway_ops_total Ops answered, by status and rejection code."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_ops_total counter");
        for ((status, code), n) in &m.ops {
            let _ = writeln!(
                o,
                "repro_gateway_ops_total{{status=\"{status}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP repro_gateway_requests_total Batch requests, by HTTP status."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_requests_total counter");
        for (status, n) in &m.requests {
            let _ = writeln!(o, "repro_gateway_requests_total{{status=\"{status}\"}} {n}");
        }
        self.latency.render(
            &mut o,
            "repro_gateway_request_seconds",
            None,
            Some("Batch request latency."),
        );
        let _ = writeln!(
            o,
            "# HELP repro_gateway_pending_rows Applied links not yet in an uploaded file."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_pending_rows gauge");
        let _ = writeln!(o, "repro_gateway_pending_rows {pending_rows}");
        let _ = writeln!(
            o,
            "# HELP repro_gateway_oldest_pending_seconds Age of the oldest pending row."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_oldest_pending_seconds gauge");
        let _ = writeln!(
            o,
            "repro_gateway_oldest_pending_seconds {oldest_pending_age_s}"
        );
        let _ = writeln!(o, "# HELP repro_gateway_export_failures_total Failed export attempts (validation or upload).");
        let _ = writeln!(o, "# TYPE repro_gateway_export_failures_total counter");
        let _ = writeln!(
            o,
            "repro_gateway_export_failures_total {}",
            m.export_failures
        );
        let _ = writeln!(
            o,
            "# HELP repro_gateway_files_uploaded_total Export files uploaded."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_files_uploaded_total counter");
        let _ = writeln!(o, "repro_gateway_files_uploaded_total {}", m.files_uploaded);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_latency_is_a_cumulative_histogram_with_status_counts() {
        let m = Metrics::default();
        m.request(200, 0.002);
        m.request(200, 0.03);
        m.request(429, 3.0);
        let o = m.render(0, 0.0);
        assert!(o.contains("# TYPE repro_gateway_request_seconds histogram\n"));
        assert!(o.contains("repro_gateway_request_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(o.contains("repro_gateway_request_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(o.contains("repro_gateway_request_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(o.contains("repro_gateway_request_seconds_bucket{le=\"1\"} 2\n"));
        assert!(o.contains("repro_gateway_request_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(o.contains("repro_gateway_request_seconds_count 3\n"));
        assert!(o.contains("repro_gateway_request_seconds_sum 3.032\n"));
        assert!(o.contains("repro_gateway_requests_total{status=\"429\"} 1\n"));
    }
}
