//! The journal in `localStorage`, written only by the tab that holds the
//! delivery lock (see `lib.rs`), so there is never a concurrent writer.
//!
//! Append-only, so a call costs the same whatever the queue length: what a
//! task appends is written at the end of that task (a microtask: one write
//! however many calls the task made, and none inside the call itself) as one
//! new key `NS:j:G:I` (generation G, I = 0, 1, 2, …) holding just those bytes;
//! a reader reads I = 0, 1, … until a key is missing. So a call is in
//! `localStorage` before anything else can run (another task, `pagehide`, a
//! reload); only a renderer crash in the middle of the calling task loses it,
//! and the page's own state with it. The
//! index key `NS:jx` holds G. Compaction (`replace`) writes generation G + 1,
//! then switches the index to it, then removes generation G, so a reader or a
//! crash in between sees one whole generation. The key count is bounded by
//! compaction, which the driver starts when the journal passes half the budget.
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

/// What the store tells the driver, as the state listener gets it (one shape for all: no match
/// when it is reported): `"storage"`, the journal is in memory only from now on and why, or back
/// in `localStorage` (`persistent`, no reason); `"warning"`, something the app should know (e.g.
/// a call from another tab was refused).
pub struct Change {
    pub kind: &'static str,
    pub persistent: bool,
    pub reason: String,
}

impl Change {
    pub fn memory(reason: String) -> Change {
        Change {
            kind: "storage",
            persistent: false,
            reason,
        }
    }

    pub fn warning(reason: String) -> Change {
        Change {
            kind: "warning",
            persistent: false,
            reason,
        }
    }
}

/// What the store and the driver share: the driver's notes, and the journal's `localStorage` side
/// (for the end-of-task write; unused in a client without a `LocalStore`). One container for both.
#[derive(Default)]
pub struct Notes {
    /// Storage changes and warnings, drained by the driver into the state callback.
    pub changes: Vec<Change>,
    /// The journal passed the soft limit: the driver should compact it.
    pub compact: bool,
    /// Appended in this task and not written yet: the driver has the page's JS call
    /// `Client.call(STORE_WRITE)` at the end of the task (see `Inner::schedule_write`).
    pub write: bool,
    /// The journal is in `localStorage` (false: memory only, or no `LocalStore`).
    pub persistent: bool,
    ns: String,
    /// Generation and next chunk number of the stored journal.
    gen: u64,
    next: u64,
    /// Hard ceiling: above it the journal stays in memory.
    budget: usize,
    /// Appended in this task, written at its end.
    pending: Vec<u8>,
    scheduled: bool,
    /// `localStorage`, looked up once (a lookup per write showed in the per-call cost).
    ls: Option<js::Storage>,
}

pub type SharedNotes = Arc<Mutex<Notes>>;

#[inline(never)]
pub fn lock(notes: &SharedNotes) -> std::sync::MutexGuard<'_, Notes> {
    // Single-threaded on wasm; a poisoned lock only means a panic already aborted.
    notes.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys over 16 K characters are split (compaction writes the whole journal).
const CHUNK: usize = 16 * 1024;

/// The index key of namespace `ns` (what a follower watches for a new generation).
pub fn index_key(ns: &str) -> String {
    ns.to_owned() + ":jx"
}

/// Whether `key` is one of the journal's keys (index or chunk) in namespace `ns`.
pub fn is_journal_key(ns: &str, key: &str) -> bool {
    key.strip_prefix(ns)
        .is_some_and(|k| k == ":jx" || k.starts_with(":j:"))
}

/// The key of chunk `i` of generation `gen`.
fn chunk_key(ns: &str, gen: u64, i: u64) -> String {
    let mut k = ns.to_owned() + ":j:";
    repro_line_core::text::push_u64(&mut k, gen);
    k.push(':');
    repro_line_core::text::push_u64(&mut k, i);
    k
}

/// The current generation and its bytes (what a tab that does not deliver reads, too).
pub fn read(ls: &js::Storage, ns: &str) -> Result<(u64, u64, Vec<u8>), js::JsError> {
    let gen = ls
        .get_item(&index_key(ns))?
        .and_then(|g| repro_line_core::text::parse_u64(&g))
        .unwrap_or(0);
    let mut bytes = Vec::new();
    let mut next = 0;
    while let Some(chunk) = ls.get_item(&chunk_key(ns, gen, next))? {
        push_latin1(&mut bytes, &chunk);
        next += 1;
    }
    Ok((gen, next, bytes))
}

