//! The registry's filesystem storage: content-addressed blobs, per-repository links,
//! tags, and upload sessions.
//!
//! ```text
//! <root>/
//! ├── blobs/sha256/<hex>                         committed content: layers, configs, manifests
//! ├── uploads/<upload id>                        bytes of an upload in progress
//! └── repositories/<name…>/
//!     ├── _layers/<hex>                          empty: the blob is part of this repository
//!     └── _manifests/
//!         ├── revisions/<hex>                    the manifest's media type
//!         └── tags/<tag>                         "sha256:<hex>" of the tagged manifest
//! ```
//!
//! Why links: as in Docker's registry, a blob is visible in a repository only once it was
//! pushed or mounted there, so knowing a digest does not give access to another
//! repository's content, and cross-repository mount has something to check. Repository
//! names cannot contain a component starting with `_` ([`RepoName`]), so the `_layers`
//! and `_manifests` directories never collide with a nested repository.
//!
//! Durability: a blob is streamed into `uploads/`, digested as it arrives, fsynced,
//! renamed into `blobs/` and the directory fsynced; links and tags are written to a temp
//! file and renamed the same way. A crash leaves either the old state or the new one.
//! Upload sessions (size and running digest) live in memory: an upload interrupted by a
//! restart answers `BLOB_UPLOAD_UNKNOWN` and the client starts over, which both Docker
//! and skopeo do. One left untouched for an hour is purged when another upload starts.
//!
//! Concurrency: each upload has its own file and lock; commits are renames of whole
//! files, so two clients pushing the same blob at once both succeed with the same bytes.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::{Digest, Digester};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::manifest::{self, ManifestError};
use crate::name::{ManifestRef, RepoName, UploadId};

/// Write buffer for upload streams: request bodies arrive in small frames and each write
/// to a tokio file is a trip to the blocking pool.
const WRITE_BUFFER: usize = 1 << 20;

/// By default, an upload nobody touched for this long is abandoned: its session (which holds an open
/// file) and its bytes go at the next upload start. Docker's registry purges after a
/// week, but it keeps no file open per upload.
const UPLOAD_IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

/// Largest manifest accepted, the size the distribution spec asks registries to allow.
pub const MANIFEST_SIZE_MAX: usize = 4 << 20;

