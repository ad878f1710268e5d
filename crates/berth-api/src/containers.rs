//! `/containers/...`: create, start, stop, kill, restart, wait, remove, rename,
//! inspect, list, logs, attach, prune.
//!
//! Attach hijacks the connection as Docker does: the answer is `101 UPGRADED`, after
//! which the socket carries the container's output (8-byte multiplexed frames without
//! a TTY, raw bytes with one) and the client's stdin. A client may attach before
//! start (the docker CLI's `run` does): its stream is connected to the shim before the
//! process execs, so no output is lost.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_daemon::containers::attach::{DetachScanner, parse_detach_keys};
use berth_daemon::containers::logs::{self, LogOptions};
use berth_daemon::containers::{Config, CreateRequest, HostConfig, WaitCondition};
use berth_daemon::filters::Filters;
use berth_daemon::{Daemon, DaemonError};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ApiError;
use crate::extract::{Json, Pairs, Path, Query, docker_bool, flag, pair};

/// The container routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/attach/ws", get(attach_ws))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/{alias}", delete(remove_link))
}

/// `DELETE /containers/{parent}/{alias}?link=1`: the link's full name has a slash,
/// so it arrives as two path segments. Without `link` it names no container.
async fn remove_link(
    State(d): State<Arc<Daemon>>,
    Path((parent, alias)): Path<(String, String)>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    if !q.link {
        return Err(ApiError(DaemonError::not_found(format!(
            "No such container: {parent}/{alias}"
        ))));
    }
    d.containers().remove_link(&parent, &alias)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct CreateQuery {
    #[serde(default)]
    name: Option<String>,
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<CreateQuery>,
    Json(mut body): Json<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    let host_config = match body.remove("HostConfig") {
        Some(Value::Null) | None => HostConfig::default(),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
    };
    let networking_config = body.remove("NetworkingConfig").filter(|v| !v.is_null());
    let config: Config = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (id, warnings) = d
        .containers()
        .create(CreateRequest {
            name: q.name,
            config,
            host_config,
            networking_config,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<Pairs>) -> Result<Response, ApiError> {
    let filters = Filters::parse(pair(&q, "filters").unwrap_or(""))?;
    let limit = pair(&q, "limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    Ok(Json(
        d.containers()
            .list(flag(&q, "all"), limit, flag(&q, "size"), &filters)?,
    )
    .into_response())
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    version: crate::version::ApiVersion,
) -> Result<Response, ApiError> {
    let mut v = d.containers().inspect(&id, flag(&q, "size"))?;
    if version < crate::version::ApiVersion::new(1, 45) {
        berth_daemon::containers::add_legacy_aliases(&mut v);
    }
    Ok(Json(v).into_response())
}

async fn start(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(if d.containers().start(&id).await? {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }
    .into_response())
}

#[derive(Deserialize)]
struct StopQuery {
    #[serde(default)]
    t: Option<String>,
    #[serde(default)]
    signal: Option<String>,
}

fn timeout(t: &Option<String>) -> Result<Option<i64>, ApiError> {
    match t.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {v}"))),
    }
}

async fn stop(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    let stopped = d
        .containers()
        .stop(&id, timeout(&q.t)?, q.signal.as_deref())
        .await?;
    Ok(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }
    .into_response())
}

async fn restart(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    d.containers()
        .restart(&id, timeout(&q.t)?, q.signal.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn kill(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    d.containers()
        .kill(&id, q.signal.as_deref().unwrap_or(""))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct WaitQuery {
    #[serde(default)]
    condition: Option<String>,
}

async fn wait(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let condition = match q.condition.as_deref() {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )));
        }
    };
    // Resolve now, so an unknown container is a 404 rather than a stream.
    d.containers().get(&id)?;
    // The headers go out at once and the body at exit, as Docker does: the docker CLI
    // waits for the headers of this request before it sends `start`.
    let (tx, rx) = tokio::sync::oneshot::channel::<Bytes>();
    tokio::spawn(async move {
        let body = match d.containers().wait(&id, condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.message()}}),
        };
        let mut line = serde_json::to_vec(&body).expect("json serializes");
        line.push(b'\n');
        let _ = tx.send(Bytes::from(line));
    });
    let stream = futures_util::stream::once(async move { rx.await.map_err(std::io::Error::other) });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default, deserialize_with = "docker_bool")]
    force: bool,
    #[serde(default, deserialize_with = "docker_bool")]
    v: bool,
    #[serde(default, deserialize_with = "docker_bool")]
    link: bool,
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    d.containers().remove(&id, q.force, q.v).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct RenameQuery {
    #[serde(default)]
    name: String,
}

