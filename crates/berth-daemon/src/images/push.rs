//! `docker push`: an image's blobs and manifest to a registry.
//!
//! For each layer, config and then the manifest: `HEAD` first and skip what the
//! repository has; else mount the blob from another repository of the same registry
//! that this image is known to have come from (its references there); else upload it
//! monolithically (`POST` then one `PUT`, streamed from the content store). Layers go up
//! on up to `max-concurrent-uploads` workers at once.
//!
//! A layer stored uncompressed (images loaded from `docker save` archives are) is
//! gzip-compressed once, and the compressed blob replaces the uncompressed one in every
//! image record that has that layer, so a second push sends the same digest without
//! compressing again. The uncompressed blob is then referenced by no record; image
//! removal collects it with the last image that has the layer. A pulled image whose
//! stored manifest still describes its layers is pushed with that very manifest, so its
//! digest is unchanged.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::Digest;
use berth_oci::image::{Descriptor, Manifest, media_type};
use berth_oci::reference::Reference;
use berth_registry::{AuthConfig, RegistryClient, StreamPiece, UploadProgress, UploadSource};
use berth_store::LayerRecord;
use tokio::runtime::Handle;
use tokio_util::bytes::Bytes;

use super::pull::{ProgressMessage, ProgressSender, registry_error};
use super::{Image, ImageService, MAX_CONFIG_SIZE, internal};
use crate::DaemonError;

/// How often an upload reports progress.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Reports one progress message: layer id, status, bytes done and total.
type SendProgress<'a> = dyn Fn(Option<&str>, &str, Option<(u64, u64)>) + Sync + 'a;

/// What one pushed tag ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResult {
    /// The tag.
    pub tag: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: usize,
}

fn descriptor(media: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media.into(),
        digest,
        size,
        platform: None,
        annotations: Default::default(),
        urls: Vec::new(),
    }
}

