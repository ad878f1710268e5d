//! `/containers/{id}/pause|unpause|top|stats|update`: what berthd does to a running
//! container through its cgroups.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::Daemon;
use berth_daemon::containers::{StatsSample, UpdateRequest};
use bytes::Bytes;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Json, Pairs, Path, Query, pair};

/// How often a stats stream samples (Docker's collector interval).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// The window `stream=false` measures over, so that its CPU % has a baseline; Docker
/// takes one collector interval, a shorter one answers sooner with the same meaning.
const ONE_SHOT_WINDOW: Duration = Duration::from_millis(500);

/// The routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
}

async fn pause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    d.containers().pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    d.containers().unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let top = d
        .containers()
        .top(&id, pair(&q, "ps_args").unwrap_or(""))
        .await?;
    Ok(Json(json!({"Titles": top.titles, "Processes": top.processes})).into_response())
}

async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Json(req): Json<UpdateRequest>,
) -> Result<Response, ApiError> {
    let warnings = d.containers().update(&id, req).await?;
    Ok(Json(json!({"Warnings": warnings})).into_response())
}

/// `stream` (default true) sends a sample every second until the client goes away or
/// the container is removed (a stopped container gets empty samples, as from Docker's
/// collector); otherwise one sample, measured over a short window unless `one-shot`
/// asks for no baseline at all or the container is not running.
async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let entry = d.containers().get(&id)?;
    let truthy = |key: &str, default: bool| {
        pair(&q, key).map_or(default, |v| matches!(v, "1" | "true" | "True" | "TRUE"))
    };
    let stream = truthy("stream", true);
    let one_shot = truthy("one-shot", false);
    if stream && one_shot {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let render = {
        let d = d.clone();
        let entry = entry.clone();
        move |now: &StatsSample, previous: &StatsSample| {
            let mut line = serde_json::to_vec(&d.containers().stats_json(&entry, now, previous))
                .expect("stats serialize");
            line.push(b'\n');
            Bytes::from(line)
        }
    };
    let sampler = Arc::new(d.containers().stats_sampler(&entry));
    let sample = {
        let sampler = sampler.clone();
        move || {
            let sampler = sampler.clone();
            async move {
                tokio::task::spawn_blocking(move || sampler.sample())
                    .await
                    .unwrap_or_default()
            }
        }
    };
    if !stream {
        let first = sample().await;
        let (now, previous) = if one_shot || !sampler.is_running() {
            (first, StatsSample::default())
        } else {
            tokio::time::sleep(ONE_SHOT_WINDOW).await;
            (sample().await, first)
        };
        return Ok((
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            render(&now, &previous),
        )
            .into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut previous = StatsSample::default();
        loop {
            let now = sample().await;
            if sampler.is_removed() {
                return;
            }
            if tx.send(Ok(render(&now, &previous))).await.is_err() {
                return;
            }
            previous = now;
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(STATS_INTERVAL) => {}
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        Body::from_stream(body),
    )
        .into_response())
}
