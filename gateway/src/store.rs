//! The gateway's durable state in SQLite (WAL): per app, the op_ids seen, devices,
//! registered users, and the applied links waiting for (or done with) export.
//!
//! The schema is plain SQL (TEXT/BIGINT, no SQLite-only types) applied by numbered
//! migrations recorded in `schema_migrations`, so a PostgreSQL store can run the same list.

use std::collections::HashSet;
use std::path::Path;

use repro_line_core::protocol::{ApiError, OpResult, OpStatus, CODE_USER_NOT_REGISTERED};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

/// Numbered migrations; a store runs those above its recorded version, in order.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE ops (app TEXT NOT NULL, op_id TEXT NOT NULL, device_id TEXT NOT NULL,
        seq BIGINT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (app, op_id));
     CREATE TABLE devices (app TEXT NOT NULL, device_id TEXT NOT NULL, current_user_id TEXT,
        max_seq BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (app, device_id));
     CREATE TABLE users (app TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (app, user_id));
     CREATE TABLE export_files (id INTEGER PRIMARY KEY, app TEXT NOT NULL, channel_id TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE, s3_key TEXT NOT NULL, created_at_ms BIGINT NOT NULL,
        uploaded_at_ms BIGINT);
     CREATE TABLE export_rows (id INTEGER PRIMARY KEY, app TEXT NOT NULL, channel_id TEXT NOT NULL,
        line_user_id TEXT NOT NULL, user_id TEXT NOT NULL, applied_at_ms BIGINT NOT NULL,
        file_id BIGINT REFERENCES export_files (id));
     CREATE INDEX export_rows_by_file ON export_rows (file_id, app, channel_id, id);
     CREATE TABLE sequences (name TEXT PRIMARY KEY, value BIGINT NOT NULL);",
    ),
    // SQLite fills a file in small steps (short write transactions between request groups);
    // only a sealed file is uploaded. PostgreSQL claims a file in one transaction: sealed by default.
    (
        2,
        "ALTER TABLE export_files ADD COLUMN sealed BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE export_files ADD COLUMN row_count BIGINT NOT NULL DEFAULT 0;
     ALTER TABLE export_files ADD COLUMN byte_count BIGINT NOT NULL DEFAULT 0;",
    ),
];

/// What an op does once it is known not to be a duplicate (decided before the store
/// transaction: validation and ID-token verification need no lock).
#[derive(Debug, Clone)]
pub enum Action {
    SetUserId(String),
    Link {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
    Reject(ApiError),
}

/// One file of the export: fixed rows, fixed name, fixed key (so a re-upload is identical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub id: i64,
    pub app: String,
    pub channel_id: String,
    pub name: String,
    pub s3_key: String,
    /// `(line_user_id, user_id)` in applied order.
    pub rows: Vec<(String, String)>,
}

/// Gauges for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub pending_rows: u64,
    pub oldest_pending_ms: Option<u64>,
}

pub struct Store {
    conn: Connection,
}

