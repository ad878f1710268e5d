//! Registry endpoints: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`
//! and `POST /auth`.
//!
//! Pull and push answer with Docker's JSON progress stream. What can fail before any
//! byte moves (a bad reference, no such tag, refused credentials) is resolved first and
//! answered as an ordinary HTTP error, as dockerd does; the docker CLI prints those as
//! `Error response from daemon: ...` and `docker run` relies on it to report a failed
//! implicit pull. Later failures are an `errorDetail` message in the 200 stream.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use berth_daemon::images::{ProgressMessage, PullRequest};
use berth_daemon::{Daemon, DaemonError};
use berth_oci::Digest;
use berth_oci::reference::Reference;
use berth_registry::{AuthConfig, PlatformSpec};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::{Pairs, pair};

/// The credentials a client sent in `X-Registry-Auth`.
pub(crate) fn registry_auth(headers: &HeaderMap) -> Result<AuthConfig, ApiError> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        None => Ok(AuthConfig::default()),
        Some(v) => AuthConfig::from_header(v).map_err(ApiError::bad_request),
    }
}

/// One JSON line of Docker's progress stream.
fn message_line(m: &ProgressMessage) -> Bytes {
    let mut v = json!({ "status": m.status });
    if let Some(id) = &m.id {
        v["id"] = Value::String(id.clone());
        v["progressDetail"] = match m.progress {
            Some((current, total)) => json!({"current": current, "total": total}),
            None => json!({}),
        };
    }
    line(v)
}

fn line(v: Value) -> Bytes {
    let mut out = serde_json::to_vec(&v).expect("json serializes");
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn error_line(e: &DaemonError) -> Bytes {
    line(json!({"errorDetail": {"message": e.message()}, "error": e.message()}))
}

/// The references a pull request names: `fromImage` with `tag` (a tag or a digest);
/// `None` for the tag means every tag of the repository (`pull --all-tags`).
fn pull_reference(q: &Pairs) -> Result<(Reference, bool), ApiError> {
    let image = pair(q, "fromImage").unwrap_or_default();
    let tag = pair(q, "tag").unwrap_or_default();
    let bad = |e: &dyn std::fmt::Display| ApiError(DaemonError::invalid(e.to_string()));
    let mut reference = Reference::parse_normalized(image).map_err(|e| bad(&e))?;
    if !tag.is_empty() {
        reference = match tag.parse::<Digest>() {
            Ok(d) => reference.without_tag_or_digest().with_digest(d),
            Err(_) => reference
                .without_tag_or_digest()
                .with_tag(tag)
                .map_err(|e| bad(&e))?,
        };
    }
    let all_tags = reference.tag().is_none() && reference.digest().is_none();
    Ok((reference, all_tags))
}

/// `POST /images/create?fromImage=...`: pulls.
pub(crate) async fn pull(
    d: Arc<Daemon>,
    q: Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = registry_auth(&headers)?;
    let platform = match pair(&q, "platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(
            PlatformSpec::parse(p).map_err(|e| ApiError(DaemonError::invalid(e.to_string())))?,
        ),
        None => None,
    };
    let (reference, all_tags) = pull_reference(&q)?;
    let references = if all_tags {
        d.images()
            .remote_tags(&reference, &auth)
            .await?
            .into_iter()
            .filter_map(|t| reference.with_tag(&t).ok())
            .collect()
    } else {
        vec![reference.clone()]
    };
    if references.is_empty() {
        return Err(ApiError(DaemonError::not_found(format!(
            "no tags found for {}",
            reference.familiar_string()
        ))));
    }
    let mut prepared = Vec::new();
    for r in references {
        // Only the first can fail as a plain HTTP error; later ones fail in the stream.
        let req = PullRequest {
            reference: r,
            platform: platform.clone(),
            auth: auth.clone(),
        };
        if prepared.is_empty() {
            prepared.push(Ok(d.images().prepare_pull(req).await?));
        } else {
            prepared.push(Err(req));
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<ProgressMessage>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Bytes>();
    let rt = tokio::runtime::Handle::current();
    let forward = {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if out_tx.send(message_line(&m)).is_err() {
                    break;
                }
            }
        })
    };
    tokio::spawn(async move {
        for p in prepared {
            let p = match p {
                Ok(p) => p,
                Err(req) => match d.images().prepare_pull(req).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = out_tx.send(error_line(&e));
                        return;
                    }
                },
            };
            let (d2, tx2, rt2) = (d.clone(), tx.clone(), rt.clone());
            let result =
                tokio::task::spawn_blocking(move || d2.images().finish_pull(p, &rt2, &tx2))
                    .await
                    .unwrap_or_else(|e| Err(DaemonError::internal(format!("pull failed: {e}"))));
            if let Err(e) = result {
                drop(tx);
                let _ = forward.await;
                let _ = out_tx.send(error_line(&e));
                return;
            }
        }
        drop(tx);
        let _ = forward.await;
    });
    let stream = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /images/{name}/push?tag=`: pushes one tag, or every tag of the repository.
pub(crate) async fn push(
    d: Arc<Daemon>,
    name: String,
    q: Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = registry_auth(&headers)?;
    let tag = pair(&q, "tag").unwrap_or_default().to_string();
    let targets = d.images().plan_push(&name, &tag)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<ProgressMessage>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Bytes>();
    let rt = tokio::runtime::Handle::current();
    let forward = {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if out_tx.send(message_line(&m)).is_err() {
                    break;
                }
            }
        })
    };
    tokio::spawn(async move {
        let result = tokio::task::spawn_blocking(move || d.images().push(targets, &auth, &rt, &tx))
            .await
            .unwrap_or_else(|e| Err(DaemonError::internal(format!("push failed: {e}"))));
        let _ = forward.await;
        match result {
            Ok(results) => {
                for r in results {
                    let _ = out_tx.send(line(json!({
                        "progressDetail": {},
                        "aux": {"Tag": r.tag, "Digest": r.digest.to_string(), "Size": r.size},
                    })));
                }
            }
            Err(e) => {
                let _ = out_tx.send(error_line(&e));
            }
        }
    });
    let stream = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /auth`: checks credentials against a registry, as `docker login` asks.
