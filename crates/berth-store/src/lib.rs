//! berth's image storage: content store, image metadata, overlay snapshots, layer apply.
#![warn(missing_docs)]
// unsafe is allowed in this crate only for syscalls the safe wrappers lack; every block
// carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod layer;
