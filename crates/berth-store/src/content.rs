//! The content store: blobs named by their sha256 digest.
//!
//! Lifecycle: [`ContentStore::writer`] opens an ingest (a temp file that digests what
//! is written), [`BlobWriter::finish`] syncs it and yields a [`PendingBlob`] whose
//! digest is known but which is not yet visible, and [`PendingBlob::commit`] renames it
//! under its digest. Splitting finish from commit lets a load stage every file of an
//! archive and commit only the blobs its manifests reference. A dropped writer or
//! pending blob deletes its temp file. Committed blobs are immutable.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_oci::{Digest, Digester};

use crate::durable::{self, WRITEBACK_WINDOW};
use crate::layout::Layout;

/// Why a blob could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The content does not have the digest it was announced with.
    #[error("blob {expected} arrived with digest {actual}")]
    DigestMismatch {
        /// What the caller expected.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Writing, syncing or renaming failed.
    #[error("cannot commit blob {digest}")]
    Io {
        /// The blob.
        digest: Digest,
        /// The cause.
        source: io::Error,
    },
}

/// Blobs by digest under `<root>/blobs/sha256`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    layout: Layout,
}

impl ContentStore {
    /// Opens the store, creating its directories and removing stale ingests.
    ///
    /// # Errors
    /// Creating or cleaning the directories.
    pub fn open(layout: Layout) -> io::Result<Self> {
        fs::create_dir_all(layout.blobs_dir())?;
        fs::create_dir_all(layout.ingest_dir())?;
        durable::remove_temporaries(&layout.ingest_dir(), "")?;
        Ok(ContentStore { layout })
    }

