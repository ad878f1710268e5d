//! `/volumes/...`: create, list, inspect, remove, prune (local driver).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::Daemon;
use berth_daemon::filters::Filters;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Json, Path, Query, docker_bool};

/// The volume routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

#[derive(Deserialize)]
struct FilterQuery {
    #[serde(default)]
    filters: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let v = d.volumes().create(
        body.name.as_deref().unwrap_or(""),
        body.driver.as_deref().unwrap_or(""),
        body.labels.unwrap_or_default(),
        body.driver_opts.unwrap_or_default(),
    )?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<FilterQuery>,
) -> Result<Response, ApiError> {
    let filters = Filters::parse(&q.filters)?;
    let c = d.containers().clone();
    Ok(Json(
        d.volumes()
            .list(&filters, &|name| !c.volume_users(name).is_empty())?,
    )
    .into_response())
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(d.volumes().inspect(&name)?).into_response())
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default, deserialize_with = "docker_bool")]
    force: bool,
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    let users = d.containers().volume_users(&name);
    d.volumes().remove(&name, q.force, &users)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<FilterQuery>,
) -> Result<Response, ApiError> {
    let filters = Filters::parse(&q.filters)?;
    let c = d.containers().clone();
    let (removed, freed) = d
        .volumes()
        .prune(&filters, &|name| !c.volume_users(name).is_empty())?;
    let deleted: Value = if removed.is_empty() {
        Value::Null
    } else {
        json!(removed)
    };
    Ok(Json(json!({"VolumesDeleted": deleted, "SpaceReclaimed": freed})).into_response())
}