/// What one [`Store::claim_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStep {
    /// Rows went into a file (sealed or not); call again.
    Progress,
    /// No unsealed file and no pending row up to the bound: the claim is complete.
    Done,
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        // WAL + FULL: `applied` is answered only after the commit is on disk (the WAL is
        // fsynced at every commit). NORMAL would fsync only at checkpoints: a power loss could
        // then lose batches already answered `applied`. Group commit pays the fsync once for
        // all the requests that arrived meanwhile instead.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    /// Sets how many bytes of WAL trigger a checkpoint inside a commit (0: never; another
    /// connection checkpoints instead).
    pub fn set_autocheckpoint_bytes(&self, bytes: u32) -> rusqlite::Result<()> {
        let page: u32 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", bytes / page.max(512))
    }

    /// Runs `f` with its commits written to the WAL but not fsynced (`synchronous = NORMAL`),
    /// then restores FULL. Only for export bookkeeping whose loss in a power failure just
    /// repeats work: a lost purge step leaves rows the next purge deletes; lost claim steps
    /// put their rows back to pending, which is why the exporter fsyncs the WAL
    /// ([`crate::writer::SqliteStore::sync_wal`]) before it uploads what they claimed. Any
    /// later FULL commit (every request group) fsyncs these frames too: the WAL is one file.
    pub fn unsynced<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = f(self);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)",
        )?;
        let have: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > have) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                params![version],
            )?;
        }
        tx.commit()
    }

    /// For `/readyz`: the database answers.
    pub fn ping(&self) -> rusqlite::Result<()> {
        ping(&self.conn)
    }

    /// Applies one batch of one device in one transaction; results in request order.
    /// New ops are applied in `seq` order. Nothing is visible (or answered) before the commit.
    pub fn apply_batch(
        &mut self,
        app: &str,
        device_id: &Uuid,
        ops: &[(Uuid, u64, Action)],
        now_ms: u64,
    ) -> rusqlite::Result<Vec<OpResult>> {
        let tx = self.conn.transaction()?;
        let results = apply_in(&tx, app, device_id, ops, now_ms)?;
        tx.commit()?;
        Ok(results)
    }

    /// Group commit: several batches (of any devices) applied one after another in one
    /// transaction, so one fsync covers them all. Either every batch commits or none does.
    /// `before_commit` runs once every batch is applied (the writer's stopwatch).
    pub fn apply_group<'a>(
        &mut self,
        batches: impl IntoIterator<Item = (&'a str, &'a Uuid, &'a [(Uuid, u64, Action)], u64)>,
        before_commit: impl FnOnce(),
    ) -> rusqlite::Result<Vec<Vec<OpResult>>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        for (app, device_id, ops, now_ms) in batches {
            out.push(apply_in(&tx, app, device_id, ops, now_ms)?);
        }
        before_commit();
        tx.commit()?;
        Ok(out)
    }

    /// One short step of putting pending rows (ids up to `up_to_id`) into files: per (app,
    /// channel), up to `max_rows` rows and `max_bytes` bytes each, at most `chunk` rows per
    /// step, so the writer never holds a long transaction. A file is uploaded only once
    /// sealed (full, or every pending row up to the bound is in it); a crash mid-file
    /// continues filling the same file. `key_of(app, channel, name)` gives the S3 key (its
    /// date is fixed at creation, so a re-upload after a crash uses the same key).
    #[allow(clippy::too_many_arguments)]
    pub fn claim_step(
        &mut self,
        gateway_id: &str,
        max_rows: u64,
        max_bytes: u64,
        chunk: u64,
        up_to_id: i64,
        now_ms: u64,
        key_of: &dyn Fn(&str, &str, &str) -> Option<String>,
    ) -> rusqlite::Result<ClaimStep> {
        let tx = self.conn.transaction()?;
        let open: Option<(i64, String, String, i64, i64)> = tx
            .prepare_cached(
                "SELECT id, app, channel_id, row_count, byte_count FROM export_files WHERE sealed = 0 ORDER BY id LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        let (file_id, app, channel, mut rows_in, mut bytes_in) = match open {
            Some(f) => f,
            None => {
                let group: Option<(String, String)> = tx
                    .prepare_cached(
                        "SELECT app, channel_id FROM export_rows WHERE file_id IS NULL AND id <= ?1 LIMIT 1",
                    )?
                    .query_row(params![up_to_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((app, channel)) = group else {
                    return Ok(ClaimStep::Done);
                };
                let seq = next_sequence(&tx, gateway_id)?;
                let name = format!("{gateway_id}-{seq}.csv");
                let Some(key) = key_of(&app, &channel, &name) else {
                    tracing::error!(
                        app,
                        channel,
                        "no S3 key for an export file; rows stay pending"
                    );
                    return Ok(ClaimStep::Done);
                };
                tx.prepare_cached(
                    "INSERT INTO export_files (app, channel_id, name, s3_key, created_at_ms, sealed, row_count, byte_count)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6)",
                )?
                .execute(params![app, channel, name, key, now_ms as i64, HEADER.len() as i64])?;
                (tx.last_insert_rowid(), app, channel, 0, HEADER.len() as i64)
            }
        };
        let want = (max_rows.saturating_sub(rows_in as u64)).min(chunk) as i64;
        let rows: Vec<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, LENGTH(CAST(line_user_id AS BLOB)) + LENGTH(CAST(user_id AS BLOB)) + 4
                 FROM export_rows WHERE file_id IS NULL AND app = ?1 AND channel_id = ?2 AND id <= ?3
                 ORDER BY id LIMIT ?4",
            )?
            .query_map(params![app, channel, up_to_id, want], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // Header plus rows (a quoted user ID at most doubles): stay under the limit.
        let mut last = None;
        let mut full = rows_in as u64 >= max_rows;
        for (id, len) in &rows {
            let len = len * 2;
            if (bytes_in + len) as u64 > max_bytes && rows_in > 0 {
                full = true;
                break;
            }
            bytes_in += len;
            rows_in += 1;
            last = Some(*id);
        }
        if let Some(last) = last {
            tx.prepare_cached(
                "UPDATE export_rows SET file_id = ?1 WHERE file_id IS NULL AND app = ?2 AND channel_id = ?3 AND id <= ?4",
            )?
            .execute(params![file_id, app, channel, last])?;
        }
        // Fewer rows than asked for: every pending row up to the bound is in the file.
        let seal = full || rows_in as u64 >= max_rows || (rows.len() as i64) < want;
        tx.prepare_cached(
            "UPDATE export_files SET row_count = ?2, byte_count = ?3, sealed = ?4 WHERE id = ?1",
        )?
        .execute(params![file_id, rows_in, bytes_in, i64::from(seal)])?;
        tx.commit()?;
        Ok(ClaimStep::Progress)
    }

    /// The highest row id now: a claim pass stops there, so steady load cannot keep it going.
    pub fn max_row_id(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM export_rows", [], |r| {
                r.get(0)
            })
    }

    /// Every claim step until done (tests, and small stores).
    pub fn claim_files(
        &mut self,
        gateway_id: &str,
        max_rows: u64,
        max_bytes: u64,
        now_ms: u64,
        key_of: &dyn Fn(&str, &str, &str) -> Option<String>,
    ) -> rusqlite::Result<()> {
        let up_to = self.max_row_id()?;
        while self.claim_step(
            gateway_id,
            max_rows,
            max_bytes,
            CLAIM_CHUNK,
            up_to,
            now_ms,
            key_of,
        )? == ClaimStep::Progress
        {}
        Ok(())
    }

    /// Sealed files whose upload has not been recorded, oldest first, with their rows.
    pub fn files_to_upload(&self) -> rusqlite::Result<Vec<ExportFile>> {
        files_to_upload(&self.conn)
    }

    /// Records the upload (S3 holds the rows now); [`Store::purge_step`] drops the rows.
    pub fn mark_uploaded(&mut self, file_id: i64, now_ms: u64) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("UPDATE export_files SET uploaded_at_ms = ?2 WHERE id = ?1")?
            .execute(params![file_id, now_ms as i64])?;
        Ok(())
    }

    /// Deletes up to `chunk` rows of uploaded files (also those a crash left behind);
    /// returns how many.
    pub fn purge_step(&mut self, chunk: u64) -> rusqlite::Result<usize> {
        self.conn
            .prepare_cached(
                // Probes the file index per uploaded file: a join let SQLite scan the
                // index from its start, through every pending (file_id NULL) row.
                "DELETE FROM export_rows WHERE id IN (
                   SELECT r.id FROM export_rows r
                   WHERE r.file_id IN (SELECT id FROM export_files WHERE uploaded_at_ms IS NOT NULL)
                   LIMIT ?1)",
            )?
            .execute(params![chunk as i64])
    }

    /// Rows applied but not yet in an uploaded file.
    pub fn backlog(&self) -> rusqlite::Result<Backlog> {
        backlog(&self.conn)
    }
}

