//! Layer tarballs: decompression, digest verification while streaming, and application
//! onto a directory as one overlayfs layer.
//!
//! A pull streams each blob once: `DigestReader` (blob digest) → [`decompress`] →
//! `DigestReader` (diff ID) → [`apply_layer`], then [`DigestReader::drain`] so both
//! digests cover the whole stream, and only then is the layer directory committed.
//!
//! The other direction: [`write_diff`] packs an overlay upperdir as a layer tarball
//! (whiteouts converted, diff ID computed while writing), [`changes`] lists what it
//! changed, and [`TreePacker`] packs any tree by file descriptor (export, `docker cp`).
//!
//! [`apply_layer`] is our own extractor over the `tar` crate's reader, because layer
//! tarballs are hostile input and must land in overlayfs's format: names are resolved
//! inside the layer by file descriptor (`openat2(RESOLVE_IN_ROOT)`), `..` names are
//! refused, aufs whiteouts become overlay whiteouts, and header sizes and entry counts
//! are capped.

mod apply;
mod compression;
mod diff;
mod digest_reader;
mod entry_name;
mod gzip;
mod packer;
mod root;

pub use apply::{ApplyError, ApplyOptions, ApplyStats, apply_layer};
pub use compression::{Compression, decompress};
pub use diff::{Change, ChangeKind, DiffError, changes, write_diff};
pub use digest_reader::DigestReader;
pub use entry_name::InvalidPathReason;
pub use gzip::gzip_parallel;
pub use packer::{PackOptions, PackStats, TreePacker};
