//! berth's own registry server: the Docker Registry HTTP API V2, standardized as the OCI
//! distribution spec, over a filesystem store. `docker push`/`pull`, skopeo and berth's
//! own client use it as they use Docker's reference registry.
//!
//! - [`name`]: repository names, manifest references and upload ids, parsed at the edge.
//! - [`storage`]: content-addressed blobs, per-repository links, tags and uploads on disk
//!   (layout drawn there), written durably and streamed, never a whole blob in memory.
//! - [`manifest`]: which blobs and manifests a pushed manifest needs.
//! - [`api`]: the HTTP router (axum), URLs to typed routes, the spec's headers.
//! - [`error`]: the spec's error codes and JSON bodies.
//! - [`auth`]: Basic auth against an htpasswd file of bcrypt entries.
//!
//! Design: Docker's registry is the behaviour clients are written against, so where the
//! spec leaves room (empty-upload `Range: 0-0`, links that make a blob visible per
//! repository, error details) this server does what it does. Storage knows nothing of
//! HTTP: handlers turn requests into calls on [`storage::Storage`] with typed arguments,
//! and its errors are classified into spec codes once, in [`error`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod error;
pub mod manifest;
pub mod name;
pub mod storage;

pub use api::{Registry, router};
pub use storage::Storage;