/// Rows per claim step: a step's transaction stays in the low milliseconds.
pub const CLAIM_CHUNK: u64 = 500;

/// For `/readyz`: the database answers.
pub fn ping(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))
}

/// Sealed files whose upload has not been recorded, oldest first, with their rows (read
/// from a WAL snapshot: a sealed file's rows do not change until it is uploaded).
pub fn files_to_upload(conn: &Connection) -> rusqlite::Result<Vec<ExportFile>> {
    let mut files = sealed_files(conn)?;
    for f in &mut files {
        f.rows = file_rows(conn, f.id)?;
    }
    Ok(files)
}

/// Sealed files not yet uploaded, oldest first, without their rows (see [`file_rows`]).
pub fn sealed_files(conn: &Connection) -> rusqlite::Result<Vec<ExportFile>> {
    conn.prepare_cached(
        "SELECT id, app, channel_id, name, s3_key FROM export_files
         WHERE uploaded_at_ms IS NULL AND sealed = 1 ORDER BY id",
    )?
    .query_map([], |r| {
        Ok(ExportFile {
            id: r.get(0)?,
            app: r.get(1)?,
            channel_id: r.get(2)?,
            name: r.get(3)?,
            s3_key: r.get(4)?,
            rows: Vec::new(),
        })
    })?
    .collect()
}

