//! `docker pull`: from a registry into the content store and snapshots.
//!
//! A pull is two phases so that errors reach the client as Docker's do. [`ImageService::
//! prepare_pull`] (async) resolves the reference to a platform's manifest; a failure
//! there (no such tag, no access) is an ordinary HTTP error. [`ImageService::
//! finish_pull`] (blocking) then streams progress while it fetches the config and the
//! layers and records the image.
//!
//! Each missing layer is streamed once, on its own worker, up to
//! `max-concurrent-downloads` ([`RegistryConfig`]) at a time: the HTTP body is read through a tee that
//! writes the compressed bytes to a content-store ingest and digests them, into the same
//! decompress → diff-ID digest → extract path `docker load` uses
//! ([`super::archive::unpack_layer`]). The tee checks the blob digest the moment the
//! last announced byte arrives and fails the read on a mismatch, so a bad layer is never
//! committed as a snapshot and its ingest is dropped. Layers whose snapshot is already
//! present (same chain ID, in any image) are not downloaded.
//!
//! Like `load`, a pull holds the `gc` lock shared throughout. Unlike `load`, a failed
//! pull leaves the layers it finished (each verified against both its blob digest and
//! its diff ID), so that pulling again resumes instead of fetching them again; the
//! next garbage collection removes them if no pull ever uses them.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_oci::image::{Descriptor, ImageConfig, media_type};
use berth_oci::reference::DEFAULT_DOMAIN;
use berth_oci::reference::Reference;
use berth_oci::{Digest, chain_ids};
use berth_registry::{
    AuthConfig, BlobReader, Endpoint, PlatformSpec, Pulled, RegistryClient, RegistryError, Scheme,
};
use berth_store::{BlobWriter, ImageRecord, LayerRecord};
use chrono::Utc;
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::io::SyncIoBridge;

use super::archive::unpack_layer;
use super::{ImageService, MAX_CONFIG_SIZE, internal};
use crate::{DaemonError, ErrorKind};

/// The daemon's registry settings (`daemon.json` keys of the same names).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host:port` or CIDR) spoken to over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Mirrors (`http(s)://host:port`) tried first, in order, for Docker Hub images.
    pub registry_mirrors: Vec<String>,
    /// Layers downloaded at once per pull (dockerd's default: 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once per push (dockerd's default: 5).
    pub max_concurrent_uploads: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
        }
    }
}

/// A mirror URL as an endpoint: `http://host:port` stays plain, anything else is HTTPS.
fn mirror_endpoint(url: &str) -> Option<Endpoint> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else {
        (Scheme::Https, url.strip_prefix("https://").unwrap_or(url))
    };
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(Endpoint {
        authority: authority.to_string(),
        scheme,
    })
}
/// How often a layer reports download progress.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// One message of Docker's JSON progress stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressMessage {
    /// The layer (12-hex short digest) or tag the message is about.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, …
    pub status: String,
    /// Bytes done and total, for progress bars.
    pub progress: Option<(u64, u64)>,
}

impl ProgressMessage {
    fn new(id: Option<&str>, status: impl Into<String>) -> Self {
        ProgressMessage {
            id: id.map(str::to_string),
            status: status.into(),
            progress: None,
        }
    }
}

/// Where pull and push progress goes.
pub type ProgressSender = UnboundedSender<ProgressMessage>;

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The image, with a tag or digest.
    pub reference: Reference,
    /// `--platform`; the host's when `None`.
    pub platform: Option<PlatformSpec>,
    /// Credentials from `X-Registry-Auth`.
    pub auth: AuthConfig,
}

/// A reference resolved to its manifest, ready to be fetched.
#[derive(Debug)]
pub struct PreparedPull {
    reference: Reference,
    client: Arc<RegistryClient>,
    pulled: Pulled,
}