impl ImageService {
    /// The tags a push of `name` (with `tag`, or every tag of the repository when
    /// empty) sends, each with its image.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name, `NotFound` with Docker's words when nothing
    /// local has that name.
    pub fn plan_push(
        &self,
        name: &str,
        tag: &str,
    ) -> Result<Vec<(Reference, Arc<Image>)>, DaemonError> {
        let repo =
            Reference::parse_normalized(name).map_err(|e| DaemonError::invalid(e.to_string()))?;
        let repo = if tag.is_empty() {
            repo
        } else {
            repo.without_tag_or_digest()
                .with_tag(tag)
                .map_err(|e| DaemonError::invalid(e.to_string()))?
        };
        let state = self.lock();
        let targets: Vec<(Reference, Arc<Image>)> = state
            .refs
            .iter()
            .filter(|(r, _)| {
                r.digest().is_none()
                    && r.tag().is_some()
                    && r.name() == repo.name()
                    && (repo.tag().is_none() || r.tag() == repo.tag())
            })
            .filter_map(|(r, id)| state.images.get(id).map(|i| (r.clone(), i.clone())))
            .collect();
        if targets.is_empty() {
            return Err(DaemonError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_string()
            )));
        }
        Ok(targets)
    }

    /// Pushes planned tags. Blocking; `rt` runs the network I/O.
    ///
    /// # Errors
    /// Registry failures (auth, connection, refusals), store failures.
    pub fn push(
        &self,
        targets: Vec<(Reference, Arc<Image>)>,
        auth: &AuthConfig,
        rt: &Handle,
        progress: &ProgressSender,
    ) -> Result<Vec<PushResult>, DaemonError> {
        let _gc = self.gc.read().expect("gc lock");
        let mut out = Vec::new();
        if let Some((first, _)) = targets.first() {
            let _ = progress.send(ProgressMessage {
                id: None,
                status: format!(
                    "The push refers to repository [{}]",
                    first.without_tag_or_digest()
                ),
                progress: None,
            });
        }
        for (reference, image) in targets {
            let client = self.client_for(&reference, auth, true);
            out.push(self.push_one(&client, &reference, &image, rt, progress)?);
            self.log_named_event(
                &image.record.id,
                &reference.familiar_string(),
                &reference.familiar_name(),
                "push",
            );
        }
        Ok(out)
    }

    fn push_one(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        image: &Image,
        rt: &Handle,
        progress: &ProgressSender,
    ) -> Result<PushResult, DaemonError> {
        let send = |id: Option<&str>, status: &str, p: Option<(u64, u64)>| {
            let _ = progress.send(ProgressMessage {
                id: id.map(str::to_string),
                status: status.to_string(),
                progress: p,
            });
        };
        // Other repositories of the same registry this image is known in.
        let mount_sources: Vec<String> = {
            let state = self.lock();
            Self::references_of(&state, &image.record.id)
                .into_iter()
                .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
                .map(|r| r.path().to_string())
                .collect()
        };
        for s in &mount_sources {
            client.add_mount_source(s);
        }
        let layers = &image.record.layers;
        for l in layers {
            send(Some(&l.diff_id.short()), "Preparing", None);
        }
        let workers = self.registry_config().max_concurrent_uploads.max(1);
        for l in layers.iter().skip(workers) {
            send(Some(&l.diff_id.short()), "Waiting", None);
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, Result<LayerRecord, DaemonError>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..workers.min(layers.len()) {
                scope.spawn(|| {
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(layer) = layers.get(i) else { return };
                        let r = self.push_layer(client, layer, &mount_sources, rt, &send, progress);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().expect("results lock").push((i, r));
                    }
                });
            }
        });
        let mut pushed: Vec<Option<LayerRecord>> = vec![None; layers.len()];
        for (i, r) in results.into_inner().expect("results lock") {
            pushed[i] = Some(r?);
        }
        let pushed: Vec<LayerRecord> = pushed.into_iter().flatten().collect();

        let config = self
            .content
            .read(&image.record.id, MAX_CONFIG_SIZE)
            .map_err(internal("cannot read image config"))?;
        let config_digest = image.record.id;
        let exists = rt
            .block_on(client.blob_exists(&config_digest))
            .map_err(|e| registry_error(&e))?;
        if !exists {
            rt.block_on(client.upload_blob(
                &config_digest,
                &UploadSource::Bytes(config.clone().into()),
                None,
            ))
            .map_err(|e| registry_error(&e))?;
        }
        let (manifest_media, manifest_bytes) = self.manifest_for(image, &pushed, config.len())?;
        let tag = reference.tag().unwrap_or("latest").to_string();
        let digest = rt
            .block_on(client.put_manifest(&tag, &manifest_media, manifest_bytes.clone().into()))
            .map_err(|e| registry_error(&e))?;
        {
            let mut state = self.lock();
            let digest_ref = reference.without_tag_or_digest().with_digest(digest);
            self.set_reference(&mut state, digest_ref, image.record.id, false)?;
        }
        send(
            None,
            &format!("{tag}: digest: {digest} size: {}", manifest_bytes.len()),
            None,
        );
        Ok(PushResult {
            tag,
            digest,
            size: manifest_bytes.len(),
        })
    }

    /// The manifest to push: the stored one when it still describes exactly these
    /// blobs (a pulled image keeps its digest), else a new one. Docker schema 2 when
    /// every layer has a Docker media type, OCI otherwise.
    fn manifest_for(
        &self,
        image: &Image,
        layers: &[LayerRecord],
        config_size: usize,
    ) -> Result<(String, Vec<u8>), DaemonError> {
        if let Some(stored) = image.record.manifest
            && let Ok(bytes) = self.content.read(&stored, MAX_CONFIG_SIZE)
            && let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
            && m.config.digest == image.record.id
            && m.layers.len() == layers.len()
            && m.layers.iter().zip(layers).all(|(d, l)| d.digest == l.blob)
        {
            let media = m
                .media_type
                .clone()
                .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
            return Ok((media, bytes));
        }
        let docker = !layers.is_empty()
            && layers
                .iter()
                .all(|l| l.media_type.starts_with("application/vnd.docker."));
        let (manifest_media, config_media) = if docker {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
        } else {
            (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest_media.to_string()),
            config: descriptor(config_media, image.record.id, config_size as u64),
            layers: layers
                .iter()
                .map(|l| {
                    let media = match l.media_type.as_str() {
                        m if docker => m,
                        media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
                        media_type::DOCKER_LAYER => media_type::OCI_LAYER,
                        m => m,
                    };
                    descriptor(media, l.blob, l.blob_size)
                })
                .collect(),
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        Ok((manifest_media.to_string(), bytes))
    }

    /// Pushes one layer (compressing it first if it is stored uncompressed).
    fn push_layer(
        &self,
        client: &RegistryClient,
        layer: &LayerRecord,
        mount_sources: &[String],
        rt: &Handle,
        send: &SendProgress<'_>,
        progress: &ProgressSender,
    ) -> Result<LayerRecord, DaemonError> {
        let short = layer.diff_id.short();
        let layer = if layer.blob == layer.diff_id {
            // Another push (or an earlier tag of this one: records were captured when the
            // push was planned) may have compressed it already.
            match self.compressed_layer(layer) {
                Some(done) => done,
                None => return self.push_compressing(client, layer, rt, send, progress),
            }
        } else {
            layer.clone()
        };
        let exists = rt
            .block_on(client.blob_exists(&layer.blob))
            .map_err(|e| registry_error(&e))?;
        if exists {
            send(Some(&short), "Layer already exists", None);
            return Ok(layer);
        }
        send(Some(&short), "Pushing", Some((0, layer.blob_size)));
        let callback = {
            let (tx, id, total) = (progress.clone(), short.clone(), layer.blob_size);
            let last = Mutex::new(Instant::now());
            UploadProgress(Arc::new(move |sent: u64| {
                let mut last = last.lock().expect("progress lock");
                if sent == total || last.elapsed() >= PROGRESS_INTERVAL {
                    *last = Instant::now();
                    let _ = tx.send(ProgressMessage {
                        id: Some(id.clone()),
                        status: "Pushing".into(),
                        progress: Some((sent, total)),
                    });
                }
            }))
        };
        let source = UploadSource::File {
            path: self.content.path(&layer.blob),
            size: layer.blob_size,
            progress: Some(callback),
        };
        // A failed mount starts an ordinary upload, which upload_blob then completes.
        let from = mount_sources.first().map(String::as_str);
        let sent = rt
            .block_on(client.upload_blob(&layer.blob, &source, from))
            .map_err(|e| registry_error(&e))?;
        match from {
            Some(from) if !sent => send(Some(&short), &format!("Mounted from {from}"), None),
            _ => send(Some(&short), "Pushed", None),
        }
        Ok(layer)
    }

    /// The gzip blob some image record already has for this uncompressed layer.
    fn compressed_layer(&self, layer: &LayerRecord) -> Option<LayerRecord> {
        let state = self.lock();
        state
            .images
            .values()
            .flat_map(|i| i.record.layers.iter())
            .find(|l| {
                l.diff_id == layer.diff_id && l.blob != l.diff_id && self.content.exists(&l.blob)
            })
            .cloned()
    }

    /// Pushes a layer stored uncompressed: gzips it (on every core) while it uploads,
    /// as Docker does, instead of compressing it into the store first and uploading
    /// after. The compressed bytes also go into the content store, and the result is
    /// recorded in every image with this layer, so the next push sends the same blob.
    fn push_compressing(
        &self,
        client: &RegistryClient,
        layer: &LayerRecord,
        rt: &Handle,
        send: &SendProgress<'_>,
        progress: &ProgressSender,
    ) -> Result<LayerRecord, DaemonError> {
        const WHAT: &str = "cannot compress layer";
        let short = layer.diff_id.short();
        send(Some(&short), "Pushing", Some((0, layer.diff_size)));
        let callback = {
            let (tx, id, total) = (progress.clone(), short.clone(), layer.diff_size);
            let last = Mutex::new(Instant::now());
            UploadProgress(Arc::new(move |sent: u64| {
                let mut last = last.lock().expect("progress lock");
                if last.elapsed() >= PROGRESS_INTERVAL {
                    *last = Instant::now();
                    let _ = tx.send(ProgressMessage {
                        id: Some(id.clone()),
                        status: "Pushing".into(),
                        progress: Some((sent.min(total), total)),
                    });
                }
            }))
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<StreamPiece>(4);
        let (uploaded, produced) = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let result = self.compress_into(layer, &tx);
                let last = match &result {
                    Ok(_) => StreamPiece::End,
                    Err(e) => StreamPiece::Failed(format!("{WHAT}: {e}")),
                };
                let _ = tx.blocking_send(last);
                result
            });
            let uploaded = rt.block_on(client.upload_stream(rx, Some(callback)));
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("compressor thread panicked")));
            (uploaded, produced)
        });
        // The upload's error first: when the registry refuses, the producer only sees
        // its pieces go nowhere.
        let (digest, size) = uploaded.map_err(|e| registry_error(&e))?;
        let pending = produced.map_err(internal(WHAT))?;
        let blob = pending.commit(Some(digest)).map_err(internal(WHAT))?;
        send(Some(&short), "Pushed", None);
        self.record_compressed(layer, blob, size)
    }

    /// Gzips an uncompressed layer into a new content-store blob and, in pieces, to
    /// `tx`; the blob is left to commit once the upload's digest is known.
    fn compress_into(
        &self,
        layer: &LayerRecord,
        tx: &tokio::sync::mpsc::Sender<StreamPiece>,
    ) -> io::Result<berth_store::PendingBlob> {
        let mut src = self.content.open_blob(&layer.blob)?;
        let mut tee = PieceTee {
            store: io::BufWriter::with_capacity(1 << 20, self.content.writer()?),
            tx,
            buf: Vec::with_capacity(PIECE),
        };
        // Every core: a single deflate stream made pushing a loaded image gzip-bound.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        berth_store::layer::gzip_parallel(&mut src, &mut tee, threads)?;
        tee.send_buffered()?;
        let store = tee.store.into_inner().map_err(|e| e.into_error())?;
        store.finish()
    }

    /// Records the gzip blob of an uncompressed layer in every image that has this
    /// layer uncompressed, so it is compressed once.
    fn record_compressed(
        &self,
        layer: &LayerRecord,
        blob: Digest,
        size: u64,
    ) -> Result<LayerRecord, DaemonError> {
        let compressed = LayerRecord {
            blob,
            media_type: media_type::OCI_LAYER_GZIP.to_string(),
            blob_size: size,
            diff_id: layer.diff_id,
            diff_size: layer.diff_size,
        };
        let mut state = self.lock();
        let ids: Vec<Digest> = state.images.keys().copied().collect();
        for id in ids {
            let image = &state.images[&id];
            if !image
                .record
                .layers
                .iter()
                .any(|l| l.diff_id == layer.diff_id && l.blob == layer.diff_id)
            {
                continue;
            }
            let mut record = image.record.clone();
            for l in &mut record.layers {
                if l.diff_id == layer.diff_id && l.blob == layer.diff_id {
                    *l = compressed.clone();
                }
            }
            self.store
                .put(&record)
                .map_err(internal("cannot store image record"))?;
            let updated = Image {
                record,
                ..(**image).clone()
            };
            state.images.insert(id, Arc::new(updated));
        }
        Ok(compressed)
    }
}

