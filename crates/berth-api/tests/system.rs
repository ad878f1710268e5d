//! The system endpoints and the version layer, through the whole router with
//! `oneshot` and no socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use berth_daemon::{Daemon, DaemonConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn daemon() -> (tempfile::TempDir, Arc<Daemon>) {
    let dir = tempfile::tempdir().unwrap();
    let config = DaemonConfig {
        data_root: dir.path().join("data"),
        exec_root: dir.path().join("exec"),
        cgroup_parent: "berth".into(),
        network: Default::default(),
    };
    (dir, Arc::new(Daemon::open(config).unwrap()))
}

async fn send(method: Method, uri: &str) -> Response {
    let (_dir, d) = daemon();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    berth_api::router(d).oneshot(req).await.unwrap()
}

async fn body_bytes(r: Response) -> Vec<u8> {
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}

async fn body_json(r: Response) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(r).await).unwrap()
}

fn assert_common_headers(r: &Response) {
    assert_eq!(r.headers()["api-version"], "1.51");
    assert_eq!(r.headers()["ostype"], "linux");
    assert_eq!(r.headers()["docker-experimental"], "false");
    assert!(
        r.headers()[header::SERVER]
            .to_str()
            .unwrap()
            .ends_with(" (linux)")
    );
}

#[tokio::test]
async fn ping_get_answers_ok_with_docker_headers() {
    let r = send(Method::GET, "/_ping").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_common_headers(&r);
    assert_eq!(
        r.headers()[header::CACHE_CONTROL],
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(r.headers()[header::PRAGMA], "no-cache");
    assert_eq!(r.headers()["builder-version"], "1");
    assert_eq!(r.headers()["swarm"], "inactive");
    assert_eq!(body_bytes(r).await, b"OK");
}

#[tokio::test]
async fn ping_head_has_headers_and_no_body() {
    let r = send(Method::HEAD, "/v1.44/_ping").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_common_headers(&r);
    assert_eq!(r.headers()["swarm"], "inactive");
    assert_eq!(r.headers()[header::CONTENT_LENGTH], "0");
    assert!(body_bytes(r).await.is_empty());
}

#[tokio::test]
async fn version_reports_engine_and_api_range() {
    let r = send(Method::GET, "/v1.41/version").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let v = body_json(r).await;
    assert_eq!(v["ApiVersion"], "1.51");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["Components"][0]["Name"], "Engine");
    assert!(v["Platform"]["Name"].is_string());
    assert!(
        ["amd64", "arm64"].contains(&v["Arch"].as_str().unwrap())
            || !v["Arch"].as_str().unwrap().is_empty()
    );
}

#[tokio::test]
async fn info_has_docker_shape() {
    let r = send(Method::GET, "/info").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    for key in [
        "ID",
        "Containers",
        "Images",
        "Driver",
        "NCPU",
        "MemTotal",
        "KernelVersion",
        "OperatingSystem",
        "OSType",
        "Architecture",
        "Name",
        "DockerRootDir",
        "CgroupDriver",
        "CgroupVersion",
        "ServerVersion",
        "IndexServerAddress",
        "RegistryConfig",
        "Runtimes",
        "DefaultRuntime",
        "SecurityOptions",
        "Warnings",
        "Swarm",
        "Plugins",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["Driver"], "overlay2");
    assert_eq!(v["OSType"], "linux");
    assert!(v["NCPU"].as_u64().unwrap() >= 1);
    assert!(v["DockerRootDir"].as_str().unwrap().ends_with("/data"));
    assert_eq!(v["SecurityOptions"][0], "name=seccomp,profile=builtin");
    assert!(["1", "2"].contains(&v["CgroupVersion"].as_str().unwrap()));
}

#[tokio::test]
async fn info_before_1_25_lists_security_option_names_only() {
    let v = body_json(send(Method::GET, "/v1.24/info").await).await;
    assert_eq!(v["SecurityOptions"][0], "seccomp");
}

#[tokio::test]
async fn version_prefix_is_stripped_for_every_supported_version() {
    for uri in [
        "/v1.24/_ping",
        "/v1.41/_ping",
        "/v1.44/_ping",
        "/_ping",
        "/v1.44/_ping?x=1",
    ] {
        let r = send(Method::GET, uri).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn too_new_client_is_refused_with_docker_message() {
    let r = send(Method::GET, "/v1.52/version").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_common_headers(&r);
    assert_eq!(
        body_json(r).await,
        serde_json::json!({"message": "client version 1.52 is too new. Maximum supported API version is 1.51"})
    );
}

#[tokio::test]
async fn too_old_client_is_refused_in_plain_text_like_docker() {
    let r = send(Method::GET, "/v1.12/version").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_common_headers(&r);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        String::from_utf8(body_bytes(r).await).unwrap(),
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\n"
    );
}

#[tokio::test]
async fn unknown_route_is_docker_404() {
    for (method, uri) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1.44/nope/deeper"),
        (Method::POST, "/images/a/b:1/json"),
    ] {
        let r = send(method, uri).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_common_headers(&r);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body_json(r).await,
            serde_json::json!({"message": "page not found"})
        );
    }
}

#[tokio::test]
async fn wrong_method_on_known_path_is_404_like_docker() {
    let r = send(Method::DELETE, "/v1.44/version").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(r).await,
        serde_json::json!({"message": "page not found"})
    );
}

#[tokio::test]
async fn options_on_any_path_is_empty_200() {
    let r = send(Method::OPTIONS, "/v1.44/containers/json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(body_bytes(r).await.is_empty());
}
