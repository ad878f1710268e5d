//! `docker load` and `docker save`: docker-archive and OCI-layout tarballs.
//!
//! Load stages every regular file of the archive as a pending blob (digested while it
//! streams to disk; small files are also kept in memory for parsing), then reads
//! `manifest.json` (docker-archive) or `index.json` (OCI layout), unpacks each layer
//! not already present into a snapshot, and commits only the blobs that manifests
//! reference. Archive member names are only map keys: nothing derived from them ever
//! becomes a filesystem path, so hostile names cannot escape anything.
//!
//! Save writes what Docker 25+ writes: an OCI layout and a `manifest.json` in the same
//! tarball, so old and new docker, skopeo and berth all load it. Layers are written
//! uncompressed under their diff IDs, each once even when several images share it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use berth_oci::image::{
    ArchiveManifestEntry, Descriptor, ImageConfig, Index, Manifest, media_type,
};
use berth_oci::reference::Reference;
use berth_oci::{Digest, chain_ids};
use berth_store::layer::{self, ApplyOptions, Compression, DigestReader};
use berth_store::{ContentStore, ImageRecord, LayerRecord, PendingBlob, SnapshotInfo, Snapshotter};
use chrono::Utc;

use super::{ImageService, MAX_CONFIG_SIZE, host_arch, internal, resolve};
use crate::DaemonError;

/// Files up to this size are kept in memory while staging (configs, manifests).
const SMALL_FILE: u64 = 1 << 20;
/// A cap on the memory all small files of one archive may take.
const SMALL_FILES_TOTAL: u64 = 64 << 20;
/// A cap on archive members: a real archive has a few per layer.
const MAX_MEMBERS: usize = 100_000;
/// How deep `symlink → symlink` chains between archive members are followed.
const MAX_LINK_DEPTH: usize = 16;

/// Receives the human-readable lines a load reports (`Loaded image: busybox:latest`).
pub trait LoadProgress {
    /// One line, without its newline.
    fn line(&mut self, line: &str);
}

impl<F: FnMut(&str)> LoadProgress for F {
    fn line(&mut self, line: &str) {
        self(line)
    }
}

fn bad_archive(msg: impl std::fmt::Display) -> DaemonError {
    DaemonError::invalid(format!("invalid archive: {msg}"))
}

enum Staged {
    /// Written to an ingest, not yet visible; committed when a manifest uses it.
    Pending(PendingBlob),
    /// Already in the content store (an archive blob we had).
    Stored(Digest),
}

struct StagedFile {
    blob: Option<Staged>,
    digest: Digest,
    size: u64,
    /// The content, for files small enough to parse.
    data: Option<Vec<u8>>,
    /// The digest the archive path claims (`blobs/sha256/<hex>`).
    claimed: Option<Digest>,
}

struct StagedArchive {
    files: HashMap<String, StagedFile>,
    links: HashMap<String, String>,
}

/// Removes `./` and empty components and resolves `..` lexically; `None` if it climbs
/// above the archive root.
fn normalize_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn claimed_digest(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .and_then(|hex| Digest::from_hex(hex).ok())
}

