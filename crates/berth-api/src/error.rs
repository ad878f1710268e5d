//! Errors as Docker sends them: a status from the error's kind and a JSON body
//! `{"message": "..."}`, which every Docker client prints as it is.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use berth_daemon::{DaemonError, ErrorKind};

/// A daemon error on its way to the client. Handlers return `Result<_, ApiError>` and
/// use `?` on daemon calls.
#[derive(Debug)]
pub struct ApiError(pub DaemonError);

impl ApiError {
    /// A 400 with `message`, for requests malformed before they reach the daemon.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(DaemonError::invalid(message))
    }

    /// The status Docker uses for this error's kind.
    pub fn status(&self) -> StatusCode {
        status_of(self.0.kind())
    }
}

impl From<DaemonError> for ApiError {
    fn from(e: DaemonError) -> Self {
        ApiError(e)
    }
}

/// The one place an [`ErrorKind`] becomes an HTTP status.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A 5xx is berth's failure and someone must look at it; a 4xx is the client's
        // mistake, already reported to the client.
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.0, "request failed");
        }
        error_response(status, self.0.message())
    }
}

/// A response with `status` and Docker's error body.
pub(crate) fn error_response(status: StatusCode, message: impl AsRef<str>) -> Response {
    let body = serde_json::json!({ "message": message.as_ref() }).to_string();
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// Docker's answer for an unknown path, and for a known path with a wrong method.
pub(crate) fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "page not found")
}

/// The router's fallback handler.
pub(crate) async fn fallback() -> Response {
    not_found()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(r: Response) -> serde_json::Value {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn error_kinds_map_to_docker_statuses() {
        for (err, status) in [
            (DaemonError::not_found("No such image: x"), 404),
            (DaemonError::conflict("in use"), 409),
            (DaemonError::invalid("bad"), 400),
            (DaemonError::new(ErrorKind::Unauthorized, "denied"), 401),
            (DaemonError::new(ErrorKind::Unavailable, "later"), 503),
            (DaemonError::internal("boom"), 500),
        ] {
            let message = err.message().to_owned();
            let r = ApiError(err).into_response();
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(body_of(r).await, serde_json::json!({ "message": message }));
        }
    }
}
