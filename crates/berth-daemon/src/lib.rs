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

pub mod build;
pub mod containers;
mod error;
pub mod events;
pub mod filters;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{DaemonError, ErrorKind};

/// Where the daemon keeps its state. Two daemons with different roots never touch each
/// other's files.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Persistent state: blobs, images, snapshots (default `/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state that does not survive a reboot (default `/run/berth`).
    pub exec_root: PathBuf,
    /// The cgroup every container's cgroup is created under, unless it names its own
    /// (`--cgroup-parent`, default `berth`). Daemons that share a host keep their
    /// containers apart by giving each its own.
    pub cgroup_parent: String,
    /// The default bridge network (`--bridge`, `--bip`).
    pub network: networks::NetworkConfig,
}

/// The daemon: owns every service's state.
pub struct Daemon {
    config: DaemonConfig,
    images: Arc<images::ImageService>,
    containers: Arc<containers::ContainerService>,
    events: Arc<events::EventBus>,
    networks: Arc<networks::NetworkService>,
    build: build::BuildService,
}

impl Daemon {
    /// Opens (creating if needed) the state under `config`'s roots.
    ///
    /// # Errors
    /// Fails when the roots cannot be created or the store found there cannot be opened.
    /// Call [`Daemon::restore`] next, inside the runtime.
    pub fn open(config: DaemonConfig) -> Result<Self, DaemonError> {
        for dir in [&config.data_root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(|e| {
                DaemonError::internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let events = Arc::new(events::EventBus::default());
        let images = Arc::new(images::ImageService::open(
            &config.data_root,
            events.clone(),
        )?);
        let networks = networks::NetworkService::open(
            &config.data_root,
            &config.exec_root,
            config.network.clone(),
            events.clone(),
        )?;
        let containers = containers::ContainerService::open(
            &config.data_root,
            &config.exec_root,
            &config.cgroup_parent,
            images.clone(),
            events.clone(),
            networks.clone(),
        )?;
        let build =
            build::BuildService::open(&config.data_root, images.clone(), containers.clone())?;
        Ok(Daemon {
            config,
            images,
            containers,
            events,
            networks,
            build,
        })
    }

    /// Reconnects to containers that kept running while the daemon was down.
    /// Network endpoints of containers that died meanwhile are removed first.
    pub async fn restore(&self) {
        let running: Vec<_> = self
            .containers
            .all()
            .into_iter()
            .map(|e| e.record())
            .filter(|r| r.state.running)
            .collect();
        self.networks.restore(&running).await;
        self.containers.restore().await;
    }

    /// The network service.
    pub fn networks(&self) -> &Arc<networks::NetworkService> {
        &self.networks
    }

    /// The local volume store.
    pub fn volumes(&self) -> volumes::VolumeStore {
        volumes::VolumeStore::new(&self.config.data_root, self.events.clone())
    }

    /// The event bus (`GET /events`).
    pub fn events(&self) -> &events::EventBus {
        &self.events
    }

    /// The container service.
    pub fn containers(&self) -> &Arc<containers::ContainerService> {
        &self.containers
    }

    /// The build service (`POST /build`).
    pub fn build(&self) -> &build::BuildService {
        &self.build
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
