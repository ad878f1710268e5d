//! Platform choice in a manifest list / image index (`--platform os/arch[/variant]`).

use berth_oci::image::Platform;

/// The platform a pull asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`.
    pub os: String,
    /// Go's architecture name.
    pub architecture: String,
    /// CPU variant, when asked for.
    pub variant: Option<String>,
}

/// Why a `--platform` value is not one.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant]")]
pub struct PlatformParseError(String);

impl PlatformSpec {
    /// This machine: `linux` and Go's name for its architecture.
    pub fn host() -> PlatformSpec {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        PlatformSpec {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]`; the architecture defaults to the host's.
    ///
    /// # Errors
    /// [`PlatformParseError`] for empty parts or more than three.
    pub fn parse(s: &str) -> Result<PlatformSpec, PlatformParseError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(PlatformParseError(s.to_string()));
        }
        let mut p = PlatformSpec::host();
        p.os = parts[0].to_ascii_lowercase();
        if let Some(a) = parts.get(1) {
            p.architecture = normalize_arch(&a.to_ascii_lowercase());
        }
        p.variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        Ok(p)
    }

    /// Whether an index entry's platform serves this one.
    pub fn matches(&self, p: &Platform) -> bool {
        p.os == self.os
            && normalize_arch(&p.architecture) == self.architecture
            && match (&self.variant, &p.variant) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn parses_and_matches_platforms() {
        let p = PlatformSpec::parse("linux/arm64/v8").unwrap();
        assert!(p.matches(&platform("linux", "arm64", Some("v8"))));
        assert!(!p.matches(&platform("linux", "arm64", None)));
        let p = PlatformSpec::parse("linux/x86_64").unwrap();
        assert_eq!(p.architecture, "amd64");
        assert!(p.matches(&platform("linux", "amd64", None)));
        assert!(!p.matches(&platform("windows", "amd64", None)));
        assert!(PlatformSpec::parse("linux//").is_err());
    }
}
