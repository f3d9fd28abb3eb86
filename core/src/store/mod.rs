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
    /// Starts a two-phase [`Store::replace`] for content that takes long to write: the
    /// [`Staged`] writes it aside without the store (so outside the lock callers append
    /// under), then [`Store::install`] adds what was appended since and swaps it in.
    /// `None`: this store replaces in one step (memory, the browser's).
    fn stage(&mut self) -> Option<Staged> {
        None
    }
    /// Second phase of [`Store::stage`]. On error the old content is left whole.
    fn install(&mut self, staged: Staged) -> Result<(), StorageError> {
        drop(staged);
        Err(StorageError::Write(
            "this store has no two-phase replace".into(),
        ))
    }
}

/// Writes new content aside, durably, without the store; see [`Store::stage`].
pub trait StageWriter: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
}

/// A replace begun by [`Store::stage`] and finished by [`Store::install`].
pub struct Staged {
    /// The store's `byte_len()` when staged: what lies beyond it on install was appended
    /// during the write and is carried over to the new content.
    pub marker: u64,
    /// The store's replace count when staged: a stage outlived by another replace is void.
    pub epoch: u64,
    writer: Box<dyn StageWriter>,
    /// Bytes written by [`Staged::write`] (`None`: not written, or the write failed).
    written: Option<u64>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("marker", &self.marker)
            .field("epoch", &self.epoch)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl Staged {
    pub fn new(marker: u64, epoch: u64, writer: Box<dyn StageWriter>) -> Staged {
        Staged {
            marker,
            epoch,
            writer,
            written: None,
        }
    }

    /// The slow phase: writes and syncs `bytes` aside. Needs no store, so no lock.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.written = None;
        self.writer.write(bytes)?;
        self.written = Some(bytes.len() as u64);
        Ok(())
    }

    /// Bytes written by a successful [`Staged::write`].
    pub fn written(&self) -> Option<u64> {
        self.written
    }
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

/// A capped memory store's refusal (built without `format!`: no `core::fmt` in the browser build).
fn limited_to(cap: usize) -> StorageError {
    let mut m = String::from("memory store limited to ");
    crate::text::push_u64(&mut m, cap as u64);
    m.push_str(" bytes");
    StorageError::Full(m)
}

impl Store for MemoryStore {
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError> {
        Ok(self.snapshot())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut buf = self.lock();
        if let Some(cap) = self.capacity {
            if buf.len() + bytes.len() > cap {
                return Err(limited_to(cap));
            }
        }
        buf.extend_from_slice(bytes);
        Ok(())
    }

    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if let Some(cap) = self.capacity {
            if bytes.len() > cap {
                return Err(limited_to(cap));
            }
        }
        let mut buf = self.lock();
        buf.clear();
        buf.extend_from_slice(bytes);
        Ok(())
    }

    fn byte_len(&self) -> u64 {
        self.lock().len() as u64
    }

    fn syncer(&self) -> Option<Box<dyn Syncer>> {
        None
    }
}
