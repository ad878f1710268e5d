//! The image service: what `docker load/save/import/images/inspect/history/tag/rmi/
//! image prune` do, over berth-store.
//!
//! State: every image record and its parsed config are held in memory behind one
//! mutex, with the reference map (tags and digests → image ID), and written through to
//! the store on every change. Heavy work (unpacking, hashing, archive streaming) runs
//! without the mutex. Deleting blobs and snapshots takes the `gc` lock exclusively,
//! while anything that may reuse an existing snapshot (a load) holds it shared, so a
//! layer can never be collected between "already present, skip it" and the commit of
//! the record that references it.

mod archive;
mod changes;
mod commit;
mod import;
mod pull;
mod push;
mod query;
mod remove;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use berth_oci::image::ImageConfig;
use berth_oci::reference::Reference;
use berth_oci::{Digest, chain_ids};
use berth_store::{ContentStore, ImageRecord, ImageStore, Layout, Snapshotter};
use chrono::Utc;

use crate::DaemonError;
use crate::events::{EventBus, Kind};

pub use archive::{LoadProgress, SavePlan};
pub use changes::apply_changes;
pub use commit::LayerCommit;
pub use import::ImportOptions;
pub use pull::{PreparedPull, ProgressMessage, ProgressSender, PullRequest, RegistryConfig};
pub use push::PushResult;
pub use query::{DeleteResponseItem, HistoryItem, ImageInspect, ImageSummary, PruneReport};
pub(crate) use query::{go_time, parse_timestamp};

/// Configs and manifests are small; anything bigger in their place is refused.
const MAX_CONFIG_SIZE: u64 = 8 << 20;

/// An image as the service holds it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The stored record.
    pub record: ImageRecord,
    /// The parsed config.
    pub config: ImageConfig,
    /// Sum of the layers' unpacked sizes.
    pub size: u64,
}

#[derive(Default)]
struct State {
    images: HashMap<Digest, Arc<Image>>,
    refs: BTreeMap<Reference, Digest>,
}

/// Answers whether containers use an image; the container service implements it.
pub trait ImageUsers: Send + Sync {
    /// Containers created from image `id`: (short container id, running).
    fn users_of(&self, id: &Digest) -> Vec<(String, bool)>;
}

struct NoUsers;
impl ImageUsers for NoUsers {
    fn users_of(&self, _id: &Digest) -> Vec<(String, bool)> {
        Vec::new()
    }
}

/// The image service.
pub struct ImageService {
    content: ContentStore,
    snapshots: Snapshotter,
    store: ImageStore,
    state: Mutex<State>,
    gc: RwLock<()>,
    users: RwLock<Arc<dyn ImageUsers>>,
    events: Arc<EventBus>,
    registry: RwLock<RegistryConfig>,
}

/// Maps a library error to an internal error, prefixed with what was being done.
fn internal<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> DaemonError + '_ {
    move |e| DaemonError::internal(format!("{what}: {e}"))
}