/// The client-facing text of a registry error, with its causes.
pub(crate) fn registry_message(e: &RegistryError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Classifies a registry error once, for every caller.
pub(crate) fn registry_error(e: &RegistryError) -> DaemonError {
    let kind = match e {
        RegistryError::NotFound { .. } | RegistryError::NoMatchingPlatform { .. } => {
            ErrorKind::NotFound
        }
        RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => {
            ErrorKind::Unauthorized
        }
        RegistryError::Schema1 { .. }
        | RegistryError::UnsupportedMediaType { .. }
        | RegistryError::InvalidDocument { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::TooLarge { .. } => ErrorKind::InvalidArgument,
        RegistryError::Connect { .. }
        | RegistryError::Tls { .. }
        | RegistryError::Http { .. }
        | RegistryError::Status { .. }
        | RegistryError::Token { .. }
        | RegistryError::BadResponse { .. } => ErrorKind::Unavailable,
        RegistryError::Read { .. } => ErrorKind::Internal,
    };
    DaemonError::new(kind, registry_message(e))
}

impl ImageService {
    /// Replaces the registry settings (berthd calls this once at start).
    pub fn set_registry_config(&self, config: RegistryConfig) {
        *self.registry.write().expect("registry config lock") = config;
    }

    pub(crate) fn registry_config(&self) -> RegistryConfig {
        self.registry.read().expect("registry config lock").clone()
    }

    /// A client for `reference`'s repository.
    pub(crate) fn client_for(
        &self,
        reference: &Reference,
        auth: &AuthConfig,
        push: bool,
    ) -> RegistryClient {
        let insecure = self.registry_config().insecure_registries;
        RegistryClient::new(
            Endpoint::for_reference(reference, &insecure),
            reference.path(),
            auth.credentials(),
            push,
        )
    }
}

/// What a layer worker produced.
struct LayerDone {
    index: usize,
    record: LayerRecord,
}

impl ImageService {
    /// Resolves a reference to the manifest for the wanted platform.
    ///
    /// # Errors
    /// Docker's words: `manifest for X not found` (`NotFound`), `pull access denied`
    /// (`NotFound`, as Docker classifies it), auth and connection failures.
    pub async fn prepare_pull(&self, req: PullRequest) -> Result<PreparedPull, DaemonError> {
        let tag_or_digest = match (req.reference.digest(), req.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let platform = req.platform.clone().unwrap_or_else(PlatformSpec::host);
        // Docker Hub images are tried at each mirror first (anonymously: Hub
        // credentials are not for mirrors); any failure there falls through to the hub.
        if req.reference.domain() == DEFAULT_DOMAIN {
            for mirror in self.registry_config().registry_mirrors {
                let Some(endpoint) = mirror_endpoint(&mirror) else {
                    tracing::warn!(mirror = %mirror, "ignoring a registry mirror that is not a URL");
                    continue;
                };
                let client = RegistryClient::new(endpoint, req.reference.path(), None, false);
                match client
                    .resolve(&tag_or_digest, &req.reference.familiar_string(), &platform)
                    .await
                {
                    Ok(pulled) => {
                        return Ok(PreparedPull {
                            reference: req.reference,
                            client: Arc::new(client),
                            pulled,
                        });
                    }
                    Err(e) => {
                        tracing::info!(mirror = %mirror, error = %registry_message(&e), "mirror cannot serve the image");
                    }
                }
            }
        }
        let client = Arc::new(self.client_for(&req.reference, &req.auth, false));
        let pulled = client
            .resolve(&tag_or_digest, &req.reference.familiar_string(), &platform)
            .await
            .map_err(|e| match &e {
                RegistryError::NotFound { code, .. } if code == "MANIFEST_UNKNOWN" => {
                    DaemonError::not_found(format!(
                        "manifest for {} not found: {}",
                        req.reference.familiar_string(),
                        registry_message(&e)
                    ))
                }
                RegistryError::NotFound { .. } | RegistryError::Unauthorized { .. } => {
                    DaemonError::not_found(format!(
                        "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                        req.reference.without_tag_or_digest().familiar_string(),
                        registry_message(&e)
                    ))
                }
                _ => registry_error(&e),
            })?;
        Ok(PreparedPull {
            reference: req.reference,
            client,
            pulled,
        })
    }

    /// Fetches the config and the missing layers of a prepared pull, records the image
    /// and points the reference (and its digest reference) at it. Blocking; `rt` runs
    /// the network I/O.
    ///
    /// # Errors
    /// Registry failures, a digest or diff-ID mismatch (`InvalidArgument`), store
    /// failures. Of a failed pull, only fully verified layers stay (see module docs).
    pub fn finish_pull(
        &self,
        prepared: PreparedPull,
        rt: &Handle,
        progress: &ProgressSender,
    ) -> Result<Digest, DaemonError> {
        // No collection on failure: the layers finished before it are verified and
        // let a retry resume; the failing layer itself never becomes visible.
        // Unreferenced layers go at the next collection (daemon start, rmi, prune).
        let _gc = self.gc.read().expect("gc lock");
        let id = self.finish_pull_shared(&prepared, rt, progress)?;
        drop(_gc);
        // Docker names a pull event by the reference, with the repository as `name`.
        let r = &prepared.reference;
        self.log_named_event(&id, &r.familiar_string(), &r.familiar_name(), "pull");
        Ok(id)
    }

    fn finish_pull_shared(
        &self,
        prepared: &PreparedPull,
        rt: &Handle,
        progress: &ProgressSender,
    ) -> Result<Digest, DaemonError> {
        let PreparedPull {
            reference,
            client,
            pulled,
        } = prepared;
        let send = |m: ProgressMessage| {
            let _ = progress.send(m);
        };
        let tag_id = reference
            .digest()
            .map(|d| d.to_string())
            .or_else(|| reference.tag().map(str::to_string));
        send(ProgressMessage::new(
            tag_id.as_deref(),
            format!(
                "Pulling from {}",
                reference.without_tag_or_digest().familiar_name()
            ),
        ));
        let manifest = &pulled.manifest;
        let config_digest = manifest.config.digest;
        let config_bytes = if self.content.exists(&config_digest) {
            self.content
                .read(&config_digest, MAX_CONFIG_SIZE)
                .map_err(internal("image config"))?
        } else {
            rt.block_on(client.fetch_blob_bytes(&config_digest))
                .map_err(|e| registry_error(&e))?
        };
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| DaemonError::invalid(format!("invalid image config: {e}")))?;
        if !config.os.is_empty() && config.os != "linux" {
            return Err(DaemonError::invalid(format!(
                "image operating system \"{}\" cannot be used on this platform",
                config.os
            )));
        }
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(DaemonError::invalid(format!(
                "invalid manifest: {} layers but {} diff IDs in the config",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let chains = chain_ids(diff_ids);
        let was = self.lock().refs.get(reference).copied();

        // Layers already present, in any image, are reused as they are recorded there.
        // So are layers an interrupted pull finished: their snapshot and blob were
        // both verified before they were committed.
        let mut records: Vec<Option<LayerRecord>> = {
            let state = self.lock();
            chains
                .iter()
                .zip(&manifest.layers)
                .map(|(c, desc)| {
                    if !self.snapshots.exists(c) {
                        return None;
                    }
                    let in_image = state.images.values().find_map(|img| {
                        let ids: Vec<Digest> =
                            img.record.layers.iter().map(|l| l.diff_id).collect();
                        chain_ids(&ids)
                            .iter()
                            .position(|x| x == c)
                            .map(|j| img.record.layers[j].clone())
                    });
                    in_image.or_else(|| {
                        let info = self.snapshots.info(c).ok()?;
                        (self.content.exists(&desc.digest)
                            && self.content.size(&desc.digest).ok()? == desc.size)
                            .then(|| LayerRecord {
                                blob: desc.digest,
                                media_type: desc.media_type.clone(),
                                blob_size: desc.size,
                                diff_id: info.diff_id,
                                diff_size: info.diff_size,
                            })
                    })
                })
                .collect()
        };
        let workers = self.registry_config().max_concurrent_downloads.max(1);
        let mut todo = Vec::new();
        for (i, desc) in manifest.layers.iter().enumerate() {
            let id = desc.digest.short();
            if records[i].is_some() {
                send(ProgressMessage::new(Some(&id), "Already exists"));
            } else {
                send(ProgressMessage::new(Some(&id), "Pulling fs layer"));
                todo.push(i);
            }
        }
        for &i in todo.iter().skip(workers) {
            send(ProgressMessage::new(
                Some(&manifest.layers[i].digest.short()),
                "Waiting",
            ));
        }

        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Result<LayerDone, DaemonError>>> = Mutex::new(Vec::new());
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..workers.min(todo.len()) {
                scope.spawn(|| {
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(n) else { return };
                        let parent = i.checked_sub(1).map(|p| chains[p]);
                        let r = self
                            .pull_layer(
                                rt,
                                client,
                                &manifest.layers[i],
                                chains[i],
                                parent,
                                diff_ids[i],
                                progress,
                            )
                            .map(|record| LayerDone { index: i, record });
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().expect("results lock").push(r);
                    }
                });
            }
        });
        for r in results.into_inner().expect("results lock") {
            let done = r?;
            records[done.index] = Some(done.record);
        }
        let layers: Vec<LayerRecord> = records
            .into_iter()
            .map(|r| r.expect("every layer is present or pulled"))
            .collect();

        let id = self
            .content
            .put(&config_bytes)
            .map_err(internal("cannot store image config"))?;
        let manifest_digest = self
            .content
            .put(&pulled.manifest_bytes)
            .map_err(internal("cannot store manifest"))?;
        let record = ImageRecord {
            id,
            layers,
            manifest: Some(manifest_digest),
            parent: None,
            stored_at: Utc::now(),
            last_tag_time: None,
        };
        let mut state = self.lock();
        self.insert_image(&mut state, record)?;
        let digest_ref = reference.without_tag_or_digest().with_digest(pulled.digest);
        self.set_reference(&mut state, digest_ref, id, false)?;
        if reference.digest().is_none() {
            self.set_reference(&mut state, reference.clone(), id, true)?;
        }
        drop(state);
        send(ProgressMessage::new(
            None,
            format!("Digest: {}", pulled.digest),
        ));
        let status = if was == Some(id) {
            format!(
                "Status: Image is up to date for {}",
                reference.familiar_string()
            )
        } else {
            format!(
                "Status: Downloaded newer image for {}",
                reference.familiar_string()
            )
        };
        send(ProgressMessage::new(None, status));
        Ok(id)
    }

    /// Streams one layer: download → blob digest → decompress → diff ID → extract.
    #[allow(clippy::too_many_arguments)]
    fn pull_layer(
        &self,
        rt: &Handle,
        client: &RegistryClient,
        desc: &Descriptor,
        chain_id: Digest,
        parent: Option<Digest>,
        diff_id: Digest,
        progress: &ProgressSender,
    ) -> Result<LayerRecord, DaemonError> {
        let short = desc.digest.short();
        let send = |status: &str, p: Option<(u64, u64)>| {
            let _ = progress.send(ProgressMessage {
                id: Some(short.clone()),
                status: status.to_string(),
                progress: p,
            });
        };
        let reader = rt
            .block_on(client.open_blob(&desc.digest))
            .map_err(|e| registry_error(&e))?;
        let writer = self
            .content
            .writer()
            .map_err(internal("cannot store layer"))?;
        let mut tee = VerifyingTee {
            inner: SyncIoBridge::new_with_handle(reader, rt.clone()),
            writer,
            count: 0,
            expected: desc.digest,
            size: desc.size,
            mismatch: None,
            last_report: Instant::now(),
            report: &|n| send("Downloading", Some((n, desc.size))),
            waited: Duration::ZERO,
            stored: Duration::ZERO,
        };
        let started = Instant::now();
        let unpacked = unpack_layer(&self.snapshots, &mut tee, chain_id, parent, Some(diff_id));
        let unpack_time = started.elapsed();
        if let Some(actual) = tee.mismatch {
            return Err(mismatch(desc.digest, actual));
        }
        let (compression, info) = unpacked
            .map_err(|e| DaemonError::new(e.kind(), format!("layer {}: {e}", desc.digest)))?;
        // The decompressor may stop before a stream's last bytes (padding after a
        // tarball): read them so the blob digest covers everything.
        let drained = io::copy(&mut tee, &mut io::sink());
        let VerifyingTee {
            writer,
            count,
            mismatch: bad,
            waited,
            stored,
            ..
        } = tee;
        let fail = |e: DaemonError| {
            // The snapshot was committed under a verified diff ID, but its blob is
            // bad or short: drop it rather than keep anything of this layer.
            let _ = self.snapshots.remove(&chain_id);
            e
        };
        if let Some(actual) = bad {
            return Err(fail(mismatch(desc.digest, actual)));
        }
        drained.map_err(|e| {
            fail(DaemonError::new(
                ErrorKind::Unavailable,
                format!("layer {}: {e}", desc.digest),
            ))
        })?;
        if count != desc.size {
            return Err(fail(DaemonError::invalid(format!(
                "layer {}: expected {} bytes, got {count}",
                desc.digest, desc.size
            ))));
        }
        send("Verifying Checksum", None);
        let committing = Instant::now();
        let blob = writer
            .finish()
            .map_err(internal("cannot store layer"))?
            .commit(Some(desc.digest))
            .map_err(|e| fail(DaemonError::invalid(e.to_string())))?;
        // Where a layer's time went, for profiling pulls (bench/registry with
        // BERTH_LOG_LEVEL=debug): waiting for the network, writing the blob, the rest of
        // unpacking (decompress, diff ID, files, snapshot sync), committing the blob.
        tracing::debug!(
            layer = %desc.digest,
            bytes = count,
            unpack_ms = unpack_time.as_millis() as u64,
            network_wait_ms = waited.as_millis() as u64,
            blob_write_ms = stored.as_millis() as u64,
            blob_commit_ms = committing.elapsed().as_millis() as u64,
            "layer pulled"
        );
        send("Download complete", None);
        send("Extracting", Some((desc.size, desc.size)));
        send("Pull complete", None);
        let media = if desc.media_type.is_empty() {
            match compression {
                berth_store::layer::Compression::Gzip => media_type::OCI_LAYER_GZIP,
                berth_store::layer::Compression::Zstd => media_type::OCI_LAYER_ZSTD,
                _ => media_type::OCI_LAYER,
            }
            .to_string()
        } else {
            desc.media_type.clone()
        };
        Ok(LayerRecord {
            blob,
            media_type: media,
            blob_size: desc.size,
            diff_id,
            diff_size: info.diff_size,
        })
    }
}

fn mismatch(expected: Digest, actual: Digest) -> DaemonError {
    DaemonError::invalid(format!(
        "filesystem layer verification failed for digest {expected}: got {actual}"
    ))
}

/// Copies what is read into an ingest and checks the blob digest as soon as the
/// announced size is reached; more bytes than announced, or a different digest, fail
/// the read (so the extraction fails before its snapshot is committed).
struct VerifyingTee<'a> {
    inner: SyncIoBridge<BlobReader>,
    /// Digests what it stores; its digest is the blob's.
    writer: BlobWriter,
    count: u64,
    expected: Digest,
    size: u64,
    mismatch: Option<Digest>,
    last_report: Instant,
    report: &'a (dyn Fn(u64) + Sync),
    /// Time spent waiting for the network.
    waited: Duration,
    /// Time spent writing and digesting the blob.
    stored: Duration,
}

impl Read for VerifyingTee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.mismatch.is_some() {
            return Err(io::Error::other("blob digest mismatch"));
        }
        let t = Instant::now();
        let n = self.inner.read(buf)?;
        self.waited += t.elapsed();
        if n == 0 {
            return Ok(0);
        }
        if self.count + n as u64 > self.size {
            return Err(io::Error::other(format!(
                "blob {} is longer than its {} bytes",
                self.expected, self.size
            )));
        }
        let t = Instant::now();
        io::Write::write_all(&mut self.writer, &buf[..n])?;
        self.stored += t.elapsed();
        self.count += n as u64;
        if self.count == self.size {
            let actual = self.writer.digest();
            if actual != self.expected {
                self.mismatch = Some(actual);
                return Err(io::Error::other("blob digest mismatch"));
            }
            (self.report)(self.count);
        } else if self.last_report.elapsed() >= PROGRESS_INTERVAL {
            self.last_report = Instant::now();
            (self.report)(self.count);
        }
        Ok(n)
    }
}

