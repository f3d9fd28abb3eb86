//! The configured store: SQLite (one process) or PostgreSQL (replicas). The smallest
//! common surface the server and the exporter need.

use std::sync::Mutex;

use repro_line_core::protocol::OpResult;
use uuid::Uuid;

use crate::lock;
use crate::pg::PgStore;
use crate::store::{Action, Backlog, ExportFile, Store};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
}

pub enum Backend {
    Sqlite(Mutex<Store>),
    Postgres(Box<PgStore>),
}

impl Backend {
    pub fn ping(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(s) => Ok(lock(s).ping()?),
            Backend::Postgres(p) => Ok(p.ping()?),
        }
    }

    pub fn apply_batch(
        &self,
        app: &str,
        device_id: &Uuid,
        ops: &[(Uuid, u64, Action)],
        now_ms: u64,
    ) -> Result<Vec<OpResult>, StoreError> {
        match self {
            Backend::Sqlite(s) => Ok(lock(s).apply_batch(app, device_id, ops, now_ms)?),
            Backend::Postgres(p) => Ok(p.apply_batch(app, device_id, ops, now_ms)?),
        }
    }

    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        match self {
            Backend::Sqlite(s) => Ok(lock(s).backlog()?),
            Backend::Postgres(p) => Ok(p.backlog()?),
        }
    }

    pub fn claim_files(
        &self,
        gateway_id: &str,
        max_rows: u64,
        max_bytes: u64,
        now_ms: u64,
        key_of: &dyn Fn(&str, &str, &str) -> Option<String>,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(s) => {
                Ok(lock(s).claim_files(gateway_id, max_rows, max_bytes, now_ms, key_of)?)
            }
            Backend::Postgres(p) => {
                Ok(p.claim_files(gateway_id, max_rows, max_bytes, now_ms, key_of)?)
            }
        }
    }

    /// Uploads each file not yet uploaded with `upload`, marking it after success.
    pub fn upload_pending(
        &self,
        now_ms: &dyn Fn() -> u64,
        upload: &mut dyn FnMut(&ExportFile) -> Result<(), String>,
    ) -> Result<usize, String> {
        match self {
            Backend::Sqlite(s) => {
                let files = lock(s)
                    .files_to_upload()
                    .map_err(|e| format!("store: {e}"))?;
                let mut uploaded = 0;
                for file in files {
                    upload(&file)?;
                    lock(s)
                        .mark_uploaded(file.id, now_ms())
                        .map_err(|e| format!("store: {e}"))?;
                    uploaded += 1;
                }
                Ok(uploaded)
            }
            Backend::Postgres(p) => p.upload_pending(now_ms, upload),
        }
    }
}
