//! The Compose Specification for berth: the project model and its loader.
//!
//! [`load`] turns compose files into a typed [`Project`]: file discovery
//! (`compose.yaml`, `docker-compose.yml`, overrides, `-f` several), the
//! `.env` file and `--env-file`, variable interpolation
//! ([`interpolate::interpolate`]), `extends` (same file and other files),
//! merging of several files with Compose's per-key rules, and profiles.
//! [`labels`] holds the names the engine objects of a project carry, shared
//! with docker-compose 1.29 so either tool manages what the other started.
//!
//! The crate does no I/O beyond reading the compose and env files: it never
//! talks to a daemon, so `berth compose` (and anything else) can drive either
//! berthd or dockerd with the model. Files are handled as untyped JSON trees
//! until they are merged, because interpolation, `extends` and merging all
//! work on the text as written; only the merged result is typed, which lets
//! every error name its file, service and key.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compat;
pub mod dotenv;
pub mod interpolate;
pub mod labels;
pub mod load;
mod merge;
pub mod model;
pub mod parse;
mod typed;

pub use load::{LoadError, LoadOptions, load};
pub use model::{Condition, Project, Service};
