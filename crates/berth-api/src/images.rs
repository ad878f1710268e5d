//! `/images/...`: load, save, import, list, inspect, history, tag, delete, prune.
//!
//! Image names may contain slashes and colons (`localhost:5000/team/app:1`), so every
//! per-image endpoint goes through one catch-all route and is dispatched on its last
//! path segment, as Docker's `{name:.*}` routes are.
//!
//! Archive bodies are never held in memory: the request body is bridged into the
//! blocking store code as a `Read`, and archives going out are written by blocking code
//! into a channel that feeds the response body.

use std::io::{self, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::filters::Filters;
use berth_daemon::images::ImportOptions;
use berth_daemon::{Daemon, DaemonError};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::ApiError;
use crate::extract::{Json, Pairs, Query, docker_bool, flag, pair};

/// The image routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/create", post(create))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(per_image_get).post(per_image_post).delete(delete),
        )
}

fn filters(pairs: &Pairs) -> Result<Filters, ApiError> {
    Ok(Filters::parse(pair(pairs, "filters").unwrap_or(""))?)
}

/// Runs blocking store code off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(ApiError(DaemonError::internal(format!(
            "image operation failed: {e}"
        )))),
    }
}

/// The request body as a blocking `Read`.
pub(crate) fn body_reader(req: Request) -> impl io::Read + Send + 'static {
    let stream = req.into_body().into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// A `Write` for blocking code whose bytes become a streamed response body.
pub(crate) struct ChannelWriter {
    pub(crate) tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A streamed body fed by blocking code through a [`ChannelWriter`].
pub(crate) fn channel_body() -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        Body::from_stream(stream),
    )
}

/// One line of Docker's JSON message stream.
fn json_line(value: serde_json::Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&value).expect("json serializes");
    line.extend_from_slice(b"\r\n");
    line
}

fn error_line(e: &DaemonError) -> Vec<u8> {
    json_line(json!({"errorDetail": {"message": e.message()}, "error": e.message()}))
}

async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<Pairs>) -> Result<Response, ApiError> {
    let filters = filters(&q)?;
    let all = flag(&q, "all");
    Ok(Json(d.images().list(all, &filters)?).into_response())
}

