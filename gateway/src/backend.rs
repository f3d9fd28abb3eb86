//! The configured store: SQLite (one process) or PostgreSQL (replicas). The smallest
//! common surface the server and the exporter need.

use std::sync::Arc;
use std::time::Instant;

use repro_line_core::protocol::OpResult;
use uuid::Uuid;

use crate::pg::PgStore;
use crate::stopwatch::{ExportStep, StoreTimings};
use crate::store::{Action, Backlog, ClaimStep, ExportFile, CLAIM_CHUNK};
use crate::writer::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("cannot start the store's thread: {0}")]
    Thread(std::io::Error),
    #[error("the store's writer thread has stopped")]
    WriterStopped,
    #[error("sqlite group commit: {0}")]
    Group(String),
    #[error("cannot fsync the SQLite WAL: {0}")]
    Sync(std::io::Error),
}

/// `key_of(app, channel, file name)`: the S3 key of a new export file.
pub type KeyOf = Arc<dyn Fn(&str, &str, &str) -> Option<String> + Send + Sync>;

pub enum Backend {
    Sqlite(Box<SqliteStore>),
    Postgres(Box<PgStore>),
}

impl Backend {
    pub fn ping(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(s) => s.ping(),
            Backend::Postgres(p) => Ok(p.ping()?),
        }
    }

    /// Answers after the batch is committed.
    pub async fn apply_batch(
        &self,
        app: &str,
        device_id: &Uuid,
        ops: Vec<(Uuid, u64, Action)>,
        now_ms: u64,
    ) -> Result<Vec<OpResult>, StoreError> {
        match self {
            Backend::Sqlite(s) => s.apply_batch(app, device_id, ops, now_ms).await,
            Backend::Postgres(p) => Ok(tokio::task::block_in_place(|| {
                p.apply_batch(app, device_id, &ops, now_ms)
            })?),
        }
    }

    /// The SQLite writer's stopwatch (PostgreSQL has its own statistics).
    pub fn timings(&self) -> Option<&StoreTimings> {
        match self {
            Backend::Sqlite(s) => Some(s.timings()),
            Backend::Postgres(_) => None,
        }
    }

    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        match self {
            Backend::Sqlite(s) => s.backlog(),
            Backend::Postgres(p) => Ok(p.backlog()?),
        }
    }

    /// Puts the pending rows into files (SQLite: in short steps between request groups,
    /// up to the rows committed when the pass began).
    pub fn claim_files(
        &self,
        gateway_id: &str,
        max_rows: u64,
        max_bytes: u64,
        now_ms: u64,
        key_of: KeyOf,
    ) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(s) => {
                let up_to = s.run(|st| st.max_row_id())??;
                loop {
                    let (gateway_id, key_of) = (gateway_id.to_owned(), Arc::clone(&key_of));
                    let started = Instant::now();
                    // Not fsynced one by one (each fsync held the writer, and so the
                    // requests behind it): the WAL is fsynced once the pass is claimed.
                    let step = s.run(move |st| {
                        st.unsynced(|st| {
                            st.claim_step(
                                &gateway_id,
                                max_rows,
                                max_bytes,
                                CLAIM_CHUNK,
                                up_to,
                                now_ms,
                                &*key_of,
                            )
                        })
                    })??;
                    s.timings()
                        .export(ExportStep::Claim)
                        .time(started.elapsed());
                    if step == ClaimStep::Done {
                        // Sealed files are uploaded next: their claims must survive a power
                        // loss first, or a re-claim could upload the rows under a new name.
                        return s.sync_wal();
                    }
                }
            }
            Backend::Postgres(p) => {
                p.claim_files(gateway_id, max_rows, max_bytes, now_ms, &*key_of)?;
                Ok(())
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
                let store_err = |e: StoreError| format!("store: {e}");
                let files = s.sealed_files().map_err(store_err)?;
                let mut uploaded = 0;
                let t = s.timings();
                for mut file in files {
                    let started = Instant::now();
                    file.rows = s.file_rows(file.id).map_err(store_err)?;
                    t.export(ExportStep::ReadRows).time(started.elapsed());
                    upload(&file)?;
                    let (id, now) = (file.id, now_ms());
                    let started = Instant::now();
                    s.run(move |st| st.mark_uploaded(id, now))
                        .map_err(store_err)?
                        .map_err(|e| store_err(e.into()))?;
                    t.export(ExportStep::Mark).time(started.elapsed());
                    uploaded += 1;
                }
                // The uploaded rows go in small deletes too.
                loop {
                    let started = Instant::now();
                    let purged = s
                        .run(|st| st.unsynced(|st| st.purge_step(CLAIM_CHUNK)))
                        .map_err(store_err)?
                        .map_err(|e| store_err(e.into()))?;
                    t.export(ExportStep::Purge).time(started.elapsed());
                    if purged == 0 {
                        break;
                    }
                }
                Ok(uploaded)
            }
            Backend::Postgres(p) => p.upload_pending(now_ms, upload),
        }
    }
}
