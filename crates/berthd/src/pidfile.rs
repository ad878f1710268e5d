//! The PID file, held under an exclusive `flock` for the daemon's lifetime.
//!
//! The lock, not the file's existence or the PID in it, says whether a daemon runs:
//! a crashed daemon leaves a stale file whose PID may be reused, but the kernel drops
//! its lock the moment it dies. So a second berthd with the same PID file refuses to
//! start, while berthds with different PID files (and sockets and roots) run side by
//! side.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustix::fs::{FlockOperation, flock};

/// A locked PID file holding this process's PID. Remove it with [`PidFile::remove`]
/// on a clean shutdown; if the process dies, the lock goes with it.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    // Keeps the lock: flock belongs to the open file description.
    _file: File,
}

impl PidFile {
    /// Creates (or takes over a stale) PID file at `path` and writes our PID.
    ///
    /// # Errors
    /// Another live process holds the file's lock, or the file cannot be created,
    /// locked or written.
    pub(crate) fn acquire(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // No truncation before the lock is ours: the file may belong to a live daemon.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open pidfile {}", path.display()))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                bail!(
                    "pidfile {} is locked by another running berthd{}; stop it, or give this one its own --pidfile, -H, --data-root and --exec-root",
                    path.display(),
                    if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (PID {pid})")
                    }
                );
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot lock pidfile {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .with_context(|| format!("cannot truncate pidfile {}", path.display()))?;
        writeln!(file, "{}", std::process::id())
            .with_context(|| format!("cannot write pidfile {}", path.display()))?;
        Ok(PidFile {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// Removes the file, then releases the lock (in that order, so that no other
    /// daemon can lock the file we are about to delete).
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove pidfile");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_of_same_pidfile_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/berthd.pid");
        let first = PidFile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        let err = PidFile::acquire(&path).unwrap_err().to_string();
        assert!(err.contains("locked by another running berthd"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        // The refused attempt must not have emptied the live daemon's file.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        first.remove();
        assert!(!path.exists());
    }

    #[test]
    fn stale_pidfile_without_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berthd.pid");
        std::fs::write(&path, "999999999\n").unwrap();
        let p = PidFile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        p.remove();
    }
}
