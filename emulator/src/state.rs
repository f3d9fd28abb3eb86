//! The emulator's state in SQLite (in memory by default, a file with `db`):
//! devices, users, links and every op_id seen, applied per docs/protocol.md;
//! and the LINE users registered by dashboard-style imports (`line_users`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use repro_line_core::protocol::{
    parse_rfc3339_millis, ApiError, OpKind, OpResult, OpStatus, WireOp, CODE_INVALID_CHANNEL_ID,
    CODE_INVALID_ID_TOKEN, CODE_INVALID_LINE_USER_ID, CODE_INVALID_USER_ID,
    CODE_RAW_LINE_ID_REFUSED, CODE_USER_NOT_REGISTERED, MESSAGE_RAW_LINE_ID_REFUSED,
};
use repro_line_core::validate;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The hyphenated UUID the SDK sent.
    pub device_id: String,
    pub current_user_id: Option<String>,
    /// Highest `seq` of a new (not duplicate) op from this device; 0 before any.
    pub max_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Deliverable,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub channel_id: String,
    pub line_user_id: String,
    pub user_id: Option<String>,
    pub status: LinkStatus,
}

/// A LINE user as the import endpoint registered it (separate from the SDK's `links`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineUser {
    pub channel_id: String,
    pub line_user_id: String,
    /// Set: linked (segment delivery). `None`: broadcast only.
    pub user_id: Option<String>,
    pub status: LinkStatus,
}

/// Everything an app could observe, sorted so it compares deterministically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorState {
    /// By `device_id`.
    pub devices: Vec<Device>,
    /// Sorted.
    pub users: Vec<String>,
    /// By `(channel_id, line_user_id)`.
    pub links: Vec<Link>,
    /// From the import endpoint, by `(channel_id, line_user_id)`.
    #[serde(default)]
    pub line_users: Vec<LineUser>,
}

/// Counters for tests and benchmarks (in memory; a restart starts them at 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Batch requests received (admin and preflight requests are not counted).
    pub requests: u64,
    /// Batches applied and committed (including `reset_after` ones).
    pub batches_ok: u64,
    pub ops_applied: u64,
    pub ops_duplicate: u64,
    pub ops_rejected: u64,
    /// Batch requests from a device that arrived before the Retry-After it was given ran out.
    pub retry_after_violations: u64,
    /// New op_ids whose seq was not above one already seen (applied or rejected) from the same device.
    pub seq_regressions: u64,
    /// Injected faults by name (`"503"`, `"reset_after"`, …).
    pub faults: BTreeMap<String, u64>,
}

/// One batch request, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Arrival, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `None` when the body did not carry a readable `device_id`.
    pub device_id: Option<Uuid>,
    /// `X-Retry-Count`, when present and a number.
    pub retry_count: Option<u32>,
    /// The status answered; 0 when the connection was reset instead.
    pub status: u16,
    pub op_count: usize,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The injected fault's name, if any.
    pub fault: Option<String>,
}

/// What a link is checked against (protocol v1.1).
pub(crate) struct IdentityCheck<'a> {
    pub(crate) id_token_only: bool,
    pub(crate) keys: &'a repro_line_idtoken::Jwks,
    pub(crate) login_channels: &'a HashMap<String, Vec<String>>,
    /// Receipt time, ms since the epoch.
    pub(crate) now_ms: u64,
    pub(crate) grace_ms: u64,
}

pub(crate) struct Db {
    conn: Connection,
}

// op_id is a 16-byte BLOB: the hot path looks it up once per op.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ops (op_id BLOB PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, current_user_id TEXT, max_seq INTEGER);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS links (channel_id TEXT NOT NULL, line_user_id TEXT NOT NULL, user_id TEXT, status TEXT NOT NULL,
    PRIMARY KEY (channel_id, line_user_id));
CREATE TABLE IF NOT EXISTS line_users (channel_id TEXT NOT NULL, line_user_id TEXT NOT NULL, user_id TEXT, status TEXT NOT NULL,
    PRIMARY KEY (channel_id, line_user_id));
