//! Durable storage behind a trait: the engine's journal is appended as framed
//! records (see [`codec`]); a store only moves bytes. The file store (native)
//! and the memory store share the codec, so recovery is tested once.

pub mod codec;
#[cfg(feature = "driver")]
pub mod file;
pub mod journal;
mod payload;

use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::protocol::Op;
use crate::StorageError;

/// One journal entry. Losing any record but `Op` is harmless: a lost `Done`
/// resends an op (answered `duplicate`), a lost `Merged` sends an op that was
/// coalesced away (same final state), a lost `Backoff` retries earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Meta {
        device_id: Uuid,
        opted_in: bool,
        user_id: Option<String>,
        next_seq: u64,
    },
    Op(Op),
    /// Ops that left the queue (delivered, rejected or dropped).
    Done {
        seqs: Vec<u64>,
    },
    /// Op `seq` was coalesced into op `into`; it is reported with `into`'s outcome.
    Merged {
        seq: u64,
        into: u64,
    },
    /// Every op up to `through` has been sent at least once (so it is never coalesced).
    Sent {
        through: u64,
    },
    /// The head batch failed `attempt` times; do not send before `until_ms`. The wait
    /// was granted at `granted_at_ms` (0: unknown, an older journal), so a clock that
    /// moves backwards never stretches it beyond `until_ms - granted_at_ms` from now.
    Backoff {
        until_ms: u64,
        attempt: u32,
        granted_at_ms: u64,
    },
    /// An app-level progress marker stored atomically with the calls it covers.
    Checkpoint {
        key: String,
        value: u64,
    },
}

/// Byte storage for the journal.
pub trait Store: Send {
    /// Everything written so far.
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError>;
    /// Appends framed records. After it returns, a process kill loses nothing.
    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
    /// Replaces the whole content atomically (compaction).
    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
    /// Bytes currently stored (drives compaction).
    fn byte_len(&self) -> u64;
    /// A handle that forces appended bytes to stable storage, usable without holding the store.
    /// `None` when there is nothing to sync (memory).
    fn syncer(&self) -> Option<Box<dyn Syncer>>;
}

/// Flushes a store to stable storage from the background thread.
pub trait Syncer: Send + Sync {
    fn sync(&self) -> Result<(), StorageError>;
}

/// A store in memory. Clones share the same bytes, so a test can "restart" a
/// client on the same content or corrupt it in between.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    bytes: Arc<Mutex<Vec<u8>>>,
    capacity: Option<usize>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that refuses writes beyond `capacity` bytes (like a full disk).
    pub fn with_capacity_limit(capacity: usize) -> Self {
        MemoryStore {
            capacity: Some(capacity),
            ..Self::default()
        }
    }

    /// A copy of the stored bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Overwrites the stored bytes (tests use it to simulate corruption).
    pub fn overwrite(&self, bytes: Vec<u8>) {
        *self.lock() = bytes;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A poisoned lock only means another thread panicked mid-append of plain bytes.
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError> {
        Ok(self.snapshot())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut buf = self.lock();
        if let Some(cap) = self.capacity {
            if buf.len() + bytes.len() > cap {
                return Err(StorageError::Full(format!(
                    "memory store limited to {cap} bytes"
                )));
            }
        }
        buf.extend_from_slice(bytes);
        Ok(())
    }

    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if let Some(cap) = self.capacity {
            if bytes.len() > cap {
                return Err(StorageError::Full(format!(
                    "memory store limited to {cap} bytes"
                )));
            }
        }
        *self.lock() = bytes.to_vec();
        Ok(())
    }

    fn byte_len(&self) -> u64 {
        self.lock().len() as u64
    }

    fn syncer(&self) -> Option<Box<dyn Syncer>> {
        None
    }
}
