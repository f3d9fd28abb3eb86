//! The crash-safe file store: `<dir>/journal.log`, appended with one `write(2)`
//! per call (survives SIGKILL: the bytes are in the page cache once `write`
//! returns) and fsynced in groups by the background thread. An OS crash or
//! power loss can therefore lose the calls of the last sync interval (200 ms,
//! `SYNC_INTERVAL` in the native driver).
//! Compaction writes `journal.log.tmp`, fsyncs it, renames it over the log and
//! fsyncs the directory, so a crash leaves either the old or the new log.
//! The driver's compaction is two-phase ([`Store::stage`]): the snapshot is written and
//! fsynced to `journal.log.staged` without the store (outside the callers' lock); the
//! install then appends the records written meanwhile, fsyncs, and renames.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{StageWriter, Staged, Store, Syncer};
use crate::StorageError;

const LOG_NAME: &str = "journal.log";
const TMP_NAME: &str = "journal.log.tmp";
const STAGED_NAME: &str = "journal.log.staged";
/// Space held back so a full disk can still be compacted: compaction writes a new
/// file before the old one is gone, which a disk with no free block refuses.
const RESERVE_NAME: &str = "journal.reserve";
const RESERVE_BYTES: usize = 8 << 10;

pub struct FileStore {
    dir: PathBuf,
    file: File,
    len: u64,
    /// Replaces so far: a stage begun before the last one is void.
    epoch: u64,
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
        let _ = fs::remove_file(dir.join(STAGED_NAME));
        let store = FileStore {
            dir,
            file,
            len,
            epoch: 0,
        };
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

    fn write_snapshot(&self, bytes: &[u8]) -> std::io::Result<File> {
        let tmp = self.dir.join(TMP_NAME);
        write_synced(&tmp, bytes)?;
        self.swap_in(&tmp)
    }

    /// Renames `from` over the log, makes the rename durable and opens the new log.
    fn swap_in(&self, from: &Path) -> std::io::Result<File> {
        let result = fs::rename(from, self.path()).and_then(|()| {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            private(OpenOptions::new().read(true).append(true)).open(self.path())
        });
        if result.is_err() {
            let _ = fs::remove_file(from);
        }
        result
    }

    /// The log's bytes from `from` to its end (what was appended after a stage began).
    fn tail(&self, from: u64) -> std::io::Result<Vec<u8>> {
        let mut f = File::open(self.path())?;
        f.seek(SeekFrom::Start(from))?;
        let mut tail = Vec::with_capacity(self.len.saturating_sub(from) as usize);
        f.take(self.len.saturating_sub(from))
            .read_to_end(&mut tail)?;
        Ok(tail)
    }

    /// Second phase of a stage: the staged snapshot plus the tail, swapped in.
    fn install_staged(&self, staged: &Staged, written: u64) -> std::io::Result<(File, u64)> {
        let path = self.dir.join(STAGED_NAME);
        let result = (|| {
            let tail = self.tail(staged.marker)?;
            let mut f = private(OpenOptions::new().append(true)).open(&path)?;
            if f.metadata()?.len() != written {
                return Err(std::io::Error::other("the staged journal changed"));
            }
            if !tail.is_empty() {
                // The tail may have been fsynced in the old log already: keep it durable.
                f.write_all(&tail)?;
                f.sync_data()?;
            }
            Ok(written + tail.len() as u64)
        })();
        match result {
            Ok(len) => Ok((self.swap_in(&path)?, len)),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }
}

/// Writes `bytes` to a new file at `path` and fsyncs it (removed again on failure).
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let result = private(OpenOptions::new().write(true).create(true).truncate(true))
        .open(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Runs `write`; on a full disk gives up the reserve, which makes room, and runs it again.
fn with_reserve<T>(
    dir: &Path,
    mut write: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let result = write();
    if result
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(ENOSPC))
        && fs::remove_file(dir.join(RESERVE_NAME)).is_ok()
    {
        return write();
    }
    result
}

/// The slow phase of a staged compaction, run without the store.
struct StagedFile {
    dir: PathBuf,
}

impl StageWriter for StagedFile {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.dir.join(STAGED_NAME);
        with_reserve(&self.dir, || write_synced(&path, bytes)).map_err(storage_error)
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
        let file = with_reserve(&self.dir, || self.write_snapshot(bytes)).map_err(storage_error)?;
        self.file = file;
        self.len = bytes.len() as u64;
        self.epoch += 1;
        self.ensure_reserve();
        Ok(())
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

    fn stage(&mut self) -> Option<Staged> {
        let writer = StagedFile {
            dir: self.dir.clone(),
        };
        Some(Staged::new(self.len, self.epoch, Box::new(writer)))
    }

    fn install(&mut self, staged: Staged) -> Result<(), StorageError> {
        let written = match staged.written() {
            Some(n) if staged.epoch == self.epoch && staged.marker <= self.len => n,
            _ => {
                let _ = fs::remove_file(self.dir.join(STAGED_NAME));
                return Err(StorageError::Write(
                    "the staged journal was not written or is out of date".into(),
                ));
            }
        };
        let (file, len) = self
            .install_staged(&staged, written)
            .map_err(storage_error)?;
        self.file = file;
        self.len = len;
        self.epoch += 1;
        self.ensure_reserve();
        Ok(())
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
