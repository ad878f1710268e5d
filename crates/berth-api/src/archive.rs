//! A container's filesystem over HTTP: `POST /commit`, `GET /containers/{id}/changes`,
//! `GET /containers/{id}/export` and the archive API behind `docker cp`
//! (`HEAD`/`GET`/`PUT /containers/{id}/archive?path=`).
//!
//! Tarballs stream both ways without being held in memory: blocking daemon code
//! writes into a channel that feeds the response body, and reads the request body
//! through a blocking bridge. `GET` resolves and stats the path before answering, so
//! a missing path is a plain 404 and the `X-Docker-Container-Path-Stat` header is
//! present whenever a tarball follows.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::containers::{CommitOptions, ExtractOptions, PathStat};
use berth_daemon::{Daemon, DaemonError};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Json, Pairs, Path, Query, RawBody, flag, pair};
use crate::images::{blocking, body_reader, channel_body};

/// The header carrying a path's stat.
const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/commit", post(commit))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
}

/// `POST /commit`: 201 with `{"Id": ...}`.
async fn commit(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let container = pair(&q, "container").unwrap_or_default().to_string();
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Option<berth_oci::image::ContainerConfig>>(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let opts = CommitOptions {
        repo: pair(&q, "repo").unwrap_or_default().to_string(),
        tag: pair(&q, "tag").unwrap_or_default().to_string(),
        comment: pair(&q, "comment").unwrap_or_default().to_string(),
        author: pair(&q, "author").unwrap_or_default().to_string(),
        // Docker pauses unless told not to (an absent `pause` is true).
        pause: pair(&q, "pause").is_none() || flag(&q, "pause"),
        changes: q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        config,
    };
    let id = d.containers().commit(&container, opts).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id.to_string()}))).into_response())
}

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`.
async fn changes(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let list = d.containers().changes(&id).await?;
    // Docker answers `null` when nothing changed (docker-py's `diff()` is then None).
    if list.is_empty() {
        return Ok(Json(serde_json::Value::Null).into_response());
    }
    let items: Vec<serde_json::Value> = list
        .into_iter()
        .map(|c| {
            json!({
                "Path": String::from_utf8_lossy(&c.path),
                "Kind": c.kind as u8,
            })
        })
        .collect();
    Ok(Json(items).into_response())
}

/// `GET /containers/{id}/export`.
async fn export(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let root = {
        let d = d.clone();
        blocking(move || d.containers().open_root(&id)).await?
    };
    Ok(stream_tar(move |out| root.write_export(out)))
}

fn archive_path(q: &Pairs) -> Result<String, ApiError> {
    match pair(q, "path") {
        // No file name holds a NUL; the syscalls would refuse it as EINVAL, a 500.
        Some(p) if p.contains('\0') => Err(ApiError::bad_request(format!(
            "invalid path {p:?}: it contains a NUL byte"
        ))),
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        // Docker's message, missing space included.
        _ => Err(ApiError::bad_request("bad parameter: pathcannot be empty")),
    }
}

/// `HEAD /containers/{id}/archive?path=`: the stat header only.
async fn head_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let path = archive_path(&q)?;
    let stat = blocking(move || d.containers().open_root(&id)?.stat(&path)).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(r)
}

/// `GET /containers/{id}/archive?path=`: the stat header and a tarball of the path.
async fn get_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let path = archive_path(&q)?;
    let (root, stat) = {
        let path = path.clone();
        blocking(move || {
            let root = d.containers().open_root(&id)?;
            let stat = root.stat(&path)?;
            Ok((root, stat))
        })
        .await?
    };
    let mut r = stream_tar(move |out| root.write_archive(&path, out));
    r.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(r)
}

/// `PUT /containers/{id}/archive?path=`: extracts the (possibly compressed) tarball
/// body into the directory `path`.
async fn put_archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    req: Request,
) -> Result<Response, ApiError> {
    let path = archive_path(&q)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: flag(&q, "copyUIDGID"),
    };
    let body = body_reader(req);
    d.containers().extract_to(&id, &path, body, opts).await?;
    Ok(StatusCode::OK.into_response())
}

/// A response whose tarball body `write` produces on a blocking thread.
fn stream_tar(
    write: impl FnOnce(&mut dyn Write) -> Result<(), DaemonError> + Send + 'static,
) -> Response {
    let (mut out, body) = channel_body();
    tokio::task::spawn_blocking(move || {
        let result = write(&mut out).and_then(|()| {
            out.flush()
                .map_err(|e| DaemonError::internal(e.to_string()))
        });
        if let Err(e) = result {
            // Headers are gone; an aborted body is how the client learns of it.
            tracing::warn!(error = %e, "archive stream aborted");
            let _ = out
                .tx
                .blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    ([(CONTENT_TYPE, "application/x-tar")], body).into_response()
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_vec(stat).expect("stat serializes");
    HeaderValue::from_str(&base64_std(&json))
        .map_err(|e| ApiError(DaemonError::internal(e.to_string())))
}

/// Standard base64 with padding (Go's `base64.StdEncoding`, what the CLI decodes).
fn base64_std(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use berth_daemon::DaemonConfig;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(method: &str, uri: &str) -> (StatusCode, String) {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Arc::new(
            Daemon::open(DaemonConfig {
                data_root: dir.path().join("d"),
                exec_root: dir.path().join("e"),
                cgroup_parent: "berth-test".into(),
                network: Default::default(),
            })
            .unwrap(),
        );
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let r = crate::router(daemon).oneshot(req).await.unwrap();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn archive_without_a_path_is_a_bad_parameter() {
        let (status, body) = call("GET", "/v1.44/containers/x/archive").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("bad parameter: pathcannot be empty"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_nul_in_the_path_is_a_bad_parameter() {
        for method in ["HEAD", "GET", "PUT"] {
            let (status, body) = call(method, "/containers/x/archive?path=/a%00b").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {body}");
        }
    }

    #[tokio::test]
    async fn an_oversized_commit_body_is_a_json_400() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Arc::new(
            Daemon::open(DaemonConfig {
                data_root: dir.path().join("d"),
                exec_root: dir.path().join("e"),
                cgroup_parent: "berth-test".into(),
                network: Default::default(),
            })
            .unwrap(),
        );
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/commit?container=x")
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(vec![b' '; 3 << 20]))
            .unwrap();
        let r = crate::router(daemon).oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("length limit"),
            "{v}"
        );
    }

    #[tokio::test]
    async fn missing_containers_are_404_for_every_route() {
        for (method, uri) in [
            ("POST", "/commit?container=nope"),
            ("GET", "/containers/nope/changes"),
            ("GET", "/containers/nope/export"),
            ("HEAD", "/containers/nope/archive?path=/"),
            ("GET", "/containers/nope/archive?path=/"),
            ("PUT", "/containers/nope/archive?path=/"),
        ] {
            let (status, body) = call(method, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {body}");
            if method != "HEAD" {
                assert!(body.contains("No such container: nope"), "{body}");
            }
        }
    }

    #[test]
    fn base64_matches_go_std_encoding() {
        assert_eq!(base64_std(b""), "");
        assert_eq!(base64_std(b"f"), "Zg==");
        assert_eq!(base64_std(b"fo"), "Zm8=");
        assert_eq!(base64_std(b"foo"), "Zm9v");
        assert_eq!(base64_std(b"{\"name\":\"x\"}"), "eyJuYW1lIjoieCJ9");
    }
}
