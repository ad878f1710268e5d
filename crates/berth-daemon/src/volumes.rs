//! Local volumes: `<data-root>/volumes/<name>/_data` holds the data and
//! `<data-root>/volumes/<name>/opts.json` what `volume create` was given. A volume a
//! container created on first use (`-v name:/path`) has no opts.json until asked for;
//! its creation time is then the directory's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::DaemonError;
use crate::containers::ContainerRecord;

mod mount;
use crate::events::{EventBus, Kind};
use crate::filters::Filters;

/// Docker's label on volumes created without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// The local volume store.
#[derive(Clone)]
pub struct VolumeStore {
    root: PathBuf,
    events: Arc<EventBus>,
    /// For volumes mounted at use: the containers that started with each mounted.
    /// Under this lock a start's mount and a stop's unmount cannot interleave.
    holders: Arc<std::sync::Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>>,
}

fn no_such_volume(name: &str) -> DaemonError {
    DaemonError::not_found(format!("get {name}: no such volume"))
}

/// Docker's local volume name rule. The name is also a directory under the store,
/// so the rule is what keeps a name such as `../x` or `/etc` from naming a path
/// outside it: every path built from a name goes through [`check_name`] first.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The longest name a directory entry may have (Linux `NAME_MAX`).
const MAX_NAME_LEN: usize = 255;