impl StagedArchive {
    fn read(content: &ContentStore, reader: impl Read) -> Result<Self, DaemonError> {
        let mut archive = tar::Archive::new(reader);
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let mut in_memory = 0u64;
        let entries = archive.entries().map_err(bad_archive)?;
        for (n, entry) in entries.enumerate() {
            if n >= MAX_MEMBERS {
                return Err(bad_archive(format!("more than {MAX_MEMBERS} members")));
            }
            let mut entry = entry.map_err(bad_archive)?;
            let raw_path = entry
                .path()
                .map_err(bad_archive)?
                .to_string_lossy()
                .into_owned();
            let Some(path) = normalize_member(&raw_path) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(bad_archive)?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = if kind.is_symlink() {
                    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
                } else {
                    ""
                };
                if let Some(t) = normalize_member(&format!("{base}/{target}")) {
                    links.insert(path, t);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            let claimed = claimed_digest(&path);
            if let Some(d) = claimed.filter(|d| content.exists(d)) {
                io::copy(&mut entry, &mut io::sink()).map_err(bad_archive)?;
                let data = if size <= SMALL_FILE && in_memory + size <= SMALL_FILES_TOTAL {
                    in_memory += size;
                    Some(
                        content
                            .read(&d, SMALL_FILE)
                            .map_err(internal("reading blob"))?,
                    )
                } else {
                    None
                };
                files.insert(
                    path,
                    StagedFile {
                        blob: Some(Staged::Stored(d)),
                        digest: d,
                        size,
                        data,
                        claimed,
                    },
                );
                continue;
            }
            let mut writer = content.writer().map_err(internal("cannot stage blob"))?;
            let data = if size <= SMALL_FILE && in_memory + size <= SMALL_FILES_TOTAL {
                in_memory += size;
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(bad_archive)?;
                writer
                    .write_all(&buf)
                    .map_err(internal("cannot stage blob"))?;
                Some(buf)
            } else {
                io::copy(&mut entry, &mut writer)
                    .map_err(|e| bad_archive(format!("{path}: {e}")))?;
                None
            };
            let pending = writer.finish().map_err(internal("cannot stage blob"))?;
            let digest = pending.digest();
            if let Some(c) = claimed
                && c != digest
            {
                return Err(bad_archive(format!("{path} has digest {digest}")));
            }
            files.insert(
                path,
                StagedFile {
                    blob: Some(Staged::Pending(pending)),
                    digest,
                    size,
                    data,
                    claimed,
                },
            );
        }
        Ok(StagedArchive { files, links })
    }

    fn resolve_path(&self, path: &str) -> Result<String, DaemonError> {
        let mut p =
            normalize_member(path).ok_or_else(|| bad_archive(format!("invalid path {path:?}")))?;
        for _ in 0..MAX_LINK_DEPTH {
            if self.files.contains_key(&p) {
                return Ok(p);
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(bad_archive(format!("missing member {path:?}")))
    }

    fn file(&self, path: &str) -> Result<&StagedFile, DaemonError> {
        let p = self.resolve_path(path)?;
        Ok(&self.files[&p])
    }

    fn small(&self, path: &str) -> Result<&[u8], DaemonError> {
        self.file(path)?
            .data
            .as_deref()
            .ok_or_else(|| bad_archive(format!("{path} is too large")))
    }

    fn has(&self, path: &str) -> bool {
        self.resolve_path(path).is_ok()
    }

    /// Commits the staged blob at `path` (once) and returns its digest.
    fn commit(&mut self, path: &str) -> Result<Digest, DaemonError> {
        let p = self.resolve_path(path)?;
        let f = self.files.get_mut(&p).expect("resolved member exists");
        match f.blob.take() {
            Some(Staged::Pending(pending)) => {
                let d = pending.commit(f.claimed).map_err(bad_archive)?;
                f.blob = Some(Staged::Stored(d));
                Ok(d)
            }
            Some(Staged::Stored(d)) => {
                f.blob = Some(Staged::Stored(d));
                Ok(d)
            }
            None => unreachable!("a staged file always holds its blob between calls"),
        }
    }

    /// Opens the member's bytes, wherever they are now.
    fn open(&self, content: &ContentStore, path: &str) -> Result<File, DaemonError> {
        let f = self.file(path)?;
        let file = match &f.blob {
            Some(Staged::Pending(p)) => File::open(p.path()),
            Some(Staged::Stored(d)) => content.open_blob(d),
            None => unreachable!("a staged file always holds its blob between calls"),
        };
        file.map_err(internal("cannot open staged blob"))
    }
}

/// One image described by an archive.
struct ArchiveImage {
    config: String,
    layers: Vec<String>,
    layer_media_types: Vec<Option<String>>,
    manifest: Option<String>,
    tags: Vec<String>,
}

fn parse_json<'a, T: serde::Deserialize<'a>>(what: &str, data: &'a [u8]) -> Result<T, DaemonError> {
    serde_json::from_slice(data).map_err(|e| bad_archive(format!("{what}: {e}")))
}

/// Reads the images an archive describes: `manifest.json` when present (it carries the
/// tags docker users expect), else the OCI `index.json`.
fn describe(staged: &StagedArchive) -> Result<Vec<ArchiveImage>, DaemonError> {
    if staged.has("manifest.json") {
        let entries: Vec<ArchiveManifestEntry> =
            parse_json("manifest.json", staged.small("manifest.json")?)?;
        return Ok(entries
            .into_iter()
            .map(|e| ArchiveImage {
                layer_media_types: vec![None; e.layers.len()],
                config: e.config,
                layers: e.layers,
                manifest: None,
                tags: e.repo_tags.unwrap_or_default(),
            })
            .collect());
    }
    if !staged.has("index.json") {
        return Err(bad_archive("no manifest.json or index.json"));
    }
    let index: Index = parse_json("index.json", staged.small("index.json")?)?;
    let mut out: Vec<ArchiveImage> = Vec::new();
    let mut by_manifest: HashMap<Digest, usize> = HashMap::new();
    for desc in index.manifests {
        let tag = desc
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| {
                desc.annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains(':') || n.contains('/'))
                    .cloned()
            });
        let manifest_desc = pick_manifest(staged, desc, 0)?;
        let Some(manifest_desc) = manifest_desc else {
            continue;
        };
        if let Some(&i) = by_manifest.get(&manifest_desc.digest) {
            out[i].tags.extend(tag);
            continue;
        }
        let path = format!("blobs/sha256/{}", manifest_desc.digest.hex());
        let manifest: Manifest = parse_json("manifest", staged.small(&path)?)?;
        by_manifest.insert(manifest_desc.digest, out.len());
        out.push(ArchiveImage {
            config: format!("blobs/sha256/{}", manifest.config.digest.hex()),
            layers: manifest
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
            layer_media_types: manifest
                .layers
                .iter()
                .map(|l| Some(l.media_type.clone()))
                .collect(),
            manifest: Some(path),
            tags: tag.into_iter().collect(),
        });
    }
    Ok(out)
}

/// Follows nested indexes to the manifest for this host's platform.
fn pick_manifest(
    staged: &StagedArchive,
    desc: Descriptor,
    depth: usize,
) -> Result<Option<Descriptor>, DaemonError> {
    let is_index = desc.media_type == media_type::OCI_INDEX
        || desc.media_type == media_type::DOCKER_MANIFEST_LIST;
    if !is_index {
        return Ok(Some(desc));
    }
    if depth > 4 {
        return Err(bad_archive("indexes nested too deep"));
    }
    let index: Index = parse_json(
        "index",
        staged.small(&format!("blobs/sha256/{}", desc.digest.hex()))?,
    )?;
    for child in index.manifests {
        let matches = child
            .platform
            .as_ref()
            .is_none_or(|p| p.os == "linux" && p.architecture == host_arch());
        if matches && staged.has(&format!("blobs/sha256/{}", child.digest.hex())) {
            return pick_manifest(staged, child, depth + 1);
        }
    }
    Ok(None)
}

fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => media_type::OCI_LAYER,
        Compression::Gzip => media_type::OCI_LAYER_GZIP,
        Compression::Zstd => media_type::OCI_LAYER_ZSTD,
        // No OCI media type exists for these; the blob is kept as it came and `save`
        // decompresses it, so the type only labels the stored blob.
        Compression::Bzip2 => "application/x-bzip2",
        Compression::Xz => "application/x-xz",
    }
}

