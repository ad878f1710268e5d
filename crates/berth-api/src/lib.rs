//! The Docker Engine API over axum: HTTP in, typed daemon calls, Docker's answers out.
//!
//! [`router`] builds the whole API as one [`axum::Router`] over a shared
//! [`berth_daemon::Daemon`]. Handlers turn requests into typed calls and results into
//! Docker's JSON; they hold no business logic. Errors travel as [`ApiError`], whose
//! response is Docker's status and `{"message": ...}` body.
//!
//! Design choices:
//! - Routes are written once, without the `/v1.NN` prefix. A middleware wrapped around
//!   the routed service strips the prefix before routing, refuses versions outside
//!   1.24–1.51 with Docker's messages, and passes the negotiated [`ApiVersion`] to
//!   handlers; because it rewrites the URI before the router sees it, catch-all routes
//!   (`/images/{*name}` for names with slashes) work under every prefix.
//! - Every response, errors and 404s included, carries `Api-Version`, `Ostype`,
//!   `Server` and `Docker-Experimental`: the docker CLI negotiates from `Api-Version`
//!   and falls back to 1.24 when it is missing.
//! - Request bodies and query strings are read with [`extract::Json`] and
//!   [`extract::Query`], which reject in Docker's shape; axum's own extractors would
//!   answer 415/422 in plain text.
//! - The router is tested with `tower::ServiceExt::oneshot`, no socket; the binary
//!   (`berthd`) owns listening.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod archive;
mod build;
mod containers;
mod distribution;
mod error;
mod events;
mod exec;
pub mod extract;
mod images;
mod networks;
mod resources;
mod system;
mod version;
mod volumes;
mod websocket;

use std::sync::Arc;

use axum::Router;
use berth_daemon::Daemon;

pub use error::ApiError;
pub use version::{ApiVersion, ParseApiVersionError};

/// The routes, unversioned, before the version middleware wraps them. New endpoint
/// groups are merged here.
fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(build::routes())
        .merge(distribution::routes())
        .merge(containers::routes())
        .merge(archive::routes())
        .merge(exec::routes())
        .merge(volumes::routes())
        .merge(events::routes())
        .merge(resources::routes())
        .merge(networks::routes())
}

/// The Engine API over `daemon`, as a service for hyper (or `oneshot` in tests).
pub fn router(daemon: Arc<Daemon>) -> Router {
    with_version_layer(routes(), daemon)
}

/// Adds the fallback, the state and the version middleware to `routes`.
fn with_version_layer(routes: Router<Arc<Daemon>>, daemon: Arc<Daemon>) -> Router {
    let routed = routes.fallback(error::fallback).with_state(daemon);
    // `Router::layer` would run the middleware after routing, too late to strip the
    // version prefix; wrapping the finished router and mounting it as the fallback
    // of an empty router runs it first, for every path and method.
    let negotiated = tower::Layer::layer(&axum::middleware::from_fn(version::negotiate), routed);
    Router::new().fallback_service(negotiated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use berth_daemon::DaemonConfig;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// A stand-in for the image routes: a catch-all whose name has slashes, answering
    /// with the name it saw and the negotiated version.
    async fn echo(
        axum::extract::Path(rest): axum::extract::Path<String>,
        version: ApiVersion,
    ) -> String {
        format!("{rest} @ {version}")
    }

    async fn get_body(uri: &str) -> (StatusCode, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = DaemonConfig {
            data_root: dir.path().join("d"),
            exec_root: dir.path().join("e"),
            cgroup_parent: "berth".into(),
            network: Default::default(),
        };
        let daemon = Arc::new(Daemon::open(config).unwrap());
        let routes = routes().route("/echo/{*rest}", get(echo));
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let r = with_version_layer(routes, daemon)
            .oneshot(req)
            .await
            .unwrap();
        let status = r.status();
        (
            status,
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn catch_all_route_sees_names_with_slashes_under_any_prefix() {
        assert_eq!(
            get_body("/v1.41/echo/localhost:5000/app:1/json").await,
            (StatusCode::OK, "localhost:5000/app:1/json @ 1.41".into())
        );
        assert_eq!(
            get_body("/echo/localhost:5000/app:1/json?x=1").await,
            (StatusCode::OK, "localhost:5000/app:1/json @ 1.51".into())
        );
    }
}
