//! `/networks/...`: create, list, inspect, remove, prune, connect, disconnect.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_daemon::Daemon;
use berth_daemon::filters::Filters;
use berth_daemon::networks::{CreateNetwork, endpoint_config};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

/// The network routes.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
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
    // Docker refuses values it cannot read instead of matching nothing.
    let dangling: Vec<&str> = filters.get("dangling").collect();
    if dangling.len() > 1 {
        return Err(ApiError::bad_request(
            r#"got more than one value for filter key "dangling""#,
        ));
    }
    if let Some(v) = dangling.first()
        && !matches!(*v, "0" | "false" | "1" | "true")
    {
        return Err(ApiError::bad_request(
            r#"invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")"#,
        ));
    }
    if let Some(t) = filters
        .get("type")
        .find(|t| !matches!(*t, "builtin" | "custom"))
    {
        return Err(ApiError::bad_request(format!(
            "invalid filter: 'type'='{t}'"
        )));
    }
    let all = d.networks().list(&names(&d));
    let keep = |n: &Value| {
        let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
        let builtin = matches!(s("Name").as_str(), "bridge" | "host" | "none");
        let labels: BTreeMap<String, String> =
            serde_json::from_value(n["Labels"].clone()).unwrap_or_default();
        (!filters.contains("name") || filters.get("name").any(|f| s("Name").contains(f)))
            && (!filters.contains("id") || filters.get("id").any(|f| s("Id").starts_with(f)))
            && (!filters.contains("driver") || filters.get("driver").any(|f| f == s("Driver")))
            && (!filters.contains("type")
                || filters
                    .get("type")
                    .any(|f| (f == "builtin") == builtin && (f == "custom") != builtin))
            && (!filters.contains("label") || filters.match_labels("label", Some(&labels)))
            && (!filters.contains("dangling")
                || filters.get("dangling").any(|f| {
                    let unused = n["Containers"].as_object().is_none_or(|c| c.is_empty());
                    (f == "true" || f == "1") == (unused && !builtin)
                }))
    };
    Ok(Json(all.into_iter().filter(keep).collect()))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(d.networks().inspect(&id, &names(&d))?))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    attachable: bool,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Value>,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    // One pool per address family: the first IPv4 one and the first IPv6 one.
    let pools: Vec<Value> = body
        .ipam
        .as_ref()
        .and_then(|i| i["Config"].as_array())
        .cloned()
        .unwrap_or_default();
    let is_v6 = |p: &Value| p["Subnet"].as_str().is_some_and(|s| s.contains(':'));
    let pool = pools
        .iter()
        .find(|p| !is_v6(p))
        .cloned()
        .unwrap_or(Value::Null);
    let pool6 = pools
        .iter()
        .find(|p| is_v6(p))
        .cloned()
        .unwrap_or(Value::Null);
    let text = |pool: &Value, k: &str| {
        pool[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let field = |k: &str| text(&pool, k);
    let enable_ipv6 = body.enable_ipv6.unwrap_or(false)
        || body
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.enable_ipv6"))
            .is_some_and(|v| v == "true");
    let field6 = |k: &str| text(&pool6, k);
    let id = d
        .networks()
        .create_network(CreateNetwork {
            name: body.name,
            driver: body.driver.unwrap_or_default(),
            internal: body.internal,
            attachable: body.attachable,
            subnet: field("Subnet"),
            ip_range: field("IPRange"),
            gateway: field("Gateway"),
            labels: body.labels.unwrap_or_default(),
            options: body.options.unwrap_or_default(),
            ipam_options: body
                .ipam
                .as_ref()
                .and_then(|i| serde_json::from_value(i["Options"].clone()).ok()),
            aux_addresses: serde_json::from_value(pool["AuxiliaryAddresses"].clone())
                .unwrap_or_default(),
            enable_ipv6,
            subnet6: field6("Subnet"),
            ip_range6: field6("IPRange"),
            gateway6: field6("Gateway"),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))).into_response())
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    d.networks().remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    let filters = Filters::parse(&q.filters)?;
    let deleted = d.networks().prune(&filters).await?;
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConnectBody {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<Value>,
    #[serde(default)]
    force: bool,
}

async fn connect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Json(body): Json<ConnectBody>,
) -> Result<StatusCode, ApiError> {
    let record = d.containers().get(&body.container)?.record();
    let cfg = endpoint_config(body.endpoint_config.as_ref().unwrap_or(&Value::Null))?;
    d.networks()
        .connect(&id, &record, record.state.running, cfg)
        .await?;
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Json(body): Json<ConnectBody>,
) -> Result<StatusCode, ApiError> {
    let _ = body.force;
    let record = d.containers().get(&body.container)?.record();
    d.networks().disconnect(&id, &record).await?;
    Ok(StatusCode::OK)
}
