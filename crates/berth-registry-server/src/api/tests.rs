//! Router tests through `oneshot`, no socket: the flows Docker, skopeo and berth's client
//! drive, with the headers and error bodies they rely on.

use super::*;
use axum::http::Request;
use berth_oci::image::media_type;
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
}

fn fixture(users: Option<Htpasswd>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    Fixture {
        app: router(Arc::new(Registry::new(storage, users))),
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Fixture {
    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert_eq!(
            headers
                .get("Docker-Distribution-API-Version")
                .filter(|_| uri.starts_with("/v2"))
                .map(|v| v.to_str().unwrap()),
            uri.starts_with("/v2").then_some("registry/2.0"),
            "{method} {uri}"
        );
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let a = self
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data,
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED);
        d
    }
}

fn manifest(config: &Digest, config_size: usize, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::DOCKER_MANIFEST,
        "config": {"mediaType": media_type::DOCKER_CONFIG, "digest": config, "size": config_size},
        "layers": [{"mediaType": media_type::DOCKER_LAYER_GZIP, "digest": layer, "size": layer_size}]
    }))
    .unwrap()
}

#[tokio::test]
async fn base_answers_with_the_api_version_header() {
    let f = fixture(None);
    let a = f.send("GET", "/v2/", &[], b"").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, b"{}");
    assert_eq!(f.send("GET", "/v2", &[], b"").await.status, StatusCode::OK);
    assert_eq!(
        f.send("GET", "/v3/", &[], b"").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn chunked_upload_reports_its_range_and_finishes_with_the_digest() {
    let f = fixture(None);
    let start = f.send("POST", "/v2/ns/app/blobs/uploads/", &[], b"").await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header("range"), "0-0");
    let location = start.header("location").to_string();
    let uuid = start.header("docker-upload-uuid").to_string();
    assert_eq!(location, format!("/v2/ns/app/blobs/uploads/{uuid}"));

    let a = f
        .send("PATCH", &location, &[("content-range", "0-4")], b"hello")
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.header("range"), "0-4");
    // A chunk that does not continue the upload is refused, and the answer says where it
    // stands.
    let a = f
        .send("PATCH", &location, &[("content-range", "2-4")], b"llo")
        .await;
    assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(a.header("range"), "0-4");
    let a = f.send("PATCH", &location, &[], b" wor").await;
    assert_eq!(a.header("range"), "0-8");
    let status = f.send("GET", &location, &[], b"").await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-8");

    let d = Digest::of(b"hello world");
    let wrong = Digest::of(b"hello");
    let a = f
        .send("PUT", &format!("{location}?digest={wrong}"), &[], b"ld")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error_code(), "DIGEST_INVALID");
    // The failed upload is gone.
    let a = f.send("GET", &location, &[], b"").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error_code(), "BLOB_UPLOAD_UNKNOWN");

    // Again, finishing with the last chunk in the PUT.
    let start = f.send("POST", "/v2/ns/app/blobs/uploads/", &[], b"").await;
    let location = start.header("location").to_string();
    f.send("PATCH", &location, &[], b"hello wor").await;
    let a = f
        .send("PUT", &format!("{location}?digest={d}"), &[], b"ld")
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.header("location"), format!("/v2/ns/app/blobs/{d}"));
    assert_eq!(a.header("docker-content-digest"), d.to_string());

    let head = f
        .send("HEAD", &format!("/v2/ns/app/blobs/{d}"), &[], b"")
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "11");
    assert!(head.body.is_empty());
    let get = f
        .send("GET", &format!("/v2/ns/app/blobs/{d}"), &[], b"")
        .await;
    assert_eq!(get.body, b"hello world");
    let part = f
        .send(
            "GET",
            &format!("/v2/ns/app/blobs/{d}"),
            &[("range", "bytes=6-")],
            b"",
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 6-10/11");
    assert_eq!(part.body, b"world");
    let bad = f
        .send(
            "GET",
            &format!("/v2/ns/app/blobs/{d}"),
            &[("range", "bytes=20-")],
            b"",
        )
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn cancelled_upload_is_unknown_afterwards() {
    let f = fixture(None);
    let start = f.send("POST", "/v2/app/blobs/uploads/", &[], b"").await;
    let location = start.header("location").to_string();
    assert_eq!(
        f.send("DELETE", &location, &[], b"").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.send("PATCH", &location, &[], b"x").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn mount_links_a_blob_from_another_repository_or_starts_an_upload() {
    let f = fixture(None);
    let d = f.push_blob("a", b"shared").await;
    let a = f
        .send(
            "POST",
            &format!("/v2/b/blobs/uploads/?mount={d}&from=a"),
            &[],
            b"",
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.header("docker-content-digest"), d.to_string());
    assert_eq!(
        f.send("HEAD", &format!("/v2/b/blobs/{d}"), &[], b"")
            .await
            .status,
        StatusCode::OK
    );
    let other = Digest::of(b"absent");
    let a = f
        .send(
            "POST",
            &format!("/v2/c/blobs/uploads/?mount={other}&from=a"),
            &[],
            b"",
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    // Never visible in a repository it was not pushed or mounted to.
    let a = f.send("GET", &format!("/v2/c/blobs/{d}"), &[], b"").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error_code(), "BLOB_UNKNOWN");
    assert_eq!(a.json()["errors"][0]["detail"]["digest"], d.to_string());
    // Deleting removes it from the repository only.
    assert_eq!(
        f.send("DELETE", &format!("/v2/b/blobs/{d}"), &[], b"")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        f.send("HEAD", &format!("/v2/b/blobs/{d}"), &[], b"")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.send("HEAD", &format!("/v2/a/blobs/{d}"), &[], b"")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn manifest_push_needs_its_blobs_and_answers_with_content_type_and_digest() {
    let f = fixture(None);
    let config = f.push_blob("app", b"{}").await;
    let layer = Digest::of(b"layer");
    let body = manifest(&config, 2, &layer, 5);
    let ct = [("content-type", media_type::DOCKER_MANIFEST)];
    let a = f.send("PUT", "/v2/app/manifests/latest", &ct, &body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(a.json()["errors"][0]["detail"]["digest"], layer.to_string());

    f.push_blob("app", b"layer").await;
    let a = f.send("PUT", "/v2/app/manifests/latest", &ct, &body).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let d = Digest::of(&body);
    assert_eq!(a.header("docker-content-digest"), d.to_string());
    assert_eq!(a.header("location"), format!("/v2/app/manifests/{d}"));

    for reference in ["latest".to_string(), d.to_string()] {
        let get = f
            .send("GET", &format!("/v2/app/manifests/{reference}"), &[], b"")
            .await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.header("content-type"), media_type::DOCKER_MANIFEST);
        assert_eq!(get.header("docker-content-digest"), d.to_string());
        assert_eq!(get.body, body);
        let head = f
            .send("HEAD", &format!("/v2/app/manifests/{reference}"), &[], b"")
            .await;
        assert_eq!(head.header("content-length"), body.len().to_string());
        assert!(head.body.is_empty());
    }

    let a = f
        .send(
            "PUT",
            "/v2/app/manifests/latest",
            &ct,
            b"{\"schemaVersion\": 2",
        )
        .await;
    assert_eq!(a.error_code(), "MANIFEST_INVALID");
    let a = f
        .send("PUT", &format!("/v2/app/manifests/{config}"), &ct, &body)
        .await;
    assert_eq!(a.error_code(), "DIGEST_INVALID");

    let a = f
        .send("DELETE", &format!("/v2/app/manifests/{d}"), &[], b"")
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let a = f.send("GET", "/v2/app/manifests/latest", &[], b"").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error_code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_a_link_header() {
    let f = fixture(None);
    let config = f.push_blob("app", b"{}").await;
    let layer = f.push_blob("app", b"layer").await;
    let body = manifest(&config, 2, &layer, 5);
    for tag in ["c", "a", "b"] {
        let a = f
            .send("PUT", &format!("/v2/app/manifests/{tag}"), &[], &body)
            .await;
        assert_eq!(a.status, StatusCode::CREATED);
    }
    let all = f.send("GET", "/v2/app/tags/list", &[], b"").await;
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "app", "tags": ["a", "b", "c"]})
    );
    assert!(all.headers.get("link").is_none());
    let page = f.send("GET", "/v2/app/tags/list?n=2", &[], b"").await;
    assert_eq!(page.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        page.header("link"),
        "</v2/app/tags/list?last=b&n=2>; rel=\"next\""
    );
    let next = f
        .send("GET", "/v2/app/tags/list?last=b&n=2", &[], b"")
        .await;
    assert_eq!(next.json()["tags"], serde_json::json!(["c"]));
    assert!(next.headers.get("link").is_none());
    let bad = f.send("GET", "/v2/app/tags/list?n=x", &[], b"").await;
    assert_eq!(bad.error_code(), "PAGINATION_NUMBER_INVALID");
    let unknown = f.send("GET", "/v2/nope/tags/list", &[], b"").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "NAME_UNKNOWN");

    f.push_blob("z/y", b"x").await;
    let cat = f.send("GET", "/v2/_catalog?n=1", &[], b"").await;
    assert_eq!(cat.json(), serde_json::json!({"repositories": ["app"]}));
    assert_eq!(
        cat.header("link"),
        "</v2/_catalog?last=app&n=1>; rel=\"next\""
    );
    let cat = f.send("GET", "/v2/_catalog?last=app", &[], b"").await;
    assert_eq!(cat.json(), serde_json::json!({"repositories": ["z/y"]}));
}

#[tokio::test]
async fn bad_names_digests_and_methods_get_spec_errors() {
    let f = fixture(None);
    let a = f.send("GET", "/v2/Upper/tags/list", &[], b"").await;
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "NAME_INVALID")
    );
    let a = f.send("GET", "/v2/a/../b/tags/list", &[], b"").await;
    assert_eq!(a.error_code(), "NAME_INVALID");
    let a = f.send("GET", "/v2/app/blobs/sha256:zz", &[], b"").await;
    assert_eq!(a.error_code(), "DIGEST_INVALID");
    let a = f
        .send("GET", "/v2/app/blobs/uploads/../../x", &[], b"")
        .await;
    assert_ne!(a.status, StatusCode::OK);
    let a = f.send("POST", "/v2/app/tags/list", &[], b"").await;
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let errors = a.json();
    let e = &errors["errors"][0];
    assert!(e["message"].is_string() && e.get("detail").is_some());
}

