//! Extractors that fail the way Docker fails: 400 with `{"message": ...}`.
//!
//! axum's own `Json`, `Query` and `Path` reject with plain-text bodies and statuses
//! such as 415 and 422, which Docker clients print as garbage. These wrappers read
//! the same way but turn every rejection into an [`ApiError`]. [`Json`] also follows
//! Docker's leniency: an empty body is an empty object, because clients send
//! `POST /containers/{id}/start` and friends with no body at all.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::{DeserializeOwned, Deserializer};

use crate::error::{ApiError, error_response};

/// A JSON request body, or a JSON response (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    /// # Errors
    /// 400 for a Content-Type other than `application/json` (when a body or a type is
    /// present), an unreadable body, or JSON that does not fit `T`.
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = read_body(req).await?;
        check_json_content_type(content_type.as_deref(), body.is_empty())?;
        parse_json(&body).map(Json)
    }
}

/// A whole request body, read up to axum's body limit (2 MiB). Unlike `Bytes` as an
/// extractor, a body over the limit or cut short is Docker's 400 JSON, not a 413 in
/// plain text.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    /// # Errors
    /// 400 when the body cannot be read or is over the limit.
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_body(req).await.map(RawBody)
    }
}

/// The most of a body berthd holds in memory for one request.
const BODY_LIMIT: usize = 2 << 20;
/// How much of an oversized body is read and dropped before answering. Clients such
/// as Python's `requests` write the whole body before they read the answer: if the
/// connection closed under them they would report a broken pipe instead of the 400.
const DRAIN_LIMIT: usize = 64 << 20;

/// Reads a whole body of at most [`BODY_LIMIT`] bytes.
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= BODY_LIMIT {
            buf.extend_from_slice(&data);
        }
    }
    if seen > BODY_LIMIT {
        return Err(ApiError::bad_request("length limit exceeded"));
    }
    Ok(Bytes::from(buf))
}

/// Docker's rule (`httputils.CheckForJSON`): no type with no body is fine; otherwise
/// the media type must be `application/json`, parameters such as charset allowed.
fn check_json_content_type(content_type: Option<&str>, body_empty: bool) -> Result<(), ApiError> {
    let ct = content_type.unwrap_or("");
    if ct.is_empty() && body_empty {
        return Ok(());
    }
    let media_type = ct.split(';').next().unwrap_or("").trim();
    if media_type.is_empty() {
        return Err(ApiError::bad_request(format!(
            "malformed Content-Type header ({ct}): mime: no media type"
        )));
    }
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )));
    }
    Ok(())
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        // Docker leaves its options struct at its zero value; `{}` is serde's nearest
        // equivalent, and types with required fields still get Docker's EOF message.
        return serde_json::from_slice(b"{}").map_err(|_| {
            ApiError::bad_request("invalid JSON: got EOF while reading request body")
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize response");
                error_response(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot serialize response: {e}"),
                )
            }
        }
    }
}

/// Query parameters deserialized into `T`.
///
/// Docker reads booleans leniently (`1`, `true`, `yes` are true); mark such fields
/// `#[serde(default, deserialize_with = "berth_api::extract::docker_bool")]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    /// # Errors
    /// 400 when the query string does not fit `T`.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Path parameters deserialized into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    /// # Errors
    /// 400 when the path segments do not fit `T`.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Deserializes a query boolean as Docker does (`httputils.BoolValue`): empty, `0`,
/// `no`, `false` and `none` (any case, spaces trimmed) are false; anything else is
/// true.
///
/// # Errors
/// Only when the value is not a string at all.
pub fn docker_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let s: String = serde::Deserialize::deserialize(deserializer)?;
    Ok(is_true(&s))
}

/// Docker's `httputils.BoolValue` on one string.
fn is_true(s: &str) -> bool {
    !matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// A query string as ordered pairs, for endpoints with repeated keys
/// (`names=a&names=b`, `changes=…`) or many optional flags.
pub(crate) type Pairs = Vec<(String, String)>;

/// The first value of `key`.
pub(crate) fn pair<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `key` as a Docker boolean; absent is false.
pub(crate) fn flag(pairs: &Pairs, key: &str) -> bool {
    pair(pairs, key).is_some_and(is_true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;

    #[derive(Debug, serde::Deserialize, Default, PartialEq)]
    struct Opts {
        #[serde(default, rename = "all", deserialize_with = "docker_bool")]
        all: bool,
        #[serde(default)]
        limit: Option<u32>,
    }

    async fn message_of(e: ApiError) -> (StatusCode, String) {
        let r = e.into_response();
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        (status, v["message"].as_str().unwrap().to_owned())
    }

    fn request(content_type: Option<&str>, body: &'static str) -> Request {
        let mut b = Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn json_accepts_empty_body_as_empty_object() {
        let Json(o): Json<Opts> = Json::from_request(request(None, ""), &()).await.unwrap();
        assert_eq!(o, Opts::default());
    }

    #[tokio::test]
    async fn json_rejects_malformed_body_with_docker_message() {
        let e = Json::<Opts>::from_request(request(Some("application/json"), "{\"all\":"), &())
            .await
            .unwrap_err();
        let (status, message) = message_of(e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.starts_with("invalid JSON: "), "{message}");
    }

    #[tokio::test]
    async fn json_rejects_wrong_content_type() {
        let e = Json::<Opts>::from_request(request(Some("text/plain"), "{}"), &())
            .await
            .unwrap_err();
        let (status, message) = message_of(e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        let ok = Json::<serde_json::Value>::from_request(
            request(Some("application/json; charset=utf-8"), "{}"),
            &(),
        )
        .await;
        assert!(ok.is_ok());
    }

    #[tokio::test]
    async fn query_reads_docker_booleans_and_rejects_bad_numbers() {
        let mut parts = Request::builder()
            .uri("/x?all=1&limit=3")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let Query(o): Query<Opts> = Query::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(
            o,
            Opts {
                all: true,
                limit: Some(3)
            }
        );

        let mut parts = Request::builder()
            .uri("/x?all=False")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let Query(o): Query<Opts> = Query::from_request_parts(&mut parts, &()).await.unwrap();
        assert!(!o.all);

        let mut parts = Request::builder()
            .uri("/x?limit=lots")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let e = Query::<Opts>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(message_of(e).await.0, StatusCode::BAD_REQUEST);
    }
}