/// Unpacks one layer blob into a new snapshot, verifying its diff ID.
/// Returns the compression found and the uncompressed length.
pub(super) fn unpack_layer(
    snapshots: &Snapshotter,
    blob: impl Read + Send,
    chain_id: Digest,
    parent: Option<Digest>,
    expected_diff_id: Option<Digest>,
) -> Result<(Compression, SnapshotInfo), DaemonError> {
    let active = snapshots
        .prepare()
        .map_err(internal("cannot prepare snapshot"))?;
    let buffered = BufReader::with_capacity(1 << 20, blob);
    let (compression, decompressed) =
        layer::decompress(buffered).map_err(internal("cannot read layer"))?;
    let mut digesting = DigestReader::new(decompressed);
    let stats = layer::apply_layer(&active.fs(), &mut digesting, &ApplyOptions::default())
        .map_err(|e| DaemonError::invalid(format!("failed to register layer: {e}")))?;
    digesting.drain().map_err(internal("cannot read layer"))?;
    let (diff_id, diff_size) = digesting.finish();
    if let Some(expected) = expected_diff_id
        && expected != diff_id
    {
        return Err(DaemonError::invalid(format!(
            "invalid diffID for layer: expected {expected:?}, got {diff_id:?}"
        )));
    }
    let chain_id = if parent.is_none() && expected_diff_id.is_none() {
        diff_id
    } else {
        chain_id
    };
    let info = SnapshotInfo {
        chain_id,
        diff_id,
        parent,
        size: stats.size,
        diff_size,
    };
    snapshots
        .commit(active, &info)
        .map_err(internal("cannot commit snapshot"))?;
    Ok((compression, info))
}