pub(crate) async fn auth(
    axum::extract::State(d): axum::extract::State<Arc<Daemon>>,
    crate::extract::Json(config): crate::extract::Json<AuthConfig>,
) -> Result<Response, ApiError> {
    d.images().login(&config).await?;
    Ok(
        crate::extract::Json(json!({"Status": "Login Succeeded", "IdentityToken": ""}))
            .into_response(),
    )
}

/// The routes this module adds besides the image routes' hooks.
pub(crate) fn routes() -> axum::Router<Arc<Daemon>> {
    axum::Router::new().route("/auth", axum::routing::post(auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pull_reference_takes_tag_or_digest_from_the_tag_parameter() {
        let (r, all) = pull_reference(&q(&[("fromImage", "busybox"), ("tag", "1.36")])).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        assert!(!all);
        let d = format!("sha256:{}", "a".repeat(64));
        let (r, _) =
            pull_reference(&q(&[("fromImage", "localhost:5000/app"), ("tag", &d)])).unwrap();
        assert_eq!(r.to_string(), format!("localhost:5000/app@{d}"));
        let (r, _) = pull_reference(&q(&[("fromImage", "app:2"), ("tag", "")])).unwrap();
        assert_eq!(r.tag(), Some("2"));
    }

    #[test]
    fn pull_without_any_tag_means_all_tags() {
        let (_, all) = pull_reference(&q(&[("fromImage", "busybox")])).unwrap();
        assert!(all);
        assert!(pull_reference(&q(&[("fromImage", "Busybox")])).is_err());
    }

    #[test]
    fn progress_lines_carry_docker_fields() {
        let line = message_line(&ProgressMessage {
            id: Some("abc".into()),
            status: "Downloading".into(),
            progress: Some((1, 2)),
        });
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["progressDetail"]["current"], 1);
        assert_eq!(v["progressDetail"]["total"], 2);
        assert_eq!(v["id"], "abc");
        let status = message_line(&ProgressMessage {
            id: None,
            status: "Digest: sha256:x".into(),
            progress: None,
        });
        assert_eq!(&status[..], b"{\"status\":\"Digest: sha256:x\"}\r\n");
    }
}
