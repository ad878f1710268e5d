//! The store's on-disk layout, drawn once. Every path the store uses comes from
//! [`Layout`]; nothing else joins store paths.
//!
//! ```text
//! <data-root>/
//! ├── blobs/sha256/<hex>          committed blobs, immutable, named by their digest
//! ├── ingest/<random>             blobs being written (removed at open: never visible)
//! ├── snapshots/
//! │   ├── <chain-id hex>/         one committed layer snapshot per chain ID
//! │   │   ├── fs/                 the layer's files in overlayfs format (a lower dir)
//! │   │   └── meta.json           chain ID, diff ID, parent, size
//! │   └── .tmp-<random>/          a snapshot being unpacked or deleted (removed at open)
//! ├── images/<id hex>.json        image records (the ID is the config digest)
//! └── repositories.json           references → image IDs
//! ```
//!
//! Visibility is by rename: a blob, snapshot or record exists under its key only once it
//! is complete, so a crash at any moment leaves temporaries (cleaned at open) and
//! possibly unreferenced committed objects (collected by the daemon), never a
//! half-written object under a real key.

use std::path::{Path, PathBuf};

use berth_oci::Digest;

/// Maps typed keys to paths under one data root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Directory of committed blobs.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }
    /// A committed blob.
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }
    /// Directory of blobs being written.
    pub fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }
    /// Directory of snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    /// A committed snapshot's directory.
    pub fn snapshot(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots_dir().join(chain_id.hex())
    }
    /// Directory of image records.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    /// One image record.
    pub fn image(&self, id: &Digest) -> PathBuf {
        self.images_dir().join(format!("{}.json", id.hex()))
    }
    /// The reference → image ID map.
    pub fn repositories(&self) -> PathBuf {
        self.root.join("repositories.json")
    }
}