impl ImageService {
    /// `docker load`: reads an archive from `reader` and reports each loaded image.
    ///
    /// # Errors
    /// `InvalidArgument` for a malformed archive or a layer that does not match its
    /// diff ID, `Internal` for store failures. Nothing of a failed image stays behind:
    /// neither a record nor the layers and blobs committed before the failure.
    pub fn load(
        &self,
        reader: impl Read,
        progress: &mut dyn LoadProgress,
    ) -> Result<(), DaemonError> {
        let result = {
            // Held shared for the whole load: see the module docs of `images`.
            let _gc = self.gc.read().expect("gc lock");
            self.load_shared(reader, progress)
        };
        if result.is_err() {
            // Layers before the failing one are committed (and may already have been
            // reused by a concurrent load, so they cannot simply be undone here). The
            // collection takes the gc lock exclusively, so it runs once every load in
            // flight has recorded its image, and removes only what no image references.
            if let Err(e) = self.collect_garbage() {
                tracing::warn!(error = %e, "cannot collect what a failed load left");
            }
        }
        result
    }

    /// The body of [`ImageService::load`]; the caller holds the `gc` lock shared.
    fn load_shared(
        &self,
        reader: impl Read,
        progress: &mut dyn LoadProgress,
    ) -> Result<(), DaemonError> {
        let mut staged = StagedArchive::read(&self.content, reader)?;
        let images = describe(&staged)?;
        if images.is_empty() {
            return Err(bad_archive("no images found"));
        }
        for image in images {
            let config_bytes = staged.small(&image.config)?.to_vec();
            let config: ImageConfig = parse_json("image config", &config_bytes)?;
            if !config.os.is_empty() && config.os != "linux" {
                return Err(DaemonError::invalid(format!(
                    "cannot load {} image on linux",
                    config.os
                )));
            }
            let diff_ids = &config.rootfs.diff_ids;
            if image.layers.len() != diff_ids.len() {
                return Err(DaemonError::invalid(format!(
                    "invalid manifest, layers length mismatch: expected {}, got {}",
                    image.layers.len(),
                    diff_ids.len()
                )));
            }
            let chains = chain_ids(diff_ids);
            let mut layers = Vec::with_capacity(diff_ids.len());
            for (i, path) in image.layers.iter().enumerate() {
                // The compression is known once the layer is unpacked; only a layer that
                // was already present needs its head read to tell.
                let (compression, info) = if self.snapshots.exists(&chains[i]) {
                    (
                        None,
                        self.snapshots.info(&chains[i]).map_err(internal("layer"))?,
                    )
                } else {
                    let blob = staged.open(&self.content, path)?;
                    let parent = i.checked_sub(1).map(|p| chains[p]);
                    let (compression, info) =
                        unpack_layer(&self.snapshots, blob, chains[i], parent, Some(diff_ids[i]))
                            .map_err(|e| DaemonError::new(e.kind(), format!("layer {i}: {e}")))?;
                    (Some(compression), info)
                };
                let mt = match (&image.layer_media_types[i], compression) {
                    (Some(mt), _) => mt.clone(),
                    (None, Some(c)) => layer_media_type(c).to_string(),
                    (None, None) => {
                        let mut head = [0u8; 4];
                        let n = staged
                            .open(&self.content, path)?
                            .read(&mut head)
                            .map_err(internal("layer"))?;
                        layer_media_type(Compression::detect(&head[..n])).to_string()
                    }
                };
                let f = staged.file(path)?;
                let (blob, blob_size) = (f.digest, f.size);
                staged.commit(path)?;
                layers.push(LayerRecord {
                    blob,
                    media_type: mt,
                    blob_size,
                    diff_id: diff_ids[i],
                    diff_size: info.diff_size,
                });
            }
            let id = staged.commit(&image.config)?;
            let manifest = match &image.manifest {
                Some(p) => Some(staged.commit(p)?),
                None => None,
            };
            let record = ImageRecord {
                id,
                layers,
                manifest,
                parent: None,
                stored_at: Utc::now(),
                last_tag_time: None,
            };
            let mut state = self.lock();
            self.insert_image(&mut state, record)?;
            let mut tagged = false;
            for tag in &image.tags {
                let reference = Reference::parse_normalized(tag)
                    .map_err(|e| bad_archive(format!("{tag}: {e}")))?;
                if reference.tag().is_none() {
                    return Err(bad_archive(format!("invalid tag {tag:?}")));
                }
                if let Some(previous) =
                    self.set_reference(&mut state, reference.clone(), id, false)?
                {
                    progress.line(&format!(
                        "The image {} already exists, renaming the old one with ID {previous} to empty string",
                        reference.familiar_string()
                    ));
                }
                progress.line(&format!("Loaded image: {}", reference.familiar_string()));
                tagged = true;
            }
            if !tagged {
                progress.line(&format!("Loaded image ID: {id}"));
            }
            drop(state);
            self.log_event(&id, &id.to_string(), "load");
        }
        Ok(())
    }

