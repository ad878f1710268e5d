//! `docker rmi` and `docker image prune`, with Docker's untag-versus-delete rules, and
//! the collection of layers no image uses any more.

use std::collections::HashSet;

use berth_oci::reference::Reference;
use berth_oci::{Digest, chain_ids};

use super::{DeleteResponseItem, ImageService, PruneReport, State, resolve};
use crate::DaemonError;
use crate::filters::Filters;

impl ImageService {
    /// `DELETE /images/{name}`.
    ///
    /// Removing by reference untags it and deletes the image only when that was its
    /// last reference. Removing by ID untags everything first, which needs `force`
    /// when the references span several repositories.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` in Docker's words when containers use the image, it has
    /// child images, or it is referenced in several repositories without `force`.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
    ) -> Result<Vec<DeleteResponseItem>, DaemonError> {
        let mut events = Vec::new();
        let items = self.remove_image(name, force, prune_parents, &mut events)?;
        self.log_removal_events(events);
        Ok(items)
    }

    /// Reports what a removal did once the locks are released: Docker's classic image
    /// store names the image by ID in both `untag` and `delete`.
    fn log_removal_events(&self, events: Vec<(Digest, &'static str)>) {
        for (id, action) in events {
            self.log_event(&id, &id.to_string(), action);
        }
    }

    fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        events: &mut Vec<(Digest, &'static str)>,
    ) -> Result<Vec<DeleteResponseItem>, DaemonError> {
        let _gc = self.gc.write().expect("gc lock");
        let mut state = self.lock();
        let id = resolve(&state, name)?;
        let short = id.short();
        let users = self.users.read().expect("users lock").users_of(&id);
        let mut items = Vec::new();
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        let by_reference = Reference::parse_normalized(name)
            .ok()
            .map(Reference::with_default_tag)
            .filter(|r| state.refs.get(r) == Some(&id) && !id.hex().starts_with(bare));

        if let Some(reference) = by_reference {
            let remaining = Self::references_of(&state, &id).len();
            if remaining == 1
                && let Some((container, _)) = users.first()
            {
                if !force {
                    return Err(DaemonError::conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {container} is using its referenced image {short}"
                    )));
                }
                // Forced: the tag goes, the image stays for its containers.
                state.refs.remove(&reference);
                self.save_references(&state)?;
                items.push(DeleteResponseItem::Untagged(reference.familiar_string()));
                events.push((id, "untag"));
                return Ok(items);
            }
            state.refs.remove(&reference);
            items.push(DeleteResponseItem::Untagged(reference.familiar_string()));
            events.push((id, "untag"));
            // Docker's rule: once the last tag of a repository goes, so do the digest
            // references (`repo@sha256:...`, left by pull and push) of that repository;
            // else `rmi` of every tag would leave the image behind, untagged but kept.
            let others = Self::references_of(&state, &id);
            if reference.digest().is_none()
                && !others
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == reference.name())
            {
                for r in others
                    .iter()
                    .filter(|r| r.digest().is_some() && r.name() == reference.name())
                {
                    state.refs.remove(r);
                    items.push(DeleteResponseItem::Untagged(r.familiar_string()));
                    events.push((id, "untag"));
                }
            }
            self.save_references(&state)?;
            if remaining > 1 && !Self::references_of(&state, &id).is_empty() {
                return Ok(items);
            }
        } else {
            if let Some((container, _)) = users.iter().find(|(_, running)| *running) {
                return Err(DaemonError::conflict(format!(
                    "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {container}"
                )));
            }
            if let Some((container, _)) = users.first()
                && !force
            {
                return Err(DaemonError::conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {container}"
                )));
            }
            let refs = Self::references_of(&state, &id);
            let repos: HashSet<String> = refs.iter().map(Reference::name).collect();
            if repos.len() > 1 && !force {
                return Err(DaemonError::conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if Self::has_children(&state, &id) {
                return Err(DaemonError::conflict(format!(
                    "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
                )));
            }
            for r in refs {
                state.refs.remove(&r);
                items.push(DeleteResponseItem::Untagged(r.familiar_string()));
                events.push((id, "untag"));
            }
            self.save_references(&state)?;
            if !users.is_empty() {
                // Forced over stopped containers: untagged, kept for them.
                return Ok(items);
            }
        }
        if Self::has_children(&state, &id) {
            return Ok(items);
        }
        self.delete_image(&mut state, id, prune_parents, &mut items, events)?;
        Ok(items)
    }

    /// Deletes an untagged, unused image record and then the layers nobody else uses;
    /// with `prune_parents`, also its untagged parents left without children.
    /// Returns the bytes freed. The caller holds the `gc` lock exclusively.
    fn delete_image(
        &self,
        state: &mut State,
        id: Digest,
        prune_parents: bool,
        items: &mut Vec<DeleteResponseItem>,
        events: &mut Vec<(Digest, &'static str)>,
    ) -> Result<u64, DaemonError> {
        let Some(image) = state.images.remove(&id) else {
            return Ok(0);
        };
        if let Err(e) = self.store.delete(&id) {
            state.images.insert(id, image);
            return Err(DaemonError::internal(format!(
                "cannot delete image record: {e}"
            )));
        }
        items.push(DeleteResponseItem::Deleted(id.to_string()));
        events.push((id, "delete"));
        let mut used_chains = HashSet::new();
        let mut used_blobs = HashSet::new();
        for other in state.images.values() {
            let diff_ids: Vec<Digest> = other.record.layers.iter().map(|l| l.diff_id).collect();
            used_chains.extend(chain_ids(&diff_ids));
            used_blobs.extend(other.record.layers.iter().map(|l| l.blob));
            used_blobs.insert(other.record.id);
            used_blobs.extend(other.record.manifest);
        }
        let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
        let mut freed = 0;
        for chain in chain_ids(&diff_ids).into_iter().rev() {
            if used_chains.contains(&chain) {
                continue;
            }
            freed += self.snapshots.info(&chain).map(|i| i.size).unwrap_or(0);
            self.snapshots
                .remove(&chain)
                .map_err(|e| DaemonError::internal(format!("cannot remove layer: {e}")))?;
            items.push(DeleteResponseItem::Deleted(chain.to_string()));
        }
        // A layer's uncompressed blob has its diff ID as digest. Push compresses a loaded
        // layer and points every record at the gzip blob instead, which leaves the
        // uncompressed one referenced by no record (it cannot go at once: a `save` or
        // another push may still read it under the shared gc lock); it goes here, with the
        // last image that has the layer.
        let blobs = image
            .record
            .layers
            .iter()
            .flat_map(|l| [l.blob, l.diff_id])
            .chain([image.record.id])
            .chain(image.record.manifest);
        for blob in blobs {
            if !used_blobs.contains(&blob) {
                self.content
                    .delete(&blob)
                    .map_err(|e| DaemonError::internal(format!("cannot remove blob: {e}")))?;
            }
        }
        if prune_parents
            && let Some(parent) = image.record.parent
            && state.images.contains_key(&parent)
            && Self::references_of(state, &parent).is_empty()
            && !Self::has_children(state, &parent)
            && self
                .users
                .read()
                .expect("users lock")
                .users_of(&parent)
                .is_empty()
        {
            freed += self.delete_image(state, parent, true, items, events)?;
        }
        Ok(freed)
    }

    /// `POST /images/prune`: dangling images, or with `dangling=false` every image no
    /// container uses.
    ///
    /// # Errors
    /// `InvalidArgument` for unknown filters or bad values.
    pub fn prune(&self, filters: &Filters) -> Result<PruneReport, DaemonError> {
        filters.validate(&["dangling", "until", "label", "label!"])?;
        let dangling_only = filters.get_bool("dangling")?.unwrap_or(true);
        let until = match filters.get("until").next() {
            Some(v) => Some(super::query::parse_timestamp(v)?),
            None => None,
        };
        let _gc = self.gc.write().expect("gc lock");
        let mut state = self.lock();
        let users = self.users.read().expect("users lock").clone();
        let mut items = Vec::new();
        let mut events = Vec::new();
        let mut freed = 0;
        let candidates: Vec<Digest> = state.images.keys().copied().collect();
        for id in candidates {
            let Some(image) = state.images.get(&id).cloned() else {
                continue;
            };
            let refs = Self::references_of(&state, &id);
            let tagged = refs.iter().any(|r| r.tag().is_some());
            if (dangling_only && tagged)
                || !users.users_of(&id).is_empty()
                || Self::has_children(&state, &id)
            {
                continue;
            }
            if until.is_some_and(|u| image.config.created.is_none_or(|c| c >= u)) {
                continue;
            }
            let labels = image.config.config.as_ref().and_then(|c| c.labels.as_ref());
            if filters.contains("label") && !filters.match_labels("label", labels) {
                continue;
            }
            if filters.contains("label!")
                && filters
                    .get("label!")
                    .any(|_| filters.match_labels("label!", labels))
            {
                continue;
            }
            for r in refs {
                state.refs.remove(&r);
                items.push(DeleteResponseItem::Untagged(r.familiar_string()));
                events.push((id, "untag"));
            }
            self.save_references(&state)?;
            freed += self.delete_image(&mut state, id, true, &mut items, &mut events)?;
        }
        drop(state);
        drop(_gc);
        self.log_removal_events(events);
        Ok(PruneReport {
            images_deleted: if items.is_empty() { None } else { Some(items) },
            space_reclaimed: freed,
        })
    }
}
