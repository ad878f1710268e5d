//! The registry client's one error type: each variant names the URL, digest or
//! reference it is about.

use berth_oci::Digest;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {authority}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection reset, malformed response, …).
    #[error("request to {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        source: hyper::Error,
    },
    /// The TLS handshake failed (unknown authority, wrong name, …).
    #[error("TLS connection to {authority} failed")]
    Tls {
        /// `host:port`.
        authority: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Credentials missing or refused (401 after authenticating).
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The URL.
        url: String,
        /// The registry's words.
        message: String,
    },
    /// The registry refused the operation (403, or `DENIED`).
    #[error("denied: {message}")]
    Denied {
        /// The URL.
        url: String,
        /// The registry's words.
        message: String,
    },
    /// 404: the manifest, blob or repository is not there.
    #[error("{message}")]
    NotFound {
        /// The URL.
        url: String,
        /// The registry's error code (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, …).
        code: String,
        /// The registry's words.
        message: String,
    },
    /// Any other unexpected status.
    #[error("unexpected status {status} from {url}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's words, or the body.
        message: String,
    },
    /// The token endpoint did not give a token.
    #[error("cannot get a token from {realm}: {message}")]
    Token {
        /// The realm.
        realm: String,
        /// Why.
        message: String,
    },
    /// A response lacked something the protocol requires (a `Location`, …).
    #[error("bad response from {url}: {message}")]
    BadResponse {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// Docker's old signed schema 1 manifests are not supported (Docker 28 dropped them too).
    #[error(
        "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {reference} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2."
    )]
    Schema1 {
        /// The image.
        reference: String,
    },
    /// A manifest of a media type berth cannot use.
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedMediaType {
        /// The image.
        reference: String,
        /// What the registry sent.
        media_type: String,
    },
    /// The index has no entry for the wanted platform.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform {
        /// What was wanted.
        platform: String,
    },
    /// A manifest, index, config or token answer is not valid JSON of its shape.
    #[error("invalid {what}")]
    InvalidDocument {
        /// What was being parsed.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// Content did not hash to the digest it was asked for by.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A document was larger than any real one.
    #[error("response from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// Reading local content to upload failed.
    #[error("cannot read {path} for upload")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl RegistryError {
    /// Whether the error means "not there" (so a pull can say so in Docker's words).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
    /// Whether the error means the registry refused our credentials or lack of them.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. }
        )
    }
}
