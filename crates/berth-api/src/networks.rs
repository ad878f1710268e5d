//! `/networks/...`: list and inspect of the built-in networks (`bridge`, `host`,
//! `none`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use berth_daemon::Daemon;
use berth_daemon::filters::Filters;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

/// The network routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/{id}", get(inspect))
}

#[derive(Deserialize)]
struct FilterQuery {
    #[serde(default)]
    filters: String,
}

/// Container ID → name, for the networks' `Containers`.
fn names(d: &Daemon) -> BTreeMap<String, String> {
    d.containers()
        .all()
        .into_iter()
        .map(|e| e.record())
        .map(|r| (r.id, r.name))
        .collect()
}

async fn list(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let filters = Filters::parse(&q.filters)?;
    filters.validate(&["name", "id", "driver", "type", "label", "scope", "dangling"])?;
    let all = d.networks().list(&names(&d));
    let keep = |n: &Value| {
        let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
        (!filters.contains("name") || filters.get("name").any(|f| s("Name").contains(f)))
            && (!filters.contains("id") || filters.get("id").any(|f| s("Id").starts_with(f)))
            && (!filters.contains("driver") || filters.get("driver").any(|f| f == s("Driver")))
            && (!filters.contains("type") || filters.get("type").any(|f| f == "builtin"))
    };
    Ok(Json(all.into_iter().filter(keep).collect()))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(d.networks().inspect(&id, &names(&d))?))
}
