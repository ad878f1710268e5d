//! OCI and Docker image types, with no I/O.
//!
//! - [`Digest`]: a sha256 content digest, the key of every blob.
//! - [`reference`]: image references (`busybox`, `localhost:5000/app:1`,
//!   `name@sha256:…`) normalized the way Docker does.
//! - [`image`]: image configs, manifests, indexes and descriptors, with the JSON field
//!   names of the OCI image spec and Docker's schema 2, so that documents round-trip.
//!
//! Everything here is pure data and parsing, so the store, the registry client and the
//! daemon agree on one set of types and each can be tested without a filesystem.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod digest;
pub mod image;
pub mod reference;

pub use digest::{Digest, DigestParseError, Digester, chain_ids};