    /// Resolves `docker save` arguments (a repository without tag means all its tags),
    /// so that an unknown name fails before any byte of the archive is sent.
    ///
    /// # Errors
    /// `NotFound` or `InvalidArgument` for a name, as [`ImageService::get`].
    pub fn plan_save(&self, names: &[String]) -> Result<SavePlan, DaemonError> {
        let state = self.lock();
        let mut out: Vec<(Digest, Vec<Reference>)> = Vec::new();
        let mut add =
            |id: Digest, r: Option<Reference>| match out.iter_mut().find(|(i, _)| *i == id) {
                Some((_, refs)) => refs.extend(r.filter(|r| !refs.contains(r))),
                None => out.push((id, r.into_iter().collect())),
            };
        for name in names {
            let bare = name.strip_prefix("sha256:").unwrap_or(name);
            let as_ref = Reference::parse_normalized(name)
                .ok()
                .filter(|_| Digest::from_hex(bare).is_err());
            if let Some(r) = as_ref
                .as_ref()
                .filter(|r| r.tag().is_none() && r.digest().is_none())
            {
                let repo_tags: Vec<(Reference, Digest)> = state
                    .refs
                    .iter()
                    .filter(|(k, _)| {
                        k.tag().is_some() && k.digest().is_none() && k.name() == r.name()
                    })
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                if !repo_tags.is_empty() {
                    for (k, v) in repo_tags {
                        add(v, Some(k));
                    }
                    continue;
                }
            }
            let id = resolve(&state, name)?;
            let tag = as_ref
                .map(Reference::with_default_tag)
                .filter(|r| r.tag().is_some() && state.refs.get(r) == Some(&id));
            add(id, tag);
        }
        Ok(SavePlan(out))
    }

