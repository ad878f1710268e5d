//! Image references as the docker client parses them before calling the API
//! (`distribution/reference`): normalized names for `tag` and `import`,
//! familiar names ("busybox" for "docker.io/library/busybox") for listing.

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// A parsed `[domain/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Registry host, "docker.io" when none was given.
    pub(crate) domain: String,
    /// Repository path, with "library/" for official images.
    pub(crate) path: String,
    pub(crate) tag: Option<String>,
    pub(crate) digest: Option<String>,
}

/// Why a reference was refused; messages are distribution/reference's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("repository name must have at least one component")]
    Empty,
}

impl Reference {
    /// The full name ("docker.io/library/busybox").
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as users write it ("busybox", "example.com/team/app").
    pub(crate) fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }
}

/// `reference.ParseNormalizedNamed`.
///
/// # Errors
/// [`ReferenceError`] when `s` is not a valid reference.
pub(crate) fn parse_normalized_named(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !valid_digest(d) {
                return Err(ReferenceError::Format);
            }
            (r, Some(d.to_string()))
        }
        None => (s, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
        _ => (rest, None),
    };
    if let Some(t) = &tag {
        if !valid_tag(t) {
            return Err(ReferenceError::Format);
        }
    }
    let (domain, path) = split_domain(name);
    if path.is_empty() || name.is_empty() {
        return Err(ReferenceError::Format);
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        if path
            .split('/')
            .all(|c| valid_component(&c.to_ascii_lowercase()))
        {
            return Err(ReferenceError::Uppercase(path));
        }
        return Err(ReferenceError::Format);
    }
    if !path.split('/').all(valid_component) || !valid_domain(&domain) {
        return Err(ReferenceError::Format);
    }
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let domain = if first == "index.docker.io" {
                DEFAULT_DOMAIN
            } else {
                first
            };
            let path = if domain == DEFAULT_DOMAIN && !rest.contains('/') {
                format!("{OFFICIAL_REPO_PREFIX}{rest}")
            } else {
                rest.to_string()
            };
            (domain.to_string(), path)
        }
        Some(_) => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        None => (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        ),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
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

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(d: &str) -> bool {
    let host = d.rsplit_once(':').map_or(d, |(h, port)| {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            ""
        } else {
            h
        }
    });
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// `reference.ParseAnyReference`: a full or short image ID is accepted too.
///
/// # Errors
/// [`ReferenceError`] when `s` is neither an ID nor a valid reference.
pub(crate) fn parse_any(s: &str) -> Result<(), ReferenceError> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    parse_normalized_named(s).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_images_normalize_to_library() {
        let r = parse_normalized_named("busybox:1.35").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.tag.as_deref(), Some("1.35"));
        assert_eq!(r.familiar_name(), "busybox");
    }

    #[test]
    fn registries_with_ports_keep_their_domain() {
        let r = parse_normalized_named("localhost:5000/team/app").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "team/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar_name(), "localhost:5000/team/app");
    }

    #[test]
    fn uppercase_and_garbage_are_refused() {
        assert_eq!(
            parse_normalized_named("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(parse_normalized_named("a::b"), Err(ReferenceError::Format));
        assert_eq!(parse_normalized_named("a/-b"), Err(ReferenceError::Format));
    }

    #[test]
    fn digests_parse() {
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert!(parse_normalized_named(&d).unwrap().digest.is_some());
        assert!(parse_any(&"b".repeat(64)).is_ok());
    }
}