/// Checks `name` as a local volume's name, in Docker's words.
///
/// # Errors
/// `InvalidArgument` when it has characters outside Docker's rule, or is longer than a
/// directory name may be (Docker fails later with `file name too long`; a client's
/// mistake is a 400 here, not a 500).
pub fn check_name(name: &str) -> Result<(), DaemonError> {
    if !valid_name(name) {
        return Err(DaemonError::invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(DaemonError::invalid(format!(
            "create {name}: volume name is too long ({} bytes, at most {MAX_NAME_LEN})",
            name.len()
        )));
    }
    Ok(())
}

impl VolumeStore {
    /// The store under `<data-root>/volumes`.
    pub fn new(data_root: &Path, events: Arc<EventBus>) -> Self {
        VolumeStore {
            root: data_root.join("volumes"),
            events,
            holders: Arc::default(),
        }
    }

    fn event(&self, name: &str, action: &str) {
        let attributes = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        self.events.publish(Kind::Volume, action, name, attributes);
    }

    /// Docker's `mount` event for each volume of a container about to start, and
    /// its `unmount` event when the container has stopped.
    pub(crate) fn log_mounts(&self, record: &ContainerRecord, mounted: bool) {
        for m in record.mounts.iter().filter(|m| m.kind == "volume") {
            let driver = if m.driver.is_empty() {
                "local"
            } else {
                &m.driver
            };
            let mut attributes = BTreeMap::from([
                ("driver".to_string(), driver.to_string()),
                ("container".to_string(), record.id.clone()),
            ]);
            if mounted {
                attributes.insert("destination".into(), m.destination.clone());
                attributes.insert("read/write".into(), m.rw.to_string());
                attributes.insert("propagation".into(), m.propagation.clone());
            }
            let action = if mounted { "mount" } else { "unmount" };
            self.events
                .publish(Kind::Volume, action, &m.name, attributes);
        }
    }

    /// Mounts, for a container about to start, the volumes created with a filesystem to
    /// mount (`-o type=… -o device=…`) that are not mounted yet.
    ///
    /// # Errors
    /// The mount failed, in Docker's words; what this call mounted before is released.
    pub(crate) fn activate(&self, record: &ContainerRecord) -> Result<(), DaemonError> {
        let mut holders = self.holders.lock().expect("volume holders lock");
        for m in record.mounts.iter().filter(|m| m.kind == "volume") {
            if !valid_name(&m.name) {
                continue;
            }
            let options = self.meta(&m.name).options;
            if !mount::needs_mount(&options) {
                continue;
            }
            if let Err(e) = mount::mount(&options, &self.data(&m.name)) {
                drop(holders);
                self.release(record, &|_| false);
                return Err(e);
            }
            holders
                .entry(m.name.clone())
                .or_default()
                .insert(record.id.clone());
        }
        Ok(())
    }

    /// The container has stopped: unmounts each of its mounted-at-use volumes that no
    /// other container holds. `in_use(name)` answers for containers that were running
    /// before berthd started, which [`VolumeStore::activate`] never saw.
    pub(crate) fn release(&self, record: &ContainerRecord, in_use: &dyn Fn(&str) -> bool) {
        let mut holders = self.holders.lock().expect("volume holders lock");
        for m in record.mounts.iter().filter(|m| m.kind == "volume") {
            let Some(set) = holders.get_mut(&m.name) else {
                continue;
            };
            set.remove(&record.id);
            if !set.is_empty() || in_use(&m.name) {
                continue;
            }
            holders.remove(&m.name);
            if let Err(e) = mount::unmount(&self.data(&m.name)) {
                tracing::warn!(volume = %m.name, error = %e, "cannot unmount the volume");
            }
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The data directory of a volume.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }

    fn exists(&self, name: &str) -> bool {
        valid_name(name) && self.data(name).is_dir()
    }

    fn meta(&self, name: &str) -> Meta {
        std::fs::read(self.dir(name).join("opts.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// Creates a volume (or returns the existing one of that name, as Docker does).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name, driver or option; `Internal` for I/O.
    pub fn create(
        &self,
        name: &str,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Value, DaemonError> {
        if !driver.is_empty() && driver != "local" {
            return Err(DaemonError::not_found(format!(
                "plugin \"{driver}\" not found"
            )));
        }
        let anonymous = name.is_empty();
        let name = if anonymous {
            crate::containers::new_volume_name()
        } else {
            name.to_string()
        };
        check_name(&name)?;
        mount::validate(&options)
            .map_err(|e| DaemonError::invalid(format!("create {name}: {e}")))?;
        if !self.exists(&name) {
            let mut labels = labels;
            if anonymous {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
            }
            self.ensure(
                &name,
                Meta {
                    created_at: Some(Utc::now()),
                    labels,
                    options,
                },
            )?;
        }
        self.inspect(&name)
    }

    fn ensure(&self, name: &str, meta: Meta) -> Result<PathBuf, DaemonError> {
        // Every caller should have checked already; a name that reaches here unchecked
        // must still never become a path outside the store.
        check_name(name)?;
        let data = self.data(name);
        let fresh = !data.is_dir();
        std::fs::create_dir_all(&data)
            .map_err(|e| DaemonError::internal(format!("create {name}: {e}")))?;
        if fresh {
            let json = serde_json::to_vec(&meta).expect("volume metadata serializes");
            berth_store::durable::write_atomic(&self.dir(name).join("opts.json"), &json)
                .map_err(|e| DaemonError::internal(format!("create {name}: {e}")))?;
            self.event(name, "create");
        }
        Ok(data)
    }

    /// The data directory for a container's `-v name:/path`, creating the volume on
    /// first use (anonymous ones carry Docker's anonymous label).
    ///
    /// # Errors
    /// `InvalidArgument` for a name [`check_name`] refuses; `Internal` for I/O.
    pub fn ensure_for_container(
        &self,
        name: &str,
        anonymous: bool,
    ) -> Result<PathBuf, DaemonError> {
        let mut labels = BTreeMap::new();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        self.ensure(
            name,
            Meta {
                created_at: Some(Utc::now()),
                labels,
                options: BTreeMap::new(),
            },
        )
    }

    /// `GET /volumes/{name}`.
    ///
    /// # Errors
    /// `NotFound` in Docker's words.
    pub fn inspect(&self, name: &str) -> Result<Value, DaemonError> {
        if !self.exists(name) {
            return Err(no_such_volume(name));
        }
        let meta = self.meta(name);
        let created = meta.created_at.or_else(|| {
            std::fs::metadata(self.dir(name))
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from)
        });
        Ok(json!({
            "CreatedAt": created.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
            "Driver": "local",
            "Labels": meta.labels,
            "Mountpoint": self.data(name),
            "Name": name,
            "Options": meta.options,
            "Scope": "local",
        }))
    }

    /// Every volume name.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| self.exists(n))
            .collect();
        names.sort();
        names
    }

    /// `GET /volumes`, given which volumes containers use.
    ///
    /// # Errors
    /// `InvalidArgument` for unknown filters.
    pub fn list(
        &self,
        filters: &Filters,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Value, DaemonError> {
        filters.validate(&["dangling", "driver", "label", "name"])?;
        let dangling = filters.get_bool("dangling")?;
        let mut out = Vec::new();
        for name in self.names() {
            let v = self.inspect(&name)?;
            if dangling.is_some_and(|d| d == in_use(&name)) {
                continue;
            }
            if filters.contains("driver") && !filters.get("driver").any(|d| d == "local") {
                continue;
            }
            if filters.contains("name") && !filters.get("name").any(|n| name.contains(n)) {
                continue;
            }
            let labels: BTreeMap<String, String> =
                serde_json::from_value(v["Labels"].clone()).unwrap_or_default();
            if filters.contains("label") && !filters.match_labels("label", Some(&labels)) {
                continue;
            }
            out.push(v);
        }
        Ok(json!({"Volumes": out, "Warnings": []}))
    }

    /// `DELETE /volumes/{name}`, given the containers using it.
    ///
    /// # Errors
    /// `NotFound` (unless `force`), `Conflict` when in use.
    pub fn remove(&self, name: &str, force: bool, users: &[String]) -> Result<(), DaemonError> {
        if !self.exists(name) {
            return if force {
                Ok(())
            } else {
                Err(no_such_volume(name))
            };
        }
        if !users.is_empty() {
            return Err(DaemonError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.destroy(name)
    }

    /// Deletes an unused volume. One mounted at use is unmounted first: removing the
    /// tree while a bind of a host directory is still on `_data` would delete the
    /// host's files, so a mount that will not go stops the removal.
    fn destroy(&self, name: &str) -> Result<(), DaemonError> {
        let data = self.data(name);
        mount::unmount(&data)
            .map_err(|e| DaemonError::internal(format!("remove {name}: cannot unmount: {e}")))?;
        if mount::is_mount_root(&data) {
            return Err(DaemonError::internal(format!(
                "remove {name}: {} is still mounted",
                data.display()
            )));
        }
        self.holders
            .lock()
            .expect("volume holders lock")
            .remove(name);
        std::fs::remove_dir_all(self.dir(name))
            .map_err(|e| DaemonError::internal(format!("remove {name}: {e}")))?;
        self.event(name, "destroy");
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or with `all=true` every unused
    /// volume. Returns the names removed and the bytes freed.
    ///
    /// # Errors
    /// `InvalidArgument` for unknown filters.
    pub fn prune(
        &self,
        filters: &Filters,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<String>, u64), DaemonError> {
        filters.validate(&["label", "label!", "all"])?;
        let all = filters.get_bool("all")?.unwrap_or(false);
        let mut removed = Vec::new();
        let mut freed = 0;
        for name in self.names() {
            if in_use(&name) {
                continue;
            }
            let meta = self.meta(&name);
            let anonymous = meta.labels.contains_key(ANONYMOUS_LABEL)
                || (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()));
            if !all && !anonymous {
                continue;
            }
            if filters.contains("label") && !filters.match_labels("label", Some(&meta.labels)) {
                continue;
            }
            if filters.contains("label!") && filters.match_labels("label!", Some(&meta.labels)) {
                continue;
            }
            freed += disk_usage(&self.data(&name));
            if self.destroy(&name).is_ok() {
                removed.push(name);
            }
        }
        Ok((removed, freed))
    }
}

/// Bytes of the non-directories under `dir`, each inode counted once (hardlinks are
/// not double-counted): what `SizeRw` and prune's reclaimed space report.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.path().symlink_metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if seen.insert(m.ino()) => total += m.size(),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(root: &Path) -> VolumeStore {
        VolumeStore::new(root, Arc::new(EventBus::default()))
    }

    #[test]
    fn names_that_are_paths_never_leave_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let data_root = dir.path().join("data");
        let volumes = store(&data_root);
        for name in ["../../escape", "/abs", "a/b", "..", ".x", "a\0b"] {
            let e = volumes.ensure_for_container(name, false).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{name}");
            let e = volumes
                .create(name, "", BTreeMap::new(), BTreeMap::new())
                .unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{name}");
        }
        assert!(!dir.path().join("escape").exists());
        assert!(!data_root.join("volumes").exists());
    }

    #[test]
    fn overlong_names_are_the_clients_mistake() {
        let dir = tempfile::tempdir().unwrap();
        let volumes = store(dir.path());
        let e = volumes
            .create(&"a".repeat(300), "", BTreeMap::new(), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(e.message().contains("too long"), "{}", e.message());
        assert!(check_name(&"a".repeat(255)).is_ok());
    }
}