/// Errors of storage operations. Each names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The blob is not in the repository.
    #[error("blob {digest} unknown to repository {repo}")]
    BlobUnknown {
        /// The repository.
        repo: RepoName,
        /// The blob.
        digest: Digest,
    },
    /// No such upload session (never started, finished, cancelled, or lost in a restart).
    #[error("blob upload {0} unknown")]
    UploadUnknown(UploadId),
    /// A chunk does not start where the upload ends.
    #[error("upload {id} is {size} bytes long; a chunk starting at {start} does not follow it")]
    RangeInvalid {
        /// The upload.
        id: UploadId,
        /// Its current size.
        size: u64,
        /// Where the chunk claimed to start.
        start: u64,
    },
    /// A chunk's length differs from its `Content-Range`.
    #[error("upload {id}: chunk carried {actual} bytes, its range said {expected}")]
    ChunkLength {
        /// The upload.
        id: UploadId,
        /// Length from the range.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// The uploaded bytes do not hash to the digest the client named.
    #[error("upload {id} has digest {actual}, the client said {expected}")]
    DigestMismatch {
        /// The upload.
        id: UploadId,
        /// What the client said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The request body broke off.
    #[error("reading the request body of upload {id}")]
    Body {
        /// The upload.
        id: UploadId,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The manifest is not in the repository.
    #[error("manifest {reference} unknown to repository {repo}")]
    ManifestUnknown {
        /// The repository.
        repo: RepoName,
        /// The tag or digest.
        reference: ManifestRef,
    },
    /// The manifest body is refused.
    #[error("invalid manifest for {repo}")]
    ManifestInvalid {
        /// The repository.
        repo: RepoName,
        /// Why.
        source: ManifestError,
    },
    /// A manifest pushed by digest hashes to something else.
    #[error("manifest pushed as {expected} has digest {actual}")]
    ManifestDigestMismatch {
        /// The digest in the URL.
        expected: Digest,
        /// The body's digest.
        actual: Digest,
    },
    /// A manifest refers to a blob or manifest the repository does not have.
    #[error("manifest for {repo} refers to {digest}, which the repository does not have")]
    ManifestBlobUnknown {
        /// The repository.
        repo: RepoName,
        /// The missing content.
        digest: Digest,
    },
    /// The repository has nothing in it.
    #[error("repository {0} unknown")]
    NameUnknown(RepoName),
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type, for `Content-Type`.
    pub media_type: String,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// An upload in progress.
struct Session {
    repo: RepoName,
    path: PathBuf,
    size: u64,
    digester: Digester,
    file: tokio::fs::File,
    /// When a request last used it.
    touched: std::time::Instant,
}

type SessionRef = Arc<tokio::sync::Mutex<Session>>;

/// The registry's storage under one root directory (layout in the module docs).
pub struct Storage {
    root: PathBuf,
    sessions: Mutex<HashMap<UploadId, SessionRef>>,
    upload_idle_max: std::time::Duration,
}

impl Storage {
    /// Opens (creating as needed) storage under `root`.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directories cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Storage, StorageError> {
        let root = root.into();
        for dir in ["blobs/sha256", "uploads", "repositories"] {
            let p = root.join(dir);
            std::fs::create_dir_all(&p).map_err(io("create", &p))?;
        }
        // Uploads of an earlier run have no session any more; their bytes are garbage.
        let uploads = root.join("uploads");
        if let Ok(entries) = std::fs::read_dir(&uploads) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Storage {
            root,
            sessions: Mutex::new(HashMap::new()),
            upload_idle_max: UPLOAD_IDLE_MAX,
        })
    }

    /// Sets how long an untouched upload lives (default one hour).
    pub fn set_upload_idle_max(&mut self, idle: std::time::Duration) {
        self.upload_idle_max = idle;
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        self.root.join("repositories").join(repo.as_str())
    }

    fn layer_link(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_layers").join(digest.hex())
    }

    fn revision_link(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_manifests/revisions")
            .join(digest.hex())
    }

    fn tag_path(&self, repo: &RepoName, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("_manifests/tags").join(tag)
    }

    /// The size of a blob of `repo`.
    ///
    /// # Errors
    /// [`StorageError::BlobUnknown`] when the repository does not have it.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64, StorageError> {
        let unknown = || StorageError::BlobUnknown {
            repo: repo.clone(),
            digest: *digest,
        };
        if !exists(&self.layer_link(repo, digest)).await {
            return Err(unknown());
        }
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(io("stat", &self.blob_path(digest))(e)),
        }
    }

    /// Opens a blob of `repo` for reading, with its size.
    ///
    /// # Errors
    /// [`StorageError::BlobUnknown`], or [`StorageError::Io`] when it cannot be opened.
    pub async fn open_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(tokio::fs::File, u64), StorageError> {
        let size = self.blob_size(repo, digest).await?;
        let path = self.blob_path(digest);
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StorageError::BlobUnknown {
                    repo: repo.clone(),
                    digest: *digest,
                }
            } else {
                io("open", &path)(e)
            }
        })?;
        Ok((file, size))
    }

    /// Removes a blob from `repo` (its bytes stay until no repository links them and a
    /// garbage collection runs, as in Docker's registry).
    ///
    /// # Errors
    /// [`StorageError::BlobUnknown`] when the repository does not have it.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), StorageError> {
        let link = self.layer_link(repo, digest);
        match tokio::fs::remove_file(&link).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::BlobUnknown {
                repo: repo.clone(),
                digest: *digest,
            }),
            Err(e) => Err(io("remove", &link)(e)),
        }
    }

    /// Cross-repository mount: links `digest` into `repo` when `from` has it. Returns
    /// whether it did; `false` means the client must upload.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the link cannot be written.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        if self.blob_size(from, digest).await.is_err() {
            return Ok(false);
        }
        write_durably(self.layer_link(repo, digest), Vec::new()).await?;
        Ok(true)
    }

    /// Starts an upload into `repo`.
    ///
    /// # Errors
    /// [`StorageError::Io`] when its file cannot be created.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadId, StorageError> {
        let id = UploadId::random();
        let path = self.root.join("uploads").join(id.as_str());
        let file = tokio::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .await
            .map_err(io("create", &path))?;
        let session = Session {
            repo: repo.clone(),
            path,
            size: 0,
            digester: Digester::new(),
            file,
            touched: std::time::Instant::now(),
        };
        let mut sessions = self
            .sessions
            .lock()
            .expect("session map lock is never poisoned: no code panics holding it");
        // Sessions in use are locked and skipped; only idle ones can be abandoned.
        sessions.retain(|id, s| match s.try_lock() {
            Ok(s) if s.touched.elapsed() > self.upload_idle_max => {
                tracing::info!(upload = %id, repository = %s.repo, "abandoned upload purged");
                let _ = std::fs::remove_file(&s.path);
                false
            }
            _ => true,
        });
        sessions.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(id)
    }

    fn session(&self, repo: &RepoName, id: &UploadId) -> Result<SessionRef, StorageError> {
        let sessions = self
            .sessions
            .lock()
            .expect("session map lock is never poisoned: no code panics holding it");
        sessions
            .get(id)
            .cloned()
            .ok_or_else(|| StorageError::UploadUnknown(id.clone()))
            .and_then(|s| {
                // A session belongs to the repository it was started in; the id alone is
                // not enough to write into another one.
                if s.try_lock().map(|s| s.repo == *repo).unwrap_or(true) {
                    Ok(s)
                } else {
                    Err(StorageError::UploadUnknown(id.clone()))
                }
            })
    }

    /// The bytes an upload holds so far.
    ///
    /// # Errors
    /// [`StorageError::UploadUnknown`].
    pub async fn upload_size(&self, repo: &RepoName, id: &UploadId) -> Result<u64, StorageError> {
        let s = self.session(repo, id)?;
        let s = s.lock().await;
        check_repo(&s, repo, id)?;
        Ok(s.size)
    }

    /// Appends a chunk to an upload, digesting it as it streams, and returns the new size.
    /// `range` is the chunk's `(start, end inclusive)` when the client said; the chunk must
    /// start where the upload ends and carry exactly that many bytes. A chunk that fails
    /// (bad length, broken body, disk error) is cut off again, so the client can resend it.
    ///
    /// # Errors
    /// [`StorageError::UploadUnknown`], [`StorageError::RangeInvalid`],
    /// [`StorageError::ChunkLength`], [`StorageError::Body`], [`StorageError::Io`].
    pub async fn append_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<(u64, u64)>,
        body: S,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let s = self.session(repo, id)?;
        let mut guard = s.lock().await;
        let s = &mut *guard;
        check_repo(s, repo, id)?;
        s.touched = std::time::Instant::now();
        if let Some((start, _)) = range
            && start != s.size
        {
            return Err(StorageError::RangeInvalid {
                id: id.clone(),
                size: s.size,
                start,
            });
        }
        let before = (s.size, s.digester.clone());
        let result = append(s, id, range, body).await;
        if result.is_err() {
            // Cut the partial chunk off so size, digest and file agree again.
            (s.size, s.digester) = before;
            let size = s.size;
            let _ = s.file.set_len(size).await;
            let _ = s.file.seek(SeekFrom::Start(size)).await;
        }
        result.map(|()| s.size)
    }

    /// Completes an upload: checks its digest, commits the blob durably and links it into
    /// the repository. The session ends either way except on [`StorageError::Io`].
    ///
    /// # Errors
    /// [`StorageError::UploadUnknown`], [`StorageError::DigestMismatch`],
    /// [`StorageError::Io`].
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        expected: &Digest,
    ) -> Result<(), StorageError> {
        let sref = self.session(repo, id)?;
        let mut s = sref.lock().await;
        check_repo(&s, repo, id)?;
        let actual = s.digester.clone().finish();
        if actual != *expected {
            drop(s);
            self.end_session(id).await;
            return Err(StorageError::DigestMismatch {
                id: id.clone(),
                expected: *expected,
                actual,
            });
        }
        s.file.flush().await.map_err(io("write", &s.path))?;
        s.file.sync_all().await.map_err(io("fsync", &s.path))?;
        let target = self.blob_path(expected);
        tokio::fs::rename(&s.path, &target)
            .await
            .map_err(io("rename", &target))?;
        sync_dir(target.parent().expect("blob paths have a parent")).await?;
        drop(s);
        self.sessions
            .lock()
            .expect("session map lock is never poisoned: no code panics holding it")
            .remove(id);
        write_durably(self.layer_link(repo, expected), Vec::new()).await
    }

    /// Cancels an upload and removes its bytes.
    ///
    /// # Errors
    /// [`StorageError::UploadUnknown`].
    pub async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<(), StorageError> {
        let s = self.session(repo, id)?;
        check_repo(&*s.lock().await, repo, id)?;
        self.end_session(id).await;
        Ok(())
    }

    async fn end_session(&self, id: &UploadId) {
        let removed = self
            .sessions
            .lock()
            .expect("session map lock is never poisoned: no code panics holding it")
            .remove(id);
        if let Some(s) = removed {
            let path = s.lock().await.path.clone();
            let _ = tokio::fs::remove_file(path).await;
        }
    }

    /// Stores a manifest under `reference` (a tag, or the digest it must hash to) after
    /// checking that everything it refers to is in the repository. Returns its digest.
    ///
    /// # Errors
    /// [`StorageError::ManifestInvalid`], [`StorageError::ManifestDigestMismatch`],
    /// [`StorageError::ManifestBlobUnknown`], [`StorageError::Io`].
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &ManifestRef,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Digest, StorageError> {
        let (media_type, refs) = manifest::inspect(content_type, &body).map_err(|source| {
            StorageError::ManifestInvalid {
                repo: repo.clone(),
                source,
            }
        })?;
        let digest = Digest::of(&body);
        if let ManifestRef::Digest(expected) = reference
            && *expected != digest
        {
            return Err(StorageError::ManifestDigestMismatch {
                expected: *expected,
                actual: digest,
            });
        }
        for blob in &refs.blobs {
            if self.blob_size(repo, blob).await.is_err() {
                return Err(StorageError::ManifestBlobUnknown {
                    repo: repo.clone(),
                    digest: *blob,
                });
            }
        }
        for child in &refs.manifests {
            if !exists(&self.revision_link(repo, child)).await {
                return Err(StorageError::ManifestBlobUnknown {
                    repo: repo.clone(),
                    digest: *child,
                });
            }
        }
        let path = self.blob_path(&digest);
        if !exists(&path).await {
            write_durably(path, body).await?;
        }
        write_durably(self.revision_link(repo, &digest), media_type.into_bytes()).await?;
        if let ManifestRef::Tag(tag) = reference {
            write_durably(self.tag_path(repo, tag), digest.to_string().into_bytes()).await?;
        }
        Ok(digest)
    }

    /// Resolves a tag to the digest of its manifest.
    async fn resolve(
        &self,
        repo: &RepoName,
        reference: &ManifestRef,
    ) -> Result<Digest, StorageError> {
        let unknown = || StorageError::ManifestUnknown {
            repo: repo.clone(),
            reference: reference.clone(),
        };
        match reference {
            ManifestRef::Digest(d) => Ok(*d),
            ManifestRef::Tag(tag) => {
                let text = tokio::fs::read_to_string(self.tag_path(repo, tag))
                    .await
                    .map_err(|_| unknown())?;
                text.trim().parse().map_err(|_| unknown())
            }
        }
    }

    /// Reads a manifest by tag or digest.
    ///
    /// # Errors
    /// [`StorageError::ManifestUnknown`], [`StorageError::Io`].
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &ManifestRef,
    ) -> Result<StoredManifest, StorageError> {
        let unknown = || StorageError::ManifestUnknown {
            repo: repo.clone(),
            reference: reference.clone(),
        };
        let digest = self.resolve(repo, reference).await?;
        let media_type = tokio::fs::read_to_string(self.revision_link(repo, &digest))
            .await
            .map_err(|_| unknown())?;
        let path = self.blob_path(&digest);
        let body = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                unknown()
            } else {
                io("read", &path)(e)
            }
        })?;
        Ok(StoredManifest {
            digest,
            media_type,
            body,
        })
    }

    /// Deletes a manifest: by digest, the manifest and every tag pointing at it; by tag,
    /// only the tag (OCI distribution 1.1).
    ///
    /// # Errors
    /// [`StorageError::ManifestUnknown`], [`StorageError::Io`].
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &ManifestRef,
    ) -> Result<(), StorageError> {
        let unknown = || StorageError::ManifestUnknown {
            repo: repo.clone(),
            reference: reference.clone(),
        };
        match reference {
            ManifestRef::Tag(tag) => {
                let path = self.tag_path(repo, tag);
                tokio::fs::remove_file(&path).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        unknown()
                    } else {
                        io("remove", &path)(e)
                    }
                })
            }
            ManifestRef::Digest(digest) => {
                let link = self.revision_link(repo, digest);
                if !exists(&link).await {
                    return Err(unknown());
                }
                for tag in self.tags(repo).await.unwrap_or_default() {
                    let t = ManifestRef::Tag(tag.clone());
                    if self.resolve(repo, &t).await.ok() == Some(*digest) {
                        let path = self.tag_path(repo, &tag);
                        tokio::fs::remove_file(&path)
                            .await
                            .map_err(io("remove", &path))?;
                    }
                }
                tokio::fs::remove_file(&link)
                    .await
                    .map_err(io("remove", &link))
            }
        }
    }

    /// The tags of `repo`, sorted.
    ///
    /// # Errors
    /// [`StorageError::NameUnknown`] when the repository does not exist.
    pub async fn tags(&self, repo: &RepoName) -> Result<Vec<String>, StorageError> {
        if !exists(&self.repo_dir(repo)).await {
            return Err(StorageError::NameUnknown(repo.clone()));
        }
        let dir = self.repo_dir(repo).join("_manifests/tags");
        let mut tags = Vec::new();
        match tokio::fs::read_dir(&dir).await {
            Ok(mut entries) => {
                while let Some(e) = entries.next_entry().await.map_err(io("list", &dir))? {
                    if let Some(name) = e.file_name().to_str()
                        && berth_oci::reference::is_valid_tag(name)
                    {
                        tags.push(name.to_string());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("list", &dir)(e)),
        }
        tags.sort();
        Ok(tags)
    }

    /// Every repository, sorted by name.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the tree cannot be walked.
    pub async fn repositories(&self) -> Result<Vec<RepoName>, StorageError> {
        let root = self.root.join("repositories");
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk_repositories(&root, &root, &mut out)?;
            out.sort();
            Ok(out)
        })
        .await
        .expect("the repository walk does not panic")
    }
}

