//! The crash-safe file store: `<dir>/journal.log`, appended with one `write(2)`
//! per call (survives SIGKILL: the bytes are in the page cache once `write`
//! returns) and fsynced in groups by the background thread. An OS crash or
//! power loss can therefore lose the calls of the last sync interval (200 ms,
//! `SYNC_INTERVAL` in the native driver).
//! Compaction writes `journal.log.tmp`, fsyncs it, renames it over the log and
//! fsyncs the directory, so a crash leaves either the old or the new log.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Store, Syncer};
use crate::StorageError;

const LOG_NAME: &str = "journal.log";
const TMP_NAME: &str = "journal.log.tmp";
/// Space held back so a full disk can still be compacted: compaction writes a new
/// file before the old one is gone, which a disk with no free block refuses.
const RESERVE_NAME: &str = "journal.reserve";
const RESERVE_BYTES: usize = 8 << 10;

pub struct FileStore {
    dir: PathBuf,
    file: File,
    len: u64,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("len", &self.len)
            .finish()
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let open_err = |e: std::io::Error| StorageError::Open {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        fs::create_dir_all(&dir).map_err(open_err)?;
        let path = dir.join(LOG_NAME);
        let file = private(OpenOptions::new().read(true).append(true).create(true))
            .open(&path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        // A leftover temp file is an interrupted compaction; the log is still whole.
        let _ = fs::remove_file(dir.join(TMP_NAME));
        let store = FileStore { dir, file, len };
        store.ensure_reserve();
        Ok(store)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_NAME)
    }

    /// Best effort: a disk too full for the reserve simply has none until space comes back.
    fn ensure_reserve(&self) {
        let path = self.dir.join(RESERVE_NAME);
        if fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
            return;
        }
        let written = private(OpenOptions::new().write(true).create(true).truncate(true))
            .open(&path)
            .and_then(|mut f| f.write_all(&[0u8; RESERVE_BYTES]));
        if written.is_err() {
            let _ = fs::remove_file(&path);
        }
    }

    fn write_snapshot(&mut self, bytes: &[u8]) -> std::io::Result<File> {
        let tmp = self.dir.join(TMP_NAME);
        let result = (|| -> std::io::Result<File> {
            let mut f =
                private(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path())?;
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            private(OpenOptions::new().read(true).append(true)).open(self.path())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl Store for FileStore {
    fn read_all(&mut self) -> Result<Vec<u8>, StorageError> {
        let mut buf = Vec::new();
        File::open(self.path())
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| StorageError::Read(e.to_string()))?;
        self.len = buf.len() as u64;
        Ok(buf)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A short write (disk full) leaves a torn frame; cut it so the next append starts clean.
                let _ = self.file.set_len(self.len);
                Err(storage_error(e))
            }
        }
    }

    fn replace(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut result = self.write_snapshot(bytes);
        if result
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(ENOSPC))
        {
            // The disk is full: give up the reserve, which makes room for the snapshot.
            if fs::remove_file(self.dir.join(RESERVE_NAME)).is_ok() {
                result = self.write_snapshot(bytes);
            }
        }
        match result {
            Ok(file) => {
                self.file = file;
                self.len = bytes.len() as u64;
                self.ensure_reserve();
                Ok(())
            }
            Err(e) => Err(storage_error(e)),
        }
    }

    fn byte_len(&self) -> u64 {
        self.len
    }

    fn syncer(&self) -> Option<Box<dyn Syncer>> {
        self.file
            .try_clone()
            .ok()
            .map(|f| Box::new(FileSyncer(f)) as Box<dyn Syncer>)
    }
}

/// The journal holds user IDs and LINE IDs: owner-only (0600) on Unix.
fn private(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// ENOSPC is `Full` wherever it happens (append or compaction); anything else is `Write`.
const ENOSPC: i32 = 28;

fn storage_error(e: std::io::Error) -> StorageError {
    match e.raw_os_error() {
        Some(ENOSPC) => StorageError::Full(e.to_string()),
        _ => StorageError::write(e),
    }
}

struct FileSyncer(File);

impl Syncer for FileSyncer {
    fn sync(&self) -> Result<(), StorageError> {
        self.0.sync_data().map_err(StorageError::write)
    }
}
