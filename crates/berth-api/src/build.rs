//! `POST /build`: the classic builder's endpoint.
//!
//! The body is the context tarball; the options are query parameters and registry
//! credentials come in `X-Registry-Config`. The answer is Docker's JSON message
//! stream (`stream`, `status`/`progressDetail` for pulls, `aux` with each stage's
//! image ID, `errorDetail`). As dockerd does, a failure before any output (bad
//! options, no Dockerfile, a parse error) is a plain HTTP error, later ones are an
//! `errorDetail` message in the 200 stream, and `q=1` holds the output back and sends
//! only the image ID (or, on failure, everything and the error).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use berth_daemon::build::{BuildFailure, BuildMessage, BuildOptions};
use berth_daemon::{Daemon, DaemonError};
use berth_registry::AuthConfig;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::{Pairs, Query, flag, pair};
use crate::images::{DRAIN_LIMIT, body_reader, drain};

/// The build route.
pub(crate) fn routes() -> Router<Arc<Daemon>> {
    Router::new().route("/build", post(build))
}

fn line(v: Value) -> Bytes {
    let mut out = serde_json::to_vec(&v).expect("json serializes");
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn message_line(m: &BuildMessage) -> Bytes {
    match m {
        BuildMessage::Stream(s) => line(json!({ "stream": s })),
        BuildMessage::Aux(id) => line(json!({"aux": {"ID": id.to_string()}})),
        BuildMessage::Progress(p) => {
            let mut v = json!({ "status": p.status });
            if let Some(id) = &p.id {
                v["id"] = Value::String(id.clone());
                v["progressDetail"] = match p.progress {
                    Some((current, total)) => json!({"current": current, "total": total}),
                    None => json!({}),
                };
            }
            line(v)
        }
    }
}

fn failure_line(f: &BuildFailure) -> Bytes {
    let message = f.error.message();
    let detail = match f.code {
        Some(code) => json!({ "code": code, "message": message }),
        None => json!({ "message": message }),
    };
    line(json!({ "errorDetail": detail, "error": message }))
}

fn json_param<T: serde::de::DeserializeOwned + Default>(
    q: &Pairs,
    key: &str,
    what: &str,
) -> Result<T, ApiError> {
    match pair(q, key).filter(|v| !v.is_empty()) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_str(v)
            .map_err(|e| ApiError(DaemonError::invalid(format!("error reading {what}: {e}")))),
    }
}

fn int_param(q: &Pairs, key: &str) -> Result<i64, ApiError> {
    match pair(q, key).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| {
            ApiError(DaemonError::invalid(format!(
                "invalid value for {key}: {v}"
            )))
        }),
    }
}

/// The options of a build request, as dockerd's `newImageBuildOptions` reads them.
fn options(q: &Pairs, headers: &HeaderMap) -> Result<BuildOptions, ApiError> {
    let remove = if flag(q, "forcerm") {
        true
    } else {
        match pair(q, "rm") {
            None | Some("") => true,
            Some(_) => flag(q, "rm"),
        }
    };
    if pair(q, "remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError(DaemonError::invalid(
            "building from a remote context is not supported",
        )));
    }
    Ok(BuildOptions {
        dockerfile: pair(q, "dockerfile").unwrap_or_default().to_string(),
        tags: q
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        build_args: json_param::<BTreeMap<String, Option<String>>>(q, "buildargs", "build args")?,
        labels: json_param::<BTreeMap<String, String>>(q, "labels", "labels")?,
        target: pair(q, "target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        pull: flag(q, "pull"),
        no_cache: flag(q, "nocache"),
        cache_from: json_param::<Vec<String>>(q, "cachefrom", "cache from")?,
        // `host:ip` pairs: comma-separated in one parameter (the docker CLI) or one
        // parameter each (docker-py).
        extra_hosts: q
            .iter()
            .filter(|(k, _)| k == "extrahosts")
            .flat_map(|(_, v)| v.split(','))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        remove,
        force_remove: flag(q, "forcerm"),
        memory: int_param(q, "memory")?,
        cpu_period: int_param(q, "cpuperiod")?,
        cpu_quota: int_param(q, "cpuquota")?,
        cpu_shares: int_param(q, "cpushares")?,
        network_mode: pair(q, "networkmode").unwrap_or_default().to_string(),
        auth_configs: registry_config(headers),
    })
}

/// `X-Registry-Config`: base64url JSON, registry → credentials. Undecodable values
/// are ignored, as dockerd ignores them.
fn registry_config(headers: &HeaderMap) -> HashMap<String, AuthConfig> {
    headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
        .and_then(decode_base64)
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default()
}

/// Standard or URL-safe base64, padding optional.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

