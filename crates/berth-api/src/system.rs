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

use berth_daemon::filters::Filters;
use berth_daemon::{DaemonError, ErrorKind};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Json, Pairs, Query};
use crate::version::ApiVersion;

/// The system routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(disk_usage))
        .route("/build/prune", axum::routing::post(build_cache_prune))
        .route("/swarm", get(no_swarm))
        .route("/swarm/{*rest}", get(no_swarm).post(no_swarm))
        .route("/nodes", get(no_swarm))
        .route(
            "/nodes/{*rest}",
            get(no_swarm).post(no_swarm).delete(no_swarm),
        )
        .route("/services", get(no_swarm))
        .route(
            "/services/{*rest}",
            get(no_swarm).post(no_swarm).delete(no_swarm),
        )
        .route("/tasks", get(no_swarm))
        .route("/tasks/{*rest}", get(no_swarm))
        .route("/secrets", get(no_swarm))
        .route(
            "/secrets/{*rest}",
            get(no_swarm).post(no_swarm).delete(no_swarm),
        )
        .route("/configs", get(no_swarm))
        .route(
            "/configs/{*rest}",
            get(no_swarm).post(no_swarm).delete(no_swarm),
        )
}

/// The swarm-mode endpoints. berth has no swarm mode, so it answers as a Docker node
/// that is not part of a swarm does: 503. docker-py's `leave_swarm(force=True)`
/// counts that as done.
async fn no_swarm(uri: axum::http::Uri) -> ApiError {
    // The version middleware has already taken any `/v1.NN` prefix off.
    let path = uri.path();
    let message = if path == "/swarm/leave" {
        "This node is not part of a swarm"
    } else if path == "/swarm/init" || path == "/swarm/join" {
        "berth does not support swarm mode"
    } else {
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    };
    ApiError(DaemonError::new(ErrorKind::Unavailable, message))
}

/// `GET /system/df`: the space images, containers and volumes take (`type=` picks
/// some of them). berth's builds keep no cache apart from images, so `BuildCache`
/// is empty.
async fn disk_usage(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let types: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(bad) = types
        .iter()
        .find(|t| !matches!(**t, "container" | "image" | "volume" | "build-cache"))
    {
        return Err(ApiError::bad_request(format!("unknown object type: {bad}")));
    }
    let wants = |t: &str| types.is_empty() || types.contains(&t);
    let none = Filters::default();
    let containers = d.containers().list(true, None, true, &none)?;
    let mut out = json!({});
    if wants("image") {
        let (layers_size, shared) = d.images().disk_usage();
        let mut images = serde_json::to_value(d.images().list(true, &none)?)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for image in images.as_array_mut().into_iter().flatten() {
            let id = image["Id"].as_str().unwrap_or_default().to_string();
            image["SharedSize"] = json!(shared.get(&id).copied().unwrap_or(0));
            image["Containers"] = json!(
                containers
                    .iter()
                    .filter(|c| c["ImageID"].as_str() == Some(id.as_str()))
                    .count()
            );
        }
        out["LayersSize"] = json!(layers_size);
        out["Images"] = images;
    }
    if wants("container") {
        out["Containers"] = json!(containers);
    }
    if wants("volume") {
        let c = d.containers().clone();
        let mut volumes = d
            .volumes()
            .list(&none, &|name| !c.volume_users(name).is_empty())?["Volumes"]
            .take();
        for v in volumes.as_array_mut().into_iter().flatten() {
            let name = v["Name"].as_str().unwrap_or_default().to_string();
            let data = d.volumes().data(&name);
            let size =
                tokio::task::spawn_blocking(move || berth_daemon::volumes::disk_usage(&data))
                    .await
                    .unwrap_or(0);
            v["UsageData"] = json!({
                "Size": size,
                "RefCount": c.volume_users(&name).len(),
            });
        }
        out["Volumes"] = volumes;
    }
    if wants("build-cache") {
        out["BuildCache"] = json!([]);
    }
    Ok(Json(out).into_response())
}

/// `POST /build/prune` (`docker builder prune`, and a step of `docker system prune`).
/// The build cache it prunes is BuildKit's; berth's builder keeps none apart from its
/// intermediate images, which `image prune` handles as Docker's classic builder's, so
/// there is never anything here to delete, as `/system/df` reports. The filters are
/// still checked, in Docker's words.
async fn build_cache_prune(Query(q): Query<Pairs>) -> Result<Response, ApiError> {
    let pair = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let filters = Filters::parse(pair("filters").unwrap_or(""))?;
    filters.validate(&[
        "unused-for",
        "until",
        "label",
        "label!",
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
    ])?;
    for key in [
        "keep-storage",
        "reserved-space",
        "max-used-space",
        "min-free-space",
    ] {
        if let Some(v) = pair(key)
            && v.parse::<i64>().is_err()
        {
            return Err(ApiError::bad_request(format!(
                "{key} is in bytes and expects an integer, got {v:?}"
            )));
        }
    }
    Ok(Json(json!({"CachesDeleted": [], "SpaceReclaimed": 0})).into_response())
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
    if version < ApiVersion::new(1, 49) {
        info.firewall_backend = None;
    }
    if version >= ApiVersion::new(1, 50) {
        info.bridge_nf_iptables = None;
        info.bridge_nf_ip6tables = None;
    }
    if version < ApiVersion::new(1, 39) {
        for field in [&mut info.kernel_version, &mut info.operating_system] {
            if field.is_empty() {
                *field = "<unknown>".to_owned();
            }
        }
    }
}
