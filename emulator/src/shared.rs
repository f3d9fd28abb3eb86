//! The state every route shares, behind one lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use uuid::Uuid;

use crate::faults::Injector;
use crate::state::{Db, RequestRecord, Stats};

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) stats: Stats,
    pub(crate) log: VecDeque<RequestRecord>,
    pub(crate) injector: Injector,
    pub(crate) token: String,
    /// device → earliest allowed next request, from the last 429/503 it was given.
    pub(crate) not_before: HashMap<Uuid, Instant>,
    /// The fake LINE Messaging API (follower IDs) used by the bulk tools.
    pub(crate) line: crate::line::LineApi,
    /// Dashboard-style LINE user import jobs (in memory, like the counters).
    pub(crate) imports: crate::jobs::Jobs,
    pub(crate) identity: IdentitySetup,
}

/// Protocol v1.1: which links are accepted and how ID tokens are checked.
pub(crate) struct IdentitySetup {
    pub(crate) mode: crate::Identity,
    pub(crate) login_channels: HashMap<String, Vec<String>>,
    pub(crate) grace_ms: u64,
    /// The emulator plays LINE: its own key signs minted tokens and is the only JWKS.
    pub(crate) minter: repro_line_idtoken::mint::Minter,
    pub(crate) keys: repro_line_idtoken::Jwks,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) cors_origins: Vec<String>,
}

impl Shared {
    /// A panic elsewhere must not take the emulator down with it: reuse a poisoned lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reset(&self) -> rusqlite::Result<()> {
        let mut inner = self.lock();
        inner.db.reset()?;
        inner.stats = Stats::default();
        inner.log.clear();
        inner.not_before.clear();
        // A job still running finds itself gone and applies nothing.
        inner.imports.clear();
        Ok(())
    }
}
