//! The client against a scripted registry on 127.0.0.1: behaviours a real registry
//! shows only sometimes (expiring tokens, schema 1, redirects, lying content).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_oci::Digest;
use berth_registry::{Credentials, Endpoint, PlatformSpec, RegistryClient, RegistryError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

type Handler = dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync;

/// Serves `handler` on a free port; returns the port.
async fn serve(handler: Arc<Handler>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let resp = handler(&req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

fn respond(
    status: u16,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(body.into())).unwrap()
}

fn client(port: u16, creds: Option<Credentials>) -> RegistryClient {
    RegistryClient::new(
        Endpoint::for_domain(&format!("127.0.0.1:{port}"), &[]),
        "team/app",
        creds,
        false,
    )
}

fn manifest_json(config: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": []
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn expired_token_is_refreshed_on_401_and_reused_otherwise() {
    let generation = Arc::new(AtomicUsize::new(1));
    let token_requests = Arc::new(AtomicUsize::new(0));
    let config = b"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".to_vec();
    let manifest = manifest_json(&config);
    let port_cell = Arc::new(std::sync::OnceLock::<u16>::new());
    let handler: Arc<Handler> = {
        let (generation, token_requests, port_cell) = (
            generation.clone(),
            token_requests.clone(),
            port_cell.clone(),
        );
        let (config, manifest) = (config.clone(), manifest.clone());
        Arc::new(move |req| {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            if path == "/token" {
                assert!(
                    query.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                    "{query}"
                );
                assert!(query.contains("service=fake"), "{query}");
                let auth = req
                    .headers()
                    .get("authorization")
                    .unwrap()
                    .to_str()
                    .unwrap();
                assert_eq!(auth, "Basic dTpw");
                token_requests.fetch_add(1, Ordering::SeqCst);
                let t = format!("t{}", generation.load(Ordering::SeqCst));
                return respond(200, &[], format!("{{\"token\":\"{t}\"}}"));
            }
            let want = format!("Bearer t{}", generation.load(Ordering::SeqCst));
            let ok = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v.to_str().unwrap() == want);
            if !ok {
                let port = port_cell.get().unwrap();
                return respond(
                    401,
                    &[(
                        "www-authenticate",
                        format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\""),
                    )],
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#,
                );
            }
            if path.contains("/manifests/") {
                return respond(
                    200,
                    &[(
                        "content-type",
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    )],
                    manifest.clone(),
                );
            }
            respond(200, &[], config.clone())
        })
    };
    let port = serve(handler).await;
    port_cell.set(port).unwrap();
    let c = client(
        port,
        Some(Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        }),
    );
    let pulled = c
        .resolve("1", "app:1", &PlatformSpec::host())
        .await
        .unwrap();
    assert_eq!(token_requests.load(Ordering::SeqCst), 1);
    c.fetch_blob_bytes(&pulled.manifest.config.digest)
        .await
        .unwrap();
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "the token is reused"
    );
    generation.store(2, Ordering::SeqCst);
    let got = c
        .fetch_blob_bytes(&pulled.manifest.config.digest)
        .await
        .unwrap();
    assert_eq!(got, config);
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        2,
        "refreshed once on 401"
    );
}