/// What a garbage collection removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: usize,
    /// Their bytes.
    pub bytes_freed: u64,
}

impl Storage {
    /// Offline garbage collection, as Docker's `registry garbage-collect`: marks every
    /// manifest any repository has and the blobs those manifests refer to, deletes every
    /// other blob, and drops repository links to deleted blobs. A blob uploaded for a
    /// manifest not yet pushed counts as garbage, so run this only while no client
    /// pushes (the binary's `--garbage-collect` runs it without serving).
    ///
    /// # Errors
    /// [`StorageError::Io`] when the tree cannot be walked or a file removed.
    pub async fn garbage_collect(&self) -> Result<GcReport, StorageError> {
        let mut marked = std::collections::HashSet::new();
        let repos = self.repositories().await?;
        for repo in &repos {
            let dir = self.repo_dir(repo).join("_manifests/revisions");
            for digest in list_digests(&dir).await? {
                marked.insert(digest);
                let Ok(body) = tokio::fs::read(self.blob_path(&digest)).await else {
                    continue;
                };
                let media = tokio::fs::read_to_string(self.revision_link(repo, &digest))
                    .await
                    .ok();
                if let Ok((_, refs)) = manifest::inspect(media.as_deref(), &body) {
                    marked.extend(refs.blobs);
                }
            }
        }
        let mut report = GcReport::default();
        let blobs = self.root.join("blobs/sha256");
        for digest in list_digests(&blobs).await? {
            if marked.contains(&digest) {
                continue;
            }
            let path = self.blob_path(&digest);
            let size = tokio::fs::metadata(&path)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            tokio::fs::remove_file(&path)
                .await
                .map_err(io("remove", &path))?;
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        for repo in &repos {
            let dir = self.repo_dir(repo).join("_layers");
            for digest in list_digests(&dir).await? {
                if !marked.contains(&digest) {
                    let link = self.layer_link(repo, &digest);
                    tokio::fs::remove_file(&link)
                        .await
                        .map_err(io("remove", &link))?;
                }
            }
        }
        Ok(report)
    }
}

/// The digests named by the files of `dir` (`<hex>`); none when it does not exist.
async fn list_digests(dir: &Path) -> Result<Vec<Digest>, StorageError> {
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("list", dir)(e)),
    };
    while let Some(e) = entries.next_entry().await.map_err(io("list", dir))? {
        if let Some(d) = e
            .file_name()
            .to_str()
            .and_then(|n| Digest::from_hex(n).ok())
        {
            out.push(d);
        }
    }
    Ok(out)
}

