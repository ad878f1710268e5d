//! Image references as the docker client parses them before calling the API. The
//! grammar, normalization and messages are berth-oci's, the same the daemon applies:
//! normalized names for `tag`, `pull` and `run`, familiar names ("busybox" for
//! "docker.io/library/busybox") for listing.

pub(crate) use berth_oci::reference::{Reference, ReferenceError};

/// `reference.ParseNormalizedNamed`.
///
/// # Errors
/// [`ReferenceError`] when `s` is not a valid reference.
pub(crate) fn parse_normalized_named(s: &str) -> Result<Reference, ReferenceError> {
    Reference::parse_normalized(s)
}

/// `reference.ParseAnyReference`: a full image ID (with or without `sha256:`) is
/// accepted too.
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
    fn the_client_parses_as_the_daemon_does() {
        let r = parse_normalized_named("localhost:5000/team/app:1").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "team/app", Some("1"))
        );
        assert_eq!(r.familiar_name(), "localhost:5000/team/app");
        assert_eq!(
            parse_normalized_named("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert!(parse_any(&"b".repeat(64)).is_ok());
        assert!(parse_any(&format!("sha256:{}", "c".repeat(64))).is_ok());
        assert!(parse_any("a::b").is_err());
    }
}