/// `POST /images/load`: always 200 with a JSON stream; a failure after the body
/// started is an error message in the stream, as Docker does.
async fn load(State(d): State<Arc<Daemon>>, req: Request) -> Response {
    let reader = body_reader(req);
    let (mut out, body) = channel_body();
    tokio::task::spawn_blocking(move || {
        let mut lines: Vec<String> = Vec::new();
        let result = d
            .images()
            .load(reader, &mut |line: &str| lines.push(line.to_string()));
        for line in lines {
            let _ = out.write_all(&json_line(json!({ "stream": format!("{line}\n") })));
        }
        if let Err(e) = result {
            let _ = out.write_all(&error_line(&e));
        }
        let _ = out.flush();
    });
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn save(d: Arc<Daemon>, names: Vec<String>) -> Result<Response, ApiError> {
    let plan = {
        let d = d.clone();
        blocking(move || d.images().plan_save(&names)).await?
    };
    let (mut out, body) = channel_body();
    tokio::task::spawn_blocking(move || {
        let result = d.images().save(plan, &mut out).and_then(|()| {
            out.flush()
                .map_err(|e| DaemonError::internal(e.to_string()))
        });
        if let Err(e) = result {
            // Headers are gone; an aborted body is how the client learns of it.
            tracing::warn!(error = %e, "image save aborted");
            let _ = out.tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    Ok(([(CONTENT_TYPE, "application/x-tar")], body).into_response())
}

async fn save_many(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let names: Vec<String> = q
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    save(d, names).await
}

/// `POST /images/create`: `fromSrc` imports; `fromImage` pulls (see `distribution`).
async fn create(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(src) = pair(&q, "fromSrc") else {
        return crate::distribution::pull(d, q, req.headers().clone()).await;
    };
    if src != "-" {
        return Err(ApiError::bad_request(format!(
            "importing from a URL is not supported: {src}"
        )));
    }
    let opts = ImportOptions {
        repo: pair(&q, "repo").unwrap_or_default().to_string(),
        tag: pair(&q, "tag").unwrap_or_default().to_string(),
        changes: q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        message: pair(&q, "message").unwrap_or_default().to_string(),
        source: src.to_string(),
    };
    if let Err(e) = d.images().check_import(&opts) {
        // Read what the client is still sending before answering, as Go's server does:
        // closing on an unread upload makes the client report a broken pipe instead of
        // this error.
        drain(req, DRAIN_LIMIT).await;
        return Err(e.into());
    }
    let reader = body_reader(req);
    let id = blocking(move || d.images().import(reader, &opts)).await?;
    let mut body = json_line(json!({"status": id.to_string()}));
    body.truncate(body.len() - 2);
    body.push(b'\n');
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// How much of a refused upload is read and discarded before the error is sent.
pub(crate) const DRAIN_LIMIT: u64 = 64 << 20;

pub(crate) async fn drain(req: Request, limit: u64) {
    use http_body_util::BodyExt;
    let mut body = req.into_body();
    let mut seen = 0u64;
    while seen < limit {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0),
            _ => break,
        }
    }
}

async fn prune(State(d): State<Arc<Daemon>>, Query(q): Query<Pairs>) -> Result<Response, ApiError> {
    let filters = filters(&q)?;
    let report = blocking(move || d.images().prune(&filters)).await?;
    Ok(Json(report).into_response())
}

/// From API 1.50 on Docker leaves out the `Config` fields that belong to a container's
/// configuration, not an image's (always empty in an image). `Container` and
/// `ContainerConfig` stay at every version although Docker drops them from 1.45:
/// docker-compose 1.29 speaks the newest version the daemon offers and fails with a
/// KeyError on `ContainerConfig` when it recreates a container.
fn adapt_inspect_to_version(inspect: &mut serde_json::Value, version: crate::version::ApiVersion) {
    if version < crate::version::ApiVersion::new(1, 50) {
        return;
    }
    if let Some(config) = inspect["Config"].as_object_mut() {
        for key in [
            "Hostname",
            "Domainname",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Image",
        ] {
            config.remove(key);
        }
    }
}

/// Splits `name/verb` from the catch-all; names may contain slashes.
fn split_verb(rest: &str) -> (&str, &str) {
    rest.rsplit_once('/').unwrap_or((rest, ""))
}

async fn per_image_get(
    State(d): State<Arc<Daemon>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    version: crate::version::ApiVersion,
) -> Result<Response, ApiError> {
    let (name, verb) = split_verb(&rest);
    let name = name.to_string();
    match verb {
        "json" => {
            let mut v = d.images().inspect(&name)?;
            adapt_inspect_to_version(&mut v, version);
            Ok(Json(v).into_response())
        }
        "history" => Ok(Json(d.images().history(&name)?).into_response()),
        "get" => save(d, vec![name]).await,
        _ => Ok(crate::error::not_found()),
    }
}

struct TagQuery {
    repo: String,
    tag: String,
}

async fn per_image_post(
    State(d): State<Arc<Daemon>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    Query(pairs): Query<Pairs>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let (name, verb) = split_verb(&rest);
    if verb == "push" {
        return crate::distribution::push(d, name.to_string(), pairs, headers).await;
    }
    let q = TagQuery {
        repo: pair(&pairs, "repo").unwrap_or_default().to_string(),
        tag: pair(&pairs, "tag").unwrap_or_default().to_string(),
    };
    match verb {
        "tag" => {
            d.images().tag(name, &q.repo, &q.tag)?;
            Ok(StatusCode::CREATED.into_response())
        }
        _ => Ok(crate::error::not_found()),
    }
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default, deserialize_with = "docker_bool")]
    force: bool,
    #[serde(default, deserialize_with = "docker_bool")]
    noprune: bool,
}

async fn delete(
    State(d): State<Arc<Daemon>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    let items = blocking(move || d.images().remove(&name, q.force, !q.noprune)).await?;
    Ok(Json(items).into_response())
}