/// Every key starting with `prefix` (a scan of all keys: at start-up, on promotion and after
/// `localStorage.clear()` only). One loop for both callers: each iterator chain was ~500 B.
pub fn keys_with_prefix(ls: &js::Storage, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..ls.length().unwrap_or(0) {
        if let Ok(Some(k)) = ls.key(i) {
            if k.starts_with(prefix) {
                keys.push(k);
            }
        }
    }
    keys
}

pub struct LocalStore {
    /// Mirror of the journal (what `read_all` gives the Session).
    bytes: Vec<u8>,
    /// Shared with the driver (its end-of-task write and notes).
    notes: SharedNotes,
}

/// The notes of the store this page opened last (a plain static: smaller than `thread_local!`).
static OPEN: Mutex<Option<SharedNotes>> = Mutex::new(None);

fn open_store() -> std::sync::MutexGuard<'static, Option<SharedNotes>> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalStore {
    /// A journal in memory only, starting with `bytes` (a follower's shadow on a copy of the
    /// journal, or a client without `localStorage`): notes of its own, nothing written anywhere,
    /// no budget. The one store type in the wasm (a second `Store` impl was its own code).
    pub fn memory(bytes: Vec<u8>) -> LocalStore {
        let notes = Notes::with_budget(usize::MAX);
        LocalStore {
            bytes,
            notes: Arc::new(Mutex::new(notes)),
        }
    }

    /// Reads the journal; never fails (an unreadable store starts empty in memory).
    /// A journal in the single key of earlier versions (`NS:journal`) is carried over.
    pub fn open(ns: String, notes: SharedNotes) -> LocalStore {
        // A store opened before in this page (setup() again) writes what it still holds first,
        // or this one would read without it and then write over its key.
        let previous = open_store().take();
        if let Some(previous) = previous {
            lock(&previous).flush();
        }
        let mut bytes = Vec::new();
        {
            // The client's notes, fresh (each client opens its journal once: at setup or when
            // promoted): nothing written or pending yet.
            let mut d = lock(&notes);
            (d.ns, d.persistent, d.ls) = (ns, true, js::local_storage());
            match d.ls {
                None => d.fall_back_to_memory("localStorage is not available".into()),
                Some(ls) => match read(&ls, &d.ns) {
                    Ok((gen, next, stored)) => {
                        (d.gen, d.next, bytes) = (gen, next, stored);
                        d.remove_other_generations(&ls);
                        let legacy_key = d.ns.clone() + ":journal";
                        if let Ok(Some(old)) = ls.get_item(&legacy_key) {
                            let mut all = from_latin1(&old);
                            all.extend_from_slice(&bytes);
                            d.write_generation(&all);
                            bytes = all;
                            if d.persistent {
                                let _ = ls.remove_item(&legacy_key);
                            }
                        }
                    }
                    Err(e) => d.fall_back_to_memory(e),
                },
            }
        }
        *open_store() = Some(Arc::clone(&notes));
        LocalStore { bytes, notes }
    }
}

impl Notes {
    /// Fresh notes for a journal of at most `budget` bytes.
    // Set after `default()`: the struct update syntax copied every field a second time (-40 B gzip).
    #[allow(clippy::field_reassign_with_default)]
    pub fn with_budget(budget: usize) -> Notes {
        let mut notes = Notes::default();
        notes.budget = budget;
        notes
    }

    fn fall_back_to_memory(&mut self, reason: String) {
        self.pending.clear();
        if self.persistent {
            self.persistent = false;
            self.changes.push(Change::memory(reason));
        }
    }

    fn back_in_storage(&mut self) {
        if !self.persistent {
            self.persistent = true;
            self.changes.push(Change {
                kind: "storage",
                persistent: true,
                reason: String::new(),
            });
        }
    }

    fn over_budget(&mut self, len: usize) -> bool {
        if len <= self.budget {
            return false;
        }
        let mut why = String::from("journal above the storage budget of ");
        repro_line_core::text::push_u64(&mut why, self.budget as u64);
        why.push_str(" bytes");
        self.fall_back_to_memory(why);
        true
    }

    /// Chunk keys left by a compaction a closed page did not finish.
    fn remove_other_generations(&self, ls: &js::Storage) {
        let mine = chunk_key(&self.ns, self.gen, 0);
        let mine = &mine[..mine.len() - 1];
        for k in &keys_with_prefix(ls, &(self.ns.clone() + ":j:")) {
            if !k.starts_with(mine) {
                let _ = ls.remove_item(k);
            }
        }
    }