#[tokio::test]
async fn schema1_manifests_are_refused_with_docker_notice() {
    let port = serve(Arc::new(|_req| {
        respond(
            200,
            &[(
                "content-type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            )],
            r#"{"schemaVersion":1,"name":"team/app","tag":"old","fsLayers":[]}"#,
        )
    }))
    .await;
    let err = client(port, None)
        .resolve("old", "app:old", &PlatformSpec::host())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Schema1 { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("schema 1 support has been removed")
    );
}

#[tokio::test]
async fn manifest_by_digest_must_match_its_digest() {
    let port = serve(Arc::new(|_req| {
        respond(
            200,
            &[(
                "content-type",
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            manifest_json(b"x"),
        )
    }))
    .await;
    let asked = Digest::of(b"something else");
    let err = client(port, None)
        .fetch_manifest(&asked.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { expected, .. } if expected == asked));
}

#[tokio::test]
async fn index_resolves_to_the_wanted_platform_and_blobs_follow_redirects() {
    let amd = manifest_json(b"amd64");
    let arm = manifest_json(b"arm64");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&amd).to_string(),
             "size": amd.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&arm).to_string(),
             "size": arm.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    })
    .to_string()
    .into_bytes();
    let handler: Arc<Handler> = {
        let (amd, arm, index) = (amd.clone(), arm.clone(), index.clone());
        Arc::new(move |req| {
            let path = req.uri().path();
            let oci =
                |b: &Vec<u8>, mt: &str| respond(200, &[("content-type", mt.into())], b.clone());
            if path.ends_with("/manifests/multi") {
                oci(&index, "application/vnd.oci.image.index.v1+json")
            } else if path.ends_with(&Digest::of(&amd).to_string()) {
                oci(&amd, "application/vnd.oci.image.manifest.v1+json")
            } else if path.ends_with(&Digest::of(&arm).to_string()) {
                oci(&arm, "application/vnd.oci.image.manifest.v1+json")
            } else if path.contains("/blobs/") {
                respond(307, &[("location", "/storage/blob-data".into())], "")
            } else if path == "/storage/blob-data" {
                respond(200, &[], "layer bytes")
            } else {
                respond(
                    404,
                    &[],
                    r#"{"errors":[{"code":"NOT_FOUND","message":"nope"}]}"#,
                )
            }
        })
    };
    let port = serve(handler).await;
    let c = client(port, None);
    let arm64 = PlatformSpec::parse("linux/arm64/v8").unwrap();
    let pulled = c.resolve("multi", "app:multi", &arm64).await.unwrap();
    assert_eq!(pulled.digest, Digest::of(&index));
    assert_eq!(pulled.manifest_digest, Digest::of(&arm));
    let err = c
        .resolve(
            "multi",
            "app:multi",
            &PlatformSpec::parse("linux/s390x").unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no matching manifest for linux/s390x"),
        "{err}"
    );

    let mut reader = c.open_blob(&Digest::of(b"whatever")).await.unwrap();
    let mut data = String::new();
    reader.read_to_string(&mut data).await.unwrap();
    assert_eq!(data, "layer bytes");
}

/// Serves `/v2/` over TLS with a fresh certificate for 127.0.0.1 from a fresh CA;
/// returns the port and the CA's PEM.
async fn serve_tls() -> (u16, Vec<u8>, tempfile::TempDir) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::ServerConfig;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // webpki refuses a CA certificate as the server's own: make a CA and a leaf.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=berth-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "cert.pem",
    ]);
    let (key, cert) = (p("key.pem"), p("cert.pem"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(|_req| async { Ok::<_, Infallible>(respond(200, &[], "{}")) });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    let pem = std::fs::read(p("ca.pem")).unwrap();
    (port, pem, dir)
}

#[tokio::test]
async fn https_trusts_the_registrys_own_ca_from_the_certs_dir_only() {
    let (port, pem, _keys) = serve_tls().await;
    let authority = format!("127.0.0.1:{port}");
    let endpoint = Endpoint {
        authority: authority.clone(),
        scheme: berth_registry::Scheme::Https,
    };
    let empty = tempfile::tempdir().unwrap();
    let untrusted =
        RegistryClient::new(endpoint.clone(), "", None, false).with_certs_dir(empty.path());
    let err = untrusted.ping().await.unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");

    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir(certs.path().join(&authority)).unwrap();
    std::fs::write(certs.path().join(&authority).join("ca.crt"), pem).unwrap();
    let trusted = RegistryClient::new(endpoint, "", None, false).with_certs_dir(certs.path());
    trusted.ping().await.unwrap();
}
