//! `docker import`: a rootfs tarball becomes a one-layer image.

use std::io::{self, BufReader, Read, Write};

use berth_oci::Digest;
use berth_oci::image::{ContainerConfig, History, ImageConfig, RootFs};
use berth_store::layer::{self, ApplyOptions, DigestReader};
use berth_store::{BlobWriter, ImageRecord, LayerRecord, SnapshotInfo};
use chrono::Utc;

use super::{ImageService, apply_changes, internal, repo_tag_reference};
use crate::DaemonError;

/// Copies everything read through it into a blob writer, so one pass over the body
/// both unpacks the layer and stores its tarball.
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What `docker import` asks for.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// `REPOSITORY` (may carry a tag), empty for none.
    pub repo: String,
    /// `TAG`, empty for none.
    pub tag: String,
    /// `--change` lines.
    pub changes: Vec<String>,
    /// `--message`.
    pub message: String,
    /// Where the tarball came from (`-` for the request body), for the history comment.
    pub source: String,
}

impl ImageService {
    /// Checks the reference and changes of an import before its body is read.
    ///
    /// # Errors
    /// `InvalidArgument` in Docker's words.
    pub fn check_import(&self, opts: &ImportOptions) -> Result<(), DaemonError> {
        if !opts.repo.is_empty() {
            repo_tag_reference(&opts.repo, &opts.tag)?;
        }
        apply_changes(&mut ContainerConfig::default(), &opts.changes)
    }

    /// Imports a (possibly compressed) rootfs tarball as a one-layer image.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad reference, change or tarball; `Internal` for store
    /// failures. The target reference and changes are checked before the body is read.
    pub fn import(
        &self,
        body: impl Read + Send,
        opts: &ImportOptions,
    ) -> Result<Digest, DaemonError> {
        let target = if opts.repo.is_empty() {
            None
        } else {
            Some(repo_tag_reference(&opts.repo, &opts.tag)?)
        };
        let mut run_config = ContainerConfig::default();
        apply_changes(&mut run_config, &opts.changes)?;

        let _gc = self.gc.read().expect("gc lock");
        let mut blob = self
            .content
            .writer()
            .map_err(internal("cannot stage layer"))?;
        let active = self
            .snapshots
            .prepare()
            .map_err(internal("cannot prepare snapshot"))?;
        let (_, decompressed) = layer::decompress(BufReader::with_capacity(1 << 20, body))
            .map_err(internal("cannot read tarball"))?;
        let mut digesting = DigestReader::new(Tee {
            inner: decompressed,
            copy: &mut blob,
        });
        let stats = layer::apply_layer(&active.fs(), &mut digesting, &ApplyOptions::default())
            .map_err(|e| DaemonError::invalid(format!("failed to import: {e}")))?;
        digesting.drain().map_err(internal("cannot read tarball"))?;
        let (diff_id, diff_size) = digesting.finish();
        let pending = blob.finish().map_err(internal("cannot stage layer"))?;
        let info = SnapshotInfo {
            chain_id: diff_id,
            diff_id,
            parent: None,
            size: stats.size,
            diff_size,
        };
        self.snapshots
            .commit(active, &info)
            .map_err(internal("cannot commit snapshot"))?;
        let blob_digest = pending
            .commit(Some(diff_id))
            .map_err(internal("cannot commit layer"))?;

        let now = Utc::now();
        let comment = if opts.message.is_empty() {
            format!("Imported from {}", opts.source)
        } else {
            opts.message.clone()
        };
        let config = ImageConfig {
            created: Some(now),
            architecture: super::host_arch().to_string(),
            os: "linux".into(),
            config: Some(run_config),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(comment),
                ..Default::default()
            }],
            ..Default::default()
        };
        let config_json = serde_json::to_vec(&config).expect("config serializes");
        let id = self
            .content
            .put(&config_json)
            .map_err(internal("cannot store config"))?;
        let record = ImageRecord {
            id,
            layers: vec![LayerRecord {
                blob: blob_digest,
                media_type: berth_oci::image::media_type::OCI_LAYER.into(),
                blob_size: diff_size,
                diff_id,
                diff_size,
            }],
            manifest: None,
            parent: None,
            stored_at: now,
            last_tag_time: None,
        };
        let mut state = self.lock();
        self.insert_image(&mut state, record)?;
        if let Some(target) = target {
            self.set_reference(&mut state, target, id, true)?;
        }
        drop(state);
        self.log_event(&id, &id.to_string(), "import");
        Ok(id)
    }
}