fn check_repo(s: &Session, repo: &RepoName, id: &UploadId) -> Result<(), StorageError> {
    if s.repo == *repo {
        Ok(())
    } else {
        Err(StorageError::UploadUnknown(id.clone()))
    }
}

async fn append<S, E>(
    s: &mut Session,
    id: &UploadId,
    range: Option<(u64, u64)>,
    body: S,
) -> Result<(), StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut written = 0u64;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, &mut s.file);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::Body {
            id: id.clone(),
            source: e.into(),
        })?;
        s.digester.update(&chunk);
        out.write_all(&chunk).await.map_err(io("write", &s.path))?;
        written += chunk.len() as u64;
        tracing::trace!(upload = %id, bytes = written, "chunk");
    }
    out.flush().await.map_err(io("write", &s.path))?;
    if let Some((start, end)) = range {
        let expected = end + 1 - start;
        if written != expected {
            return Err(StorageError::ChunkLength {
                id: id.clone(),
                expected,
                actual: written,
            });
        }
    }
    s.size += written;
    Ok(())
}

fn walk_repositories(root: &Path, dir: &Path, out: &mut Vec<RepoName>) -> Result<(), StorageError> {
    let entries = std::fs::read_dir(dir).map_err(io("list", dir))?;
    let mut is_repo = false;
    for e in entries {
        let e = e.map_err(io("list", dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == "_manifests" || name == "_layers" {
            is_repo = true;
        } else if !name.starts_with('_') && e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_repositories(root, &e.path(), out)?;
        }
    }
    if is_repo
        && let Ok(rel) = dir.strip_prefix(root)
        && let Some(rel) = rel.to_str()
        && let Ok(name) = RepoName::parse(rel)
    {
        out.push(name);
    }
    Ok(())
}

async fn exists(path: &Path) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&d)
            .and_then(|f| f.sync_all())
            .map_err(io("fsync", &d))
    })
    .await
    .expect("fsync of a directory does not panic")
}

