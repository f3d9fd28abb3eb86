//! Ownership of a state directory: one client at a time (an exclusive lock held
//! for the client's life), private permissions, and the endpoint the queue
//! belongs to. Two clients on one journal interleave appends and compactions
//! and lose or double ops; queued ops sent to another endpoint reach the wrong
//! service. Taken once at open, never on a call's path.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, StorageError};

const LOCK_NAME: &str = "lock";
const ENDPOINT_NAME: &str = "endpoint";
const ENDPOINT_TMP_NAME: &str = "endpoint.tmp";
const LOG_NAME: &str = "journal.log";

/// A locked state directory. The lock (flock/LockFileEx on `<dir>/lock`) is
/// released when this is dropped or the process dies, even by SIGKILL.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates `dir` (0700) if needed and takes its lock, or fails with
    /// [`Error::StateDirInUse`] naming the holder's pid where it is known.
    pub(crate) fn acquire(dir: &Path) -> Result<StateDir, Error> {
        let open_err = |message: String| {
            Error::Storage(StorageError::Open {
                path: dir.display().to_string(),
                message,
            })
        };
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(open_err(
                    "it exists and is not a directory; the state dir must be a directory".into(),
                ))
            }
            Ok(_) => tighten_existing(dir),
            Err(_) => create_private_dir(dir).map_err(|e| open_err(e.to_string()))?,
        }
        let mut lock = private_file(&dir.join(LOCK_NAME), false)
            .map_err(|e| open_err(format!("cannot open its lock file: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                return Err(Error::StateDirInUse {
                    dir: dir.display().to_string(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(open_err(format!("cannot lock it: {e}")));
            }
        }
        // The holder's pid, for the next client's error message only.
        let _ = lock
            .set_len(0)
            .and_then(|_| lock.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(lock, "{}", std::process::id()));
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Binds the directory to `batch_url`. A directory holding undelivered calls
    /// for another endpoint is refused; an empty one is rebound.
    pub(crate) fn bind_endpoint(&self, batch_url: &str, pending: usize) -> Result<(), Error> {
        let path = self.dir.join(ENDPOINT_NAME);
        let bound = fs::read_to_string(&path).ok();
        let bound = bound.as_deref().map(str::trim);
        if bound == Some(batch_url) {
            return Ok(());
        }
        if let Some(bound) = bound.filter(|b| !b.is_empty()) {
            if pending > 0 {
                return Err(Error::StateDirBoundToEndpoint {
                    dir: self.dir.display().to_string(),
                    bound: bound.to_owned(),
                    requested: batch_url.to_owned(),
                    pending,
                });
            }
            tracing::info!(
                from = bound,
                to = batch_url,
                "empty state dir rebound to a new endpoint"
            );
        }
        let tmp = self.dir.join(ENDPOINT_TMP_NAME);
        let write = || -> std::io::Result<()> {
            let mut f = private_file(&tmp, true)?;
            f.write_all(batch_url.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            let message = format!("{}: {e}", path.display());
            Error::Storage(match e.raw_os_error() {
                Some(28) => StorageError::Full(message),
                _ => StorageError::Write(message),
            })
        })
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// A directory that already holds a journal is ours: make it private if an
/// older version left it readable by others. Any other existing directory is
/// left as it is (it may be shared, such as a home directory).
#[cfg(unix)]
fn tighten_existing(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join(LOG_NAME);
    if !log.exists() {
        return;
    }
    for (path, mode) in [(dir.to_path_buf(), 0o700), (log, 0o600)] {
        if let Ok(m) = fs::metadata(&path) {
            if m.permissions().mode() & 0o077 != 0 {
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode));
            }
        }
    }
}

#[cfg(not(unix))]
fn tighten_existing(_dir: &Path) {}

/// Opens (creating 0600 on Unix) a file that only the owner can read.
pub(crate) fn private_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}