/// Bytes per piece of a streamed upload (the registry client merges pieces up to the
/// registry's chunk size).
const PIECE: usize = 16 << 20;

/// Where a layer's gzip stream goes while it is pushed: into the content store and,
/// in pieces, to the upload.
struct PieceTee<'a, W: io::Write> {
    store: W,
    tx: &'a tokio::sync::mpsc::Sender<StreamPiece>,
    buf: Vec<u8>,
}

impl<W: io::Write> PieceTee<'_, W> {
    /// Sends what is buffered as one piece.
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(StreamPiece::Data(piece))
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl<W: io::Write> io::Write for PieceTee<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.store.write_all(data)?;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send_buffered()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.store.flush()
    }
}

/// The registry domain a `docker login` server address names (`https://index.docker.io/v1/`
/// is Docker Hub).
fn login_domain(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

impl ImageService {
    /// `docker login`: checks the credentials against the registry's `/v2/`.
    ///
    /// # Errors
    /// `Unauthorized` when the registry refuses them; connection errors.
    pub async fn login(&self, auth: &AuthConfig) -> Result<(), DaemonError> {
        let domain = login_domain(&auth.serveraddress);
        let insecure = self.registry_config().insecure_registries;
        let endpoint = berth_registry::Endpoint::for_domain(&domain, &insecure);
        let url = format!("{}/v2/", endpoint.base_url());
        let client = RegistryClient::new(endpoint, "", auth.credentials(), false);
        client.ping().await.map_err(|e| {
            if e.is_auth() {
                DaemonError::new(
                    crate::ErrorKind::Unauthorized,
                    format!("login attempt to {url} failed with status: 401 Unauthorized"),
                )
            } else {
                registry_error(&e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_server_addresses_name_their_registry() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_domain("http://localhost:5000/v2/"), "localhost:5000");
    }
}
