//! The import jobs the emulator keeps in memory (`GET /v1/line_user_imports/{id}`).

use std::collections::BTreeMap;

use serde::Serialize;
use tempfile::NamedTempFile;
use uuid::Uuid;

/// Jobs kept in memory; beyond this the oldest finished one is forgotten.
const MAX_JOBS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ImportType {
    Deliverable,
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum JobStatus {
    Uploading,
    #[serde(rename = "Import Completed")]
    Completed,
    Error,
}

/// `GET /v1/line_user_imports/{job_id}`.
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    pub(crate) job_id: Uuid,
    pub(crate) channel_id: String,
    #[serde(rename = "type")]
    pub(crate) kind: ImportType,
    /// 1 or 2 once the validator has read a valid header.
    pub(crate) format: Option<u8>,
    pub(crate) status: JobStatus,
    pub(crate) bytes: u64,
    pub(crate) rows: u64,
    /// Distinct LINE user IDs written (0 unless `Import Completed`).
    pub(crate) imported: u64,
    /// Of those, the ones that had no entry before.
    pub(crate) created: u64,
    pub(crate) errors: u64,
    pub(crate) warnings: u64,
    /// Why the job ended in `Error`.
    pub(crate) message: Option<String>,
    pub(crate) created_at: String,
    pub(crate) finished_at: Option<String>,
    /// Written by the validator (`--errors-out`); deleted with the job.
    #[serde(skip)]
    pub(crate) errors_csv: Option<NamedTempFile>,
}

/// Import jobs by ID; v7 UUIDs, so the map is in creation order.
#[derive(Debug, Default)]
pub(crate) struct Jobs(pub(crate) BTreeMap<Uuid, Job>);

impl Jobs {
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn insert(&mut self, job: Job) {
        if self.0.len() >= MAX_JOBS {
            let oldest_done = self
                .0
                .iter()
                .find(|(_, j)| j.status != JobStatus::Uploading)
                .map(|(id, _)| *id);
            if let Some(id) = oldest_done {
                self.0.remove(&id);
            }
        }
        self.0.insert(job.job_id, job);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Job> {
        Uuid::parse_str(id).ok().and_then(|id| self.0.get(&id))
    }
}
