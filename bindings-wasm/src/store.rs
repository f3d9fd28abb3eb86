//! The journal in `localStorage`, under one key written only by the tab that
//! holds the delivery lock (see `lib.rs`), so there is never a concurrent
//! read-modify-write of it.
//!
//! Bytes are stored one per UTF-16 code unit (U+0000..U+00FF): exact, and one
//! character per byte against the origin's quota (base64 would cost a third more).
//!
//! Every failure of `localStorage` (missing, `SecurityError`, `QuotaExceededError`,
//! over the byte budget) switches the store to memory and records a note the
//! driver reports through the state callback; `append` then still succeeds, so a
//! call never fails and nothing throws into the page. The journal is retried in
//! `localStorage` at the next compaction.

use std::sync::{Arc, Mutex};

use repro_line_core::{StorageError, Store};

use crate::js;

/// What the store tells the driver.
#[derive(Debug)]
pub enum Change {
    /// The journal is in memory only from now on, and why.
    Memory(String),
    /// The journal is in `localStorage` again.
    Persistent,
    /// Something the app should know (e.g. a call from another tab was refused).
    Warning(String),
}

#[derive(Debug, Default)]
pub struct Notes {
    /// Storage changes and warnings, drained by the driver into the state callback.
    pub changes: Vec<Change>,
    /// The journal passed the soft limit: the driver should compact it.
    pub compact: bool,
    pub persistent: bool,
}

pub type SharedNotes = Arc<Mutex<Notes>>;

pub fn lock(notes: &SharedNotes) -> std::sync::MutexGuard<'_, Notes> {
    // Single-threaded on wasm; a poisoned lock only means a panic already aborted.
    notes.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct LocalStore {
    key: String,
    /// Mirror of the stored bytes (the journal only grows between compactions).
    bytes: Vec<u8>,
    persistent: bool,
    /// Hard ceiling: above it the journal stays in memory.
    budget: usize,
    notes: SharedNotes,
}

impl LocalStore {
    /// Reads the journal; never fails (an unreadable store starts empty in memory).
    pub fn open(key: String, budget: usize, notes: SharedNotes) -> LocalStore {
        let mut store = LocalStore {
            key,
            bytes: Vec::new(),
            persistent: true,
            budget,
            notes,
        };
        match js::local_storage().map(|ls| ls.get_item(&store.key)) {
            Some(Ok(v)) => store.bytes = v.map(|s| from_latin1(&s)).unwrap_or_default(),
            Some(Err(e)) => store.fall_back_to_memory(js::message(&e)),
            None => store.fall_back_to_memory("localStorage is not available".into()),
        }
        lock(&store.notes).persistent = store.persistent;
        store
    }

    fn fall_back_to_memory(&mut self, reason: String) {
        if self.persistent {
            self.persistent = false;
            let mut n = lock(&self.notes);
            n.persistent = false;
            n.changes.push(Change::Memory(reason));
        }
    }

    /// Writes the mirror; on any failure switches to memory.
    fn write(&mut self) {
        if self.bytes.len() > self.budget {
            let mut why = String::from("journal above the storage budget of ");
            js::push_u64(&mut why, self.budget as u64);
            why.push_str(" bytes");
            self.fall_back_to_memory(why);
            return;
        }
        let result = match js::local_storage() {
            Some(ls) => ls.set_item(&self.key, &to_latin1(&self.bytes)),
            None => Err("localStorage is not available".into()),
        };
        match result {
            Ok(()) if !self.persistent => {
                self.persistent = true;
                let mut n = lock(&self.notes);
                n.persistent = true;
                n.changes.push(Change::Persistent);
            }
            Ok(()) => {}
            Err(e) => self.fall_back_to_memory(js::message(&e)),
        }
    }
}

impl Store for LocalStore {
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError> {
        Ok(self.bytes.clone())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() > self.budget / 2 {
            lock(&self.notes).compact = true;
        }
        if self.persistent {
            self.write();
        }
        Ok(())
    }

    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.bytes = bytes.to_vec();
        // Also the way back from memory: a compacted journal may fit again.
        self.write();
        Ok(())
    }

    fn byte_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn syncer(&self) -> Option<Box<dyn repro_line_core::store::Syncer>> {
        None
    }
}

/// Bytes as UTF-16 code units U+0000..U+00FF.
pub fn to_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// The inverse; a character above U+00FF (tampering) becomes a byte the codec's CRC rejects.
pub fn from_latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(0xFF))
        .collect()
}
