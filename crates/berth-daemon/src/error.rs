//! The daemon's one error type and its classification.

use std::fmt;

/// What kind of failure an operation had, as a client must see it. `berth-api` maps
/// each kind to one HTTP status (Docker's: 400, 401, 404, 409, 500, 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such object (image, container, …): 404.
    NotFound,
    /// The request conflicts with current state (name in use, image in use): 409.
    Conflict,
    /// The request itself is malformed or names invalid values: 400.
    InvalidArgument,
    /// Credentials missing or refused: 401.
    Unauthorized,
    /// A dependency is unavailable right now: 503.
    Unavailable,
    /// A failure inside berth: 500.
    Internal,
}

/// An error from a daemon operation: a kind and the message the client shows, in
/// Docker's words where Docker has words for it.
#[derive(Debug, Clone)]
pub struct DaemonError {
    kind: ErrorKind,
    message: String,
}

impl DaemonError {
    /// An error of `kind` with the client-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DaemonError {
            kind,
            message: message.into(),
        }
    }
    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// [`ErrorKind::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DaemonError {}
