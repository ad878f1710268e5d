//! Typed identifiers parsed at the HTTP edge: repository names, manifest references and
//! upload ids. Nothing further in sees a raw path segment, which is what keeps a name like
//! `../../etc` from ever reaching the filesystem layer.

use std::fmt;

use berth_oci::Digest;

/// Longest repository name the distribution spec allows.
const NAME_LENGTH_MAX: usize = 255;

/// A repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or
/// runs of `-` (the distribution spec's grammar). No component can start with `_` or `.`,
/// so storage may keep its own `_layers`/`_manifests` directories beside them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// Why a string is not a repository name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid repository name {0:?}")]
pub struct NameError(pub String);

impl RepoName {
    /// Parses and validates a repository name.
    ///
    /// # Errors
    /// [`NameError`] when it breaks the spec's grammar or is longer than 255 bytes.
    pub fn parse(s: &str) -> Result<RepoName, NameError> {
        if s.is_empty() || s.len() > NAME_LENGTH_MAX || !s.split('/').all(valid_component) {
            return Err(NameError(s.to_string()));
        }
        Ok(RepoName(s.to_string()))
    }

    /// The name as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: one `.`, one or two `_`, or any number of `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    /// A tag, `[\w][\w.-]{0,127}`.
    Tag(String),
    /// A content digest.
    Digest(Digest),
}

/// Why a manifest reference is neither a tag nor a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestRefError {
    /// It has a `:` but is not a sha256 digest.
    #[error("invalid digest {0:?}")]
    Digest(String),
    /// It is not a valid tag.
    #[error("invalid tag {0:?}")]
    Tag(String),
}

impl ManifestRef {
    /// Parses a reference: a digest when it holds a `:`, a tag otherwise.
    ///
    /// # Errors
    /// [`ManifestRefError`] naming which of the two it failed to be.
    pub fn parse(s: &str) -> Result<ManifestRef, ManifestRefError> {
        if s.contains(':') {
            s.parse()
                .map(ManifestRef::Digest)
                .map_err(|_| ManifestRefError::Digest(s.to_string()))
        } else if berth_oci::reference::is_valid_tag(s) {
            Ok(ManifestRef::Tag(s.to_string()))
        } else {
            Err(ManifestRefError::Tag(s.to_string()))
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session's id: 32 lowercase hex characters (128 random bits), so it is both
/// unguessable and safe as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn random() -> UploadId {
        UploadId(format!("{:032x}", rand::random::<u128>()))
    }

    /// Parses an id from a URL; `None` unless it is 32 lowercase hex characters.
    pub fn parse(s: &str) -> Option<UploadId> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| UploadId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_the_spec_grammar() {
        for ok in [
            "busybox",
            "library/busybox",
            "a/b/c",
            "my-app",
            "my--app",
            "a.b",
            "a_b",
            "a__b",
            "x0/y1",
        ] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Upper",
            "a//b",
            "/a",
            "a/",
            "_a",
            "a_",
            "a___b",
            "a._b",
            "..",
            "../etc",
            "a/../b",
            "a b",
            &"a".repeat(256),
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_references_are_tags_or_digests() {
        assert_eq!(
            ManifestRef::parse("latest").unwrap(),
            ManifestRef::Tag("latest".into())
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        assert!(matches!(
            ManifestRef::parse(&d).unwrap(),
            ManifestRef::Digest(_)
        ));
        assert!(ManifestRef::parse("sha512:00").is_err());
        assert!(ManifestRef::parse(".hidden").is_err());
        assert!(ManifestRef::parse(&"t".repeat(129)).is_err());
    }

    #[test]
    fn upload_ids_are_hex_only() {
        let id = UploadId::random();
        assert_eq!(UploadId::parse(id.as_str()), Some(id));
        assert!(UploadId::parse("../../../../etc/passwd0000000000").is_none());
        assert!(UploadId::parse("abc").is_none());
    }
}
