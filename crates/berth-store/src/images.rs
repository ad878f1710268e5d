//! Image records and the reference map, persisted as JSON files written atomically.
//!
//! The daemon keeps both in memory and writes through on every change; they are small
//! (one record per image, one map for all tags), so plain JSON files beat a database
//! here and can be inspected by hand.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use berth_oci::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::durable;
use crate::layout::Layout;

/// One layer of an image as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The stored blob (compressed or not, as it arrived).
    pub blob: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size.
    pub blob_size: u64,
    /// The digest of the uncompressed tarball.
    pub diff_id: Digest,
    /// The uncompressed tarball's length (what `save` writes for this layer).
    pub diff_size: u64,
}

/// An image as stored: its config blob digest is its ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID (config digest).
    pub id: Digest,
    /// Layers, base first; their diff IDs equal the config's.
    pub layers: Vec<LayerRecord>,
    /// The manifest it came with, if any (OCI archives, pulls).
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// The image this one was built or committed on, if it was made here.
    #[serde(default)]
    pub parent: Option<Digest>,
    /// When the record was stored.
    pub stored_at: DateTime<Utc>,
    /// When a tag last moved onto it.
    #[serde(default)]
    pub last_tag_time: Option<DateTime<Utc>>,
}

/// Why the image metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// I/O on a metadata file.
    #[error("image metadata {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A metadata file is not valid JSON of the expected shape.
    #[error("image metadata {path} is corrupt")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Image records and references under one data root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    layout: Layout,
}

impl ImageStore {
    /// Opens the store, creating its directory and removing the temporaries a crash
    /// left of its records and of the reference map.
    ///
    /// # Errors
    /// Creating the directory or removing a temporary.
    pub fn open(layout: Layout) -> io::Result<Self> {
        fs::create_dir_all(layout.images_dir())?;
        durable::remove_temporaries(&layout.images_dir(), ".")?;
        // `repositories.json` sits in the data root beside other services' files, so
        // only its own temporaries (`write_atomic` names them `.<name>.tmp-<n>`) go.
        let repositories = layout.repositories();
        if let Some(name) = repositories.file_name() {
            let prefix = format!(".{}.tmp-", name.to_string_lossy());
            durable::remove_temporaries(layout.root(), &prefix)?;
        }
        Ok(ImageStore { layout })
    }

    /// Every stored record.
    ///
    /// # Errors
    /// Reading the directory or a record.
    pub fn load_all(&self) -> Result<Vec<ImageRecord>, MetadataError> {
        let dir = self.layout.images_dir();
        let entries = fs::read_dir(&dir).map_err(|source| MetadataError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| MetadataError::Io {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let data = fs::read(&path).map_err(|source| MetadataError::Io {
                path: path.clone(),
                source,
            })?;
            let record = serde_json::from_slice(&data)
                .map_err(|source| MetadataError::Corrupt { path, source })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Writes (or replaces) a record.
    ///
    /// # Errors
    /// Writing the file.
    pub fn put(&self, record: &ImageRecord) -> Result<(), MetadataError> {
        let path = self.layout.image(&record.id);
        let data = serde_json::to_vec_pretty(record).expect("image record serializes");
        durable::write_atomic(&path, &data).map_err(|source| MetadataError::Io { path, source })
    }

    /// Deletes a record; a missing one is not an error.
    ///
    /// # Errors
    /// Removing the file.
    pub fn delete(&self, id: &Digest) -> Result<(), MetadataError> {
        let path = self.layout.image(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(MetadataError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// The reference map: normalized reference string → image ID.
    ///
    /// # Errors
    /// Reading or parsing the file; a missing file is an empty map.
    pub fn load_references(&self) -> Result<BTreeMap<String, Digest>, MetadataError> {
        let path = self.layout.repositories();
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|source| MetadataError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(MetadataError::Io { path, source }),
        }
    }

    /// Replaces the reference map.
    ///
    /// # Errors
    /// Writing the file.
    pub fn save_references(&self, refs: &BTreeMap<String, Digest>) -> Result<(), MetadataError> {
        let path = self.layout.repositories();
        let data = serde_json::to_vec_pretty(refs).expect("references serialize");
        durable::write_atomic(&path, &data).map_err(|source| MetadataError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_removes_temporaries_of_records_and_references_only() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        fs::create_dir_all(layout.images_dir()).unwrap();
        fs::write(dir.path().join(".repositories.json.tmp-123"), b"{").unwrap();
        fs::write(layout.images_dir().join(".abc.json.tmp-9"), b"{").unwrap();
        fs::write(dir.path().join(".other-service.tmp-1"), b"x").unwrap();
        ImageStore::open(layout.clone()).unwrap();
        assert!(!dir.path().join(".repositories.json.tmp-123").exists());
        assert!(!layout.images_dir().join(".abc.json.tmp-9").exists());
        assert!(dir.path().join(".other-service.tmp-1").exists());
    }

    #[test]
    fn records_and_references_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(Layout::new(dir.path())).unwrap();
        let r = ImageRecord {
            id: Digest::of(b"cfg"),
            layers: vec![LayerRecord {
                blob: Digest::of(b"l"),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                blob_size: 1,
                diff_id: Digest::of(b"l"),
                diff_size: 1,
            }],
            manifest: None,
            parent: None,
            stored_at: Utc::now(),
            last_tag_time: None,
        };
        s.put(&r).unwrap();
        assert_eq!(s.load_all().unwrap(), vec![r.clone()]);
        let mut refs = BTreeMap::new();
        refs.insert("docker.io/library/busybox:latest".to_string(), r.id);
        s.save_references(&refs).unwrap();
        assert_eq!(s.load_references().unwrap(), refs);
        s.delete(&r.id).unwrap();
        assert!(s.load_all().unwrap().is_empty());
    }
}
