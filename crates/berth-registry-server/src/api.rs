//! The HTTP face of the registry: `/v2/...` URLs turned into typed [`Route`]s, and each
//! route's methods answered from [`Storage`].
//!
//! Repository names contain slashes, so the URL cannot be matched by a fixed pattern;
//! [`Route::parse`] takes the path apart from its end (`/manifests/<ref>`,
//! `/blobs/uploads/<id>`, `/blobs/<digest>`, `/tags/list`), as Docker's registry's router
//! does with its regular expressions. Handlers see only parsed names, digests and ids.
//!
//! Headers follow Docker's registry, which clients are written against:
//! `Docker-Distribution-API-Version: registry/2.0` on every answer, `Docker-Content-Digest`
//! on blobs and manifests, `Location`, `Range: 0-<last byte>` and `Docker-Upload-UUID` on
//! uploads. Locations are absolute paths without a host; Docker, skopeo and berth resolve
//! them against the request URL, and they stay right behind a proxy.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use berth_oci::Digest;
use futures_util::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::Htpasswd;
use crate::error::{ApiError, ErrorCode};
use crate::name::{ManifestRef, RepoName, UploadId};
use crate::storage::{MANIFEST_SIZE_MAX, Storage};

/// Default page size of `_catalog`, Docker's registry's.
const CATALOG_PAGE: usize = 100;

/// Realm in the Basic challenge.
const REALM: &str = "berth-registry";

/// Read buffer when streaming a blob out.
const READ_BUFFER: usize = 256 << 10;

/// The registry: storage plus who may use it.
pub struct Registry {
    storage: Storage,
    users: Option<Htpasswd>,
}

impl Registry {
    /// A registry over `storage`; with `users`, every request needs Basic credentials of
    /// one of them.
    pub fn new(storage: Storage, users: Option<Htpasswd>) -> Registry {
        Registry { storage, users }
    }

    /// Its storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// The registry's router, `/v2/` and everything under it.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .with_state(registry)
}

