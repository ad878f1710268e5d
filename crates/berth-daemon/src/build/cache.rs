//! The build cache index: step cache key → the image that step produced.
//!
//! Docker's classic builder finds a cached step by scanning the children of the
//! parent image and comparing their run configs. berth keys each step instead
//! ([`berth_build::cache::CacheKey`]: parent, substituted instruction, env, platform,
//! copied files), so a lookup is one hash-map probe and a fully cached build touches
//! no disk at all. The images themselves stay ordinary image records with a parent
//! chain, as Docker's intermediate images are; the index only points at them, and a
//! hit whose image was removed since is a miss.
//!
//! Persistence is an append-only log, `<data-root>/builder/cache.log`, one
//! `<key> <image id>` line per committed step, read once at start (the last line for
//! a key wins; a torn last line is skipped). Appending costs no fsync: losing the tail
//! in a crash only loses cache entries, never correctness, because every hit is
//! checked against the image store.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_build::cache::CacheKey;
use berth_oci::Digest;

use crate::DaemonError;

/// The in-memory index and its log file.
pub(super) struct CacheIndex {
    path: PathBuf,
    entries: Mutex<HashMap<CacheKey, Digest>>,
}

impl CacheIndex {
    /// Loads the log at `path` (missing: empty).
    ///
    /// # Errors
    /// `Internal` when the file exists but cannot be read.
    pub(super) fn open(path: &Path) -> Result<CacheIndex, DaemonError> {
        let mut entries = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    if let Some((k, v)) = parse_line(line) {
                        entries.insert(k, v);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DaemonError::internal(format!(
                    "cannot read build cache {}: {e}",
                    path.display()
                )));
            }
        }
        Ok(CacheIndex {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    /// The image recorded for `key`, if any (it may have been removed since).
    pub(super) fn get(&self, key: &CacheKey) -> Option<Digest> {
        self.entries.lock().expect("cache lock").get(key).copied()
    }

    /// Records that the step `key` produced `image`.
    ///
    /// # Errors
    /// `Internal` when the log cannot be appended to.
    pub(super) fn insert(&self, key: CacheKey, image: Digest) -> Result<(), DaemonError> {
        let mut entries = self.entries.lock().expect("cache lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| {
                writeln!(f, "{key} {image}")?;
                Ok(f)
            })
            .map_err(|e| {
                DaemonError::internal(format!(
                    "cannot write build cache {}: {e}",
                    self.path.display()
                ))
            })?;
        let _ = file.flush();
        entries.insert(key, image);
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(CacheKey, Digest)> {
    let (k, v) = line.split_once(' ')?;
    Some((CacheKey::parse(k).ok()?, v.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    #[test]
    fn entries_survive_reopening_and_the_last_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.log");
        let index = CacheIndex::open(&path).unwrap();
        assert_eq!(index.get(&key(1)), None);
        index.insert(key(1), digest(2)).unwrap();
        index.insert(key(3), digest(4)).unwrap();
        index.insert(key(1), digest(5)).unwrap();
        let reopened = CacheIndex::open(&path).unwrap();
        assert_eq!(reopened.get(&key(1)), Some(digest(5)));
        assert_eq!(reopened.get(&key(3)), Some(digest(4)));
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.log");
        let good = format!("{} {}\n", key(1), digest(2));
        std::fs::write(&path, format!("{good}{} sha256:12", key(3))).unwrap();
        let index = CacheIndex::open(&path).unwrap();
        assert_eq!(index.get(&key(1)), Some(digest(2)));
        assert_eq!(index.get(&key(3)), None);
    }
}
