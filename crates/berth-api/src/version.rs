//! API version negotiation: the `/v1.NN` path prefix, the version checks and the
//! headers every response carries.
//!
//! Docker routes every endpoint twice, with and without `/v{version}`, and rejects a
//! version outside its range before the handler runs. berth does the same in one
//! middleware that wraps the whole router: it strips the prefix from the URI before
//! routing, so routes are written once, unversioned, and catch-all routes such as
//! `/images/{*name}` see names with slashes intact. The negotiated version travels to
//! handlers as an [`ApiVersion`] request extension.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, SERVER};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_daemon::system::{API_VERSION, ENGINE_VERSION, MIN_API_VERSION};
use tracing::Instrument;

use crate::error::{error_response, not_found};

/// An Engine API version, `major.minor`, ordered numerically (1.9 < 1.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    major: u32,
    minor: u32,
}

impl ApiVersion {
    /// The highest version berth serves, and the one assumed when a request has no
    /// version prefix.
    pub const MAX: ApiVersion = ApiVersion::new(1, 51);
    /// The lowest version berth serves.
    pub const MIN: ApiVersion = ApiVersion::new(1, 24);

    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// The major number.
    pub fn major(self) -> u32 {
        self.major
    }

    /// The minor number.
    pub fn minor(self) -> u32 {
        self.minor
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Error of parsing an [`ApiVersion`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}: want major.minor")]
pub struct ParseApiVersionError(String);

impl FromStr for ApiVersion {
    type Err = ParseApiVersionError;

    /// Parses `major.minor` strictly (both numbers present, nothing else).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseApiVersionError(s.to_owned());
        let (major, minor) = s.split_once('.').ok_or_else(err)?;
        Ok(ApiVersion::new(
            major.parse().map_err(|_| err())?,
            minor.parse().map_err(|_| err())?,
        ))
    }
}

/// Handlers take the negotiated version as an extractor. Outside the middleware (which
/// always sets it) it falls back to [`ApiVersion::MAX`], as an unversioned request does.
impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::MAX))
    }
}

/// Compares dotted versions the way Docker does (`api/types/versions`): numerically
/// part by part, a missing or non-numeric part counting as 0. The path prefix only
/// admits digits and dots, so "1.44.1" and "1..4" reach this and must compare as
/// Docker would compare them.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let num = |p: Option<&str>| p.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
                match num(x).cmp(&num(y)) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
        }
    }
}