#[tokio::test]
async fn basic_auth_guards_every_route_with_a_challenge() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, format!("alice:{hash}\n")).unwrap();
    let f = fixture(Some(Htpasswd::load(&file).unwrap()));
    let a = f.send("GET", "/v2/", &[], b"").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.header("www-authenticate"),
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(a.error_code(), "UNAUTHORIZED");
    let a = f
        .send(
            "GET",
            "/v2/",
            &[("authorization", "Basic YWxpY2U6d3Jvbmc=")],
            b"",
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let ok = [("authorization", "Basic YWxpY2U6czNjcmV0")];
    assert_eq!(f.send("GET", "/v2/", &ok, b"").await.status, StatusCode::OK);
    let a = f.send("POST", "/v2/app/blobs/uploads/", &[], b"").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        f.send("POST", "/v2/app/blobs/uploads/", &ok, b"")
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[test]
fn routes_are_taken_apart_from_the_end() {
    let d = format!("sha256:{}", "a".repeat(64));
    let r = |s: &str| RepoName::parse(s).unwrap();
    assert_eq!(
        Route::parse("/v2/a/blobs/b/manifests/latest").unwrap(),
        Some(Route::Manifest(
            r("a/blobs/b"),
            ManifestRef::Tag("latest".into())
        ))
    );
    assert_eq!(
        Route::parse(&format!("/v2/x/manifests/y/blobs/{d}")).unwrap(),
        Some(Route::Blob(r("x/manifests/y"), d.parse().unwrap()))
    );
    assert_eq!(
        Route::parse("/v2/ns/app/blobs/uploads").unwrap(),
        Some(Route::Uploads(r("ns/app")))
    );
    assert_eq!(Route::parse("/v2/_catalog").unwrap(), Some(Route::Catalog));
    assert_eq!(Route::parse("/v2/app").unwrap(), None);
}