async fn rename(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> Result<Response, ApiError> {
    d.containers().rename(&id, &q.name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(d): State<Arc<Daemon>>, Query(q): Query<Pairs>) -> Result<Response, ApiError> {
    let filters = Filters::parse(pair(&q, "filters").unwrap_or(""))?;
    let (deleted, space) = d.containers().prune(&filters).await?;
    Ok(Json(json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": space})).into_response())
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

pub(crate) fn stream_content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// `GET /containers/{id}/logs`.
async fn logs(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let entry = d.containers().get(&id)?;
    let record = entry.record();
    let opts = LogOptions {
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        since: match pair(&q, "since").filter(|s| !s.is_empty() && *s != "0") {
            Some(s) => Some(berth_daemon::filters::parse_time(s)?),
            None => None,
        },
        until: match pair(&q, "until").filter(|s| !s.is_empty() && *s != "0") {
            Some(s) => Some(berth_daemon::filters::parse_time(s)?),
            None => None,
        },
        tail: pair(&q, "tail")
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|t| *t >= 0)
            .map(|t| t as usize),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = flag(&q, "follow");
    let timestamps = flag(&q, "timestamps");
    let details = flag(&q, "details").then(|| logs::detail_prefix(&record));
    let tty = record.config.tty;
    let path = d
        .containers()
        .container_dir(&entry)
        .join(format!("{}-json.log", record.id));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let render = |lines: Vec<logs::LogLine>| -> Vec<u8> {
            let mut out = Vec::new();
            for l in lines {
                let mut text = Vec::new();
                if timestamps {
                    text.extend_from_slice(berth_daemon::filters::go_time(l.time).as_bytes());
                    text.push(b' ');
                }
                if let Some(prefix) = &details {
                    text.extend_from_slice(prefix.as_bytes());
                }
                text.extend_from_slice(l.log.as_bytes());
                if tty {
                    out.extend_from_slice(&text);
                } else {
                    out.extend_from_slice(&frame(if l.stream == "stderr" { 2 } else { 1 }, &text));
                }
            }
            out
        };
        let (lines, mut offset) = {
            let (p, o) = (path.clone(), opts.clone());
            tokio::task::spawn_blocking(move || logs::read(&p, &o))
                .await
                .unwrap_or_default()
        };
        if tx.send(Ok(Bytes::from(render(lines)))).await.is_err() || !follow {
            return;
        }
        let opts = LogOptions { tail: None, ..opts };
        loop {
            let running = entry.record().state.running;
            let (lines, next) = logs::read_from(&path, offset, &opts);
            offset = next;
            if !lines.is_empty() && tx.send(Ok(Bytes::from(render(lines)))).await.is_err() {
                return;
            }
            if !running || opts.until.is_some_and(|u| chrono::Utc::now() > u) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(CONTENT_TYPE, stream_content_type(tty))],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `?h=&w=` of the resize endpoints (containers and execs): unsigned, absent is 0, as
/// Docker parses them; larger than a terminal can be is clamped.
pub(crate) fn terminal_size(q: &Pairs) -> Result<(u16, u16), ApiError> {
    let dim = |key: &str, what: &str| -> Result<u16, ApiError> {
        match pair(q, key).unwrap_or("") {
            "" => Ok(0),
            v => v
                .parse::<u32>()
                .map(|n| n.min(u32::from(u16::MAX)) as u16)
                .map_err(|e| ApiError::bad_request(format!("invalid resize {what} {v:?}: {e}"))),
        }
    };
    Ok((dim("h", "height")?, dim("w", "width")?))
}

/// `POST /containers/{id}/resize`.
async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let (h, w) = terminal_size(&q)?;
    d.containers().resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// Joins a hijacked client connection and a shim stream until the shim's output ends
/// or the client detaches. With `stdin` (the detach sequence), the client's bytes go
/// to the shim, less the sequence; when the client's input ends the shim is told with
/// a half-close (it decides what that means for the container's stdin). Without it
/// the shim's write half stays open: dropping it would read as "this client left".
/// Returns whether the client detached, and the client's write half for the caller
/// to shut down (after anything that must happen before the client sees the end).
pub(crate) async fn splice<C>(
    client: C,
    shim: tokio::net::UnixStream,
    stdin: Option<Vec<u8>>,
    output: Output,
) -> (bool, tokio::io::WriteHalf<C>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let Some(keys) = stdin else {
            // Keep the write half (and so the shim's view of this client) alive.
            std::future::pending::<()>().await;
            return;
        };
        let mut scanner = DetachScanner::new(keys);
        let mut buf = vec![0u8; 8192];
        let mut pass = Vec::with_capacity(8192);
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pass.clear();
            let detach = scanner.feed(&buf[..n], &mut pass);
            if !pass.is_empty() && shim_w.write_all(&pass).await.is_err() {
                return;
            }
            if detach {
                // The detach is reported before anything reaches the shim: the
                // splice must end as "detached", not as "the output ended".
                let _ = detach_tx.send(());
                // Whatever the client sends after detaching is read and dropped for
                // a while: closing a unix socket with unread input makes the client's
                // next read fail with "connection reset" instead of a clean end.
                let drain = async {
                    while let Ok(n) = client_r.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(DETACH_DRAIN, drain).await;
                drop(shim_w);
                return;
            }
        }
        let _ = shim_w.shutdown().await;
        std::future::pending::<()>().await;
    });
    let detached = tokio::select! {
        _ = forward(&mut shim_r, &mut client_w, output) => false,
        Ok(()) = detach_rx => true,
    };
    // After a detach the input task ends by itself, once it has drained the client.
    if !detached {
        input.abort();
    }
    (detached, client_w)
}

/// How long a detached client's further input is drained before its connection
/// closes.
const DETACH_DRAIN: Duration = Duration::from_secs(2);

/// The shape of the output a hijacked client is sent. The shim frames a stream
/// without a TTY (Docker's 8-byte stdout/stderr headers) and passes a TTY's bytes
/// raw; Docker decides the shape of an exec's output by the *start* request's `Tty`,
/// not the exec's, so the two can disagree (docker-py starts a TTY exec with
/// `Tty: false` and reads frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The shim's stream as it is.
    AsIs,
    /// Raw TTY bytes, sent as stdout frames.
    Frame,
    /// Framed output, sent raw (headers removed).
    Unframe,
}

async fn forward<R, W>(shim: &mut R, client: &mut W, output: Output) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    if output == Output::AsIs {
        return tokio::io::copy(shim, client).await.map(drop);
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::with_capacity(buf.len() + 8);
    let mut unframer = crate::websocket::Unframer::default();
    loop {
        let n = shim.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        out.clear();
        match output {
            Output::Frame => {
                out.extend_from_slice(&[1, 0, 0, 0]);
                out.extend_from_slice(&(n as u32).to_be_bytes());
                out.extend_from_slice(&buf[..n]);
            }
            _ => unframer.feed(&buf[..n], &mut out),
        }
        if !out.is_empty() {
            client.write_all(&out).await?;
        }
    }
}

/// `GET /containers/{id}/attach/ws`: the attach stream over a websocket (see
/// [`crate::websocket`]); binary messages from API 1.42, text before, as Docker.
async fn attach_ws(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    version: crate::version::ApiVersion,
    mut req: Request,
) -> Result<Response, ApiError> {
    let entry = d.containers().get(&id)?;
    let record = entry.record();
    if !record.state.running {
        return Err(ApiError(DaemonError::conflict(
            "You cannot attach to a stopped container, start it first",
        )));
    }
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("not a websocket handshake: no Sec-WebSocket-Key"))?;
    let (stdin, stdout, stderr) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    let tty = record.config.tty;
    let binary = version >= crate::version::ApiVersion::new(1, 42);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(client) = on_upgrade.await else { return };
        let Ok(shim) = d
            .containers()
            .attach_stream(&entry, stdin, stdout, stderr)
            .await
        else {
            return;
        };
        crate::websocket::splice_ws(TokioIo::new(client), shim, stdin, tty, binary).await;
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&crate::websocket::accept_key(&key))
            .map_err(|e| ApiError::bad_request(format!("bad Sec-WebSocket-Key: {e}")))?,
    );
    Ok(resp)
}