async fn build(
    State(d): State<Arc<Daemon>>,
    Query(q): Query<Pairs>,
    req: Request,
) -> Result<Response, ApiError> {
    let opts = match options(&q, req.headers())
        .and_then(|o| d.build().check_options(&o).map(|()| o).map_err(ApiError))
    {
        Ok(o) => o,
        Err(e) => {
            // Read what the client is still sending before answering, as Go's server
            // does: closing on an unread upload makes the client see a broken pipe.
            drain(req, DRAIN_LIMIT).await;
            return Err(e);
        }
    };
    let quiet = flag(&q, "q");
    let reader = body_reader(req);
    let d2 = d.clone();
    let ctx = tokio::task::spawn_blocking(move || d2.build().receive_context(reader))
        .await
        .map_err(|e| ApiError(DaemonError::internal(format!("build failed: {e}"))))??;
    let (tx, mut rx) = mpsc::unbounded_channel::<BuildMessage>();
    let task = tokio::spawn(async move {
        let result = d.build().build(&ctx, &opts, &tx).await;
        drop(ctx);
        result
    });
    // Nothing has been sent yet: a failure now is an HTTP error.
    let first = tokio::select! {
        m = rx.recv() => m,
    };
    let Some(first) = first else {
        let result = task
            .await
            .map_err(|e| ApiError(DaemonError::internal(format!("build failed: {e}"))))?;
        return match result {
            Err(f) => Err(ApiError(f.error)),
            Ok(id) => Ok((
                [(CONTENT_TYPE, "application/json")],
                line(json!({"stream": format!("{id}\n")})),
            )
                .into_response()),
        };
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut emit = |m: &BuildMessage| {
            let bytes = message_line(m);
            if quiet {
                held.push(bytes);
            } else {
                let _ = out_tx.send(bytes);
            }
        };
        emit(&first);
        while let Some(m) = rx.recv().await {
            emit(&m);
        }
        let result = task.await.unwrap_or_else(|e| {
            Err(BuildFailure {
                error: DaemonError::internal(format!("build failed: {e}")),
                code: None,
            })
        });
        match result {
            Ok(id) => {
                if quiet {
                    let _ = out_tx.send(line(json!({"stream": format!("{id}\n")})));
                }
            }
            Err(f) => {
                for b in held {
                    let _ = out_tx.send(b);
                }
                let _ = out_tx.send(failure_line(&f));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Pairs {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_read_docker_query_parameters() {
        let q = pairs(&[
            ("t", "a:1"),
            ("t", "b"),
            ("buildargs", r#"{"X":"1","Y":null}"#),
            ("labels", r#"{"l":"v"}"#),
            ("rm", "0"),
            ("memory", "1048576"),
            ("cachefrom", r#"["img"]"#),
            ("networkmode", "none"),
        ]);
        let o = options(&q, &HeaderMap::new()).unwrap();
        assert_eq!(o.tags, ["a:1", "b"]);
        assert_eq!(o.build_args["X"].as_deref(), Some("1"));
        assert_eq!(o.build_args["Y"], None);
        assert_eq!(o.labels["l"], "v");
        assert!(!o.remove);
        assert_eq!(o.memory, 1 << 20);
        assert_eq!(o.cache_from, ["img"]);
        assert_eq!(o.network_mode, "none");
        let o = options(&pairs(&[]), &HeaderMap::new()).unwrap();
        assert!(o.remove, "rm defaults to true");
        let o = options(&pairs(&[("forcerm", "1"), ("rm", "0")]), &HeaderMap::new()).unwrap();
        assert!(o.remove && o.force_remove);
        assert!(options(&pairs(&[("buildargs", "{")]), &HeaderMap::new()).is_err());
    }

    #[test]
    fn registry_config_header_is_base64url_json() {
        let mut h = HeaderMap::new();
        // {"localhost:5000":{"username":"u","password":"p"}}
        let raw = r#"{"localhost:5000":{"username":"u","password":"p"}}"#;
        let enc = encode(raw.as_bytes());
        h.insert("x-registry-config", enc.parse().unwrap());
        let m = registry_config(&h);
        assert_eq!(m["localhost:5000"].username, "u");
        h.insert("x-registry-config", "%%%".parse().unwrap());
        assert!(registry_config(&h).is_empty());
    }

    fn encode(data: &[u8]) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn a_failed_run_carries_its_exit_code() {
        let f = BuildFailure {
            error: DaemonError::invalid(
                "The command '/bin/sh -c false' returned a non-zero code: 1",
            ),
            code: Some(1),
        };
        let v: Value = serde_json::from_slice(&failure_line(&f)).unwrap();
        assert_eq!(v["errorDetail"]["code"], 1);
        assert_eq!(
            v["error"],
            "The command '/bin/sh -c false' returned a non-zero code: 1"
        );
    }
}