";

/// One row of an import file: Format 2 rows (and Format 1 rows with an empty `user_id`) carry no user ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportRow {
    pub(crate) line_user_id: String,
    pub(crate) user_id: Option<String>,
}

/// What one import wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImportTally {
    /// Distinct LINE user IDs written.
    pub(crate) imported: u64,
    /// Of those, the ones that had no entry before.
    pub(crate) created: u64,
}

/// What one batch did, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) applied: u64,
    pub(crate) duplicate: u64,
    pub(crate) rejected: u64,
    pub(crate) seq_regressions: u64,
}

impl Db {
    pub(crate) fn open(path: Option<&Path>) -> rusqlite::Result<Db> {
        let conn = match path {
            Some(p) => {
                let c = Connection::open(p)?;
                // WAL + NORMAL: durable against a client crash (the server process stays up) and fast.
                c.pragma_update(None, "journal_mode", "WAL")?;
                c.pragma_update(None, "synchronous", "NORMAL")?;
                c
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Db { conn })
    }

    pub(crate) fn reset(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch(
            "BEGIN; DELETE FROM ops; DELETE FROM devices; DELETE FROM users; DELETE FROM links; DELETE FROM line_users; COMMIT;",
        )
    }

    /// Applies one batch in one transaction; returns one result per op, in order.
    /// Nothing is written unless the whole batch commits.
    pub(crate) fn apply_batch(
        &mut self,
        device_id: &Uuid,
        ops: &[WireOp],
        identity: &IdentityCheck<'_>,
    ) -> rusqlite::Result<(Vec<OpResult>, Tally)> {
        let device = device_id.hyphenated().to_string();
        let tx = self.conn.transaction()?;
        let mut results = Vec::with_capacity(ops.len());
        let mut tally = Tally::default();
        {
            let mut seen = tx.prepare_cached("SELECT 1 FROM ops WHERE op_id = ?1")?;
            let mut record = tx.prepare_cached(
                "INSERT INTO ops (op_id, device_id, seq, status) VALUES (?1, ?2, ?3, ?4)",
            )?;
            tx.prepare_cached("INSERT OR IGNORE INTO devices (device_id) VALUES (?1)")?
                .execute(params![device])?;
            let mut max_seq: Option<i64> = tx
                .prepare_cached("SELECT max_seq FROM devices WHERE device_id = ?1")?
                .query_row(params![device], |r| r.get(0))?;
            for op in ops {
                let op_id = op.op_id.as_bytes().as_slice();
                if seen.exists(params![op_id])? {
                    tally.duplicate += 1;
                    results.push(OpResult {
                        op_id: op.op_id,
                        status: OpStatus::Duplicate,
                        error: None,
                    });
                    continue;
                }
                // The caller has checked that every seq fits in i64.
                let seq = i64::try_from(op.seq).unwrap_or(i64::MAX);
                // seq strictly increases per device, so a new op at or below one already seen is a regression.
                if max_seq.is_some_and(|m| seq <= m) {
                    tally.seq_regressions += 1;
                }
                max_seq = Some(max_seq.map_or(seq, |m| m.max(seq)));
                // The batch decoder has checked `at`.
                let at_ms = parse_rfc3339_millis(&op.at).unwrap_or(0);
                let outcome = apply_op(&tx, &device, &op.kind, at_ms, identity)?;
                let status = if outcome.is_ok() {
                    tally.applied += 1;
                    "applied"
                } else {
                    tally.rejected += 1;
                    "rejected"
                };
                record.execute(params![op_id, device, seq, status])?;
                results.push(OpResult::of_new_op(op.op_id, outcome));
            }
            tx.prepare_cached("UPDATE devices SET max_seq = ?2 WHERE device_id = ?1")?
                .execute(params![device, max_seq])?;
        }
        tx.commit()?;
        Ok((results, tally))
    }

    /// Applies an import in one transaction (all rows or none).
    /// Deliverable: new entries are created deliverable; existing ones become
    /// deliverable and take the row's `user_id` when it has one (a row without
    /// one keeps the link). Blocked: new entries are created blocked with the
    /// row's `user_id`; existing ones only change status (their `user_id` stays).
    pub(crate) fn apply_import(
        &mut self,
        channel_id: &str,
        blocked: bool,
        rows: &[ImportRow],
    ) -> rusqlite::Result<ImportTally> {
        let count = |tx: &Transaction<'_>| -> rusqlite::Result<i64> {
            tx.prepare_cached("SELECT COUNT(*) FROM line_users WHERE channel_id = ?1")?
                .query_row(params![channel_id], |r| r.get(0))
        };
        let tx = self.conn.transaction()?;
        let before = count(&tx)?;
        {
            let mut upsert = tx.prepare_cached(if blocked {
                "INSERT INTO line_users (channel_id, line_user_id, user_id, status) VALUES (?1, ?2, ?3, 'blocked')
                 ON CONFLICT (channel_id, line_user_id) DO UPDATE SET status = 'blocked'"
            } else {
                "INSERT INTO line_users (channel_id, line_user_id, user_id, status) VALUES (?1, ?2, ?3, 'deliverable')
                 ON CONFLICT (channel_id, line_user_id) DO UPDATE
                 SET user_id = COALESCE(excluded.user_id, line_users.user_id), status = 'deliverable'"
            })?;
            for row in rows {
                upsert.execute(params![channel_id, row.line_user_id, row.user_id])?;
            }
        }
        let after = count(&tx)?;
        tx.commit()?;
        let distinct: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.line_user_id.as_str()).collect();
        Ok(ImportTally {
            imported: distinct.len() as u64,
            created: u64::try_from(after - before).unwrap_or(0),
        })
    }

    pub(crate) fn state(&self) -> rusqlite::Result<EmulatorState> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device_id, current_user_id, max_seq FROM devices ORDER BY device_id",
        )?;
        let devices = stmt
            .query_map([], |r| {
                Ok(Device {
                    device_id: r.get(0)?,
                    current_user_id: r.get(1)?,
                    max_seq: r.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT user_id FROM users ORDER BY user_id")?;
        let users = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let links = self.link_rows("links")?;
        let line_users = self
            .link_rows("line_users")?
            .into_iter()
            .map(|l| LineUser {
                channel_id: l.channel_id,
                line_user_id: l.line_user_id,
                user_id: l.user_id,
                status: l.status,
            })
            .collect();
        Ok(EmulatorState {
            devices,
            users,
            links,
            line_users,
        })
    }

    /// The rows of `links` (the SDK's) or `line_users` (the import's): the same columns.
    fn link_rows(&self, table: &str) -> rusqlite::Result<Vec<Link>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT channel_id, line_user_id, user_id, status FROM {table} ORDER BY channel_id, line_user_id"
        ))?;
        let rows = stmt.query_map([], |r| {
            let status: String = r.get(3)?;
            Ok(Link {
                channel_id: r.get(0)?,
                line_user_id: r.get(1)?,
                user_id: r.get(2)?,
                status: link_status(&status),
            })
        })?;
        rows.collect()
    }
}