/// Writes `data` to `path` through a temp file, fsync and rename, then fsyncs the
/// directory, creating parent directories as needed.
async fn write_durably(path: PathBuf, data: Vec<u8>) -> Result<(), StorageError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let dir = path.parent().expect("storage paths have a parent");
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(&data).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("fsync", &tmp))?;
            std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("fsync", dir))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    })
    .await
    .expect("a durable write does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::image::media_type;

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        let v: Vec<_> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        futures_util::stream::iter(v)
    }

    async fn push_blob(s: &Storage, r: &RepoName, data: &[u8]) -> Digest {
        let id = s.start_upload(r).await.unwrap();
        s.append_upload(r, &id, None, chunks(&[data]))
            .await
            .unwrap();
        let d = Digest::of(data);
        s.finish_upload(r, &id, &d).await.unwrap();
        d
    }

    #[tokio::test]
    async fn chunked_upload_commits_a_blob_visible_only_in_its_repository() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let (a, b) = (repo("a"), repo("b"));
        let id = s.start_upload(&a).await.unwrap();
        assert_eq!(
            s.append_upload(&a, &id, Some((0, 4)), chunks(&[b"hel", b"lo"]))
                .await
                .unwrap(),
            5
        );
        assert_eq!(
            s.append_upload(&a, &id, Some((5, 10)), chunks(&[b" world"]))
                .await
                .unwrap(),
            11
        );
        let d = Digest::of(b"hello world");
        s.finish_upload(&a, &id, &d).await.unwrap();
        assert_eq!(s.blob_size(&a, &d).await.unwrap(), 11);
        assert!(matches!(
            s.blob_size(&b, &d).await,
            Err(StorageError::BlobUnknown { .. })
        ));
        assert!(s.mount_blob(&b, &a, &d).await.unwrap());
        assert_eq!(s.blob_size(&b, &d).await.unwrap(), 11);
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn chunk_out_of_order_or_short_is_refused_and_leaves_the_upload_resumable() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let a = repo("a");
        let id = s.start_upload(&a).await.unwrap();
        s.append_upload(&a, &id, None, chunks(&[b"abc"]))
            .await
            .unwrap();
        assert!(matches!(
            s.append_upload(&a, &id, Some((0, 2)), chunks(&[b"abc"]))
                .await,
            Err(StorageError::RangeInvalid { size: 3, .. })
        ));
        assert!(matches!(
            s.append_upload(&a, &id, Some((3, 9)), chunks(&[b"de"]))
                .await,
            Err(StorageError::ChunkLength { .. })
        ));
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"xx")),
            Err(std::io::Error::other("connection reset")),
        ]);
        assert!(matches!(
            s.append_upload(&a, &id, None, broken).await,
            Err(StorageError::Body { .. })
        ));
        assert_eq!(s.upload_size(&a, &id).await.unwrap(), 3);
        s.append_upload(&a, &id, Some((3, 4)), chunks(&[b"de"]))
            .await
            .unwrap();
        s.finish_upload(&a, &id, &Digest::of(b"abcde"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn digest_mismatch_is_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let a = repo("a");
        let id = s.start_upload(&a).await.unwrap();
        s.append_upload(&a, &id, None, chunks(&[b"abc"]))
            .await
            .unwrap();
        let wrong = Digest::of(b"abd");
        assert!(matches!(
            s.finish_upload(&a, &id, &wrong).await,
            Err(StorageError::DigestMismatch { .. })
        ));
        assert!(matches!(
            s.upload_size(&a, &id).await,
            Err(StorageError::UploadUnknown(_))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn abandoned_uploads_are_purged_when_another_starts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Storage::open(dir.path()).unwrap();
        s.set_upload_idle_max(std::time::Duration::from_millis(20));
        let a = repo("a");
        let old = s.start_upload(&a).await.unwrap();
        s.append_upload(&a, &old, None, chunks(&[b"x"]))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let new = s.start_upload(&a).await.unwrap();
        assert!(matches!(
            s.upload_size(&a, &old).await,
            Err(StorageError::UploadUnknown(_))
        ));
        assert_eq!(s.upload_size(&a, &new).await.unwrap(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn an_upload_cannot_be_continued_through_another_repository() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let id = s.start_upload(&repo("a")).await.unwrap();
        assert!(matches!(
            s.append_upload(&repo("b"), &id, None, chunks(&[b"x"]))
                .await,
            Err(StorageError::UploadUnknown(_))
        ));
        s.cancel_upload(&repo("a"), &id).await.unwrap();
    }

    fn image_manifest(config: &Digest, layer: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::DOCKER_MANIFEST,
            "config": {"mediaType": media_type::DOCKER_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": media_type::DOCKER_LAYER_GZIP, "digest": layer, "size": 5}]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn manifests_need_their_blobs_and_resolve_by_tag_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let a = repo("ns/app");
        let config = push_blob(&s, &a, b"{}").await;
        let missing = Digest::of(b"layer");
        let body = image_manifest(&config, &missing);
        let latest = ManifestRef::Tag("latest".into());
        assert!(matches!(
            s.put_manifest(&a, &latest, None, body.clone()).await,
            Err(StorageError::ManifestBlobUnknown { digest, .. }) if digest == missing
        ));
        push_blob(&s, &a, b"layer").await;
        let d = s
            .put_manifest(&a, &latest, None, body.clone())
            .await
            .unwrap();
        assert_eq!(d, Digest::of(&body));
        let got = s.get_manifest(&a, &latest).await.unwrap();
        assert_eq!(got.media_type, media_type::DOCKER_MANIFEST);
        assert_eq!(got.body, body);
        assert_eq!(got.digest, d);
        assert!(s.get_manifest(&a, &ManifestRef::Digest(d)).await.is_ok());
        assert!(matches!(
            s.put_manifest(&a, &ManifestRef::Digest(config), None, body.clone())
                .await,
            Err(StorageError::ManifestDigestMismatch { .. })
        ));
        s.put_manifest(&a, &ManifestRef::Tag("v1".into()), None, body)
            .await
            .unwrap();
        assert_eq!(s.tags(&a).await.unwrap(), vec!["latest", "v1"]);
        assert_eq!(s.repositories().await.unwrap(), vec![a.clone()]);

        // An index needs its children in the repository.
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": [{"mediaType": media_type::DOCKER_MANIFEST, "digest": d, "size": 1}]
        }))
        .unwrap();
        let other = repo("other");
        assert!(matches!(
            s.put_manifest(&other, &latest, None, index.clone()).await,
            Err(StorageError::ManifestBlobUnknown { .. })
        ));
        s.put_manifest(&a, &ManifestRef::Tag("multi".into()), None, index)
            .await
            .unwrap();

        // Deleting by digest takes the tags pointing at it along.
        s.delete_manifest(&a, &ManifestRef::Digest(d))
            .await
            .unwrap();
        assert_eq!(s.tags(&a).await.unwrap(), vec!["multi"]);
        assert!(matches!(
            s.get_manifest(&a, &latest).await,
            Err(StorageError::ManifestUnknown { .. })
        ));
        s.delete_manifest(&a, &ManifestRef::Tag("multi".into()))
            .await
            .unwrap();
        assert!(s.tags(&a).await.unwrap().is_empty());
        assert!(matches!(
            s.tags(&repo("nope")).await,
            Err(StorageError::NameUnknown(_))
        ));
    }

    #[tokio::test]
    async fn garbage_collection_keeps_what_manifests_refer_to_and_deletes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let a = repo("a");
        let config = push_blob(&s, &a, b"{}").await;
        let layer = push_blob(&s, &a, b"layer").await;
        let orphan = push_blob(&s, &a, b"orphan").await;
        let old_layer = push_blob(&s, &a, b"old layer").await;
        let latest = ManifestRef::Tag("latest".into());
        let old = s
            .put_manifest(&a, &latest, None, image_manifest(&config, &old_layer))
            .await
            .unwrap();
        let new = s
            .put_manifest(&a, &latest, None, image_manifest(&config, &layer))
            .await
            .unwrap();
        // The old manifest is deleted; its layer and the orphan are garbage.
        s.delete_manifest(&a, &ManifestRef::Digest(old))
            .await
            .unwrap();
        let report = s.garbage_collect().await.unwrap();
        assert_eq!(report.blobs_removed, 3, "{report:?}");
        assert_eq!(
            report.bytes_freed,
            6 + 9 + image_manifest(&config, &old_layer).len() as u64
        );
        for kept in [config, layer] {
            assert!(s.blob_size(&a, &kept).await.is_ok());
        }
        for gone in [orphan, old_layer] {
            assert!(s.blob_size(&a, &gone).await.is_err());
            assert!(!s.layer_link(&a, &gone).exists());
        }
        assert_eq!(s.get_manifest(&a, &latest).await.unwrap().digest, new);
        assert_eq!(s.garbage_collect().await.unwrap(), GcReport::default());
    }

    #[tokio::test]
    async fn concurrent_uploads_of_the_same_blob_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Storage::open(dir.path()).unwrap());
        let data = vec![7u8; 3 << 20];
        let d = Digest::of(&data);
        let mut tasks = Vec::new();
        for r in ["x", "y", "z", "x"] {
            let (s, data) = (s.clone(), data.clone());
            tasks.push(tokio::spawn(async move {
                let r = repo(r);
                let id = s.start_upload(&r).await.unwrap();
                let parts: Vec<_> = data.chunks(65536).collect();
                s.append_upload(&r, &id, None, chunks(&parts))
                    .await
                    .unwrap();
                s.finish_upload(&r, &id, &d).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for r in ["x", "y", "z"] {
            assert_eq!(s.blob_size(&repo(r), &d).await.unwrap(), 3 << 20);
        }
        assert_eq!(std::fs::read(s.blob_path(&d)).unwrap(), data);
    }
}