    /// Writes `bytes` as the next generation and switches to it; on any failure the old one stays.
    fn write_generation(&mut self, bytes: &[u8]) {
        if self.over_budget(bytes.len()) {
            return;
        }
        // No localStorage: `open` went to memory for good (and reported it); nothing to write.
        let Some(ls) = self.ls else {
            return;
        };
        let gen = self.gen + 1;
        let mut written = 0;
        let mut result = Ok(());
        for chunk in bytes.chunks(CHUNK) {
            result = ls.set_item(&chunk_key(&self.ns, gen, written), &to_latin1(chunk));
            if result.is_err() {
                break;
            }
            written += 1;
        }
        let mut gen_text = String::new();
        repro_line_core::text::push_u64(&mut gen_text, gen);
        if result.is_ok() {
            result = ls.set_item(&index_key(&self.ns), &gen_text);
        }
        // Whichever generation is not in use now goes (the old one, or a half-written new one).
        let (drop_gen, drop_count) = match result {
            Ok(()) => (self.gen, self.next),
            Err(_) => (gen, written),
        };
        for i in 0..drop_count {
            let _ = ls.remove_item(&chunk_key(&self.ns, drop_gen, i));
        }
        match result {
            Ok(()) => {
                (self.gen, self.next) = (gen, written);
                self.back_in_storage();
            }
            Err(e) => self.fall_back_to_memory(e),
        }
    }

    /// Writes what this task appended as the next chunk key (the end-of-task write; nothing
    /// without a `LocalStore`, which is the only one to append).
    pub fn flush(&mut self) {
        self.scheduled = false;
        if self.pending.is_empty() || !self.persistent {
            self.pending.clear();
            return;
        }
        let text = to_latin1(&std::mem::take(&mut self.pending));
        // Persistent means `open` found localStorage.
        let Some(ls) = self.ls else {
            return;
        };
        match ls.set_item(&chunk_key(&self.ns, self.gen, self.next), &text) {
            Ok(()) => self.next += 1,
            Err(e) => self.fall_back_to_memory(e),
        }
    }
}

impl Store for LocalStore {
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError> {
        Ok(self.bytes.clone())
    }

    /// Queues `bytes` for the end-of-task write: the cost does not depend on the journal's length.
    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.bytes.extend_from_slice(bytes);
        let mut d = lock(&self.notes);
        if self.bytes.len() > d.budget / 2 {
            d.compact = true;
        }
        if !d.persistent || bytes.is_empty() || d.over_budget(self.bytes.len()) {
            return Ok(());
        }
        d.pending.extend_from_slice(bytes);
        if !d.scheduled {
            // At the end of the current task: the driver asks the page's JS for it.
            d.scheduled = true;
            d.write = true;
        }
        Ok(())
    }

    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.bytes = bytes.to_vec();
        let mut d = lock(&self.notes);
        // The new generation holds the pending bytes too.
        d.pending.clear();
        // Also the way back from memory: a compacted journal may fit again.
        d.write_generation(bytes);
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
    let mut s = String::new();
    for &b in bytes {
        s.push(b as char);
    }
    s
}

/// The inverse; a character above U+00FF (tampering) becomes a byte the codec's CRC rejects.
// Out of line (only the migration uses it): a smaller wasm, measured.
#[inline(never)]
pub fn from_latin1(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_latin1(&mut out, s);
    out
}

/// One byte per character of `s`, read from its UTF-8: U+0080..U+00FF are the two-byte
/// sequences led by 0xC2 and 0xC3; any other character (led by 0xC4 and up) is 0xFF.
fn push_latin1(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            0..=0x7F => out.push(c),
            // A continuation byte: part of the character before.
            0x80..=0xBF => {}
            0xC2 | 0xC3 => out.push(c << 6 | b.get(i + 1).map_or(0, |n| n & 0x3F)),
            _ => out.push(0xFF),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_survives_latin1_and_wider_characters_become_0xff() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(from_latin1(&to_latin1(&all)), all);
        assert_eq!(
            from_latin1("a\u{e9}\u{20ac}\u{1f600}\u{ff}z"),
            [b'a', 0xE9, 0xFF, 0xFF, 0xFF, b'z']
        );
    }
}
