//! Counters and the latency histogram for `/metrics` (Prometheus text format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use repro_line_core::protocol::OpResult;

/// Upper bounds of the request latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Inner {
    /// (status, code) → count; code 0 for applied/duplicate.
    ops: BTreeMap<(&'static str, u32), u64>,
    /// HTTP status → count.
    requests: BTreeMap<u16, u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    export_failures: u64,
    files_uploaded: u64,
}

#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut m = self.lock();
        *m.requests.entry(status).or_default() += 1;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                m.latency_buckets[i] += 1;
            }
        }
        m.latency_count += 1;
        m.latency_sum += seconds;
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
        let _ = writeln!(
            o,
            "# HELP repro_gateway_request_seconds Batch request latency."
        );
        let _ = writeln!(o, "# TYPE repro_gateway_request_seconds histogram");
        for (le, n) in BUCKETS.iter().zip(m.latency_buckets) {
            let _ = writeln!(o, "repro_gateway_request_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "repro_gateway_request_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_count
        );
        let _ = writeln!(o, "repro_gateway_request_seconds_sum {}", m.latency_sum);
        let _ = writeln!(o, "repro_gateway_request_seconds_count {}", m.latency_count);
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
