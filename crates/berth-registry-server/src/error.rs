//! The distribution spec's error codes and their JSON body,
//! `{"errors":[{"code","message","detail"}]}`.
//!
//! Storage errors are classified here, once, with an exhaustive `match`: a new storage
//! error variant does not compile until someone decides what clients see for it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::storage::StorageError;

/// An error code of the distribution spec (plus Docker's `UNKNOWN` for server faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Blob unknown to registry.
    BlobUnknown,
    /// Blob upload invalid.
    BlobUploadInvalid,
    /// Blob upload unknown to registry.
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content.
    DigestInvalid,
    /// Manifest references a manifest or blob unknown to registry.
    ManifestBlobUnknown,
    /// Manifest invalid.
    ManifestInvalid,
    /// Manifest unknown.
    ManifestUnknown,
    /// Invalid repository name.
    NameInvalid,
    /// Repository name not known to registry.
    NameUnknown,
    /// Provided length did not match content length.
    SizeInvalid,
    /// Authentication required.
    Unauthorized,
    /// The operation is unsupported.
    Unsupported,
    /// Invalid number of results requested.
    PaginationNumberInvalid,
    /// Requested range not satisfiable.
    RangeInvalid,
    /// Manifest tag invalid.
    TagInvalid,
    /// Something went wrong on the server.
    Unknown,
}

impl ErrorCode {
    /// The code as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            ErrorCode::RangeInvalid => "RANGE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The HTTP status Docker's registry answers the code with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::PaginationNumberInvalid
            | ErrorCode::TagInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The spec's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "blob unknown to registry",
            ErrorCode::BlobUploadInvalid => "blob upload invalid",
            ErrorCode::BlobUploadUnknown => "blob upload unknown to registry",
            ErrorCode::DigestInvalid => "provided digest did not match uploaded content",
            ErrorCode::ManifestBlobUnknown => "blob unknown to registry",
            ErrorCode::ManifestInvalid => "manifest invalid",
            ErrorCode::ManifestUnknown => "manifest unknown",
            ErrorCode::NameInvalid => "invalid repository name",
            ErrorCode::NameUnknown => "repository name not known to registry",
            ErrorCode::SizeInvalid => "provided length did not match content length",
            ErrorCode::Unauthorized => "authentication required",
            ErrorCode::Unsupported => "The operation is unsupported.",
            ErrorCode::PaginationNumberInvalid => "invalid number of results requested",
            ErrorCode::RangeInvalid => "invalid content range",
            ErrorCode::TagInvalid => "manifest tag did not match URI",
            ErrorCode::Unknown => "unknown error",
        }
    }
}

/// An error answer: a code, the spec's message, and a detail for the client.
#[derive(Debug)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// Detail (free-form JSON, as in the spec).
    pub detail: Value,
    /// Extra headers (the auth challenge on 401).
    pub challenge: Option<HeaderValue>,
}

impl ApiError {
    /// An error with a textual detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: Value::String(detail.into()),
            challenge: None,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        let code = match &e {
            StorageError::BlobUnknown { .. } => ErrorCode::BlobUnknown,
            StorageError::UploadUnknown(_) => ErrorCode::BlobUploadUnknown,
            StorageError::RangeInvalid { .. } => ErrorCode::RangeInvalid,
            StorageError::ChunkLength { .. } => ErrorCode::SizeInvalid,
            StorageError::DigestMismatch { .. } | StorageError::ManifestDigestMismatch { .. } => {
                ErrorCode::DigestInvalid
            }
            StorageError::Body { .. } => ErrorCode::BlobUploadInvalid,
            StorageError::ManifestUnknown { .. } => ErrorCode::ManifestUnknown,
            StorageError::ManifestInvalid { .. } => ErrorCode::ManifestInvalid,
            StorageError::ManifestBlobUnknown { .. } => ErrorCode::ManifestBlobUnknown,
            StorageError::NameUnknown(_) => ErrorCode::NameUnknown,
            StorageError::Io { .. } => ErrorCode::Unknown,
        };
        let detail = match &e {
            // Docker's registry puts the digest alone in the detail of these.
            StorageError::BlobUnknown { digest, .. }
            | StorageError::ManifestBlobUnknown { digest, .. } => {
                json!({ "digest": digest.to_string() })
            }
            StorageError::Io { .. } => {
                tracing::error!(error = %chain(&e), "storage failure");
                Value::String("storage failure".into())
            }
            _ => Value::String(chain(&e)),
        };
        ApiError {
            code,
            detail,
            challenge: None,
        }
    }
}

/// The error and its sources, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{
            "code": self.code.as_str(),
            "message": self.code.message(),
            "detail": self.detail,
        }]});
        let mut resp = (
            self.code.status(),
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response();
        if let Some(c) = self.challenge {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}