    /// `docker save`: writes the planned images into one archive on `out`.
    ///
    /// # Errors
    /// `NotFound` if an image was deleted since planning; I/O on `out` or the store.
    pub fn save(&self, plan: SavePlan, out: impl Write) -> Result<(), DaemonError> {
        // Shared for the whole stream, so `rmi`/`prune` cannot delete a blob this save
        // has yet to read.
        let _gc = self.gc.read().expect("gc lock");
        let images: Vec<_> = {
            let state = self.lock();
            let mut images = Vec::new();
            for (id, refs) in plan.0 {
                let image = state
                    .images
                    .get(&id)
                    .ok_or_else(|| super::no_such_image(&id.to_string()))?;
                images.push((image.clone(), refs));
            }
            images
        };
        let mut tar = tar::Builder::new(out);
        let werr = |e: io::Error| DaemonError::internal(format!("writing archive: {e}"));
        append_dir(&mut tar, "blobs/").map_err(werr)?;
        append_dir(&mut tar, "blobs/sha256/").map_err(werr)?;
        let mut written: HashSet<Digest> = HashSet::new();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        };
        let mut entries = Vec::new();
        for (image, refs) in &images {
            let mut manifest = Manifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_MANIFEST.into()),
                config: descriptor(media_type::OCI_CONFIG, image.record.id, 0),
                layers: Vec::new(),
                annotations: BTreeMap::new(),
            };
            for l in &image.record.layers {
                if written.insert(l.diff_id) {
                    let blob = self
                        .content
                        .open_blob(&l.blob)
                        .map_err(internal("cannot open layer"))?;
                    let reader: Box<dyn Read> = if l.blob == l.diff_id {
                        Box::new(blob)
                    } else {
                        layer::decompress(BufReader::with_capacity(1 << 20, blob))
                            .map_err(internal("cannot read layer"))?
                            .1
                    };
                    append_blob(&mut tar, &l.diff_id, l.diff_size, reader).map_err(werr)?;
                }
                manifest
                    .layers
                    .push(descriptor(media_type::OCI_LAYER, l.diff_id, l.diff_size));
            }
            let config = self
                .content
                .read(&image.record.id, MAX_CONFIG_SIZE)
                .map_err(internal("cannot read config"))?;
            manifest.config.size = config.len() as u64;
            if written.insert(image.record.id) {
                append_blob(&mut tar, &image.record.id, config.len() as u64, &config[..])
                    .map_err(werr)?;
            }
            let manifest_json = serde_json::to_vec(&manifest).expect("manifest serializes");
            let manifest_digest = Digest::of(&manifest_json);
            if written.insert(manifest_digest) {
                append_blob(
                    &mut tar,
                    &manifest_digest,
                    manifest_json.len() as u64,
                    &manifest_json[..],
                )
                .map_err(werr)?;
            }
            let manifest_desc = descriptor(
                media_type::OCI_MANIFEST,
                manifest_digest,
                manifest_json.len() as u64,
            );
            let tags: Vec<&Reference> = refs.iter().filter(|r| r.tag().is_some()).collect();
            if tags.is_empty() {
                index.manifests.push(manifest_desc.clone());
            }
            for r in &tags {
                let mut d = manifest_desc.clone();
                d.annotations
                    .insert("io.containerd.image.name".into(), r.to_string());
                d.annotations.insert(
                    "org.opencontainers.image.ref.name".into(),
                    r.tag().unwrap_or_default().into(),
                );
                index.manifests.push(d);
            }
            entries.push(ArchiveManifestEntry {
                config: format!("blobs/sha256/{}", image.record.id.hex()),
                repo_tags: Some(tags.iter().map(|r| r.familiar_string()).collect()),
                layers: image
                    .record
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.diff_id.hex()))
                    .collect(),
            });
            // Docker names the image by its ID in a save event, whatever was asked.
            let id = image.record.id;
            self.log_event(&id, &id.to_string(), "save");
        }
        let index_json = serde_json::to_vec(&index).expect("index serializes");
        append_file(&mut tar, "index.json", &index_json).map_err(werr)?;
        let manifest_json = serde_json::to_vec(&entries).expect("manifest serializes");
        append_file(&mut tar, "manifest.json", &manifest_json).map_err(werr)?;
        append_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
        tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }
}

/// The images a `save` writes, with the tags each carries into the archive.
#[derive(Debug)]
pub struct SavePlan(Vec<(Digest, Vec<Reference>)>);

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
        urls: Vec::new(),
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut h, path, io::empty())
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
    tar.append_data(&mut h, path, data)
}

/// Appends a blob of known size; fails if the reader yields another length, which
/// would otherwise corrupt every following member.
fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    digest: &Digest,
    size: u64,
    reader: impl Read,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, size, 0o644);
    let mut counted = ExactLength {
        inner: reader,
        left: size,
    };
    tar.append_data(
        &mut h,
        format!("blobs/sha256/{}", digest.hex()),
        &mut counted,
    )?;
    if counted.left != 0 {
        return Err(io::Error::other(format!(
            "blob {digest} is shorter than recorded"
        )));
    }
    Ok(())
}

struct ExactLength<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other("blob is longer than recorded")),
            };
        }
        let max = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalized_and_confined() {
        assert_eq!(
            normalize_member("./blobs/sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(normalize_member("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_member("../../etc/passwd"), None);
        assert_eq!(
            normalize_member("/manifest.json").as_deref(),
            Some("manifest.json")
        );
    }
}
