//! Layer snapshots: one unpacked directory per chain ID, shared by every image whose
//! layer stack starts the same way.
//!
//! Lifecycle: [`Snapshotter::prepare`] makes an *active* snapshot (a temp directory
//! with an empty `fs/`), the caller unpacks a layer into it, and
//! [`Snapshotter::commit`] syncs the filesystem and renames it under its chain ID,
//! after which it is *committed* and never changes. A committed snapshot's `fs/` is an
//! overlayfs lower directory: whiteouts are 0:0 character devices and opaque
//! directories carry `trusted.overlay.opaque=y`. Two loads racing to commit the same
//! chain ID are fine: the second finds it present and discards its copy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::durable;
use crate::layout::Layout;

const TMP_PREFIX: &str = ".tmp-";

/// What is recorded about a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The chain ID (the snapshot's key).
    pub chain_id: Digest,
    /// The diff ID of the layer unpacked into it.
    pub diff_id: Digest,
    /// The chain ID below it, if any.
    pub parent: Option<Digest>,
    /// Bytes of file content in this layer.
    pub size: u64,
    /// Length of the uncompressed layer tarball.
    #[serde(default)]
    pub diff_size: u64,
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// I/O on a snapshot directory.
    #[error("snapshot {path}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A committed snapshot's metadata is unreadable.
    #[error("snapshot {chain_id} has corrupt metadata")]
    Corrupt {
        /// The snapshot.
        chain_id: Digest,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Committed and active snapshots under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    layout: Layout,
}

/// A snapshot being filled; dropped without commit, it is removed.
#[derive(Debug)]
pub struct ActiveSnapshot {
    dir: PathBuf,
}

impl ActiveSnapshot {
    /// The directory to unpack the layer into.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Snapshotter {
    /// Opens the snapshotter, removing active snapshots a crash left behind.
    ///
    /// # Errors
    /// Creating or cleaning the directory.
    pub fn open(layout: Layout) -> io::Result<Self> {
        fs::create_dir_all(layout.snapshots_dir())?;
        durable::remove_temporaries(&layout.snapshots_dir(), TMP_PREFIX)?;
        Ok(Snapshotter { layout })
    }

    /// Whether the chain ID is committed.
    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.layout.snapshot(chain_id).join("meta.json").exists()
    }

    /// The `fs/` directory of a committed snapshot (an overlay lower dir).
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.layout.snapshot(chain_id).join("fs")
    }

    /// Starts a new active snapshot.
    ///
    /// # Errors
    /// Creating its directories.
    pub fn prepare(&self) -> Result<ActiveSnapshot, SnapshotError> {
        let dir = self
            .layout
            .snapshots_dir()
            .join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
        fs::create_dir(&dir).map_err(|source| SnapshotError::Io {
            path: dir.clone(),
            source,
        })?;
        let active = ActiveSnapshot { dir };
        fs::create_dir(active.fs()).map_err(|source| SnapshotError::Io {
            path: active.fs(),
            source,
        })?;
        Ok(active)
    }

    /// Commits `active` under `info.chain_id`. If that chain ID is already committed
    /// (a concurrent load won), `active` is discarded and that is not an error.
    ///
    /// # Errors
    /// Syncing, writing the metadata or renaming.
    pub fn commit(
        &self,
        mut active: ActiveSnapshot,
        info: &SnapshotInfo,
    ) -> Result<(), SnapshotError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { path, source }
        };
        if self.exists(&info.chain_id) {
            return Ok(());
        }
        let meta = serde_json::to_vec(info).expect("snapshot info serializes");
        durable::sync_filesystem(&active.dir).map_err(io(&active.dir))?;
        durable::write_atomic(&active.dir.join("meta.json"), &meta).map_err(io(&active.dir))?;
        let target = self.layout.snapshot(&info.chain_id);
        match fs::rename(&active.dir, &target) {
            Ok(()) => {
                active.dir = PathBuf::new();
                durable::sync_dir(&self.layout.snapshots_dir()).map_err(io(&target))
            }
            // A racing commit got there first: ours is dropped.
            Err(e) if self.exists(&info.chain_id) => {
                tracing::debug!(chain_id = %info.chain_id, error = %e, "snapshot already committed");
                Ok(())
            }
            Err(e) => Err(io(&target)(e)),
        }
    }

    /// Reads a committed snapshot's metadata.
    ///
    /// # Errors
    /// Not committed, unreadable or corrupt.
    pub fn info(&self, chain_id: &Digest) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.layout.snapshot(chain_id).join("meta.json");
        let data = fs::read(&path).map_err(|source| SnapshotError::Io { path, source })?;
        serde_json::from_slice(&data).map_err(|source| SnapshotError::Corrupt {
            chain_id: *chain_id,
            source,
        })
    }

    /// Every committed chain ID.
    ///
    /// # Errors
    /// Reading the directory.
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.layout.snapshots_dir())? {
            if let Ok(d) = Digest::from_hex(&entry?.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes a committed snapshot. It is first renamed to a temporary name, so a
    /// crash mid-delete never leaves a partial tree under its chain ID.
    ///
    /// # Errors
    /// Renaming or removing.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let path = self.layout.snapshot(chain_id);
        let doomed = self
            .layout
            .snapshots_dir()
            .join(format!("{TMP_PREFIX}rm-{}", chain_id.hex()));
        match fs::rename(&path, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(SnapshotError::Io { path, source }),
        }
        fs::remove_dir_all(&doomed).map_err(|source| SnapshotError::Io {
            path: doomed,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u8) -> SnapshotInfo {
        SnapshotInfo {
            chain_id: Digest::of(&[n]),
            diff_id: Digest::of(&[n]),
            parent: None,
            size: 1,
            diff_size: 1,
        }
    }

    #[test]
    fn prepare_commit_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(Layout::new(dir.path())).unwrap();
        let a = s.prepare().unwrap();
        fs::write(a.fs().join("f"), b"x").unwrap();
        s.commit(a, &info(1)).unwrap();
        assert!(s.exists(&info(1).chain_id));
        assert_eq!(
            fs::read(s.fs_path(&info(1).chain_id).join("f")).unwrap(),
            b"x"
        );
        assert_eq!(s.info(&info(1).chain_id).unwrap(), info(1));
        assert_eq!(s.list().unwrap(), vec![info(1).chain_id]);
        s.remove(&info(1).chain_id).unwrap();
        assert!(s.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
            0
        );
    }

    #[test]
    fn uncommitted_snapshots_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(Layout::new(dir.path())).unwrap();
        drop(s.prepare().unwrap());
        std::mem::forget(s.prepare().unwrap()); // a crash mid-unpack
        Snapshotter::open(Layout::new(dir.path())).unwrap();
        assert_eq!(
            fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
            0
        );
    }

    #[test]
    fn second_commit_of_a_chain_id_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(Layout::new(dir.path())).unwrap();
        s.commit(s.prepare().unwrap(), &info(1)).unwrap();
        s.commit(s.prepare().unwrap(), &info(1)).unwrap();
        assert_eq!(
            fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
            1
        );
    }
}
