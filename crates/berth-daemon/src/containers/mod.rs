//! The container service: create, start, stop, kill, wait, remove, rename, and the
//! supervision of running containers through their shims.
//!
//! Layout (drawn once):
//! ```text
//! <data-root>/containers/<id>/
//! ├── config.json        ContainerRecord, written atomically on every change
//! ├── <id>-json.log      the json-file log (written by the shim)
//! ├── hostname, hosts, resolv.conf   generated, bind-mounted into the container
//! ├── upper/ work/       the overlay's writable layer
//! ├── empty/             a lower dir for images without layers
//! └── rootfs/            the overlay mount point, mounted while the container runs
//! <exec-root>/c/<short id>/   the shim's state dir (launch.json, shim.sock, exit.json);
//!                             short, because unix socket paths are capped at 108 bytes
//! ```
//!
//! Each container has an in-memory [`Entry`]: its record behind a std mutex (held
//! only for short edits), a tokio mutex that serializes lifecycle operations, and a
//! watch channel that counts exits so waiters never miss one. A monitor task per
//! running container waits on the shim and applies the exit: state, log of the
//! event, rootfs unmount, restart policy, auto-remove.

mod archive;
pub mod attach;
mod commit;
mod etc;
pub mod exec;
mod health;
mod init_layer;
mod inspect;
mod links;
pub mod logs;
pub mod model;
mod mount_config;
mod names;
mod resources;
mod rootfs;
mod shim;
mod spec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_oci::Digest;
use berth_shim_protocol::{ExitStatus, LaunchErrorKind, Ready, Reply, Request, Status};
use chrono::Utc;
use tokio::sync::{oneshot, watch};

use crate::events::{EventBus, Kind};
use crate::images::{ImageService, ImageUsers};
use crate::{DaemonError, ErrorKind};
pub use archive::{ContainerRoot, ExtractOptions, PathStat};
pub use commit::CommitOptions;
pub use inspect::add_legacy_aliases;
pub use model::{Config, ContainerRecord, HostConfig};
pub use resources::{StatsSample, StatsSampler, TopResult, UpdateRequest};
use rootfs::RootfsPaths;

/// How long `start` waits for clients that attached before it to be connected.
const ATTACH_HANDOFF: Duration = Duration::from_secs(5);

/// A container in memory.
pub struct Entry {
    record: Mutex<ContainerRecord>,
    op: tokio::sync::Mutex<()>,
    /// Counts exits; closed (sender dropped) when the container is removed.
    exits: watch::Sender<u64>,
    removed: watch::Sender<bool>,
    attach_waiters: Mutex<Vec<oneshot::Sender<oneshot::Sender<()>>>>,
    /// The healthcheck monitor while it runs (only for a running container with a check).
    health: Mutex<Option<health::HealthMonitor>>,
}

impl Entry {
    /// A snapshot of the record.
    pub fn record(&self) -> ContainerRecord {
        self.record.lock().expect("record lock").clone()
    }
    fn edit<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> T {
        f(&mut self.record.lock().expect("record lock"))
    }
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Entry>>,
    /// Name (with leading slash) → ID.
    names: HashMap<String, String>,
}

/// The container service.
pub struct ContainerService {
    root: PathBuf,
    exec_root: PathBuf,
    cgroup_parent: String,
    volumes: crate::volumes::VolumeStore,
    images: Arc<ImageService>,
    networks: Arc<crate::networks::NetworkService>,
    index: Mutex<Index>,
    events: Arc<EventBus>,
    execs: exec::Execs,
    me: Weak<ContainerService>,
}

/// What a `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if not running (the default).
    NotRunning,
    /// The next exit from now.
    NextExit,
    /// Removal.
    Removed,
}

/// `POST /containers/create`'s request.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// `?name=`.
    pub name: Option<String>,
    /// The body's `Config` part.
    pub config: Config,
    /// `HostConfig`.
    pub host_config: HostConfig,
    /// `NetworkingConfig` (`EndpointsConfig`: aliases and addresses per network).
    pub networking_config: Option<serde_json::Value>,
}

fn no_such_container(name: &str) -> DaemonError {
    DaemonError::not_found(format!("No such container: {name}"))
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::internal(format!("{what}: {e}"))
}

