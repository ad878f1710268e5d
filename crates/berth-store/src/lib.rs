//! berth's image storage: content store, image metadata, overlay snapshots, layer apply.
//!
//! - [`ContentStore`]: blobs by digest, written through an ingest and committed by
//!   rename after the digest is checked.
//! - [`Snapshotter`]: one unpacked overlay lower directory per chain ID, shared by all
//!   images with the same layer stack (a layer is stored once).
//! - [`ImageStore`]: image records (config digest → layers) and the reference map.
//! - [`layer`]: decompression, streaming digests and our own tar extractor, which writes
//!   overlayfs whiteouts and resolves every path inside the layer root.
//!
//! The on-disk tree is drawn once, in [`layout`]. Every object becomes visible by an
//! atomic rename after its content is synced, so `kill -9` at any moment leaves only
//! temporaries, which opening the store removes.
#![warn(missing_docs)]
// unsafe is allowed in this crate only for syscalls the safe wrappers lack; every block
// carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod content;
pub mod durable;
pub mod images;
pub mod layer;
pub mod layout;
pub mod snapshot;

pub use content::{BlobWriter, CommitError, ContentStore, PendingBlob};
pub use images::{ImageRecord, ImageStore, LayerRecord, MetadataError};
pub use layout::Layout;
pub use snapshot::{ActiveSnapshot, SnapshotError, SnapshotInfo, Snapshotter};
