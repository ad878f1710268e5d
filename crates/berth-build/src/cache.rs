//! Cache identity of a build step.
//!
//! A step is reused when what it starts from and what it does are the same, as in
//! Docker: the parent image (or layer) ID, the instruction after substitution, the
//! environment and ARGs in effect (they change what RUN does), the target platform,
//! and for ADD/COPY the checksum of the files it copies
//! ([`crate::context::checksum_sources`]). [`CacheKeyMaterial`] spells these out as one
//! struct; its canonical JSON, prefixed with a version line, is hashed into the
//! [`CacheKey`]. Keeping the material (not just the hash) lets the executor log why a
//! step missed, and bumping [`CACHE_KEY_VERSION`] invalidates every old key at once
//! when the meaning of a field changes.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::instruction::Instruction;

/// Prefix of the hashed material; change it when the material's meaning changes.
pub const CACHE_KEY_VERSION: &str = "berth-build-cache/v1";

/// The cache key of one step: `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as text, `sha256:<64 hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a stored key.
    ///
    /// # Errors
    /// [`CacheKeyParseError`] unless the text is `sha256:` and 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<CacheKey, CacheKeyParseError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| CacheKeyParseError(s.to_string()))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(CacheKeyParseError(s.to_string()));
        }
        Ok(CacheKey(s.to_string()))
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that is not a cache key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid build cache key {0:?}")]
pub struct CacheKeyParseError(String);

/// Everything that decides whether a step can be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheKeyMaterial {
    /// The image (or layer chain) the step starts from; `scratch` for none.
    pub parent: String,
    /// The instruction after substitution ([`crate::scope::StageScope::apply`]).
    pub instruction: Instruction,
    /// The environment the step sees, ARGs included
    /// ([`crate::scope::StageScope::cache_env`]).
    pub env: Vec<String>,
    /// The target platform, `os/arch[/variant]`.
    pub platform: String,
    /// For ADD/COPY: the checksum of the copied files
    /// ([`crate::context::FileSetChecksum::digest`]); for `COPY --from` the executor puts
    /// the source stage's image ID and the checksum of the files taken from it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
}

impl CacheKeyMaterial {
    /// The canonical serialization that is hashed: a version line, then compact JSON
    /// with fields in declaration order (no maps, so the order is stable).
    pub fn canonical(&self) -> String {
        let json = serde_json::to_string(self).expect("material has only strings, lists and enums");
        format!("{CACHE_KEY_VERSION}\n{json}")
    }

    /// The step's cache key.
    pub fn key(&self) -> CacheKey {
        CacheKey(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.canonical().as_bytes()))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::CommandLine;

    fn material() -> CacheKeyMaterial {
        CacheKeyMaterial {
            parent: "sha256:1111".into(),
            instruction: Instruction::Cmd {
                command: CommandLine::Shell("echo hi".into()),
            },
            env: vec!["PATH=/bin".into()],
            platform: "linux/amd64".into(),
            sources: None,
        }
    }

    #[test]
    fn key_is_stable_and_versioned() {
        let m = material();
        assert_eq!(m.key(), material().key());
        assert!(
            m.canonical()
                .starts_with("berth-build-cache/v1\n{\"parent\":\"sha256:1111\"")
        );
        let k = m.key();
        assert_eq!(CacheKey::parse(k.as_str()).unwrap(), k);
        assert!(CacheKey::parse("sha256:xyz").is_err());
    }

    #[test]
    fn every_field_changes_the_key() {
        let base = material().key();
        let mut m = material();
        m.parent = "sha256:2222".into();
        assert_ne!(m.key(), base);
        let mut m = material();
        m.env.push("A=1".into());
        assert_ne!(m.key(), base);
        let mut m = material();
        m.instruction = Instruction::Cmd {
            command: CommandLine::Exec(vec!["echo".into(), "hi".into()]),
        };
        assert_ne!(m.key(), base);
        let mut m = material();
        m.platform = "linux/arm64".into();
        assert_ne!(m.key(), base);
        let mut m = material();
        m.sources = Some("sha256:abcd".into());
        assert_ne!(m.key(), base);
    }
}
