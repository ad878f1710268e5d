//! `GET /events`: the daemon's event feed as a stream of JSON objects, one per line.
//!
//! As Docker's router: the kept events since `since` come first, then live ones until
//! `until` passes or the client goes away; with an `until` in the past the answer ends
//! after the replay. The headers go out at once, so a client sees the stream open
//! before any event happens (`docker events` waits on them).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_daemon::Daemon;
use berth_daemon::events::EventFilter;
use berth_daemon::filters::{Filters, parse_time};
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::extract::{Pairs, Query, pair};

/// The events route.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new().route("/events", get(events))
}

fn line(event: &berth_daemon::events::Event) -> Bytes {
    let mut json = serde_json::to_vec(event).expect("events serialize");
    json.push(b'\n');
    Bytes::from(json)
}

async fn events(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
) -> Result<Response, ApiError> {
    let time = |key: &str| -> Result<_, ApiError> {
        match pair(&q, key).filter(|s| !s.is_empty()) {
            Some(v) => Ok(Some(parse_time(v)?)),
            None => Ok(None),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            pair(&q, "since").unwrap_or_default(),
            pair(&q, "until").unwrap_or_default()
        )));
    }
    let filter = EventFilter::new(Filters::parse(pair(&q, "filters").unwrap_or(""))?)?;
    let (past, mut live) = d.events().subscribe(since, until, &filter);
    let only_past = until.is_some_and(|u| u < Utc::now());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        // An empty first chunk makes hyper send the headers now.
        if tx.send(Ok(Bytes::new())).await.is_err() {
            return;
        }
        for event in &past {
            if tx.send(Ok(line(event))).await.is_err() {
                return;
            }
        }
        if only_past {
            return;
        }
        let deadline = until.map(|u| {
            let left = (u - Utc::now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                () = tx.closed() => return,
                got = next => match got {
                    None => return,
                    Some(Ok(event)) => {
                        if filter.includes(&event) && tx.send(Ok(line(&event))).await.is_err() {
                            return;
                        }
                    }
                    // A slow client loses the oldest events rather than stalling the daemon.
                    Some(Err(RecvError::Lagged(_))) => {}
                    Some(Err(RecvError::Closed)) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        Body::from_stream(stream),
    )
        .into_response())
}
