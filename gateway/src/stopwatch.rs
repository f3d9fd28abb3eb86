//! Per-phase stopwatch of the SQLite writer and the export pass, for `/metrics`: where a
//! request's time goes between being queued and being answered. Lock-free counters (a few
//! relaxed atomic adds per observation), so measuring does not slow the writer.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the duration buckets, in seconds (finer at the low end than the
/// request histogram: fsyncs and checkpoints live in 0.1–10 ms).
const SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the size buckets (batches, ops, pages).
const COUNTS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0,
];

/// A Prometheus histogram with fixed buckets (also the request latency in `metrics.rs`).
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths of the unit (µs for durations).
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|le| value <= *le)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn time(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub(crate) fn render(
        &self,
        o: &mut String,
        name: &str,
        label: Option<(&str, &str)>,
        help: Option<&str>,
    ) {
        if let Some(help) = help {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} histogram");
        }
        let extra = label.map_or(String::new(), |(k, v)| format!("{k}=\"{v}\","));
        let plain = label.map_or(String::new(), |(k, v)| format!("{{{k}=\"{v}\"}}"));
        let mut cumulative = 0;
        for (i, le) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(o, "{name}_bucket{{{extra}le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(o, "{name}_bucket{{{extra}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "{name}_sum{plain} {sum}");
        let _ = writeln!(o, "{name}_count{plain} {cumulative}");
    }
}

/// The export pass's steps (label `step` of `repro_gateway_export_step_seconds`).
#[derive(Clone, Copy)]
pub enum ExportStep {
    /// One claim step on the writer thread (rows into a file).
    Claim,
    /// Reading one file's rows on the read connection.
    ReadRows,
    /// Rendering and validating one file.
    Validate,
    /// The S3 upload of one file.
    Upload,
    /// Marking one file uploaded (writer thread).
    Mark,
    /// One purge step of uploaded rows (writer thread).
    Purge,
}

const EXPORT_STEPS: [(ExportStep, &str); 6] = [
    (ExportStep::Claim, "claim"),
    (ExportStep::ReadRows, "read_rows"),
    (ExportStep::Validate, "validate"),
    (ExportStep::Upload, "upload"),
    (ExportStep::Mark, "mark"),
    (ExportStep::Purge, "purge"),
];

/// The SQLite writer's and the exporter's phases.
pub struct StoreTimings {
    /// Per batch: queued → its group starts applying.
    pub queue_wait: Histogram,
    /// Per group: applying every batch (before the commit).
    pub apply: Histogram,
    /// Per group: the commit (the WAL fsync).
    pub commit: Histogram,
    pub group_batches: Histogram,
    pub group_ops: Histogram,
    /// Per non-request job on the writer thread (export claim, mark, purge).
    pub job: Histogram,
    pub checkpoint: Histogram,
    pub checkpoint_pages: Histogram,
    export: Vec<Histogram>,
}

impl Default for StoreTimings {
    fn default() -> StoreTimings {
        StoreTimings {
            queue_wait: Histogram::new(&SECONDS),
            apply: Histogram::new(&SECONDS),
            commit: Histogram::new(&SECONDS),
            group_batches: Histogram::new(&COUNTS),
            group_ops: Histogram::new(&COUNTS),
            job: Histogram::new(&SECONDS),
            checkpoint: Histogram::new(&SECONDS),
            checkpoint_pages: Histogram::new(&COUNTS),
            export: EXPORT_STEPS
                .iter()
                .map(|_| Histogram::new(&SECONDS))
                .collect(),
        }
    }
}

impl StoreTimings {
    pub fn export(&self, step: ExportStep) -> &Histogram {
        &self.export[step as usize]
    }

    /// The exposition of every histogram.
    pub fn render(&self, o: &mut String) {
        let series: [(&Histogram, &str, &str); 8] = [
            (
                &self.queue_wait,
                "repro_gateway_writer_queue_wait_seconds",
                "SQLite: time a batch waited in the writer's queue before its group began.",
            ),
            (
                &self.apply,
                "repro_gateway_writer_apply_seconds",
                "SQLite: time a commit group took to apply its batches (before the commit).",
            ),
            (
                &self.commit,
                "repro_gateway_writer_commit_seconds",
                "SQLite: time a group's commit took (the WAL fsync).",
            ),
            (
                &self.group_batches,
                "repro_gateway_writer_group_batches",
                "SQLite: batches per commit group.",
            ),
            (
                &self.group_ops,
                "repro_gateway_writer_group_ops",
                "SQLite: ops per commit group.",
            ),
            (
                &self.job,
                "repro_gateway_writer_job_seconds",
                "SQLite: time an export job (claim step, mark, purge step) held the writer.",
            ),
            (
                &self.checkpoint,
                "repro_gateway_checkpoint_seconds",
                "SQLite: time a WAL checkpoint took.",
            ),
            (
                &self.checkpoint_pages,
                "repro_gateway_checkpoint_pages",
                "SQLite: WAL pages copied into the database per checkpoint.",
            ),
        ];
        for (h, name, help) in series {
            h.render(o, name, None, Some(help));
        }
        let name = "repro_gateway_export_step_seconds";
        for (i, (_, step)) in EXPORT_STEPS.iter().enumerate() {
            let help = (i == 0)
                .then_some("Time of each export step, by step (per file or per claim/purge step).");
            self.export[i].render(o, name, Some(("step", step)), help);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_adds_up() {
        let t = StoreTimings::default();
        t.commit.observe(0.003);
        t.commit.observe(0.07);
        t.commit.observe(9.0);
        t.export(ExportStep::Upload).observe(0.02);
        let mut o = String::new();
        t.render(&mut o);
        assert!(o.contains("repro_gateway_writer_commit_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(o.contains("repro_gateway_writer_commit_seconds_bucket{le=\"0.1\"} 2\n"));
        assert!(o.contains("repro_gateway_writer_commit_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(o.contains("repro_gateway_writer_commit_seconds_count 3\n"));
        assert!(o.contains("repro_gateway_writer_commit_seconds_sum 9.073\n"));
        assert!(o.contains(
            "repro_gateway_export_step_seconds_bucket{step=\"upload\",le=\"0.025\"} 1\n"
        ));
        assert!(o.contains("repro_gateway_export_step_seconds_count{step=\"claim\"} 0\n"));
        assert_eq!(
            o.matches("# TYPE repro_gateway_export_step_seconds")
                .count(),
            1
        );
    }
}