    /// Starts writing a new blob.
    ///
    /// # Errors
    /// Creating the temp file.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let path = self
            .layout
            .ingest_dir()
            .join(format!("{:016x}", rand::random::<u64>()));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(BlobWriter {
            file: Some(file),
            path,
            digester: Digester::new(),
            size: 0,
            written_back: 0,
            blobs_dir: self.layout.blobs_dir(),
        })
    }

    /// Stores `data` and commits it; returns its digest.
    ///
    /// # Errors
    /// I/O while writing or committing.
    pub fn put(&self, data: &[u8]) -> Result<Digest, CommitError> {
        let digest = Digest::of(data);
        if self.exists(&digest) {
            return Ok(digest);
        }
        let io = |source| CommitError::Io { digest, source };
        let mut w = self.writer().map_err(io)?;
        w.write_all(data).map_err(io)?;
        w.finish().map_err(io)?.commit(Some(digest))?;
        Ok(digest)
    }

    /// Whether a blob is committed.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.layout.blob(digest).exists()
    }

    /// The path of a committed blob (for readers that want a `File`).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// Opens a committed blob for reading.
    ///
    /// # Errors
    /// `NotFound` when the blob is not committed.
    pub fn open_blob(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.layout.blob(digest))
    }

    /// Reads a small blob (a config or manifest) whole, refusing blobs over `limit` bytes.
    ///
    /// # Errors
    /// Not found, too large, or I/O.
    pub fn read(&self, digest: &Digest, limit: u64) -> io::Result<Vec<u8>> {
        let f = self.open_blob(digest)?;
        let len = f.metadata()?.len();
        if len > limit {
            return Err(io::Error::other(format!(
                "blob {digest} is {len} bytes, over the {limit}-byte limit"
            )));
        }
        let mut buf = Vec::with_capacity(len as usize);
        f.take(limit).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// The size of a committed blob.
    ///
    /// # Errors
    /// Not found or I/O.
    pub fn size(&self, digest: &Digest) -> io::Result<u64> {
        Ok(fs::metadata(self.layout.blob(digest))?.len())
    }

    /// Deletes a blob; a missing blob is not an error.
    ///
    /// # Errors
    /// I/O other than not-found.
    pub fn delete(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.layout.blob(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every committed blob's digest (files with other names are ignored).
    ///
    /// # Errors
    /// Reading the directory.
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.layout.blobs_dir())? {
            if let Ok(d) = Digest::from_hex(&entry?.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// A blob being written: digests and counts as bytes pass.
pub struct BlobWriter {
    file: Option<File>,
    path: PathBuf,
    digester: Digester,
    size: u64,
    /// Bytes handed to writeback so far.
    written_back: u64,
    blobs_dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .expect("a BlobWriter's file is only taken by finish");
        let n = file.write(buf)?;
        self.digester.update(&buf[..n]);
        self.size += n as u64;
        // Start writeback of every full window now (POSIX_FADV_DONTNEED starts it for
        // dirty pages and does not wait). With a lot of RAM the kernel would otherwise
        // keep a whole pull's blobs dirty until the fsync/syncfs at the end, so the disk
        // would idle while the CPU unpacks and then the CPU idle while the disk writes;
        // this way the two overlap (bench/registry: pull is bound by writing the blob and
        // the unpacked layer, twice the image).
        if self.size - self.written_back >= WRITEBACK_WINDOW {
            let len = std::num::NonZeroU64::new(self.size - self.written_back);
            let _ =
                rustix::fs::fadvise(&*file, self.written_back, len, rustix::fs::Advice::DontNeed);
            self.written_back = self.size;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of the bytes written so far (a caller checking a download as it
    /// streams needs no second digest of its own).
    pub fn digest(&self) -> Digest {
        self.digester.clone().finish()
    }

    /// Syncs the data and yields the not-yet-visible blob.
    ///
    /// # Errors
    /// Syncing the file.
    pub fn finish(mut self) -> io::Result<PendingBlob> {
        let file = self.file.take().expect("finish is called once");
        file.sync_data()?;
        drop(file);
        let path = std::mem::take(&mut self.path);
        Ok(PendingBlob {
            path,
            digest: std::mem::take(&mut self.digester).finish(),
            size: self.size,
            blobs_dir: std::mem::take(&mut self.blobs_dir),
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A written, synced blob that is not yet visible under its digest.
#[derive(Debug)]
pub struct PendingBlob {
    path: PathBuf,
    digest: Digest,
    size: u64,
    blobs_dir: PathBuf,
}

impl PendingBlob {
    /// The digest of the content.
    pub fn digest(&self) -> Digest {
        self.digest
    }
    /// The size of the content.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The temp file, for reading the content before committing it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the blob visible under its digest, after checking it against `expected`.
    /// Committing content that is already stored just drops the duplicate.
    ///
    /// # Errors
    /// [`CommitError::DigestMismatch`], or I/O renaming and syncing.
    pub fn commit(mut self, expected: Option<Digest>) -> Result<Digest, CommitError> {
        let digest = self.digest;
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(CommitError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        let target = self.blobs_dir.join(digest.hex());
        let io = |source| CommitError::Io { digest, source };
        if !target.exists() {
            fs::rename(&self.path, &target).map_err(io)?;
            durable::sync_dir(&self.blobs_dir).map_err(io)?;
        }
        // Already renamed (or a duplicate, which Drop removes).
        if !self.path.exists() {
            self.path = PathBuf::new();
        }
        Ok(digest)
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(Layout::new(dir.path())).unwrap();
        (dir, s)
    }

    #[test]
    fn commit_makes_blob_visible_under_its_digest() {
        let (_d, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        let p = w.finish().unwrap();
        assert!(!s.exists(&p.digest()));
        let d = p.commit(Some(Digest::of(b"hello"))).unwrap();
        assert_eq!(s.read(&d, 100).unwrap(), b"hello");
        assert_eq!(s.list().unwrap(), vec![d]);
    }

    #[test]
    fn writer_reports_the_running_digest_across_writeback_windows() {
        let (_d, s) = store();
        let mut w = s.writer().unwrap();
        let data: Vec<u8> = (0..(WRITEBACK_WINDOW as usize * 2 + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        w.write_all(&data[..10]).unwrap();
        assert_eq!(w.digest(), Digest::of(&data[..10]));
        w.write_all(&data[10..]).unwrap();
        assert_eq!(w.digest(), Digest::of(&data));
        let d = w.finish().unwrap().commit(Some(Digest::of(&data))).unwrap();
        assert_eq!(s.read(&d, data.len() as u64).unwrap(), data);
    }

    #[test]
    fn commit_rejects_digest_mismatch_and_leaves_nothing() {
        let (dir, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        let err = w
            .finish()
            .unwrap()
            .commit(Some(Digest::of(b"other")))
            .unwrap_err();
        assert!(matches!(err, CommitError::DigestMismatch { .. }));
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_removes_its_ingest() {
        let (dir, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn open_removes_stale_ingests() {
        let (dir, s) = store();
        let w = s.writer().unwrap();
        std::mem::forget(w); // as if the process died mid-write
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 1);
        ContentStore::open(Layout::new(dir.path())).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn duplicate_commit_is_harmless() {
        let (_d, s) = store();
        let a = s.put(b"x").unwrap();
        let mut w = s.writer().unwrap();
        w.write_all(b"x").unwrap();
        assert_eq!(w.finish().unwrap().commit(None).unwrap(), a);
        assert_eq!(s.list().unwrap().len(), 1);
    }
}
