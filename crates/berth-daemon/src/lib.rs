//! berth's services and the state they own.
//!
//! [`Daemon`] is the one handle the API layer holds. Each service (images now;
//! containers, networks, volumes later) is a module whose operations take typed
//! arguments and return typed results or a [`DaemonError`]; nothing here knows HTTP.
//!
//! Errors are classified exactly once, into [`ErrorKind`], by an exhaustive `match`
//! over each library error, so that a new library variant forces a decision about what
//! the client sees. `berth-api` is the only place that turns a kind into a status code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod filters;
pub mod images;
pub mod system;

use std::path::PathBuf;

pub use error::{DaemonError, ErrorKind};

/// Where the daemon keeps its state. Two daemons with different roots never touch each
/// other's files.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Persistent state: blobs, images, snapshots (default `/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state that does not survive a reboot (default `/run/berth`).
    pub exec_root: PathBuf,
}

/// The daemon: owns every service's state.
pub struct Daemon {
    config: DaemonConfig,
    images: images::ImageService,
}

impl Daemon {
    /// Opens (creating if needed) the state under `config`'s roots.
    ///
    /// # Errors
    /// Fails when the roots cannot be created or the store found there cannot be opened.
    pub fn open(config: DaemonConfig) -> Result<Self, DaemonError> {
        for dir in [&config.data_root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(|e| {
                DaemonError::internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let images = images::ImageService::open(&config.data_root)?;
        Ok(Daemon { config, images })
    }

    /// The image service.
    pub fn images(&self) -> &images::ImageService {
        &self.images
    }

    /// The configuration this daemon was opened with.
    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }
}
