//! A new image from a container's writable layer: `docker commit`, and every Dockerfile
//! step that changes files.
//!
//! The upperdir is packed once: the layer tarball (stored uncompressed as Docker
//! does; push compresses) goes to an ingest blob, its diff ID computed on the way,
//! and at the same time to a second thread that unpacks it into a new snapshot, so
//! that the image runs from its own lower dirs and never from the container's
//! upperdir, and the two writes overlap. An empty diff adds no
//! layer, only a history entry marked `empty_layer`, as Docker's `NewChildImage` does.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use berth_oci::image::{ContainerConfig, History, ImageConfig, RootFs};
use berth_oci::{Digest, chain_ids};
use berth_store::layer::{self, ApplyOptions};
use berth_store::{ImageRecord, LayerRecord, SnapshotInfo};
use chrono::Utc;
use serde_json::Value;

use super::{ImageService, internal, repo_tag_reference};
use crate::DaemonError;

/// What the new image is made of, besides the layer.
#[derive(Debug, Clone, Default)]
pub struct LayerCommit {
    /// The image the layer goes on top of; `None` for a base image.
    pub parent: Option<Digest>,
    /// The run config of the new image.
    pub config: ContainerConfig,
    /// The history entry's `created_by` (Docker: the container's command).
    pub created_by: String,
    /// The history entry's comment (`commit -m`).
    pub comment: String,
    /// The image's and history entry's author (`commit -a`).
    pub author: String,
    /// The container the layer came from, recorded as the config's `container`.
    pub container: Option<String>,
    /// `REPOSITORY` (may carry a tag) to point at the new image; empty for none.
    pub repo: String,
    /// `TAG`.
    pub tag: String,
}

impl ImageService {
    /// Checks a commit's target reference before any work is done.
    ///
    /// # Errors
    /// `InvalidArgument` in Docker's words.
    pub fn check_commit_reference(&self, repo: &str, tag: &str) -> Result<(), DaemonError> {
        if repo.is_empty() {
            if !tag.is_empty() {
                return Err(DaemonError::invalid("tag without a repository"));
            }
            return Ok(());
        }
        repo_tag_reference(repo, tag).map(|_| ())
    }

    /// Packs the overlay upper directory `upper` as a layer on top of `req.parent`
    /// and records the new image (tagged when `req.repo` is set). Blocking: call it
    /// from a blocking thread.
    ///
    /// # Errors
    /// `NotFound` when the parent image is gone, `InvalidArgument` for a bad
    /// reference, `Internal` for store failures.
    pub fn commit_layer(&self, upper: &Path, req: &LayerCommit) -> Result<Digest, DaemonError> {
        let target = if req.repo.is_empty() {
            None
        } else {
            Some(repo_tag_reference(&req.repo, &req.tag)?)
        };
        let parent = match &req.parent {
            Some(id) => Some(self.get(&id.to_string())?),
            None => None,
        };
        // Held shared from "the parent's snapshots exist" until the new record that
        // references them is stored, so garbage collection cannot take them between.
        let _gc = self.gc.read().expect("gc lock");
        let blob = self
            .content
            .writer()
            .map_err(internal("cannot stage layer"))?;
        let active = self
            .snapshots
            .prepare()
            .map_err(internal("cannot prepare snapshot"))?;
        // One pass over the upperdir: the tarball goes to the blob and, through a
        // channel, to a second thread that unpacks it into the new snapshot, so
        // writing the blob and the snapshot overlap.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let fs_dir = active.fs();
        let (packed, applied) = std::thread::scope(|scope| {
            let applier = scope.spawn(move || {
                let mut reader = ChunkReader {
                    rx,
                    chunk: Vec::new(),
                    pos: 0,
                };
                let result = layer::apply_layer(&fs_dir, &mut reader, &ApplyOptions::default());
                // Drain so the writer never blocks on a reader that stopped early.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                result
            });
            // Tar headers are 512-byte writes: buffer them into large ones.
            let tee = Tee {
                blob: BufWriter::with_capacity(1 << 20, blob),
                tx: Some(tx),
                buf: Vec::with_capacity(CHUNK),
            };
            let packed = layer::write_diff(upper, tee).and_then(|(mut tee, stats)| {
                tee.close().map_err(|source| layer::DiffError::Walk {
                    path: upper.to_path_buf(),
                    source,
                })?;
                Ok((tee.blob, stats))
            });
            let applied = applier.join().expect("layer apply thread does not panic");
            (packed, applied)
        });
        let (blob, stats) = packed
            .map_err(|e| DaemonError::internal(format!("cannot pack container changes: {e}")))?;
        let applied = applied.map_err(internal("cannot unpack committed layer"))?;
        let blob = blob
            .into_inner()
            .map_err(|e| DaemonError::internal(format!("cannot stage layer: {}", e.error())))?;
        let pending = blob.finish().map_err(internal("cannot stage layer"))?;
        let diff_id = stats.digest;
        let empty_layer = stats.entries == 0;

        let mut diff_ids: Vec<Digest> = parent
            .as_ref()
            .map(|p| p.record.layers.iter().map(|l| l.diff_id).collect())
            .unwrap_or_default();
        let mut new_layer = None;
        if !empty_layer {
            let parent_chain = chain_ids(&diff_ids).last().copied();
            diff_ids.push(diff_id);
            let chain_id = *chain_ids(&diff_ids).last().expect("one layer at least");
            let info = SnapshotInfo {
                chain_id,
                diff_id,
                parent: parent_chain,
                size: applied.size,
                diff_size: stats.size,
            };
            // An existing snapshot of the same chain wins; ours is then discarded.
            self.snapshots
                .commit(active, &info)
                .map_err(internal("cannot commit snapshot"))?;
            let blob_digest = pending
                .commit(Some(diff_id))
                .map_err(internal("cannot commit layer"))?;
            new_layer = Some(LayerRecord {
                blob: blob_digest,
                media_type: berth_oci::image::media_type::OCI_LAYER.into(),
                blob_size: stats.size,
                diff_id,
                diff_size: stats.size,
            });
        }
        let id = self.record_commit(parent.as_deref(), new_layer, req, target)?;
        tracing::info!(image = %id, layer = %diff_id, empty_layer, "image committed");
        Ok(id)
    }