/// The version an accepted prefix names, loosely, as Docker reads it.
fn loose_version(s: &str) -> ApiVersion {
    let mut parts = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    ApiVersion::new(parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Splits `/v1.44/rest` into `("1.44", "/rest")`. A path whose first segment is not
/// `v` followed by digits and dots has no version.
fn split_version_prefix(path: &str) -> (Option<&str>, &str) {
    let Some(after_v) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let end = after_v.find('/').unwrap_or(after_v.len());
    let version = &after_v[..end];
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return (None, path);
    }
    let rest = &after_v[end..];
    (Some(version), if rest.is_empty() { "/" } else { rest })
}

/// Why a version was refused; the messages are Docker's.
enum VersionRefusal {
    TooOld(String),
    TooNew(String),
}

fn check_version(requested: &str) -> Result<ApiVersion, VersionRefusal> {
    if compare_versions(requested, MIN_API_VERSION) == Ordering::Less {
        return Err(VersionRefusal::TooOld(format!(
            "client version {requested} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if compare_versions(requested, API_VERSION) == Ordering::Greater {
        return Err(VersionRefusal::TooNew(format!(
            "client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok(loose_version(requested))
}

impl IntoResponse for VersionRefusal {
    fn into_response(self) -> Response {
        match self {
            // Docker answers clients older than 1.24 in plain text, since they predate
            // JSON errors and would print the JSON verbatim.
            VersionRefusal::TooOld(message) => (
                StatusCode::BAD_REQUEST,
                [
                    (
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    ),
                    (
                        HeaderName::from_static("x-content-type-options"),
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                format!("{message}\n"),
            )
                .into_response(),
            VersionRefusal::TooNew(message) => error_response(StatusCode::BAD_REQUEST, message),
        }
    }
}

fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

/// Numbers requests for the log, so that one request's events can be found together.
static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// The middleware around the whole router: one span per request, version prefix and
/// checks, Docker's 404 for a known path with the wrong method, the common headers.
pub(crate) async fn negotiate(mut req: Request, next: Next) -> Response {
    let request_id = NEXT_REQUEST_ID.fetch_add(1, AtomicOrdering::Relaxed);
    let span = tracing::info_span!("request", id = request_id, method = %req.method(), path = %req.uri().path());
    async move {
        let (version, path) = split_version_prefix(req.uri().path());
        let version = version.map(str::to_owned);
        let path = path.to_owned();
        let mut response = match version
            .as_deref()
            .map(check_version)
            .unwrap_or(Ok(ApiVersion::MAX))
        {
            Err(refusal) => refusal.into_response(),
            Ok(api_version) => {
                if version.is_some() {
                    match with_path(req.uri(), &path) {
                        Some(uri) => *req.uri_mut() = uri,
                        // Unreachable in practice: the new path is a suffix of a
                        // valid one.
                        None => {
                            return with_common_headers(error_response(
                                StatusCode::BAD_REQUEST,
                                "invalid request URI",
                            ));
                        }
                    }
                }
                req.extensions_mut().insert(api_version);
                if req.method() == Method::OPTIONS {
                    // Docker answers OPTIONS on any path with an empty 200 (CORS
                    // preflight); it never reaches a handler.
                    StatusCode::OK.into_response()
                } else {
                    next.run(req).await
                }
            }
        };
        // Docker's router sends its "page not found" for a known path with a method it
        // does not serve, rather than 405.
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            response = not_found();
        }
        tracing::debug!(status = response.status().as_u16(), "request handled");
        with_common_headers(response)
    }
    .instrument(span)
    .await
}

fn with_common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    headers.insert(
        HeaderName::from_static("ostype"),
        HeaderValue::from_static("linux"),
    );
    headers.insert(
        HeaderName::from_static("docker-experimental"),
        HeaderValue::from_static("false"),
    );
    if let Ok(server) = HeaderValue::from_str(&format!("Berth/{ENGINE_VERSION} (linux)")) {
        headers.insert(SERVER, server);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_orders_numerically() {
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 24));
        assert!("1.44".parse::<ApiVersion>().unwrap() > ApiVersion::new(1, 41));
        assert_eq!(ApiVersion::MAX.to_string(), "1.51");
        assert!("1".parse::<ApiVersion>().is_err());
        assert!("1.x".parse::<ApiVersion>().is_err());
    }

    #[test]
    fn version_prefix_is_split_only_when_numeric() {
        assert_eq!(split_version_prefix("/v1.44/info"), (Some("1.44"), "/info"));
        assert_eq!(
            split_version_prefix("/v1.41/images/localhost:5000/app:1/json"),
            (Some("1.41"), "/images/localhost:5000/app:1/json")
        );
        assert_eq!(split_version_prefix("/version"), (None, "/version"));
        assert_eq!(split_version_prefix("/volumes"), (None, "/volumes"));
        assert_eq!(split_version_prefix("/v1.44"), (Some("1.44"), "/"));
    }

    #[test]
    fn versions_compare_like_docker() {
        assert_eq!(compare_versions("1.9", "1.24"), Ordering::Less);
        assert_eq!(compare_versions("1.44.1", "1.44"), Ordering::Greater);
        assert_eq!(compare_versions("1.44.0", "1.44"), Ordering::Equal);
        assert_eq!(compare_versions("2", "1.44"), Ordering::Greater);
    }

    #[test]
    fn check_version_accepts_range_and_refuses_outside() {
        assert_eq!(check_version("1.24").ok(), Some(ApiVersion::new(1, 24)));
        assert_eq!(check_version("1.51").ok(), Some(ApiVersion::MAX));
        assert!(matches!(
            check_version("1.23"),
            Err(VersionRefusal::TooOld(_))
        ));
        assert!(matches!(
            check_version("1.52"),
            Err(VersionRefusal::TooNew(_))
        ));
    }
}
