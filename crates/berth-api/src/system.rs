//! `/_ping`, `/version` and `/info`: what a client asks before anything else.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_daemon::Daemon;
use berth_daemon::system::{SystemInfo, VersionInfo};

use crate::extract::Json;
use crate::version::ApiVersion;

/// The system routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// The headers of both ping answers. The docker CLI reads `Builder-Version` (1 is the
/// classic builder, which is what `POST /build` is) and `Swarm` from them.
fn ping_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        ),
        (PRAGMA, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("builder-version"),
            HeaderValue::from_static("1"),
        ),
        (
            HeaderName::from_static("swarm"),
            HeaderValue::from_static("inactive"),
        ),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
    ]
}

async fn ping() -> Response {
    (ping_headers(), "OK").into_response()
}

async fn ping_head() -> Response {
    (
        ping_headers(),
        [(CONTENT_LENGTH, HeaderValue::from_static("0"))],
    )
        .into_response()
}

async fn version(State(daemon): State<Arc<Daemon>>) -> Json<VersionInfo> {
    Json(daemon.version_info())
}

async fn info(State(daemon): State<Arc<Daemon>>, version: ApiVersion) -> Json<SystemInfo> {
    // A handful of small /proc reads: cheaper than a hop to the blocking pool.
    let mut info = daemon.system_info();
    adapt_info_to_version(&mut info, version);
    Json(info)
}

/// Older API versions read some `/info` fields differently; Docker rewrites them the
/// same way for the same versions.
fn adapt_info_to_version(info: &mut SystemInfo, version: ApiVersion) {
    if version < ApiVersion::new(1, 25) {
        // Before 1.25 SecurityOptions held bare names ("seccomp"), not key=value lists.
        for option in &mut info.security_options {
            let name = option
                .split(',')
                .find_map(|kv| kv.strip_prefix("name="))
                .unwrap_or(option.as_str())
                .to_owned();
            *option = name;
        }
    }
    if version < ApiVersion::new(1, 39) {
        for field in [&mut info.kernel_version, &mut info.operating_system] {
            if field.is_empty() {
                *field = "<unknown>".to_owned();
            }
        }
    }
}