/// What a `/v2/...` URL names.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(RepoName, ManifestRef),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(RepoName, Digest),
    /// `/v2/<name>/blobs/uploads/`: start an upload.
    Uploads(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>`: one upload.
    Upload(RepoName, UploadId),
}

impl Route {
    /// Parses a request path. `Ok(None)` for paths the API does not have.
    ///
    /// # Errors
    /// The spec's `NAME_INVALID`, `DIGEST_INVALID`, `TAG_INVALID` or
    /// `BLOB_UPLOAD_UNKNOWN` for a known shape with a bad part.
    pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
        let Some(rest) = path.strip_prefix("/v2") else {
            return Ok(None);
        };
        if rest.is_empty() || rest == "/" {
            return Ok(Some(Route::Base));
        }
        let Some(rest) = rest.strip_prefix('/') else {
            return Ok(None);
        };
        if rest == "_catalog" {
            return Ok(Some(Route::Catalog));
        }
        let name = |s: &str| {
            RepoName::parse(s).map_err(|e| ApiError::new(ErrorCode::NameInvalid, e.to_string()))
        };
        if let Some(n) = rest.strip_suffix("/tags/list") {
            return Ok(Some(Route::Tags(name(n)?)));
        }
        if let Some((n, r)) = rest.rsplit_once("/manifests/")
            && !r.contains('/')
        {
            let reference = ManifestRef::parse(r).map_err(|e| {
                let code = match e {
                    crate::name::ManifestRefError::Digest(_) => ErrorCode::DigestInvalid,
                    crate::name::ManifestRefError::Tag(_) => ErrorCode::TagInvalid,
                };
                ApiError::new(code, e.to_string())
            })?;
            return Ok(Some(Route::Manifest(name(n)?, reference)));
        }
        if let Some(n) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Ok(Some(Route::Uploads(name(n)?)));
        }
        if let Some((n, id)) = rest.rsplit_once("/blobs/uploads/")
            && !id.contains('/')
        {
            let n = name(n)?;
            let id = UploadId::parse(id)
                .ok_or_else(|| ApiError::new(ErrorCode::BlobUploadUnknown, id.to_string()))?;
            return Ok(Some(Route::Upload(n, id)));
        }
        if let Some((n, d)) = rest.rsplit_once("/blobs/")
            && !d.contains('/')
        {
            let n = name(n)?;
            let d = d.parse().map_err(|e: berth_oci::DigestParseError| {
                ApiError::new(ErrorCode::DigestInvalid, e.to_string())
            })?;
            return Ok(Some(Route::Blob(n, d)));
        }
        Ok(None)
    }
}

async fn handle(
    State(reg): State<Arc<Registry>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match &reg.users {
        Some(users)
            if users
                .check(
                    headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok()),
                )
                .is_none() =>
        {
            let mut e = ApiError::new(ErrorCode::Unauthorized, "authentication required");
            e.challenge = HeaderValue::from_str(&format!("Basic realm=\"{REALM}\"")).ok();
            Err(e)
        }
        _ => dispatch(&reg, &method, &uri, &headers, body).await,
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    tracing::debug!(%method, path = uri.path(), status = resp.status().as_u16(), "request");
    resp
}

fn unsupported(method: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::Unsupported,
        format!("method {method} not allowed here"),
    )
}

async fn dispatch(
    reg: &Registry,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(route) = Route::parse(uri.path())? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let query: HashMap<String, String> = Query::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let s = &reg.storage;
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok((
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "{}",
        )
            .into_response()),
        (Route::Catalog, Method::GET) => {
            let repos: Vec<String> = s
                .repositories()
                .await?
                .into_iter()
                .map(|r| r.to_string())
                .collect();
            let (page, next) = paginate(repos, &query, Some(CATALOG_PAGE))?;
            let body = serde_json::json!({ "repositories": page });
            Ok(with_link(json(body), "/v2/_catalog", next))
        }
        (Route::Tags(repo), Method::GET) => {
            let tags = s.tags(&repo).await?;
            let (page, next) = paginate(tags, &query, None)?;
            let body = serde_json::json!({ "name": repo.as_str(), "tags": page });
            Ok(with_link(
                json(body),
                &format!("/v2/{repo}/tags/list"),
                next,
            ))
        }
        (Route::Manifest(repo, reference), m @ (Method::GET | Method::HEAD)) => {
            let stored = s.get_manifest(&repo, &reference).await?;
            let mut resp = Response::builder()
                .header(header::CONTENT_TYPE, &stored.media_type)
                .header(header::CONTENT_LENGTH, stored.body.len())
                .header("Docker-Content-Digest", stored.digest.to_string())
                .header(header::ETAG, format!("\"{}\"", stored.digest));
            if m == Method::HEAD {
                resp = resp.status(StatusCode::OK);
                Ok(resp.body(Body::empty()).expect("valid response"))
            } else {
                Ok(resp.body(Body::from(stored.body)).expect("valid response"))
            }
        }
        (Route::Manifest(repo, reference), Method::PUT) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let bytes = axum::body::to_bytes(body, MANIFEST_SIZE_MAX)
                .await
                .map_err(|e| {
                    ApiError::new(
                        ErrorCode::ManifestInvalid,
                        format!("reading manifest (at most {MANIFEST_SIZE_MAX} bytes): {e}"),
                    )
                })?;
            let digest = s
                .put_manifest(&repo, &reference, content_type, bytes.to_vec())
                .await?;
            tracing::info!(repository = %repo, reference = %reference, %digest, "manifest pushed");
            Ok(created(&format!("/v2/{repo}/manifests/{digest}"), &digest))
        }
        (Route::Manifest(repo, reference), Method::DELETE) => {
            s.delete_manifest(&repo, &reference).await?;
            Ok(accepted())
        }
        (Route::Blob(repo, digest), m @ (Method::GET | Method::HEAD)) => {
            get_blob(s, &repo, &digest, m == Method::HEAD, headers).await
        }
        (Route::Blob(repo, digest), Method::DELETE) => {
            s.delete_blob(&repo, &digest).await?;
            Ok(accepted())
        }
        (Route::Uploads(repo), Method::POST) => {
            if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
                let digest: Digest = mount.parse().map_err(|e: berth_oci::DigestParseError| {
                    ApiError::new(ErrorCode::DigestInvalid, e.to_string())
                })?;
                // A bad `from` just means no mount; Docker's registry then starts an
                // upload, and so do we.
                if let Ok(from) = RepoName::parse(from)
                    && s.mount_blob(&repo, &from, &digest).await?
                {
                    return Ok(created(&format!("/v2/{repo}/blobs/{digest}"), &digest));
                }
            }
            let id = s.start_upload(&repo).await?;
            if let Some(d) = query.get("digest") {
                let digest = parse_digest(d)?;
                let stream = body.into_data_stream().map_err(std::io::Error::other);
                if let Err(e) = s.append_upload(&repo, &id, None, stream).await {
                    let _ = s.cancel_upload(&repo, &id).await;
                    return Err(e.into());
                }
                s.finish_upload(&repo, &id, &digest).await?;
                return Ok(created(&format!("/v2/{repo}/blobs/{digest}"), &digest));
            }
            Ok(upload_answer(StatusCode::ACCEPTED, &repo, &id, 0))
        }
        (Route::Upload(repo, id), Method::GET) => {
            let size = s.upload_size(&repo, &id).await?;
            Ok(upload_answer(StatusCode::NO_CONTENT, &repo, &id, size))
        }
        (Route::Upload(repo, id), Method::PATCH) => {
            let range = match headers.get(header::CONTENT_RANGE) {
                None => None,
                Some(v) => Some(parse_content_range(v).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::RangeInvalid,
                        "Content-Range is not <start>-<end>",
                    )
                })?),
            };
            let stream = body.into_data_stream().map_err(std::io::Error::other);
            match s.append_upload(&repo, &id, range, stream).await {
                Ok(size) => Ok(upload_answer(StatusCode::ACCEPTED, &repo, &id, size)),
                Err(e) => {
                    // Tell the client where the upload stands, so it can resend from there.
                    let size = s.upload_size(&repo, &id).await.ok();
                    let mut resp = ApiError::from(e).into_response();
                    if let Some(size) = size {
                        set_upload_headers(resp.headers_mut(), &repo, &id, size);
                    }
                    Ok(resp)
                }
            }
        }
        (Route::Upload(repo, id), Method::PUT) => {
            let digest = parse_digest(query.get("digest").map(String::as_str).unwrap_or(""))?;
            let stream = body.into_data_stream().map_err(std::io::Error::other);
            s.append_upload(&repo, &id, None, stream).await?;
            s.finish_upload(&repo, &id, &digest).await?;
            Ok(created(&format!("/v2/{repo}/blobs/{digest}"), &digest))
        }
        (Route::Upload(repo, id), Method::DELETE) => {
            s.cancel_upload(&repo, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (_, m) => Err(unsupported(&m)),
    }
}

fn parse_digest(d: &str) -> Result<Digest, ApiError> {
    d.parse().map_err(|e: berth_oci::DigestParseError| {
        ApiError::new(ErrorCode::DigestInvalid, format!("digest parameter: {e}"))
    })
}

/// `<start>-<end>` (Docker's form) or `bytes <start>-<end>` / with `/<total>` (RFC 9110's).
fn parse_content_range(v: &HeaderValue) -> Option<(u64, u64)> {
    let s = v.to_str().ok()?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// A `Range: bytes=...` request header against a blob of `size` bytes: `Ok(None)` for the
/// whole blob, `Ok(Some((start, end inclusive)))`, `Err(())` when unsatisfiable.
fn parse_range(v: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(s) = v.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    // Several ranges or another unit: serve the whole blob, which RFC 9110 allows.
    let Some(spec) = s.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    s: &Storage,
    repo: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let base = |status: StatusCode, len: u64| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len)
            .header(header::ACCEPT_RANGES, "bytes")
            .header("Docker-Content-Digest", digest.to_string())
            .header(header::ETAG, format!("\"{digest}\""))
            .header(header::CACHE_CONTROL, "max-age=31536000")
    };
    if head {
        let size = s.blob_size(repo, digest).await?;
        return Ok(base(StatusCode::OK, size)
            .body(Body::empty())
            .expect("valid response"));
    }
    let (mut file, size) = s.open_blob(repo, digest).await?;
    let (status, start, len, content_range) = match parse_range(headers.get(header::RANGE), size) {
        Ok(None) => (StatusCode::OK, 0, size, None),
        Ok(Some((a, b))) => (
            StatusCode::PARTIAL_CONTENT,
            a,
            b - a + 1,
            Some(format!("bytes {a}-{b}/{size}")),
        ),
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response());
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| {
                tracing::error!(%digest, error = %e, "seeking in blob");
                ApiError::new(ErrorCode::Unknown, "storage failure")
            })?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_BUFFER);
    let mut resp = base(status, len);
    if let Some(cr) = content_range {
        resp = resp.header(header::CONTENT_RANGE, cr);
    }
    Ok(resp
        .body(Body::from_stream(stream))
        .expect("valid response"))
}

fn json(v: serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

/// Where the next page starts: the last entry returned and the page size.
type NextPage = (String, usize);

/// The page after `last` of at most `n` entries (default `default_n`, unlimited when
/// `None`), and the last entry of the page when more follow.
fn paginate(
    all: Vec<String>,
    query: &HashMap<String, String>,
    default_n: Option<usize>,
) -> Result<(Vec<String>, Option<NextPage>), ApiError> {
    let n = match query.get("n") {
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::new(ErrorCode::PaginationNumberInvalid, format!("n={n}")))?,
        ),
        None => default_n,
    };
    let mut rest: Vec<String> = match query.get("last") {
        Some(last) => all.into_iter().filter(|e| e > last).collect(),
        None => all,
    };
    match n {
        Some(n) if rest.len() > n => {
            rest.truncate(n);
            let next = rest.last().cloned().map(|l| (l, n));
            Ok((rest, next))
        }
        _ => Ok((rest, None)),
    }
}

fn with_link(mut resp: Response, path: &str, next: Option<NextPage>) -> Response {
    if let Some((last, n)) = next {
        let link = format!("<{path}?last={}&n={n}>; rel=\"next\"", encode_query(&last));
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

/// Percent-encodes what a repository name or tag may hold that a query value may not.
fn encode_query(s: &str) -> String {
    s.replace('/', "%2F")
}

fn created(location: &str, digest: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, location)
        .header(header::CONTENT_LENGTH, 0)
        .header("Docker-Content-Digest", digest.to_string())
        .body(Body::empty())
        .expect("valid response")
}

fn accepted() -> Response {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn set_upload_headers(h: &mut HeaderMap, repo: &RepoName, id: &UploadId, size: u64) {
    let location = format!("/v2/{repo}/blobs/uploads/{id}");
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    // Docker's registry says `0-0` for an empty upload too.
    if let Ok(v) = HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1))) {
        h.insert(header::RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        h.insert("Docker-Upload-UUID", v);
    }
}

fn upload_answer(status: StatusCode, repo: &RepoName, id: &UploadId, size: u64) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("valid response");
    set_upload_headers(resp.headers_mut(), repo, id, size);
    resp
}

#[cfg(test)]
mod tests;
