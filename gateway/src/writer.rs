//! The SQLite store behind one writer thread: request batches queue up while a commit is
//! being fsynced and are then applied together in one transaction (group commit), so the
//! fsync cost is paid once per group, not per request, and no tokio worker waits on disk.
//! The exporter's writes (claim steps, marks, purges) are small jobs on the same queue, so
//! a request never waits behind a long transaction. Reads (export files, backlog, ping)
//! use a separate connection on WAL snapshots.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use repro_line_core::protocol::OpResult;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::backend::StoreError;
use crate::lock;
use crate::stopwatch::StoreTimings;
use crate::store::{self, Action, Backlog, ExportFile, Store};

/// Batches per group commit at most (bounds one transaction's length).
const MAX_GROUP: usize = 256;
/// WAL bytes before the writer checkpoints itself; normally the checkpointer thread
/// keeps the WAL well below this.
const WRITER_AUTOCHECKPOINT_BYTES: u32 = 80 << 20;

/// How often the checkpointer runs: often, so that each checkpoint (and the fsync of the
/// database file that ends it) stays small; a long one stalls the WAL fsyncs of commits.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

type Reply = tokio::sync::oneshot::Sender<Result<Vec<OpResult>, String>>;

struct ApplyJob {
    app: String,
    device_id: Uuid,
    ops: Vec<(Uuid, u64, Action)>,
    now_ms: u64,
    reply: Reply,
    queued: Instant,
}

enum Job {
    Apply(ApplyJob),
    Run(Box<dyn FnOnce(&mut Store) + Send>),
}

pub struct SqliteStore {
    jobs: Mutex<Option<Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Mutex<Connection>,
    checkpointer: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    timings: Arc<StoreTimings>,
    /// The WAL file (`<db>-wal`), for [`SqliteStore::sync_wal`].
    wal: PathBuf,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let store = Store::open(path)?;
        store.set_autocheckpoint_bytes(WRITER_AUTOCHECKPOINT_BYTES)?;
        let reader = connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (tx, rx) = mpsc::channel();
        let timings = Arc::new(StoreTimings::default());
        let writer_timings = Arc::clone(&timings);
        let writer = std::thread::Builder::new()
            .name("gateway-sqlite-writer".into())
            .spawn(move || write_loop(store, rx, &writer_timings))
            .map_err(StoreError::Thread)?;
        // A checkpoint writes the database file: not a read-only connection.
        let checkpoint_conn = connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("gateway-sqlite-checkpoint".into())
            .spawn({
                let timings = Arc::clone(&timings);
                move || checkpoint_loop(checkpoint_conn, stop_rx, &timings)
            })
            .map_err(StoreError::Thread)?;
        Ok(SqliteStore {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(reader),
            checkpointer: Mutex::new(Some((stop_tx, checkpointer))),
            timings,
            wal: {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                PathBuf::from(wal)
            },
        })
    }

    /// fdatasync of the WAL: makes every commit so far durable, also those made
    /// [`Store::unsynced`] (what SQLite's FULL does at each commit).
    pub fn sync_wal(&self) -> Result<(), StoreError> {
        match std::fs::File::open(&self.wal) {
            Ok(f) => f.sync_data().map_err(StoreError::Sync),
            // No WAL file: every commit is in the database file already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Sync(e)),
        }
    }

    /// The writer's and the exporter's stopwatch.
    pub fn timings(&self) -> &StoreTimings {
        &self.timings
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        lock(&self.jobs)
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(job)
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Answers once the batch's group is committed (on disk).
    pub async fn apply_batch(
        &self,
        app: &str,
        device_id: &Uuid,
        ops: Vec<(Uuid, u64, Action)>,
        now_ms: u64,
    ) -> Result<Vec<OpResult>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Apply(ApplyJob {
            app: app.to_owned(),
            device_id: *device_id,
            ops,
            now_ms,
            reply,
            queued: Instant::now(),
        }))?;
        answer
            .await
            .map_err(|_| StoreError::WriterStopped)?
            .map_err(StoreError::Group)
    }

    /// Runs `f` on the writer thread (blocking the caller until done).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(Job::Run(Box::new(move |s: &mut Store| {
            let _ = tx.send(f(s));
        })))?;
        rx.recv().map_err(|_| StoreError::WriterStopped)
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        Ok(store::ping(&lock(&self.reader))?)
    }

    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        Ok(store::backlog(&lock(&self.reader))?)
    }

    /// Sealed files not yet uploaded, without rows: one file's rows in memory at a time.
    pub fn sealed_files(&self) -> Result<Vec<ExportFile>, StoreError> {
        Ok(store::sealed_files(&lock(&self.reader))?)
    }

    pub fn file_rows(&self, file_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        Ok(store::file_rows(&lock(&self.reader), file_id)?)
    }
}

impl Drop for SqliteStore {
    /// Lets the writer finish what is queued, then waits for it.
    fn drop(&mut self) {
        lock(&self.jobs).take();
        if let Some(t) = lock(&self.writer).take() {
            let _ = t.join();
        }
        if let Some((stop, t)) = lock(&self.checkpointer).take() {
            drop(stop);
            let _ = t.join();
        }
    }
}

fn connection(path: &Path, mode: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Reads are scans of recent rows: a small page cache keeps the RSS down.
    conn.pragma_update(None, "cache_size", -2048)?;
    Ok(conn)
}

fn write_loop(mut store: Store, jobs: Receiver<Job>, timings: &StoreTimings) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(j) => j,
            None => match jobs.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        match job {
            Job::Run(f) => {
                let started = Instant::now();
                f(&mut store);
                timings.job.time(started.elapsed());
            }
            Job::Apply(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Apply(j)) => group.push(j),
                        Ok(run) => {
                            next = Some(run);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut store, group, timings);
            }
        }
    }
}

fn commit_group(store: &mut Store, group: Vec<ApplyJob>, timings: &StoreTimings) {
    let started = Instant::now();
    let mut ops = 0;
    for j in &group {
        timings.queue_wait.time(started.duration_since(j.queued));
        ops += j.ops.len();
    }
    timings.group_batches.observe(group.len() as f64);
    timings.group_ops.observe(ops as f64);
    let mut applied = started;
    let result = store.apply_group(
        group
            .iter()
            .map(|j| (j.app.as_str(), &j.device_id, j.ops.as_slice(), j.now_ms)),
        || {
            applied = Instant::now();
            timings.apply.time(applied.duration_since(started));
        },
    );
    if result.is_ok() {
        timings.commit.time(applied.elapsed());
    }
    match result {
        Ok(results) => {
            for (job, r) in group.into_iter().zip(results) {
                let _ = job.reply.send(Ok(r));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batches = group.len(), "group commit failed; rolled back");
            for job in group {
                let _ = job.reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Copies committed WAL pages into the database off the writer's path (PASSIVE: never
/// blocks the writer), so commits rarely checkpoint themselves.
fn checkpoint_loop(conn: Connection, stop: Receiver<()>, timings: &StoreTimings) {
    crate::lower_thread_priority();
    // The WAL's frames already checkpointed: the counter restarts when the WAL does.
    let mut done = 0i64;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let started = Instant::now();
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((_log, checkpointed)) => {
                let pages = if checkpointed >= done {
                    checkpointed - done
                } else {
                    checkpointed
                };
                done = checkpointed;
                if pages > 0 {
                    timings.checkpoint.time(started.elapsed());
                    timings.checkpoint_pages.observe(pages as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint skipped"),
        }
    }
}