/// How long a hijacked connection waits between its headers and data that is ready
/// at once (see the attach handler).
const HIJACK_SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// `POST /containers/{id}/attach`: hijacks the connection.
async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let entry = d.containers().get(&id)?;
    let record = entry.record();
    let (stdin, stdout, stderr) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    let created = record.state.status == "created";
    let (want_logs, want_stream) = (flag(&q, "logs"), flag(&q, "stream"));
    if !record.state.running && !created && want_stream {
        return Err(ApiError(DaemonError::conflict(
            "You cannot attach to a stopped container, start it first",
        )));
    }
    let tty = record.config.tty;
    let detach_keys = parse_detach_keys(pair(&q, "detachKeys").unwrap_or(""))?;
    let upgrade = req.headers().get(UPGRADE).is_some();
    if !upgrade {
        return Err(ApiError::bad_request(
            "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    d.containers().attached(&entry);
    let waiter = if record.state.running || !want_stream {
        None
    } else {
        Some(d.containers().wait_for_start(&entry))
    };
    let log_path = d
        .containers()
        .container_dir(&entry)
        .join(format!("{}-json.log", record.id));
    tokio::spawn(async move {
        let mut client = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        // `logs=1`: what the container wrote so far comes first, framed as the
        // stream is.
        if want_logs && (stdout || stderr) {
            // docker-py reads the answer's headers through a buffered reader and then
            // the stream from the raw socket: bytes that arrive together with the
            // headers are lost to it. Docker's daemon takes a moment to open its log
            // reader; give the client that moment too, or `attach(logs=True)` of an
            // exited container returns nothing about half the time.
            tokio::time::sleep(HIJACK_SETTLE).await;
            let opts = LogOptions {
                stdout,
                stderr,
                since: None,
                until: None,
                tail: None,
            };
            let (lines, _) = tokio::task::spawn_blocking(move || logs::read(&log_path, &opts))
                .await
                .unwrap_or_default();
            let mut out = Vec::new();
            for l in lines {
                if tty {
                    out.extend_from_slice(l.log.as_bytes());
                } else {
                    let stream = if l.stream == "stderr" { 2 } else { 1 };
                    out.extend_from_slice(&frame(stream, l.log.as_bytes()));
                }
            }
            if client.write_all(&out).await.is_err() {
                return;
            }
        }
        if !want_stream {
            let _ = client.shutdown().await;
            return;
        }
        let (shim, ack) = match waiter {
            None => (
                d.containers()
                    .attach_stream(&entry, stdin, stdout, stderr)
                    .await,
                None,
            ),
            Some(w) => match w.await {
                Ok(ack) => (
                    d.containers()
                        .attach_stream(&entry, stdin, stdout, stderr)
                        .await,
                    Some(ack),
                ),
                Err(_) => return,
            },
        };
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
        let Ok(shim) = shim else { return };
        let (detached, mut client_w) =
            splice(client, shim, stdin.then_some(detach_keys), Output::AsIs).await;
        let _ = client_w.shutdown().await;
        tracing::debug!(container = %id, detached, "attach stream ended");
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(stream_content_type(tty)),
    );
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    Ok(resp)
}