fn link_status(s: &str) -> LinkStatus {
    if s == "blocked" {
        LinkStatus::Blocked
    } else {
        LinkStatus::Deliverable
    }
}

/// An op's IDs, checked in the protocol's order (LINE user ID, channel, user ID): the first
/// broken rule is the op's rejection, with its code and the rule as the message.
fn check_ids(
    line_user_id: Option<&str>,
    channel_id: Option<&str>,
    user_id: &str,
) -> Result<(), ApiError> {
    let broken = |code: u32| {
        move |e: repro_line_core::Error| ApiError {
            code,
            message: e.to_string(),
        }
    };
    if let Some(id) = line_user_id {
        validate::line_user_id(id).map_err(broken(CODE_INVALID_LINE_USER_ID))?;
    }
    if let Some(id) = channel_id {
        validate::channel_id(id).map_err(broken(CODE_INVALID_CHANNEL_ID))?;
    }
    validate::user_id(user_id).map_err(broken(CODE_INVALID_USER_ID))
}

/// The outer `Result` is storage; the inner one is the op's own verdict.
fn apply_op(
    tx: &Transaction<'_>,
    device: &str,
    kind: &OpKind,
    at_ms: u64,
    identity: &IdentityCheck<'_>,
) -> rusqlite::Result<Result<(), ApiError>> {
    let reject = |code: u32, message: String| Ok(Err(ApiError { code, message }));
    if identity.id_token_only && matches!(kind, OpKind::LinkLineId { .. }) {
        return reject(CODE_RAW_LINE_ID_REFUSED, MESSAGE_RAW_LINE_ID_REFUSED.into());
    }
    match kind {
        OpKind::LinkLineIdToken {
            user_id,
            id_token,
            channel_id,
        } => {
            if let Err(e) = check_ids(None, Some(channel_id), user_id) {
                return Ok(Err(e));
            }
            let no_channels = Vec::new();
            let allowed = identity
                .login_channels
                .get(channel_id)
                .unwrap_or(&no_channels);
            let checks = repro_line_idtoken::Checks {
                allowed_audiences: allowed,
                hs256_secrets: &HashMap::new(),
                call_at_ms: at_ms,
                now_ms: identity.now_ms,
                grace_ms: identity.grace_ms,
            };
            let verified = match repro_line_idtoken::verify(id_token, identity.keys, &checks) {
                Ok(v) => v,
                Err(e) => return reject(CODE_INVALID_ID_TOKEN, format!("invalid ID token: {e}")),
            };
            if !is_registered(tx, user_id)? {
                return reject(
                    CODE_USER_NOT_REGISTERED,
                    "user ID not registered: set_user_id must be applied first".into(),
                );
            }
            upsert_link(tx, channel_id, &verified.sub, user_id)?;
        }
        OpKind::SetUserId { user_id } => {
            if let Err(e) = check_ids(None, None, user_id) {
                return Ok(Err(e));
            }
            tx.prepare_cached("INSERT OR IGNORE INTO users (user_id) VALUES (?1)")?
                .execute(params![user_id])?;
            tx.prepare_cached("UPDATE devices SET current_user_id = ?2 WHERE device_id = ?1")?
                .execute(params![device, user_id])?;
        }
        OpKind::LinkLineId {
            user_id,
            line_user_id,
            channel_id,
        }
        | OpKind::UnlinkLineId {
            user_id,
            line_user_id,
            channel_id,
        } => {
            if let Err(e) = check_ids(Some(line_user_id), Some(channel_id), user_id) {
                return Ok(Err(e));
            }
            if matches!(kind, OpKind::LinkLineId { .. }) {
                if !is_registered(tx, user_id)? {
                    return reject(
                        CODE_USER_NOT_REGISTERED,
                        "user ID not registered: set_user_id must be applied first".into(),
                    );
                }
                upsert_link(tx, channel_id, line_user_id, user_id)?;
            } else {
                // Only the holder's unlink removes it; anyone else's is a no-op that still counts as applied.
                tx.prepare_cached(
                    "DELETE FROM links WHERE channel_id = ?1 AND line_user_id = ?2 AND user_id = ?3",
                )?
                .execute(params![channel_id, line_user_id, user_id])?;
            }
        }
    }
    Ok(Ok(()))
}

fn is_registered(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?
        .query_row(params![user_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Links `(channel_id, line_user_id) → user_id` as deliverable, taking it over from any holder.
fn upsert_link(
    tx: &Transaction<'_>,
    channel_id: &str,
    line_user_id: &str,
    user_id: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO links (channel_id, line_user_id, user_id, status) VALUES (?1, ?2, ?3, 'deliverable')
         ON CONFLICT (channel_id, line_user_id) DO UPDATE SET user_id = excluded.user_id, status = 'deliverable'",
    )?
    .execute(params![channel_id, line_user_id, user_id])?;
    Ok(())
}