/// A file's `(line_user_id, user_id)` rows in applied order.
pub fn file_rows(conn: &Connection, file_id: i64) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare_cached(
        "SELECT line_user_id, user_id FROM export_rows WHERE file_id = ?1 ORDER BY id",
    )?
    .query_map(params![file_id], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// Rows applied but not yet in an uploaded file.
pub fn backlog(conn: &Connection) -> rusqlite::Result<Backlog> {
    conn.prepare_cached(
        "SELECT COUNT(*), MIN(r.applied_at_ms) FROM export_rows r
         LEFT JOIN export_files f ON f.id = r.file_id
         WHERE r.file_id IS NULL OR f.uploaded_at_ms IS NULL",
    )?
    .query_row([], |r| {
        Ok(Backlog {
            pending_rows: r.get::<_, i64>(0)?.max(0) as u64,
            oldest_pending_ms: r.get::<_, Option<i64>>(1)?.map(|v| v.max(0) as u64),
        })
    })
}

/// One batch inside the caller's transaction (see [`Store::apply_batch`]).
fn apply_in(
    tx: &Transaction<'_>,
    app: &str,
    device_id: &Uuid,
    ops: &[(Uuid, u64, Action)],
    now_ms: u64,
) -> rusqlite::Result<Vec<OpResult>> {
    let device = device_id.hyphenated().to_string();
    let mut results: Vec<Option<OpResult>> = vec![None; ops.len()];
    tx.prepare_cached("INSERT OR IGNORE INTO devices (app, device_id) VALUES (?1, ?2)")?
        .execute(params![app, device])?;
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| ops[i].1);
    let mut max_seq: i64 = tx
        .prepare_cached("SELECT max_seq FROM devices WHERE app = ?1 AND device_id = ?2")?
        .query_row(params![app, device], |r| r.get(0))?;
    // Users known registered in this batch: most links follow their set_user_id.
    let mut registered: HashSet<&str> = HashSet::new();
    for i in order {
        let (op_id, seq, action) = &ops[i];
        let op_key = op_id.hyphenated().to_string();
        // The decoder has checked that seq fits in i64.
        let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
        // One statement both records the op_id and tells a duplicate (nothing inserted).
        let new = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO ops (app, op_id, device_id, seq, status) VALUES (?1, ?2, ?3, ?4, 'applied')",
            )?
            .execute(params![app, op_key, device, seq])?
            == 1;
        if !new {
            results[i] = Some(OpResult {
                op_id: *op_id,
                status: OpStatus::Duplicate,
                error: None,
            });
            continue;
        }
        let outcome = apply_action(tx, app, &device, action, now_ms, &mut registered)?;
        if outcome.is_err() {
            tx.prepare_cached("UPDATE ops SET status = 'rejected' WHERE app = ?1 AND op_id = ?2")?
                .execute(params![app, op_key])?;
        }
        max_seq = max_seq.max(seq);
        results[i] = Some(OpResult::of_new_op(*op_id, outcome));
    }
    tx.prepare_cached("UPDATE devices SET max_seq = ?3 WHERE app = ?1 AND device_id = ?2")?
        .execute(params![app, device, max_seq])?;
    Ok(results.into_iter().flatten().collect())
}

/// Format 1's header.
pub const HEADER: &str = "line_user_id,user_id\n";

fn next_sequence(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO sequences (name, value) VALUES (?1, 1)
         ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1",
    )?
    .execute(params![name])?;
    tx.prepare_cached("SELECT value FROM sequences WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
}

