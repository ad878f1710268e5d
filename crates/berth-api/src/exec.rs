//! `/containers/{id}/exec` and `/exec/{id}/...`: create, start (hijacked unless
//! detached), resize, inspect.
//!
//! As Docker does, `start` checks that the exec exists, then hijacks the connection,
//! and only then starts the process: a failure to start (a missing command) is written
//! into the stream as stdout text, and the exec's exit code (126/127) is what the
//! client learns from inspect.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::Daemon;
use berth_daemon::containers::exec::{ExecConfig, ExecStartConfig};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::containers::{Output, splice, stream_content_type, terminal_size};
use crate::error::ApiError;
use crate::extract::{Json, Pairs, Path, Query};

/// The exec routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Json(config): Json<ExecConfig>,
) -> Result<Response, ApiError> {
    let exec_id = d.containers().exec_create(&id, config)?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))).into_response())
}

/// Frames `text` as Docker's stdout frame (or raw with a TTY).
fn stdout_text(tty: bool, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    if !tty {
        let len = (text.len() as u32).to_be_bytes();
        out.extend_from_slice(&[1, 0, 0, 0, len[0], len[1], len[2], len[3]]);
    }
    out.extend_from_slice(text.as_bytes());
    out
}

async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let upgrade = req.headers().get(UPGRADE).is_some();
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
    let start: ExecStartConfig = if body.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let info = d.containers().exec_inspect(&id).await?;
    if start.detach {
        d.containers().exec_start(&id, &start).await?;
        // Docker answers a detached start with an empty 200.
        return Ok(StatusCode::OK.into_response());
    }
    // The shape of the output follows the start request's `Tty`, as Docker's does.
    let exec_tty = info["ProcessConfig"]["tty"].as_bool().unwrap_or(false);
    let tty = start.tty;
    let output = match (exec_tty, tty) {
        (true, false) => Output::Frame,
        (false, true) => Output::Unframe,
        _ => Output::AsIs,
    };
    if !upgrade {
        // Without an upgrade Docker streams the output as a plain 200 body, and the
        // client has no way to send input: the exec's stdin ends at once.
        let exec = d.containers().exec_start(&id, &start).await?;
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs
            .shutdown()
            .await
            .map_err(|e| berth_daemon::DaemonError::internal(format!("exec stream: {e}")))?;
        if let Some(exec) = exec {
            tokio::spawn(relay(d, id, ours, exec, output));
        }
        let mut resp = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(theirs)));
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(stream_content_type(tty)),
        );
        return Ok(resp);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let client = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        match d.containers().exec_start(&id, &start).await {
            Ok(Some(exec)) => relay(d, id, client, exec, output).await,
            Ok(None) => {}
            Err(e) => {
                let mut client = client;
                let _ = client
                    .write_all(&stdout_text(tty, &format!("{}\r\n", e.message())))
                    .await;
                let _ = client.shutdown().await;
            }
        }
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

/// Carries an exec's streams between its shim and the client until the process ends
/// or the client detaches, then records which of the two happened.
async fn relay<C>(
    d: Arc<Daemon>,
    id: String,
    client: C,
    exec: berth_daemon::containers::exec::ExecStream,
    output: Output,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (detached, mut client_w) = splice(client, exec.stream, exec.stdin, output).await;
    if detached {
        d.containers().exec_detached(&id);
    } else {
        // The exit code first: the client inspects the exec as soon as its stream ends.
        d.containers().exec_finished(&id).await;
    }
    let _ = client_w.shutdown().await;
}

async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let (h, w) = terminal_size(&q)?;
    d.containers().exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(d.containers().exec_inspect(&id).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_reach_the_client_as_stdout_text() {
        assert_eq!(
            stdout_text(false, "no\r\n"),
            b"\x01\x00\x00\x00\x00\x00\x00\x04no\r\n"
        );
        assert_eq!(stdout_text(true, "no\r\n"), b"no\r\n");
    }
}
