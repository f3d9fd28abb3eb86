//! Outputs never overwrite inputs or each other (issue 11 item 12), and are
//! written beside their target and renamed into place, so a failed run leaves
//! no half-written file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// One file a command reads or writes, with the flag that named it.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub flag: &'a str,
    pub path: &'a Path,
}

impl<'a> Named<'a> {
    pub fn new(flag: &'a str, path: &'a Path) -> Self {
        Named { flag, path }
    }
}

/// What identifies a file: its resolved path, and (when it exists, on Unix)
/// its device and inode, so hard links and symlinks are caught too.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    resolved: Option<PathBuf>,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Identity {
        let resolved = std::fs::canonicalize(path).ok().or_else(|| {
            // Not there yet: resolve the directory, keep the name.
            let name = path.file_name()?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::canonicalize(dir).ok().map(|d| d.join(name))
        });
        Identity {
            resolved,
            inode: inode(path),
        }
    }

    fn same(&self, other: &Identity) -> bool {
        (self.resolved.is_some() && self.resolved == other.resolved)
            || (self.inode.is_some() && self.inode == other.inode)
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Refuses (exit 2) any output that is one of the inputs or another output.
pub fn check_distinct(inputs: &[Named<'_>], outputs: &[Named<'_>]) -> Result<(), Error> {
    let ins: Vec<Identity> = inputs.iter().map(|n| Identity::of(n.path)).collect();
    let outs: Vec<Identity> = outputs.iter().map(|n| Identity::of(n.path)).collect();
    for (i, o) in outputs.iter().enumerate() {
        for (j, n) in inputs.iter().enumerate() {
            if outs[i].same(&ins[j]) {
                return Err(Error::Usage(format!(
                    "{} {} is the same file as the input {} {}: it would be overwritten; write the output elsewhere",
                    o.flag,
                    o.path.display(),
                    n.flag,
                    n.path.display()
                )));
            }
        }
        for (j, other) in outputs.iter().enumerate().skip(i + 1) {
            if outs[i].same(&outs[j]) {
                return Err(Error::Usage(format!(
                    "{} {} and {} {} are the same file: one output would overwrite the other; give them different names",
                    o.flag,
                    o.path.display(),
                    other.flag,
                    other.path.display()
                )));
            }
        }
    }
    Ok(())
}

/// A file written beside its target and renamed over it by [`AtomicFile::commit`].
/// Dropped without commit, it leaves nothing behind.
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    w: BufWriter<File>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile, Error> {
        let werr = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".repro-line-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(werr)?;
        let file = tmp.reopen().map_err(werr)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            w: BufWriter::with_capacity(1 << 20, file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.w.write_all(bytes).map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and closes it, still under its temporary name (removed on drop).
    pub fn close(mut self) -> Result<Pending, Error> {
        self.w.flush().map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(Pending {
            path: self.path,
            tmp: self.tmp.into_temp_path(),
        })
    }

    /// Flushes and renames into place.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        self.w.flush().map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })?;
        self.tmp.persist(&self.path).map_err(|e| Error::Write {
            path: self.path.clone(),
            source: e.error,
        })?;
        Ok(self.path)
    }
}

/// A closed [`AtomicFile`] waiting to be renamed into place.
pub struct Pending {
    pub path: PathBuf,
    tmp: tempfile::TempPath,
}

impl Pending {
    /// Renames it to `path` (which may differ from the one it was created for).
    pub fn persist(self, path: &Path) -> Result<PathBuf, Error> {
        self.tmp.persist(path).map_err(|e| Error::Write {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_by_path_link_and_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "x").unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&a, &hard).unwrap();
        let via_dot = dir.path().join(".").join("a.csv");
        for out in [&a, &hard, &via_dot] {
            let e = check_distinct(&[Named::new("--users", &a)], &[Named::new("-o", out)]);
            assert!(matches!(e, Err(Error::Usage(_))), "{out:?}");
        }
        let new = dir.path().join("new.csv");
        let also_new = dir.path().join("sub").join("..").join("new.csv");
        assert!(check_distinct(&[Named::new("in", &a)], &[Named::new("-o", &new)]).is_ok());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = check_distinct(
            &[],
            &[
                Named::new("-o", &new),
                Named::new("--blocked-out", &also_new),
            ],
        );
        assert!(matches!(e, Err(Error::Usage(_))));
    }
}