    /// Records a new image that changes only the config of `req.parent` (no layer, a
    /// history entry marked `empty_layer`): what a Dockerfile's ENV, LABEL, CMD and
    /// the like produce. Nothing is packed or unpacked.
    ///
    /// # Errors
    /// As [`ImageService::commit_layer`].
    pub fn commit_config(&self, req: &LayerCommit) -> Result<Digest, DaemonError> {
        let target = if req.repo.is_empty() {
            None
        } else {
            Some(repo_tag_reference(&req.repo, &req.tag)?)
        };
        let parent = match &req.parent {
            Some(id) => Some(self.get(&id.to_string())?),
            None => None,
        };
        let _gc = self.gc.read().expect("gc lock");
        self.record_commit(parent.as_deref(), None, req, target)
    }

    /// Writes the config and record of a committed image: the parent's layers plus
    /// `layer` (already committed), the parent's history plus one entry.
    fn record_commit(
        &self,
        parent: Option<&super::Image>,
        layer: Option<LayerRecord>,
        req: &LayerCommit,
        target: Option<berth_oci::reference::Reference>,
    ) -> Result<Digest, DaemonError> {
        let empty_layer = layer.is_none();
        let mut diff_ids: Vec<Digest> = parent
            .map(|p| p.record.layers.iter().map(|l| l.diff_id).collect())
            .unwrap_or_default();
        let mut layers: Vec<LayerRecord> =
            parent.map(|p| p.record.layers.clone()).unwrap_or_default();
        if let Some(l) = layer {
            diff_ids.push(l.diff_id);
            layers.push(l);
        }

        let now = Utc::now();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut history = parent.map(|p| p.config.history.clone()).unwrap_or_default();
        history.push(History {
            created: Some(now),
            created_by: non_empty(&req.created_by),
            author: non_empty(&req.author),
            comment: non_empty(&req.comment),
            empty_layer,
        });
        let mut config = match &parent {
            Some(p) => ImageConfig {
                extra: p.config.extra.clone(),
                variant: p.config.variant.clone(),
                ..Default::default()
            },
            None => ImageConfig::default(),
        };
        config.created = Some(now);
        config.author = non_empty(&req.author);
        config.architecture = parent
            .map(|p| p.config.architecture.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| super::host_arch().to_string());
        config.os = "linux".into();
        config.config = Some(req.config.clone());
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids,
        };
        config.history = history;
        // Docker records the source container; a stale one from the parent must go.
        config.extra.remove("container");
        config.extra.remove("container_config");
        config.extra.remove("comment");
        if !req.comment.is_empty() {
            config
                .extra
                .insert("comment".into(), Value::String(req.comment.clone()));
        }
        if let Some(c) = &req.container {
            config
                .extra
                .insert("container".into(), Value::String(c.clone()));
        }
        let config_json = serde_json::to_vec(&config).expect("config serializes");
        let id = self
            .content
            .put(&config_json)
            .map_err(internal("cannot store config"))?;
        let record = ImageRecord {
            id,
            layers,
            manifest: None,
            parent: req.parent,
            stored_at: now,
            last_tag_time: None,
        };
        let mut state = self.lock();
        self.insert_image(&mut state, record)?;
        if let Some(target) = target {
            self.set_reference(&mut state, target, id, true)?;
        }
        Ok(id)
    }
}

/// Size of the chunks handed to the unpacking thread.
const CHUNK: usize = 1 << 20;

/// Writes the layer tarball to the blob and, in chunks, to the unpacking thread.
struct Tee<W> {
    blob: W,
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl<W: Write> Tee<W> {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx
                .send(chunk)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "layer unpacking stopped")),
            None => Ok(()),
        }
    }

    /// Sends what is buffered and ends the stream.
    fn close(&mut self) -> io::Result<()> {
        self.send()?;
        self.tx = None;
        self.blob.flush()
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.blob.write_all(data)?;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush()
    }
}

/// Reads the chunks a [`Tee`] sends; EOF when it is closed or dropped.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
