//! `docker commit` and `docker diff`: a container's writable layer as a new image, and
//! as a list of changes.
//!
//! Both read the overlay upperdir directly (berth-store's `layer::write_diff` and
//! `layer::changes`), which needs no mount and works the same for running and
//! stopped containers. A running container is frozen through its freezer cgroup for
//! the commit (`pause`, Docker's default), so the layer is one consistent moment of
//! its filesystem; the lifecycle lock keeps it from being started, removed or
//! restarted while its upperdir is read.

use std::collections::BTreeMap;

use berth_oci::Digest;
use berth_oci::image::ContainerConfig;
use berth_store::layer::{self, Change};

use super::ContainerService;
use super::rootfs::RootfsPaths;
use crate::DaemonError;
use crate::images::{LayerCommit, apply_changes};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo` (may carry a tag), empty for an untagged image.
    pub repo: String,
    /// `tag`.
    pub tag: String,
    /// `comment` (`-m`).
    pub comment: String,
    /// `author` (`-a`).
    pub author: String,
    /// `pause` (default true): freeze the container while its layer is read.
    pub pause: bool,
    /// `changes` (`-c`), Dockerfile instructions applied to the new config.
    pub changes: Vec<String>,
    /// The request body's config, whose set fields win over the container's.
    pub config: Option<ContainerConfig>,
}

impl ContainerService {
    /// `POST /commit`: a new image from the container's changes on top of its image.
    ///
    /// # Errors
    /// `NotFound` for the container (or its image, if removed meanwhile),
    /// `InvalidArgument` for a bad reference or change, `Internal` for store or
    /// freezer failures.
    pub async fn commit(&self, name: &str, opts: CommitOptions) -> Result<Digest, DaemonError> {
        let entry = self.get(name)?;
        self.images.check_commit_reference(&opts.repo, &opts.tag)?;
        // Checked before any work; applied below once the container is locked.
        apply_changes(&mut ContainerConfig::default(), &opts.changes)?;

        let _op = entry.op.lock().await;
        let record = entry.record();
        let container_config = to_image_config(&record.config);
        // Docker: without a body config the container's own is the base the changes
        // edit (`ENV` appends to its variables); with one, the changes edit that and
        // the container fills what it leaves unset.
        let config = match opts.config.clone() {
            None => {
                let mut base = container_config;
                apply_changes(&mut base, &opts.changes)?;
                base
            }
            Some(mut user) => {
                apply_changes(&mut user, &opts.changes)?;
                merge_config(user, &container_config)
            }
        };
        let parent: Digest = record
            .image
            .parse()
            .map_err(|_| DaemonError::internal("corrupt image id"))?;
        // Docker's history shows the container's Cmd (not its entrypoint).
        let created_by = record.config.cmd.clone().unwrap_or_default();
        let req = LayerCommit {
            parent: Some(parent),
            config,
            created_by: created_by.join(" "),
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            container: Some(record.id.clone()),
            repo: opts.repo.clone(),
            tag: opts.tag.clone(),
        };
        let upper = RootfsPaths::under(&self.dir(&record.id)).upper;
        // A paused container stays paused; a running one is frozen only for the commit.
        let freezer = if opts.pause && record.state.running && !record.state.paused {
            Some(self.cgroup_of(&entry)?)
        } else {
            None
        };
        let images = self.images.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let frozen = match &freezer {
                Some(cg) if cg.is_frozen() => false,
                Some(cg) => match cg.set_frozen(true) {
                    Ok(()) => true,
                    // No freezer on this host: commit the running container, as a
                    // runtime without pause support does.
                    Err(berth_cgroups::CgroupError::NoController(_)) => false,
                    // The cgroup went away: the container exited after its record
                    // was read, so there is nothing left to freeze.
                    Err(berth_cgroups::CgroupError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        false
                    }
                    Err(e) => {
                        return Err(DaemonError::internal(format!(
                            "cannot pause container: {e}"
                        )));
                    }
                },
                None => false,
            };
            let result = images.commit_layer(&upper, &req);
            if frozen
                && let Some(cg) = &freezer
                && let Err(e) = cg.set_frozen(false)
            {
                tracing::error!(error = %e, "cannot unpause container after commit");
            }
            result
        })
        .await
        .map_err(|e| DaemonError::internal(format!("commit task failed: {e}")))?;
        let id = committed?;
        // Docker's container `commit` event names the new image.
        let mut extra = vec![
            ("comment", opts.comment.clone()),
            ("imageID", id.to_string()),
        ];
        if !opts.repo.is_empty() {
            let tag = if opts.tag.is_empty() {
                "latest"
            } else {
                &opts.tag
            };
            extra.push(("imageRef", format!("{}:{tag}", opts.repo)));
        }
        self.event(&record, "commit", &extra);
        Ok(id)
    }

    /// `GET /containers/{id}/changes`: what the container changed over its image,
    /// in path order.
    ///
    /// # Errors
    /// `NotFound` for the container, `Internal` when its layers cannot be read.
    pub async fn changes(&self, name: &str) -> Result<Vec<Change>, DaemonError> {
        let entry = self.get(name)?;
        let record = entry.record();
        let image: Digest = record
            .image
            .parse()
            .map_err(|_| DaemonError::internal("corrupt image id"))?;
        let lowers = self.lower_dirs(&record.id, &image)?;
        let upper = RootfsPaths::under(&self.dir(&record.id)).upper;
        tokio::task::spawn_blocking(move || layer::changes(&upper, &lowers))
            .await
            .map_err(|e| DaemonError::internal(format!("diff task failed: {e}")))?
            .map_err(|e| DaemonError::internal(e.to_string()))
    }
}

/// The container's config in the image config's shape (same JSON field names).
fn to_image_config(config: &super::Config) -> ContainerConfig {
    serde_json::to_value(config)
        .and_then(serde_json::from_value)
        .unwrap_or_default()
}

/// Docker's commit `merge`: fields the user (body and `-c` changes) left unset come
/// from the container; `Env` keeps the user's entries first and adds the container's
/// other variables; ports, volumes and labels are unions (the user's value wins).
fn merge_config(mut user: ContainerConfig, container: &ContainerConfig) -> ContainerConfig {
    fn empty<T>(v: &Option<Vec<T>>) -> bool {
        v.as_ref().is_none_or(Vec::is_empty)
    }
    if empty(&user.entrypoint) {
        if empty(&user.cmd) {
            user.cmd = container.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = container.entrypoint.clone();
        }
    }
    let mut env = user.env.take().unwrap_or_default();
    for e in container.env.iter().flatten() {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        if !env
            .iter()
            .any(|u| u.split_once('=').map_or(u.as_str(), |(k, _)| k) == key)
        {
            env.push(e.clone());
        }
    }
    user.env = (!env.is_empty()).then_some(env);
    fn union<V: Clone>(
        user: Option<BTreeMap<String, V>>,
        container: &Option<BTreeMap<String, V>>,
    ) -> Option<BTreeMap<String, V>> {
        let mut out = container.clone().unwrap_or_default();
        out.extend(user.unwrap_or_default());
        (!out.is_empty()).then_some(out)
    }
    user.exposed_ports = union(user.exposed_ports.take(), &container.exposed_ports);
    user.volumes = union(user.volumes.take(), &container.volumes);
    user.labels = union(user.labels.take(), &container.labels);
    let unset = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    if unset(&user.user) {
        user.user = container.user.clone();
    }
    if unset(&user.working_dir) {
        user.working_dir = container.working_dir.clone();
    }
    if unset(&user.stop_signal) {
        user.stop_signal = container.stop_signal.clone();
    }
    for (k, v) in &container.extra {
        user.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ContainerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn changes_win_and_container_fills_the_rest() {
        let container = cfg(
            r#"{"Cmd":["sh"],"Env":["PATH=/bin","A=0"],"WorkingDir":"/w","Labels":{"x":"1"},"Hostname":"abc"}"#,
        );
        let mut user = ContainerConfig::default();
        apply_changes(
            &mut user,
            &["ENV A=1".into(), "LABEL y=2".into(), "EXPOSE 80".into()],
        )
        .unwrap();
        let merged = merge_config(user, &container);
        assert_eq!(merged.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(
            merged.env,
            Some(vec!["A=1".to_string(), "PATH=/bin".to_string()])
        );
        assert_eq!(merged.working_dir.as_deref(), Some("/w"));
        assert_eq!(merged.labels.unwrap().len(), 2);
        assert!(merged.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(merged.extra["Hostname"], "abc");
    }

    #[test]
    fn user_cmd_replaces_container_cmd_but_keeps_entrypoint() {
        let container = cfg(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#);
        let mut user = ContainerConfig::default();
        apply_changes(&mut user, &[r#"CMD ["echo","hi"]"#.into()]).unwrap();
        let merged = merge_config(user, &container);
        assert_eq!(merged.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));
        assert_eq!(merged.entrypoint, Some(vec!["/init".to_string()]));
    }
}