impl ImageService {
    /// The tags of `reference`'s repository (`pull --all-tags`).
    ///
    /// # Errors
    /// Registry failures, classified as [`registry_error`] does.
    pub async fn remote_tags(
        &self,
        reference: &Reference,
        auth: &AuthConfig,
    ) -> Result<Vec<String>, DaemonError> {
        self.client_for(reference, auth, false)
            .tags()
            .await
            .map_err(|e| registry_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_urls_keep_their_scheme() {
        let m = mirror_endpoint("http://127.0.0.1:5000/").unwrap();
        assert_eq!(
            (m.authority.as_str(), m.scheme),
            ("127.0.0.1:5000", Scheme::Http)
        );
        let m = mirror_endpoint("https://mirror.example").unwrap();
        assert_eq!(m.scheme, Scheme::Https);
        assert!(mirror_endpoint("http://").is_none());
    }

    #[test]
    fn registry_errors_are_classified_for_clients() {
        let e = RegistryError::Unauthorized {
            url: "u".into(),
            message: "authentication required".into(),
        };
        assert_eq!(registry_error(&e).kind(), ErrorKind::Unauthorized);
        let e = RegistryError::NoMatchingPlatform {
            platform: "linux/s390x".into(),
        };
        assert_eq!(registry_error(&e).kind(), ErrorKind::NotFound);
    }
}
