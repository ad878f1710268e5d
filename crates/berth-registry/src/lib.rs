//! berth's registry client: the Docker Registry HTTP API V2, which the OCI distribution
//! spec standardizes.
//!
//! - [`endpoint`]: where a reference's repository lives (`docker.io` →
//!   `registry-1.docker.io`, `library/` for official images) and whether plain HTTP is
//!   allowed (only loopback and registries the daemon config marks insecure).
//! - [`auth`]: credentials, the `WWW-Authenticate` challenge, bearer tokens.
//! - [`RegistryClient`]: one repository on one registry: manifests (with platform
//!   choice in an index), blobs streamed in and out, uploads, cross-repository mounts.
//!
//! Design: the client never holds a layer in memory. Blob downloads come back as an
//! `AsyncRead` that the caller (the daemon's pull) streams through digest, decompression
//! and unpacking; uploads stream from a file. Auth is lazy, as Docker's is: a request
//! goes out with whatever token the client holds, and a 401 with a challenge makes the
//! client fetch a token for the challenge's realm/service and the repository scope,
//! then retry once; the token is reused for every later request of the client.
//!
//! Transport: HTTP/1.1 over hyper's connection API, one connection per request (a pull
//! opens a handful; keeping the crate free of a pool keeps it small). HTTPS is
//! `tokio-rustls` with the `ring` provider, Mozilla's roots (`webpki-roots`) and
//! Docker's per-registry CA directory ([`tls`]); no OpenSSL.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod base64;
mod client;
pub mod endpoint;
mod error;
mod platform;
pub mod tls;

pub use auth::{AuthConfig, Credentials};
pub use client::{
    BlobReader, CHUNKED_UPLOAD_MIN, Pulled, RegistryClient, StreamPiece, UPLOAD_CHUNK,
    UploadProgress, UploadSource,
};
pub use endpoint::{Endpoint, Scheme};
pub use error::RegistryError;
pub use platform::{PlatformParseError, PlatformSpec};