impl ContainerService {
    /// Opens the service and loads every container record. Call
    /// [`ContainerService::restore`] next, inside the runtime, to reconnect to running
    /// containers.
    ///
    /// # Errors
    /// The containers directory cannot be created or read.
    pub fn open(
        data_root: &Path,
        exec_root: &Path,
        cgroup_parent: &str,
        images: Arc<ImageService>,
        events: Arc<EventBus>,
        networks: Arc<crate::networks::NetworkService>,
    ) -> Result<Arc<Self>, DaemonError> {
        let root = data_root.join("containers");
        std::fs::create_dir_all(&root).map_err(io_err("cannot create containers dir"))?;
        std::fs::create_dir_all(exec_root.join("c")).map_err(io_err("cannot create exec root"))?;
        let svc = Arc::new_cyclic(|me| ContainerService {
            root: root.clone(),
            exec_root: exec_root.to_path_buf(),
            cgroup_parent: cgroup_parent.trim_matches('/').to_string(),
            volumes: crate::volumes::VolumeStore::new(data_root, events.clone()),
            images: images.clone(),
            networks,
            index: Mutex::new(Index::default()),
            events,
            execs: exec::Execs::default(),
            me: me.clone(),
        });
        for dir in std::fs::read_dir(&root).map_err(io_err("cannot read containers dir"))? {
            let dir = dir.map_err(io_err("cannot read containers dir"))?.path();
            let Ok(data) = std::fs::read(dir.join("config.json")) else {
                continue;
            };
            let record: ContainerRecord = match serde_json::from_slice(&data) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(path = %dir.display(), error = %e, "skipping unreadable container record");
                    continue;
                }
            };
            svc.insert(record);
        }
        images.set_users(Arc::new(Users(Arc::downgrade(&svc))));
        Ok(svc)
    }

    /// Live restore: reconnects to the shims of containers that were running when the
    /// daemon stopped; those that died meanwhile get their recorded exit status. Then
    /// applies `always`/`unless-stopped` restart policies.
    pub async fn restore(self: &Arc<Self>) {
        for entry in self.all() {
            if entry.record().state.running {
                self.restore_one(entry).await;
            }
        }
        self.apply_restart_policies_at_boot().await;
    }

    fn insert(&self, record: ContainerRecord) -> Arc<Entry> {
        let (exits, _) = watch::channel(0);
        let (removed, _) = watch::channel(false);
        let id = record.id.clone();
        let name = record.name.clone();
        let entry = Arc::new(Entry {
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            exits,
            removed,
            attach_waiters: Mutex::new(Vec::new()),
            health: Mutex::new(None),
        });
        let mut index = self.index.lock().expect("index lock");
        index.names.insert(name, id.clone());
        index.by_id.insert(id, entry.clone());
        entry
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// A container's overlay lower dirs, top first: its init layer (containers made
    /// before init layers existed have none), then its image's layers.
    fn lower_dirs(&self, id: &str, image: &Digest) -> Result<Vec<PathBuf>, DaemonError> {
        let mut lowers = Vec::new();
        let init = init_layer::path(&self.dir(id));
        if init.is_dir() {
            lowers.push(init);
        }
        lowers.extend(self.images.layer_dirs(image)?);
        Ok(lowers)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("c").join(&id[..12])
    }

    fn persist(&self, entry: &Entry) -> Result<(), DaemonError> {
        let record = entry.record();
        let data = serde_json::to_vec_pretty(&record).expect("record serializes");
        berth_store::durable::write_atomic(&self.dir(&record.id).join("config.json"), &data)
            .map_err(io_err("cannot write container record"))
    }

    /// Resolves a container by full ID, name (with or without `/`), or unique ID
    /// prefix, as Docker does.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidArgument` for an ambiguous prefix (Docker's words).
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Entry>, DaemonError> {
        let index = self.index.lock().expect("index lock");
        if let Some(e) = index.by_id.get(name_or_id) {
            return Ok(e.clone());
        }
        let name = if name_or_id.starts_with('/') {
            name_or_id.to_string()
        } else {
            format!("/{name_or_id}")
        };
        if let Some(id) = index.names.get(&name) {
            return Ok(index.by_id[id].clone());
        }
        if name_or_id.is_empty() {
            return Err(no_such_container(name_or_id));
        }
        let mut found = index
            .by_id
            .iter()
            .filter(|(id, _)| id.starts_with(name_or_id));
        match (found.next(), found.next()) {
            (Some((_, e)), None) => Ok(e.clone()),
            (Some(_), Some(_)) => Err(DaemonError::invalid(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
            _ => Err(no_such_container(name_or_id)),
        }
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.index
            .lock()
            .expect("index lock")
            .by_id
            .values()
            .cloned()
            .collect()
    }

    /// Counts (total, running, paused, stopped) for `/info`.
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        let all = self.all();
        let (mut running, mut paused) = (0, 0);
        for e in &all {
            let state = e.record().state;
            // As Docker counts: a paused container is not also running.
            if state.paused {
                paused += 1;
            } else if state.running {
                running += 1;
            }
        }
        let total = all.len() as u64;
        (total, running, paused, total - running - paused)
    }

    /// Gives back the container's volumes that are mounted at use (see
    /// `VolumeStore::release`).
    fn release_volumes(&self, record: &ContainerRecord) {
        let held_by_another = |volume: &str| {
            self.all().iter().any(|e| {
                let r = e.record();
                r.id != record.id
                    && r.state.running
                    && r.mounts
                        .iter()
                        .any(|m| m.kind == "volume" && m.name == volume)
            })
        };
        self.volumes.release(record, &held_by_another);
    }

    /// `POST /containers/create`.
    ///
    /// # Errors
    /// `NotFound` for the image (clients then pull), `Conflict` for a name in use,
    /// `InvalidArgument` for bad settings, in Docker's words.
    pub async fn create(&self, req: CreateRequest) -> Result<(String, Vec<String>), DaemonError> {
        let CreateRequest {
            name,
            mut config,
            host_config,
            networking_config,
        } = req;
        if config.image.is_empty() {
            return Err(DaemonError::invalid("No command specified"));
        }
        spec::validate_config(&mut config)?;
        spec::validate_host_config(&host_config)?;
        health::validate(&config)?;
        let image = self.images.get(&config.image)?;
        spec::merge_image_config(&mut config, image.config.config.as_ref());
        let (path, args) = spec::command_line(&config)?;
        let id = loop {
            let id = names::new_id();
            let index = self.index.lock().expect("index lock");
            if !index.by_id.keys().any(|k| k[..12] == id[..12]) {
                break id;
            }
        };
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let name = self.reserve_name(name.as_deref(), &id)?;
        let mut host_config = host_config;
        spec::apply_create_defaults(&mut host_config);
        if host_config.network_mode.is_empty() || host_config.network_mode == "default" {
            host_config.network_mode = "bridge".into();
        }
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = "json-file".into();
        }
        host_config
            .extra
            .insert("Runtime".into(), serde_json::Value::String("runc".into()));
        let record = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: Utc::now(),
            image: image.record.id.to_string(),
            path,
            args,
            config,
            host_config,
            state: model::State::default(),
            restart_count: 0,
            manually_stopped: false,
            has_been_started: false,
            mounts: Vec::new(),
        };
        let dir = self.dir(&id);
        let result = (|| {
            self.check_links(&record)?;
            self.networks.register(
                &id,
                &record.host_config.network_mode,
                networking_config.as_ref(),
                record
                    .config
                    .extra
                    .get("MacAddress")
                    .and_then(serde_json::Value::as_str),
                &links::links_of(&record),
            )?;
            let inherited = self.volumes_from(&record)?;
            std::fs::create_dir_all(&dir).map_err(io_err("cannot create container dir"))?;
            RootfsPaths::under(&dir)
                .create()
                .map_err(io_err("cannot create container dirs"))?;
            init_layer::create(&dir, &self.images.layer_dirs(&image.record.id)?)
                .map_err(io_err("cannot create init layer"))?;
            let mounts = spec::mounts_for(&record, &self.volumes, inherited)?;
            // Most containers have no volume: keep the create path free of this work.
            if mounts.iter().any(|m| m.kind == "volume") {
                let lowers = self.lower_dirs(&id, &image.record.id)?;
                archive::populate_volumes(&RootfsPaths::under(&dir), &lowers, &mounts)?;
            }
            Ok(mounts)
        })();
        let mounts = match result {
            Ok(m) => m,
            Err(e) => {
                self.index.lock().expect("index lock").names.remove(&name);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let entry = {
            let mut record = record;
            record.mounts = mounts;
            // `insert` maps the name reserved above to this container; it is never free
            // in between, so a concurrent create cannot take it.
            self.insert(record)
        };
        self.persist(&entry)?;
        tracing::info!(container = %id, "container created");
        self.event(&entry.record(), "create", &[]);
        Ok((id, Vec::new()))
    }

    /// `--volumes-from NAME[:ro|:rw]`: the volume and bind mounts of other containers,
    /// with their access mode unless one is given.
    fn volumes_from(
        &self,
        record: &ContainerRecord,
    ) -> Result<Vec<model::MountPoint>, DaemonError> {
        let mut out: Vec<model::MountPoint> = Vec::new();
        for spec in record.host_config.volumes_from.iter().flatten() {
            let (name, mode) = match spec.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                Some(_) => {
                    return Err(DaemonError::invalid(format!(
                        "invalid mode for volumes-from: {spec}"
                    )));
                }
                None => (spec.as_str(), None),
            };
            let source = self.get(name)?.record();
            for m in source.mounts.iter().filter(|m| m.kind != "tmpfs") {
                let mut m = m.clone();
                m.anonymous = false;
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                    m.mode = mode.to_string();
                }
                out.retain(|o| o.destination != m.destination);
                out.push(m);
            }
        }
        Ok(out)
    }

    fn reserve_name(&self, requested: Option<&str>, id: &str) -> Result<String, DaemonError> {
        let mut index = self.index.lock().expect("index lock");
        let name = match requested.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !names::valid_name(n) {
                    return Err(DaemonError::invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                let n = if n.starts_with('/') {
                    n.to_string()
                } else {
                    format!("/{n}")
                };
                if let Some(other) = index.names.get(&n) {
                    return Err(DaemonError::conflict(format!(
                        "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = format!("/{}", names::random_name(retry));
                    if !index.names.contains_key(&n) {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        index.names.insert(name.clone(), id.to_string());
        Ok(name)
    }

    /// `POST /containers/{id}/start`. `Ok(false)` means it was already running
    /// (Docker answers 304).
    ///
    /// # Errors
    /// `InvalidArgument` when the command cannot be found or run (the CLI maps those
    /// to 127/126), `Internal` for other failures.
    pub async fn start(&self, name: &str) -> Result<bool, DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        if entry.record().state.running {
            return Ok(false);
        }
        entry.edit(|r| r.manually_stopped = false);
        let started = self.start_locked(&entry).await;
        drop(_op);
        if let Err(e) = started {
            // As Docker: a `--rm` container whose start failed is removed, which also
            // ends the `wait?condition=removed` that `docker run --rm` blocks on.
            let record = entry.record();
            if record.host_config.auto_remove {
                if let Err(rm) = self.remove(&record.id, true, true).await {
                    tracing::warn!(container = %record.id, error = %rm, "cannot auto-remove after a failed start");
                }
            }
            return Err(e);
        }
        Ok(true)
    }

    async fn start_locked(&self, entry: &Arc<Entry>) -> Result<(), DaemonError> {
        let result = self.start_attached(entry).await;
        if result.is_err() {
            // Whatever part of the network was set up goes with the failed start.
            self.networks.detach(&entry.record().id).await;
        }
        result
    }

    async fn start_attached(&self, entry: &Arc<Entry>) -> Result<(), DaemonError> {
        let record = entry.record();
        let id = record.id.clone();
        let dir = self.dir(&id);
        let paths = RootfsPaths::under(&dir);
        let image: Digest = record
            .image
            .parse()
            .map_err(|_| DaemonError::internal("corrupt image id"))?;
        let lowers = self.lower_dirs(&id, &image)?;
        rootfs::mount(&paths, &lowers).map_err(io_err("cannot mount container rootfs"))?;
        let state_dir = self.state_dir(&id);
        let network = match self.networks.attach(&record).await {
            Ok(n) => n,
            Err(e) => {
                let _ = rootfs::unmount_rootfs(&paths);
                return Err(e);
            }
        };
        let fail = |e: DaemonError, entry: &Entry| {
            self.release_volumes(&record);
            let _ = rootfs::unmount_rootfs(&paths);
            let _ = std::fs::remove_dir_all(&state_dir);
            entry.edit(|r| {
                r.state.error = e.message().to_string();
                r.state.exit_code = match e.kind() {
                    ErrorKind::InvalidArgument if e.message().contains("not found") => 127,
                    ErrorKind::InvalidArgument => 126,
                    _ => 128,
                };
            });
            let _ = self.persist(entry);
            e
        };
        let shared_netns = match self.shared_netns(&record) {
            Ok(p) => p,
            Err(e) => {
                let _ = rootfs::unmount_rootfs(&paths);
                return Err(e);
            }
        };
        let view = etc::NetworkView {
            address: network.as_ref().map(|n| n.1),
            address6: self.networks.first_ipv6(&id),
            embedded_dns: self.networks.uses_embedded_dns(&record),
            host_gateway: self.networks.host_gateway(&id),
            links: self.link_hosts(&record),
        };
        // Descriptors of resolved volume subpaths: open until the container has started.
        let mut _subpaths = Vec::new();
        let launch = match etc::write_files(&dir, &record, &view)
            .and_then(|()| spec::launch_spec(&record, &dir, &paths, &self.cgroup_parent))
            .and_then(|mut l| {
                _subpaths = spec::resolve_subpaths(&record, &mut l.mounts)?;
                Ok(l)
            })
            .and_then(|l| Ok((l, self.link_env(&record)?)))
        {
            Ok((mut l, link_env)) => {
                // Link variables come before the container's own, which win.
                let own: Vec<String> = std::mem::take(&mut l.process.env);
                let mut env: Vec<String> = link_env
                    .into_iter()
                    .filter(|v| {
                        let key = v.split('=').next().unwrap_or(v);
                        !own.iter().any(|o| o.split('=').next() == Some(key))
                    })
                    .collect();
                env.extend(own);
                l.process.env = env;
                if let Some(netns) = network.as_ref().map(|n| &n.0).or(shared_netns.as_ref()) {
                    l.namespaces.network =
                        berth_shim_protocol::NetworkNamespace::Path(netns.clone());
                }
                l
            }
            Err(e) => return Err(fail(e, entry)),
        };
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir).map_err(io_err("cannot create state dir"))?;
        let data = serde_json::to_vec(&launch).expect("launch spec serializes");
        if let Err(e) = berth_store::durable::write_atomic(
            &state_dir.join(berth_shim_protocol::LAUNCH_FILE),
            &data,
        ) {
            return Err(fail(io_err("cannot write launch spec")(e), entry));
        }
        if let Err(e) = self.volumes.activate(&record) {
            return Err(fail(e, entry));
        }
        self.volumes.log_mounts(&record, true);
        let ready = match shim::spawn(&state_dir).await {
            Ok(r) => r,
            Err(e) => return Err(fail(DaemonError::internal(e.message), entry)),
        };
        if let Ready::Failed(e) = ready {
            return Err(fail(launch_error(e), entry));
        }
        // Clients that attached before start get every byte: connect them first.
        let waiters: Vec<_> =
            std::mem::take(&mut *entry.attach_waiters.lock().expect("waiters lock"));
        let mut acks = Vec::new();
        for w in waiters {
            let (tx, rx) = oneshot::channel();
            if w.send(tx).is_ok() {
                acks.push(rx);
            }
        }
        for ack in acks {
            let _ = tokio::time::timeout(ATTACH_HANDOFF, ack).await;
        }
        let pid = match shim::call(&state_dir, &Request::Start).await {
            Ok(Reply::Started { pid }) => pid,
            Ok(Reply::Error(e)) => {
                let _ = shim::call(&state_dir, &Request::Kill { signal: 9 }).await;
                return Err(fail(launch_error(e), entry));
            }
            other => {
                return Err(fail(
                    DaemonError::internal(format!("shim did not start the container: {other:?}")),
                    entry,
                ));
            }
        };
        entry.edit(|r| {
            r.state = model::State {
                status: "running".into(),
                running: true,
                pid,
                started_at: crate::images::go_time(Utc::now()),
                // The last healthcheck results survive a restart, as Docker keeps them.
                health: r.state.health.take(),
                ..model::State::default()
            };
            r.has_been_started = true;
        });
        self.persist(entry)?;
        tracing::info!(container = %id, pid, "container started");
        self.event(&entry.record(), "start", &[]);
        // Before the exit monitor, so that an exit, however early, stops the probes.
        self.start_health_monitor(entry);
        self.spawn_monitor(entry.clone());
        Ok(())
    }

    /// `--link NAME[:ALIAS]`: the `/etc/hosts` lines for the running containers named,
    /// as Docker writes them (`<ip>\t<alias> <short id> <name>`).
    fn link_hosts(&self, record: &ContainerRecord) -> Vec<(std::net::Ipv4Addr, String)> {
        let mut out = Vec::new();
        for link in links::links_of(record) {
            let Ok((name, alias)) = links::parse_link(&link) else {
                continue;
            };
            let alias = alias.as_str();
            let Ok(target) = self.get(&name) else {
                continue;
            };
            let target = target.record();
            if let Some(ep) = self.networks.endpoint(&target.id) {
                let tname = target.name.trim_start_matches('/');
                let mut names = vec![alias.to_string(), target.id[..12].to_string()];
                if tname != alias {
                    names.push(tname.to_string());
                }
                out.push((ep.ip, names.join(" ")));
            }
        }
        out
    }

    /// `--network container:NAME`: the namespace of that container, which must run.
    fn shared_netns(&self, record: &ContainerRecord) -> Result<Option<PathBuf>, DaemonError> {
        let Some(other) = record.host_config.network_mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let target = self.get(other)?.record();
        if !target.state.running {
            return Err(DaemonError::conflict(format!(
                "cannot join network namespace of a non running container: container {} is exited",
                target.id
            )));
        }
        let own = self.networks.netns_path(&target.id);
        if own.exists() {
            return Ok(Some(own));
        }
        Ok(Some(PathBuf::from(format!(
            "/proc/{}/ns/net",
            target.state.pid
        ))))
    }

    fn spawn_monitor(&self, entry: Arc<Entry>) {
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move { me.monitor(entry).await });
    }

    /// Waits for the container's exit through its shim and applies it.
    async fn monitor(self: Arc<Self>, entry: Arc<Entry>) {
        let id = entry.record().id;
        let state_dir = self.state_dir(&id);
        let status = match shim::call(&state_dir, &Request::Wait).await {
            Ok(Reply::Exited(s)) => s,
            _ => read_exit_file(&state_dir),
        };
        self.finish(&entry, status).await;
    }

    async fn finish(self: &Arc<Self>, entry: &Arc<Entry>, status: ExitStatus) {
        self.stop_health_monitor(entry);
        let record = entry.record();
        // Whatever is left in the container's cgroup dies with it: an init whose shim
        // died before `start` waits for it forever, and `--pid host` processes outlive
        // their init. Docker's runtime kills them the same way.
        if let Ok(cgroup) = self.cgroup_of(entry) {
            let killed = tokio::task::spawn_blocking(move || cgroup.kill_and_remove())
                .await
                .unwrap_or(0);
            if killed > 0 {
                tracing::info!(container = %record.id, killed, "killed processes left in the container's cgroup");
            }
        }
        // The rootfs and the network come down side by side, neither on a runtime
        // worker: with several containers exiting at once (`compose down`) these are
        // what the exits wait for.
        let paths = RootfsPaths::under(&self.dir(&record.id));
        let state_dir = self.state_dir(&record.id);
        let id = record.id.clone();
        let filesystem = tokio::task::spawn_blocking(move || {
            if let Err(e) = rootfs::unmount_rootfs(&paths) {
                tracing::warn!(container = %id, error = %e, "cannot unmount rootfs");
            }
            let _ = std::fs::remove_dir_all(state_dir);
        });
        self.networks.detach(&record.id).await;
        let _ = filesystem.await;
        self.release_volumes(&record);
        self.volumes.log_mounts(&record, false);
        // Before the state says "exited": `stop` and `kill` waiters look at it and then
        // report their own events, which Docker always sends after `die`.
        if status.oom_killed {
            self.event(&record, "oom", &[]);
        }
        self.event(
            &record,
            "die",
            &[("exitCode", status.exit_code.to_string())],
        );
        // Restarting is decided with the exit, in one edit: a client woken by the exit
        // (`wait`, then `rm`) must already see "restarting", as Docker's does.
        let restart =
            !record.host_config.auto_remove && self.should_restart(entry, status.exit_code);
        entry.edit(|r| {
            r.state.running = false;
            r.state.paused = false;
            r.state.restarting = restart;
            r.state.status = if restart { "restarting" } else { "exited" }.into();
            r.state.pid = 0;
            r.state.exit_code = status.exit_code;
            r.state.oom_killed = status.oom_killed;
            r.state.finished_at = status.finished_at.clone();
        });
        let (me, persisted) = (self.clone(), entry.clone());
        let _ = tokio::task::spawn_blocking(move || me.persist(&persisted)).await;
        entry.exits.send_modify(|n| *n += 1);
        tracing::info!(container = %record.id, exit_code = status.exit_code, "container exited");
        if record.host_config.auto_remove {
            let _ = self.remove(&record.id, true, true).await;
            return;
        }
        if restart {
            let me = self.clone();
            let entry = entry.clone();
            tokio::spawn(async move {
                let delay =
                    Duration::from_millis(100 * (1 << entry.record().restart_count.min(10)));
                tokio::time::sleep(delay).await;
                let _op = entry.op.lock().await;
                let r = entry.record();
                if r.state.running
                    || r.manually_stopped
                    || !me
                        .index
                        .lock()
                        .expect("index lock")
                        .by_id
                        .contains_key(&r.id)
                {
                    // Stopped (or removed) during the back-off: it stays exited.
                    if !r.state.running {
                        entry.edit(|r| {
                            r.state.restarting = false;
                            r.state.status = "exited".into();
                        });
                        let _ = me.persist(&entry);
                    }
                    return;
                }
                entry.edit(|r| {
                    r.restart_count += 1;
                    r.state.restarting = false;
                });
                if let Err(e) = me.start_locked(&entry).await {
                    tracing::warn!(container = %r.id, error = %e, "restart failed");
                    entry.edit(|r| r.state.status = "exited".into());
                }
            });
        }
    }

    fn should_restart(&self, entry: &Entry, exit_code: i32) -> bool {
        let r = entry.record();
        if r.manually_stopped {
            return false;
        }
        let policy = &r.host_config.restart_policy;
        match policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0
                    && (policy.maximum_retry_count == 0
                        || (r.restart_count as i64) < policy.maximum_retry_count)
            }
            _ => false,
        }
    }

    async fn restore_one(self: &Arc<Self>, entry: Arc<Entry>) {
        let id = entry.record().id;
        let state_dir = self.state_dir(&id);
        match shim::call(&state_dir, &Request::State).await {
            Ok(Reply::State(Status::Running { pid } | Status::Created { pid })) => {
                entry.edit(|r| r.state.pid = pid);
                tracing::info!(container = %id, pid, "reconnected to running container");
                self.start_health_monitor(&entry);
                self.spawn_monitor(entry);
            }
            Ok(Reply::State(Status::Exited(s))) => self.finish(&entry, s).await,
            _ => {
                let status = read_exit_file(&state_dir);
                self.finish(&entry, status).await;
            }
        }
    }

    async fn apply_restart_policies_at_boot(self: &Arc<Self>) {
        for entry in self.all() {
            let r = entry.record();
            let wants = matches!(
                r.host_config.restart_policy.name.as_str(),
                "always" | "unless-stopped"
            );
            if !r.state.running && r.has_been_started && wants && !r.manually_stopped {
                let _op = entry.op.lock().await;
                if let Err(e) = self.start_locked(&entry).await {
                    tracing::warn!(container = %r.id, error = %e, "cannot restart container at boot");
                }
            }
        }
    }

    /// Reports a container event with Docker's attributes (labels, image, name) and
    /// `extra` ones (`exitCode`, `signal`, `oldName`).
    pub(super) fn event(&self, r: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attributes =
            crate::events::container_attributes(r.config.labels.as_ref(), &r.config.image, &r.name);
        attributes.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events
            .publish(Kind::Container, action, &r.id, attributes);
    }

    /// Reports that a client attached (`attach` event), as Docker does for every
    /// attach request, before or after start.
    pub fn attached(&self, entry: &Entry) {
        self.event(&entry.record(), "attach", &[]);
    }

    /// `POST /containers/{id}/kill`.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when it is not running; `InvalidArgument` for a bad signal.
    pub async fn kill(&self, name: &str, signal: &str) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let sig = if signal.is_empty() {
            9
        } else {
            spec::parse_signal(signal)?
        };
        let r = entry.record();
        if !r.state.running {
            return Err(DaemonError::conflict(format!(
                "Container {} is not running",
                r.id
            )));
        }
        if sig != 9 {
            return self.signal(&r, sig).await;
        }
        entry.edit(|r| r.manually_stopped = true);
        self.persist(&entry)?;
        // Docker answers a SIGKILL only once the container has exited, so a client
        // inspecting right after sees it stopped with its exit code.
        let mut exits = entry.exits.subscribe();
        let seen = *exits.borrow_and_update();
        self.signal(&r, sig).await?;
        let exited = async {
            while *exits.borrow() == seen && entry.record().state.running {
                if exits.changed().await.is_err() {
                    break;
                }
            }
        };
        // Bounded: a process stuck in the kernel (D state) must not hang the API.
        let _ = tokio::time::timeout(Duration::from_secs(10), exited).await;
        Ok(())
    }

    async fn signal(&self, r: &ContainerRecord, sig: i32) -> Result<(), DaemonError> {
        self.event(r, "kill", &[("signal", sig.to_string())]);
        let sent = shim::call(&self.state_dir(&r.id), &Request::Kill { signal: sig }).await;
        if r.state.paused
            && let Ok(entry) = self.get(&r.id)
        {
            self.thaw_after_signal(&entry);
        }
        match sent {
            Ok(Reply::Ok) => Ok(()),
            Ok(other) => Err(DaemonError::internal(format!(
                "cannot signal container: {other:?}"
            ))),
            // The shim is gone: the process has exited already.
            Err(_) => Ok(()),
        }
    }

    /// `POST /containers/{id}/stop`. `Ok(false)`: it was not running (304).
    ///
    /// # Errors
    /// `NotFound`; `InvalidArgument` for a bad signal.
    pub async fn stop(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        self.stop_locked(&entry, timeout, signal).await
    }

    async fn stop_locked(
        &self,
        entry: &Arc<Entry>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, DaemonError> {
        let r = entry.record();
        entry.edit(|r| {
            r.manually_stopped = true;
            // A pending restart is called off now, not when its back-off ends.
            if r.state.restarting {
                r.state.restarting = false;
                r.state.status = "exited".into();
            }
        });
        self.persist(entry)?;
        if !r.state.running {
            return Ok(false);
        }
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or(r.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = spec::parse_signal(&sig_name)?;
        let timeout = timeout.or(r.config.stop_timeout).unwrap_or(10);
        let mut exits = entry.exits.subscribe();
        let seen = *exits.borrow_and_update();
        self.signal(&r, sig).await?;
        let exited = async {
            while *exits.borrow() == seen {
                if exits.changed().await.is_err() {
                    break;
                }
            }
        };
        if timeout < 0 {
            exited.await;
        } else if tokio::time::timeout(Duration::from_secs(timeout as u64), exited)
            .await
            .is_err()
        {
            self.signal(&r, 9).await?;
            let mut exits = entry.exits.subscribe();
            while *exits.borrow_and_update() == seen && entry.record().state.running {
                if exits.changed().await.is_err() {
                    break;
                }
            }
        }
        self.event(&r, "stop", &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/restart`.
    ///
    /// # Errors
    /// As stop and start.
    pub async fn restart(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        self.stop_locked(&entry, timeout, signal).await?;
        entry.edit(|r| r.manually_stopped = false);
        self.start_locked(&entry).await?;
        self.event(&entry.record(), "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn wait(&self, name: &str, condition: WaitCondition) -> Result<i32, DaemonError> {
        let entry = self.get(name)?;
        if condition == WaitCondition::Removed {
            let mut removed = entry.removed.subscribe();
            while !*removed.borrow_and_update() {
                if removed.changed().await.is_err() {
                    break;
                }
            }
            return Ok(entry.record().state.exit_code);
        }
        let mut exits = entry.exits.subscribe();
        let seen = *exits.borrow_and_update();
        if condition == WaitCondition::NotRunning && !entry.record().state.running {
            return Ok(entry.record().state.exit_code);
        }
        while *exits.borrow() == seen {
            if exits.changed().await.is_err() {
                break;
            }
        }
        Ok(entry.record().state.exit_code)
    }

    /// `DELETE /containers/{id}`.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when running without `force`.
    pub async fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        let r = entry.record();
        if r.state.restarting && !force {
            return Err(DaemonError::conflict(format!(
                "cannot remove container \"{}\": container is restarting: stop the container before removing or force remove",
                r.name
            )));
        }
        if r.state.restarting {
            // The pending restart sees this and gives up.
            entry.edit(|r| r.manually_stopped = true);
        }
        if r.state.running {
            if !force {
                return Err(DaemonError::conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    r.name
                )));
            }
            entry.edit(|r| r.manually_stopped = true);
            let mut exits = entry.exits.subscribe();
            let seen = *exits.borrow_and_update();
            self.signal(&r, 9).await?;
            while *exits.borrow() == seen && entry.record().state.running {
                if tokio::time::timeout(Duration::from_secs(10), exits.changed())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        let dir = self.dir(&r.id);
        self.networks.forget(&r.id).await;
        rootfs::unmount_rootfs(&RootfsPaths::under(&dir))
            .map_err(io_err("cannot unmount rootfs"))?;
        let _ = std::fs::remove_dir_all(self.state_dir(&r.id));
        std::fs::remove_dir_all(&dir).map_err(io_err("cannot remove container dir"))?;
        if volumes {
            for m in r.mounts.iter().filter(|m| m.anonymous) {
                if let Err(e) = self.volumes.remove(&m.name, true, &[]) {
                    tracing::warn!(volume = %m.name, error = %e, "cannot remove anonymous volume");
                }
            }
        }
        {
            let mut index = self.index.lock().expect("index lock");
            index.by_id.remove(&r.id);
            index.names.remove(&r.name);
        }
        entry.removed.send_replace(true);
        self.forget_execs(&r.id);
        tracing::info!(container = %r.id, "container removed");
        self.event(&r, "destroy", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    ///
    /// # Errors
    /// `NotFound`, `InvalidArgument` for a bad name, `Conflict` when it is taken.
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), DaemonError> {
        if name.is_empty() || new_name.is_empty() {
            return Err(DaemonError::invalid(
                "Neither old nor new names may be empty",
            ));
        }
        let entry = self.get(name)?;
        let id = entry.record().id;
        let old = entry.record().name;
        let new = {
            if !names::valid_name(new_name) {
                return Err(DaemonError::invalid(format!(
                    "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            let new = if new_name.starts_with('/') {
                new_name.to_string()
            } else {
                format!("/{new_name}")
            };
            if new == old {
                return Err(DaemonError::invalid(
                    "Renaming a container with the same name as its current name".to_string(),
                ));
            }
            self.reserve_name(Some(&new), &id)?
        };
        self.index.lock().expect("index lock").names.remove(&old);
        self.networks.rename(&id, &old, &new);
        entry.edit(|r| r.name = new);
        self.persist(&entry)?;
        self.event(
            &entry.record(),
            "rename",
            &[("oldName", old.trim_start_matches('/').to_string())],
        );
        Ok(())
    }

    /// Registers a client that attached before start; resolves when start has
    /// created the container, with a channel to acknowledge once connected.
    pub fn wait_for_start(&self, entry: &Entry) -> oneshot::Receiver<oneshot::Sender<()>> {
        let (tx, rx) = oneshot::channel();
        entry.attach_waiters.lock().expect("waiters lock").push(tx);
        rx
    }

    /// Opens an attach stream to a container's shim (see berth-shim-protocol for the
    /// byte stream that follows).
    ///
    /// # Errors
    /// The shim is gone or refused.
    pub async fn attach_stream(
        &self,
        entry: &Entry,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> std::io::Result<tokio::net::UnixStream> {
        shim::attach(&self.state_dir(&entry.record().id), stdin, stdout, stderr).await
    }

    /// A container's writable layer (its overlay upper directory), which the build
    /// executor commits after a step.
    pub fn upper_dir(&self, entry: &Entry) -> PathBuf {
        RootfsPaths::under(&self.dir(&entry.record().id)).upper
    }

    /// The data directory of a container.
    pub fn container_dir(&self, entry: &Entry) -> PathBuf {
        self.dir(&entry.record().id)
    }

    /// `POST /containers/prune`.
    ///
    /// # Errors
    /// `InvalidArgument` for bad filters.
    pub async fn prune(
        &self,
        filters: &crate::filters::Filters,
    ) -> Result<(Vec<String>, u64), DaemonError> {
        filters.validate(&["until", "label", "label!"])?;
        let until = match filters.get("until").next() {
            Some(v) => Some(crate::images::parse_timestamp(v)?),
            None => None,
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for entry in self.all() {
            let r = entry.record();
            let labels = r.config.labels.as_ref();
            if r.state.running
                || r.state.restarting
                || until.is_some_and(|u| r.created >= u)
                || (filters.contains("label") && !filters.match_labels("label", labels))
                || (filters.contains("label!") && filters.match_labels("label!", labels))
            {
                continue;
            }
            // What the container wrote is what its removal frees, as Docker counts.
            let upper = RootfsPaths::under(&self.dir(&r.id)).upper;
            let size = tokio::task::spawn_blocking(move || crate::volumes::disk_usage(&upper))
                .await
                .unwrap_or(0);
            if self.remove(&r.id, false, false).await.is_ok() {
                deleted.push(r.id);
                reclaimed += size;
            }
        }
        Ok((deleted, reclaimed))
    }

    /// The container service's images, for inspect.
    pub(crate) fn images(&self) -> &ImageService {
        &self.images
    }
}

/// A new anonymous volume's name (64 hex, like Docker's).
pub fn new_volume_name() -> String {
    names::new_id()
}

impl ContainerService {
    /// Short IDs of the containers that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .map(|e| e.record())
            .filter(|r| {
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|r| r.id)
            .collect()
    }
}

fn launch_error(e: berth_shim_protocol::LaunchError) -> DaemonError {
    let message = format!("failed to create task for container: {}", e.message);
    match e.kind {
        LaunchErrorKind::CommandNotFound
        | LaunchErrorKind::CommandNotExecutable
        | LaunchErrorKind::InvalidSpec => DaemonError::invalid(message),
        LaunchErrorKind::Other => DaemonError::internal(message),
    }
}

fn read_exit_file(state_dir: &Path) -> ExitStatus {
    std::fs::read(state_dir.join(berth_shim_protocol::EXIT_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| ExitStatus {
            exit_code: 255,
            oom_killed: false,
            finished_at: crate::images::go_time(Utc::now()),
        })
}

/// The image service asks who uses an image.
struct Users(Weak<ContainerService>);

impl ImageUsers for Users {
    fn users_of(&self, id: &Digest) -> Vec<(String, bool)> {
        let Some(svc) = self.0.upgrade() else {
            return Vec::new();
        };
        let id = id.to_string();
        svc.all()
            .into_iter()
            .map(|e| e.record())
            .filter(|r| r.image == id)
            .map(|r| (r.id[..12].to_string(), r.state.running))
            .collect()
    }
}