/// Go's name for this machine's architecture, as image configs spell it.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl ImageService {
    /// Opens the store under `data_root`, loads every record, drops references to
    /// missing images and collects what a crash left unreferenced.
    ///
    /// # Errors
    /// The store cannot be opened or read.
    pub fn open(data_root: &std::path::Path, events: Arc<EventBus>) -> Result<Self, DaemonError> {
        let layout = Layout::new(data_root);
        const OPEN: &str = "cannot open image store";
        let content = ContentStore::open(layout.clone()).map_err(internal(OPEN))?;
        let snapshots = Snapshotter::open(layout.clone()).map_err(internal(OPEN))?;
        let store = ImageStore::open(layout).map_err(internal(OPEN))?;
        let mut state = State::default();
        for record in store.load_all().map_err(internal(OPEN))? {
            match Self::materialize(&content, &snapshots, record) {
                Ok(image) => {
                    state.images.insert(image.record.id, Arc::new(image));
                }
                Err(e) => tracing::warn!(error = %e, "skipping unreadable image record"),
            }
        }
        for (name, id) in store.load_references().map_err(internal(OPEN))? {
            match name.parse::<Reference>() {
                Ok(r) if state.images.contains_key(&id) => {
                    state.refs.insert(r, id);
                }
                _ => tracing::warn!(reference = %name, "dropping reference to a missing image"),
            }
        }
        let svc = ImageService {
            content,
            snapshots,
            store,
            state: Mutex::new(state),
            gc: RwLock::new(()),
            users: RwLock::new(Arc::new(NoUsers)),
            events,
            registry: RwLock::new(RegistryConfig::default()),
        };
        svc.collect_garbage()?;
        Ok(svc)
    }

    /// Reports an image event as Docker's image service does: the image's labels, and
    /// `name` (a reference, or the ID itself for untag/delete/load/import).
    pub(crate) fn log_event(&self, id: &Digest, name: &str, action: &str) {
        self.log_named_event(id, &id.to_string(), name, action);
    }

    /// Like [`ImageService::log_event`] with an actor ID other than the image ID
    /// (pull and push name the reference); `id` still finds the image's labels.
    pub(crate) fn log_named_event(&self, id: &Digest, actor: &str, name: &str, action: &str) {
        let labels = self
            .lock()
            .images
            .get(id)
            .and_then(|i| i.config.config.as_ref().and_then(|c| c.labels.clone()));
        let mut attributes = labels.unwrap_or_default();
        attributes.insert("name".into(), name.to_string());
        self.events.publish(Kind::Image, action, actor, attributes);
    }

    /// Installs the container service's view of who uses which image.
    pub fn set_users(&self, users: Arc<dyn ImageUsers>) {
        *self.users.write().expect("users lock") = users;
    }

    fn materialize(
        content: &ContentStore,
        snapshots: &Snapshotter,
        record: ImageRecord,
    ) -> Result<Image, DaemonError> {
        let raw = content
            .read(&record.id, MAX_CONFIG_SIZE)
            .map_err(internal("image config"))?;
        let config: ImageConfig = serde_json::from_slice(&raw).map_err(internal("image config"))?;
        let diff_ids: Vec<Digest> = record.layers.iter().map(|l| l.diff_id).collect();
        let mut size = 0;
        for chain in chain_ids(&diff_ids) {
            size += snapshots.info(&chain).map_err(internal("layer"))?.size;
        }
        Ok(Image {
            record,
            config,
            size,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("image state lock")
    }

    /// The unpacked layer directories of an image, top layer first (overlay lower dirs).
    ///
    /// # Errors
    /// `NotFound` when the image is gone.
    pub fn layer_dirs(&self, id: &Digest) -> Result<Vec<std::path::PathBuf>, DaemonError> {
        let state = self.lock();
        let image = state
            .images
            .get(id)
            .ok_or_else(|| no_such_image(&id.to_string()))?;
        let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
        Ok(chain_ids(&diff_ids)
            .iter()
            .rev()
            .map(|c| self.snapshots.fs_path(c))
            .collect())
    }

    /// Layer sizes for `GET /system/df`: the unpacked size of every layer once, and
    /// for each image (by id) the size of its layers that other images share.
    pub fn disk_usage(&self) -> (u64, HashMap<String, i64>) {
        let state = self.lock();
        let mut users: HashMap<Digest, u32> = HashMap::new();
        let mut chains_of = Vec::with_capacity(state.images.len());
        for (id, image) in &state.images {
            let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
            let chains = chain_ids(&diff_ids);
            for c in &chains {
                *users.entry(*c).or_default() += 1;
            }
            chains_of.push((id.to_string(), chains));
        }
        let size = |c: &Digest| self.snapshots.info(c).map(|i| i.size).unwrap_or(0);
        let sizes: HashMap<Digest, u64> = users.keys().map(|c| (*c, size(c))).collect();
        let shared = chains_of
            .into_iter()
            .map(|(id, chains)| {
                let s: u64 = chains
                    .iter()
                    .filter(|c| users[c] > 1)
                    .map(|c| sizes[c])
                    .sum();
                (id, s as i64)
            })
            .collect();
        (sizes.values().sum(), shared)
    }

    /// Number of images, for `/info`.
    pub fn count(&self) -> usize {
        self.lock().images.len()
    }

    /// Resolves a name as Docker does: a full ID, a reference (tag added when
    /// missing), or a unique ID prefix.
    ///
    /// # Errors
    /// `InvalidArgument` for an unparsable reference, `NotFound` otherwise.
    pub fn get(&self, name: &str) -> Result<Arc<Image>, DaemonError> {
        let state = self.lock();
        let id = resolve(&state, name)?;
        Ok(state.images[&id].clone())
    }

    /// Docker's `GetImage` lookup over the in-memory state.
    fn references_of(state: &State, id: &Digest) -> Vec<Reference> {
        state
            .refs
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Points `reference` at image `id`, persisting the reference map. Returns the image
    /// the reference pointed to before, if another. `touch` records the tag time in
    /// the image's metadata, which Docker does for `tag` and `import` but not `load`.
    fn set_reference(
        &self,
        state: &mut State,
        reference: Reference,
        id: Digest,
        touch: bool,
    ) -> Result<Option<Digest>, DaemonError> {
        let previous = state.refs.insert(reference, id).filter(|p| *p != id);
        self.save_references(state)?;
        if touch && let Some(image) = state.images.get(&id) {
            let mut record = image.record.clone();
            record.last_tag_time = Some(Utc::now());
            self.store
                .put(&record)
                .map_err(internal("cannot store image record"))?;
            let updated = Image {
                record,
                ..(**image).clone()
            };
            state.images.insert(id, Arc::new(updated));
        }
        Ok(previous)
    }

    fn save_references(&self, state: &State) -> Result<(), DaemonError> {
        let map = state
            .refs
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        self.store
            .save_references(&map)
            .map_err(internal("cannot store references"))
    }

    /// Adds a record (its config blob and snapshots are already committed).
    fn insert_image(
        &self,
        state: &mut State,
        record: ImageRecord,
    ) -> Result<Arc<Image>, DaemonError> {
        if let Some(existing) = state.images.get(&record.id) {
            return Ok(existing.clone());
        }
        self.store
            .put(&record)
            .map_err(internal("cannot store image record"))?;
        let image = Arc::new(Self::materialize(&self.content, &self.snapshots, record)?);
        state.images.insert(image.record.id, image.clone());
        Ok(image)
    }

    /// `docker tag SOURCE TARGET`.
    ///
    /// # Errors
    /// `NotFound` for the source, `InvalidArgument` for a bad target.
    pub fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), DaemonError> {
        let target = repo_tag_reference(repo, tag)?;
        let mut state = self.lock();
        let id = resolve(&state, source)?;
        let name = target.familiar_string();
        self.set_reference(&mut state, target, id, true)?;
        drop(state);
        self.log_event(&id, &name, "tag");
        Ok(())
    }

    /// Deletes blobs and snapshots no image references (a crash can leave such).
    fn collect_garbage(&self) -> Result<Vec<Digest>, DaemonError> {
        let _gc = self.gc.write().expect("gc lock");
        let state = self.lock();
        let mut chains = HashSet::new();
        let mut blobs = HashSet::new();
        for image in state.images.values() {
            blobs.insert(image.record.id);
            blobs.extend(image.record.manifest);
            blobs.extend(image.record.layers.iter().map(|l| l.blob));
            let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
            chains.extend(chain_ids(&diff_ids));
        }
        drop(state);
        const GC: &str = "garbage collection";
        let mut removed = Vec::new();
        let mut doomed: Vec<Digest> = self
            .snapshots
            .list()
            .map_err(internal(GC))?
            .into_iter()
            .filter(|c| !chains.contains(c))
            .collect();
        // Remove top layers first, so a crash mid-way never leaves a child without its parent
        // (which is harmless anyway: children are only found through images).
        doomed.sort_by_key(|c| {
            std::cmp::Reverse(
                self.snapshots
                    .info(c)
                    .map(|i| i.parent.is_some())
                    .unwrap_or(false),
            )
        });
        for chain in doomed {
            self.snapshots.remove(&chain).map_err(internal(GC))?;
            removed.push(chain);
        }
        for blob in self.content.list().map_err(internal(GC))? {
            if !blobs.contains(&blob) {
                self.content.delete(&blob).map_err(internal(GC))?;
            }
        }
        Ok(removed)
    }
}

/// Docker's image lookup: full ID, then reference, then unique ID prefix.
fn resolve(state: &State, name: &str) -> Result<Digest, DaemonError> {
    let bare = name.strip_prefix("sha256:").unwrap_or(name);
    if let Ok(id) = Digest::from_hex(bare) {
        return if state.images.contains_key(&id) {
            Ok(id)
        } else {
            Err(no_such_image(&id.to_string()))
        };
    }
    let reference =
        Reference::parse_normalized(name).map_err(|e| DaemonError::invalid(e.to_string()))?;
    let reference = reference.with_default_tag();
    if let Some(id) = state.refs.get(&reference) {
        return Ok(*id);
    }
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        let prefix = bare.to_ascii_lowercase();
        let mut found = state
            .images
            .keys()
            .filter(|id| id.hex().starts_with(&prefix));
        if let (Some(id), None) = (found.next(), found.next()) {
            return Ok(*id);
        }
    }
    Err(no_such_image(&reference.familiar_string()))
}

fn no_such_image(name: &str) -> DaemonError {
    DaemonError::not_found(format!("No such image: {name}"))
}

/// Docker's `RepoTagReference`: `repo` may carry a tag when `tag` is empty; the result
/// always has a tag and never a digest.
fn repo_tag_reference(repo: &str, tag: &str) -> Result<Reference, DaemonError> {
    let reference =
        Reference::parse_normalized(repo).map_err(|e| DaemonError::invalid(e.to_string()))?;
    if reference.digest().is_some() {
        return Err(DaemonError::invalid(
            "refusing to create a tag with a digest reference",
        ));
    }
    if tag.is_empty() {
        return Ok(reference.with_default_tag());
    }
    reference
        .with_tag(tag)
        .map_err(|e| DaemonError::invalid(e.to_string()))
}
