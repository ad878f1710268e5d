//! What a pushed manifest refers to, so that storage can refuse one whose blobs or child
//! manifests are missing (the spec's `MANIFEST_BLOB_UNKNOWN`), as Docker's registry does.
//!
//! Only the four media types Docker and OCI clients push are accepted: an image manifest
//! (Docker schema 2 or OCI) and an index (Docker manifest list or OCI index). Schema 1 is
//! refused, as distribution 2.8 refuses it by default.

use berth_oci::Digest;
use berth_oci::image::media_type;
use serde::Deserialize;

/// Media type of a Docker schema 1 manifest (signed or not), refused.
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// The content a manifest points at, all of which must already be in the repository.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Blobs: an image manifest's config and layers.
    pub blobs: Vec<Digest>,
    /// Manifests: an index's children.
    pub manifests: Vec<Digest>,
}

/// Why a manifest body is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of a manifest's shape.
    #[error("manifest is not valid JSON of its media type")]
    Json(#[source] serde_json::Error),
    /// A media type the registry does not store.
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    /// The body's `mediaType` disagrees with the request's `Content-Type`.
    #[error("manifest media type {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch {
        /// The body's `mediaType` field.
        body: String,
        /// The request's `Content-Type`.
        header: String,
    },
    /// `schemaVersion` is not 2.
    #[error("unsupported manifest schema version {0}")]
    SchemaVersion(u64),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u64,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Pointer {
    digest: Digest,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
struct ImageManifest {
    config: Pointer,
    #[serde(default)]
    layers: Vec<Pointer>,
}

#[derive(Deserialize)]
struct IndexManifest {
    manifests: Vec<Pointer>,
}

/// Decides a manifest's media type and lists what it refers to.
///
/// The media type is the body's `mediaType` field when it has one (it must then agree
/// with `content_type`, unless that is absent or generic), else `content_type`, else an
/// OCI manifest or index guessed from the body's shape (OCI makes the field optional).
///
/// # Errors
/// [`ManifestError`] for bodies that are not JSON manifests of a supported type.
pub fn inspect(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(String, References), ManifestError> {
    let probe: Probe = serde_json::from_slice(body).map_err(ManifestError::Json)?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media = match (&probe.media_type, header) {
        (Some(b), Some(h)) if b != h => {
            return Err(ManifestError::MediaTypeMismatch {
                body: b.clone(),
                header: h.to_string(),
            });
        }
        (Some(b), _) => b.clone(),
        (None, Some(h)) => h.to_string(),
        (None, None) if probe.manifests.is_some() => media_type::OCI_INDEX.to_string(),
        (None, None) => media_type::OCI_MANIFEST.to_string(),
    };
    if DOCKER_SCHEMA1.contains(&media.as_str()) {
        return Err(ManifestError::MediaType(media));
    }
    if probe.schema_version != 2 {
        return Err(ManifestError::SchemaVersion(probe.schema_version));
    }
    let refs = match media.as_str() {
        media_type::DOCKER_MANIFEST | media_type::OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(body).map_err(ManifestError::Json)?;
            // Foreign layers (with `urls`) live elsewhere by design; the registry is not
            // expected to hold them.
            let layers = m.layers.into_iter().filter(|l| l.urls.is_empty());
            References {
                blobs: std::iter::once(m.config.digest)
                    .chain(layers.map(|l| l.digest))
                    .collect(),
                manifests: Vec::new(),
            }
        }
        media_type::DOCKER_MANIFEST_LIST | media_type::OCI_INDEX => {
            let i: IndexManifest = serde_json::from_slice(body).map_err(ManifestError::Json)?;
            References {
                blobs: Vec::new(),
                manifests: i.manifests.into_iter().map(|m| m.digest).collect(),
            }
        }
        _ => return Err(ManifestError::MediaType(media)),
    };
    Ok((media, refs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_lists_config_and_layers_but_not_foreign_layers() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::DOCKER_MANIFEST,
            "config": {"mediaType": media_type::DOCKER_CONFIG, "digest": d('a'), "size": 1},
            "layers": [
                {"mediaType": media_type::DOCKER_LAYER_GZIP, "digest": d('b'), "size": 2},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                 "digest": d('c'), "size": 3, "urls": ["https://example.com/x"]}
            ]
        });
        let (mt, refs) = inspect(
            Some(media_type::DOCKER_MANIFEST),
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(mt, media_type::DOCKER_MANIFEST);
        assert_eq!(
            refs.blobs,
            vec![d('a').parse().unwrap(), d('b').parse().unwrap()]
        );
    }

    #[test]
    fn oci_index_without_media_type_takes_it_from_content_type_or_shape() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": media_type::OCI_MANIFEST, "digest": d('e'), "size": 9}]
        })
        .to_string();
        let (mt, refs) = inspect(None, body.as_bytes()).unwrap();
        assert_eq!(mt, media_type::OCI_INDEX);
        assert_eq!(refs.manifests, vec![d('e').parse().unwrap()]);
        let (mt, _) = inspect(Some(media_type::OCI_INDEX), body.as_bytes()).unwrap();
        assert_eq!(mt, media_type::OCI_INDEX);
    }

    #[test]
    fn refuses_schema1_mismatched_types_and_garbage() {
        let s1 = r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(matches!(
            inspect(None, s1.as_bytes()),
            Err(ManifestError::MediaType(_))
        ));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{}","size":1}},"layers":[]}}"#,
            media_type::OCI_MANIFEST,
            d('a')
        );
        assert!(matches!(
            inspect(Some(media_type::DOCKER_MANIFEST), m.as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            inspect(None, b"not json"),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            inspect(Some("text/plain"), br#"{"schemaVersion":2}"#),
            Err(ManifestError::MediaType(_))
        ));
    }
}