/// The outer `Result` is storage; the inner one is the op's verdict.
fn apply_action<'a>(
    tx: &Transaction<'_>,
    app: &str,
    device: &str,
    action: &'a Action,
    now_ms: u64,
    registered: &mut HashSet<&'a str>,
) -> rusqlite::Result<Result<(), ApiError>> {
    match action {
        Action::Reject(e) => Ok(Err(e.clone())),
        Action::SetUserId(user_id) => {
            tx.prepare_cached("INSERT OR IGNORE INTO users (app, user_id) VALUES (?1, ?2)")?
                .execute(params![app, user_id])?;
            registered.insert(user_id);
            tx.prepare_cached(
                "UPDATE devices SET current_user_id = ?3 WHERE app = ?1 AND device_id = ?2",
            )?
            .execute(params![app, device, user_id])?;
            Ok(Ok(()))
        }
        Action::Link {
            user_id,
            line_user_id,
            channel_id,
        } => {
            let known = registered.contains(user_id.as_str())
                || tx
                    .prepare_cached("SELECT 1 FROM users WHERE app = ?1 AND user_id = ?2")?
                    .query_row(params![app, user_id], |_| Ok(()))
                    .optional()?
                    .is_some();
            if !known {
                return Ok(Err(ApiError {
                    code: CODE_USER_NOT_REGISTERED,
                    message: "user ID not registered: set_user_id must be applied first".into(),
                }));
            }
            tx.prepare_cached(
                "INSERT INTO export_rows (app, channel_id, line_user_id, user_id, applied_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![app, channel_id, line_user_id, user_id, now_ms as i64])?;
            registered.insert(user_id);
            Ok(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(user: &str, line: &str) -> Action {
        Action::Link {
            user_id: user.into(),
            line_user_id: line.into(),
            channel_id: "1234567890".into(),
        }
    }

    fn key_of(app: &str, channel: &str, name: &str) -> Option<String> {
        Some(format!("{app}/{channel}/{name}"))
    }

    #[test]
    fn duplicates_registration_and_claimed_files_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let device = Uuid::from_u128(1);
        let (a, b, c, d) = (
            Uuid::from_u128(10),
            Uuid::from_u128(11),
            Uuid::from_u128(12),
            Uuid::from_u128(13),
        );
        let mut s = Store::open(&path).unwrap();
        // Answered in request order, applied in seq order: the set (seq 1) comes before the link (seq 2).
        let r = s
            .apply_batch(
                "app",
                &device,
                &[
                    (b, 2, link("u", "Ua")),
                    (a, 1, Action::SetUserId("u".into())),
                ],
                5,
            )
            .unwrap();
        assert_eq!(
            r.iter().map(|r| r.status).collect::<Vec<_>>(),
            [OpStatus::Applied, OpStatus::Applied]
        );
        let r = s
            .apply_batch(
                "app",
                &device,
                &[
                    (b, 2, link("u", "Ua")),
                    (c, 3, link("nobody", "Ub")),
                    (d, 4, link("u", "Ua")),
                ],
                6,
            )
            .unwrap();
        assert_eq!(r[0].status, OpStatus::Duplicate);
        assert_eq!(
            r[1].error.as_ref().map(|e| e.code),
            Some(CODE_USER_NOT_REGISTERED)
        );
        assert_eq!(r[2].status, OpStatus::Applied);
        assert_eq!(s.backlog().unwrap().pending_rows, 2);
        // Max 1 row per file: two files, named by the gateway's sequence.
        s.claim_files("gw", 1, 1 << 20, 7, &key_of).unwrap();
        let files = s.files_to_upload().unwrap();
        drop(s);
        // A crash before the upload was marked: the same names, keys and rows come back.
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.files_to_upload().unwrap(), files);
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["gw-1.csv", "gw-2.csv"]
        );
        assert_eq!(files[0].s3_key, "app/1234567890/gw-1.csv");
        s.mark_uploaded(files[0].id, 8).unwrap();
        while s.purge_step(1).unwrap() > 0 {}
        assert_eq!(s.files_to_upload().unwrap().len(), 1);
        let left: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM export_rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1, "an uploaded file's rows are dropped");
        assert_eq!(s.backlog().unwrap().pending_rows, 1);
        // Another app's op_ids are its own.
        let r = s
            .apply_batch(
                "other",
                &device,
                &[(a, 1, Action::SetUserId("u".into()))],
                9,
            )
            .unwrap();
        assert_eq!(r[0].status, OpStatus::Applied);
    }

    #[test]
    fn unsynced_export_steps_leave_request_commits_fully_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let sync = |s: &Store| -> i64 {
            s.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(sync(&s), 2, "FULL: `applied` only after the WAL fsync");
        let device = Uuid::from_u128(1);
        s.apply_batch(
            "app",
            &device,
            &[
                (Uuid::from_u128(1), 1, Action::SetUserId("u".into())),
                (Uuid::from_u128(2), 2, link("u", "Ua")),
            ],
            1,
        )
        .unwrap();
        let up_to = s.max_row_id().unwrap();
        let inside = s
            .unsynced(|s| {
                s.claim_step("gw", 10, 1 << 20, 500, up_to, 2, &key_of)?;
                Ok(sync(s))
            })
            .unwrap();
        assert_eq!(inside, 1, "NORMAL for the export step only");
        assert_eq!(sync(&s), 2);
        // Also after a failing step.
        let failed = s.unsynced(|s| {
            s.conn
                .execute("INSERT INTO no_such_table VALUES (1)", [])
                .map(|_| ())
        });
        assert!(failed.is_err());
        assert_eq!(sync(&s), 2);
        assert_eq!(s.files_to_upload().unwrap()[0].rows.len(), 1);
    }

    #[test]
    fn a_file_stays_under_its_byte_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let device = Uuid::from_u128(1);
        let mut ops = vec![(Uuid::from_u128(100), 1, Action::SetUserId("u".repeat(100)))];
        for i in 0..20u64 {
            ops.push((
                Uuid::from_u128(200 + u128::from(i)),
                2 + i,
                link(&"u".repeat(100), &format!("U{i:032x}")),
            ));
        }
        s.apply_batch("app", &device, &ops, 1).unwrap();
        s.claim_files("gw", 1000, 2048, 2, &key_of).unwrap();
        let files = s.files_to_upload().unwrap();
        assert!(files.len() > 1, "20 rows of ~137 bytes do not fit 2 KiB");
        for f in &files {
            assert!(crate::export::render(&f.rows).len() <= 2048);
        }
        assert_eq!(files.iter().map(|f| f.rows.len()).sum::<usize>(), 20);
    }

    #[test]
    fn a_file_filled_in_small_steps_is_sealed_before_upload_and_survives_a_crash_mid_fill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = Store::open(&path).unwrap();
        let device = Uuid::from_u128(1);
        let mut ops = vec![(Uuid::from_u128(100), 1, Action::SetUserId("u".into()))];
        for i in 0..10u64 {
            ops.push((
                Uuid::from_u128(200 + u128::from(i)),
                2 + i,
                link("u", &format!("U{i:032x}")),
            ));
        }
        s.apply_batch("app", &device, &ops, 1).unwrap();
        let up_to = s.max_row_id().unwrap();
        // 3 rows per step, 4 per file: the first step leaves an unsealed file, not uploadable.
        let step = |s: &mut Store| {
            s.claim_step("gw", 4, 1 << 20, 3, up_to, 2, &key_of)
                .unwrap()
        };
        assert_eq!(step(&mut s), ClaimStep::Progress);
        assert!(s.files_to_upload().unwrap().is_empty());
        // Rows applied after the pass began wait for the next pass.
        s.apply_batch(
            "app",
            &device,
            &[(Uuid::from_u128(300), 20, link("u", "Ulate"))],
            3,
        )
        .unwrap();
        drop(s);
        let mut s = Store::open(&path).unwrap();
        while step(&mut s) == ClaimStep::Progress {}
        let files = s.files_to_upload().unwrap();
        assert_eq!(
            files.iter().map(|f| f.rows.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let lines: Vec<String> = files
            .iter()
            .flat_map(|f| f.rows.iter().map(|r| r.0.clone()))
            .collect();
        let want: Vec<String> = (0..10u64).map(|i| format!("U{i:032x}")).collect();
        assert_eq!(lines, want, "every row once, in applied order");
        assert_eq!(s.backlog().unwrap().pending_rows, 11);
        for f in &files {
            s.mark_uploaded(f.id, 4).unwrap();
        }
        while s.purge_step(3).unwrap() > 0 {}
        assert_eq!(
            s.backlog().unwrap().pending_rows,
            1,
            "only the late row is left"
        );
    }
}
