//! [`RegistryClient`]: one repository on one registry.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_oci::Digest;
use berth_oci::image::{Index, Manifest, media_type};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyDataStream, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::auth::{Challenge, Credentials, TokenResponse, parse_challenge, query_escape};
use crate::endpoint::{Endpoint, Scheme, split_host_port};
use crate::error::RegistryError;
use crate::platform::PlatformSpec;

/// Manifests, indexes and configs are small; a bigger answer is refused.
const MAX_DOCUMENT: usize = 8 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 5;
/// Blobs larger than this are uploaded in chunks (`PATCH` with `Content-Range`, then
/// a `PUT` with the digest); smaller ones in one `PUT`. A failed request then costs one
/// chunk, not the whole layer, and proxies that cap request bodies see small ones.
pub const CHUNKED_UPLOAD_MIN: u64 = 32 << 20;
/// Size of each chunk unless the registry asks for bigger ones (`OCI-Chunk-Min-Length`).
pub const UPLOAD_CHUNK: u64 = 16 << 20;
/// Docker's schema 1 media types, accepted only to refuse them with a clear message.
const SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

type ReqBody = BoxBody<Bytes, io::Error>;

/// A parsed absolute URL (scheme, authority, path with query).
#[derive(Debug, Clone)]
struct Url {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Url {
    fn parse(s: &str, base: &Endpoint) -> Option<Url> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if s.starts_with('/') {
            return Some(Url {
                scheme: base.scheme,
                authority: base.authority.clone(),
                path: s.to_string(),
            });
        } else {
            return None;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Some(Url {
            scheme,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    fn with_query(mut self, key: &str, value: &str) -> Url {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        self.path = format!("{}{sep}{key}={}", self.path, query_escape(value));
        self
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.authority, self.path)
    }
}

/// The registry's error body: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What [`RegistryClient::resolve`] found for a reference.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of what the tag points at (the index when there is one): what
    /// `RepoDigests` records, as Docker does.
    pub digest: Digest,
    /// The digest of the platform's image manifest.
    pub manifest_digest: Digest,
    /// The image manifest.
    pub manifest: Manifest,
    /// Its bytes as served.
    pub manifest_bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
}

/// Where the bytes of a blob upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// Small content in memory (configs).
    Bytes(Bytes),
    /// A file, streamed.
    File {
        /// The file.
        path: PathBuf,
        /// Its length.
        size: u64,
        /// Told the bytes sent so far, as they go.
        progress: Option<UploadProgress>,
    },
}

/// One message of a streamed upload ([`RegistryClient::upload_stream`]).
#[derive(Debug)]
pub enum StreamPiece {
    /// The next bytes of the blob.
    Data(Bytes),
    /// The blob is complete.
    End,
    /// The producer failed; the upload is abandoned.
    Failed(String),
}

/// A callback told how many bytes of an upload have been sent.
#[derive(Clone)]
pub struct UploadProgress(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for UploadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadProgress")
    }
}

impl UploadSource {
    fn len(&self) -> u64 {
        match self {
            UploadSource::Bytes(b) => b.len() as u64,
            UploadSource::File { size, .. } => *size,
        }
    }

    /// The body for bytes `offset..offset + len` (one chunk of a chunked upload);
    /// progress counts from the start of the blob.
    async fn body_range(&self, offset: u64, len: u64) -> Result<ReqBody, RegistryError> {
        match self {
            UploadSource::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = usize::try_from(offset + len)
                    .unwrap_or(usize::MAX)
                    .min(b.len());
                Ok(full(b.slice(start..end)))
            }
            UploadSource::File { path, progress, .. } => {
                let read_err = |source| RegistryError::Read {
                    path: path.display().to_string(),
                    source,
                };
                let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
                if offset > 0 {
                    use tokio::io::AsyncSeekExt;
                    file.seek(io::SeekFrom::Start(offset))
                        .await
                        .map_err(read_err)?;
                }
                let file = tokio::io::AsyncReadExt::take(file, len);
                let progress = progress.clone();
                let mut sent = offset;
                let stream = ReaderStream::with_capacity(file, 1 << 20).map_ok(move |chunk| {
                    sent += chunk.len() as u64;
                    if let Some(p) = &progress {
                        (p.0)(sent);
                    }
                    Frame::data(chunk)
                });
                Ok(BodyExt::boxed(StreamBody::new(stream)))
            }
        }
    }
}

/// A blob being downloaded, as an `AsyncRead` of its bytes (not yet verified: the
/// caller digests what it reads).
pub struct BlobReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    /// The length the registry announced, if it did.
    pub content_length: Option<u64>,
}

impl AsyncRead for BlobReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

fn full(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// An HTTP/1.1 connection over `io`, driven by a task of its own.
async fn handshake<S>(
    io: S,
) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "registry connection ended");
        }
    });
    Ok(sender)
}

/// A client for one repository (`library/busybox`) on one registry.
///
/// Cheap to share behind an `Arc`: the token is behind a mutex and requests run
/// concurrently on their own connections.
pub struct RegistryClient {
    endpoint: Endpoint,
    repository: String,
    credentials: Option<Credentials>,
    /// `pull` or `pull,push`.
    actions: &'static str,
    /// More scopes to ask tokens for (cross-repository mount sources).
    extra_scopes: Mutex<Vec<String>>,
    /// The `Authorization` value in use, once the registry asked for one.
    authorization: Mutex<Option<String>>,
    /// Per-registry CA certificates (`<dir>/<host:port>/*.crt`).
    certs_dir: PathBuf,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("endpoint", &self.endpoint)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `repository` at `endpoint`; `push` asks tokens for push rights too.
    pub fn new(
        endpoint: Endpoint,
        repository: &str,
        credentials: Option<Credentials>,
        push: bool,
    ) -> RegistryClient {
        RegistryClient {
            endpoint,
            repository: repository.to_string(),
            credentials,
            actions: if push { "pull,push" } else { "pull" },
            extra_scopes: Mutex::new(Vec::new()),
            authorization: Mutex::new(None),
            certs_dir: crate::tls::default_certs_dir(),
        }
    }

    /// Looks for per-registry CA certificates under `dir` instead of
    /// [`crate::tls::DEFAULT_CERTS_DIR`].
    pub fn with_certs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.certs_dir = dir.into();
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn url(&self, path: &str) -> Url {
        Url {
            scheme: self.endpoint.scheme,
            authority: self.endpoint.authority.clone(),
            path: path.to_string(),
        }
    }

    fn repo_url(&self, rest: &str) -> Url {
        self.url(&format!("/v2/{}/{rest}", self.repository))
    }

    /// One request on a new connection. `authorization` goes only to the registry's
    /// own host (never to a redirect target elsewhere).
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(header::HeaderName, String)],
        authorization: Option<&str>,
        body: ReqBody,
    ) -> Result<Response<Incoming>, RegistryError> {
        let default_port = match url.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = split_host_port(&url.authority, default_port);
        let connect = |source| RegistryError::Connect {
            authority: url.authority.clone(),
            source,
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
        .map_err(connect)?;
        let _ = stream.set_nodelay(true);
        let http = |source| RegistryError::Http {
            url: url.to_string(),
            source,
        };
        let mut sender = match url.scheme {
            Scheme::Http => handshake(stream).await.map_err(http)?,
            Scheme::Https => {
                let tls = crate::tls::connect(&self.certs_dir, &url.authority, &host, stream)
                    .await
                    .map_err(|source| RegistryError::Tls {
                        authority: url.authority.clone(),
                        source,
                    })?;
                handshake(tls).await.map_err(http)?
            }
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url.path.as_str())
            .header(header::HOST, url.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("berth/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(k, v.as_str());
        }
        if let Some(a) = authorization
            && url.authority == self.endpoint.authority
        {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req.body(body).map_err(|e| RegistryError::BadResponse {
            url: url.to_string(),
            message: format!("cannot build request: {e}"),
        })?;
        sender.send_request(req).await.map_err(http)
    }

    /// Sends with the current authorization; on a 401 with a challenge, authenticates
    /// and retries once (this is also how an expired token gets refreshed).
    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(header::HeaderName, String)],
        body: Option<&UploadSource>,
    ) -> Result<Response<Incoming>, RegistryError> {
        self.send_part(method, url, headers, body.map(|b| (b, 0, b.len())))
            .await
    }

    /// [`Self::send`] with `len` bytes of the source from `offset` as the body.
    async fn send_part(
        &self,
        method: Method,
        url: &Url,
        headers: &[(header::HeaderName, String)],
        body: Option<(&UploadSource, u64, u64)>,
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut authenticated = false;
        loop {
            let auth = self.authorization.lock().expect("auth lock").clone();
            let b = match body {
                Some((src, offset, len)) => src.body_range(offset, len).await?,
                None => empty(),
            };
            let resp = self
                .send_once(&method, url, headers, auth.as_deref(), b)
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED || authenticated {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let Some(challenge) = challenge else {
                return Ok(resp);
            };
            self.authenticate(challenge).await?;
            authenticated = true;
        }
    }

    /// Answers a challenge: Basic uses the credentials directly, Bearer trades them
    /// for a token at the realm.
    async fn authenticate(&self, challenge: Challenge) -> Result<(), RegistryError> {
        let value = match challenge {
            Challenge::Basic => match self.credentials.as_ref().and_then(|c| c.basic_header()) {
                Some(h) => h,
                None => {
                    return Err(RegistryError::Unauthorized {
                        url: self.endpoint.base_url(),
                        message: "authentication required".into(),
                    });
                }
            },
            Challenge::Bearer { realm, service, .. } => {
                if let Some(Credentials::Token(t)) = &self.credentials {
                    format!("Bearer {t}")
                } else {
                    format!(
                        "Bearer {}",
                        self.fetch_token(&realm, service.as_deref()).await?
                    )
                }
            }
        };
        *self.authorization.lock().expect("auth lock") = Some(value);
        Ok(())
    }

    fn scopes(&self) -> Vec<String> {
        let mut scopes = Vec::new();
        if !self.repository.is_empty() {
            scopes.push(format!("repository:{}:{}", self.repository, self.actions));
        }
        scopes.extend(
            self.extra_scopes
                .lock()
                .expect("scopes lock")
                .iter()
                .cloned(),
        );
        scopes
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, RegistryError> {
        let token_err = |message: String| RegistryError::Token {
            realm: realm.to_string(),
            message,
        };
        let mut url = Url::parse(realm, &self.endpoint)
            .ok_or_else(|| token_err("the realm is not an http(s) URL".into()))?;
        if let Some(s) = service {
            url = url.with_query("service", s);
        }
        for scope in self.scopes() {
            url = url.with_query("scope", &scope);
        }
        if let Some(Credentials::Basic { username, .. }) = &self.credentials {
            url = url.with_query("account", username);
        }
        // The realm may be another host (auth.docker.io): credentials go there by
        // design, so they are set as a header here rather than through send_once's
        // same-host rule.
        let mut headers = Vec::new();
        if let Some(h) = self.credentials.as_ref().and_then(|c| c.basic_header()) {
            headers.push((header::AUTHORIZATION, h));
        }
        let resp = self
            .send_once(&Method::GET, &url, &headers, None, empty())
            .await?;
        let status = resp.status();
        let body = read_limited(resp, &url, MAX_DOCUMENT).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                url: url.to_string(),
                message: error_message(&body)
                    .unwrap_or_else(|| "incorrect username or password".into()),
            });
        }
        if !status.is_success() {
            return Err(token_err(format!("status {status}")));
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|source| RegistryError::InvalidDocument {
                what: format!("token response from {realm}"),
                source,
            })?;
        parsed
            .into_token()
            .ok_or_else(|| token_err("the answer has no token".into()))
    }

    /// `GET /v2/`: checks that the registry speaks the API and accepts the credentials
    /// (what `docker login` does).
    ///
    /// # Errors
    /// [`RegistryError::Unauthorized`] when the credentials are refused; connection
    /// and status errors.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        let resp = self.send(Method::GET, &url, &[], None).await?;
        check(resp, &url).await.map(drop)
    }

    /// Fetches a manifest or index by tag or digest: its bytes, media type and digest.
    /// A digest reference is verified against the bytes.
    ///
    /// # Errors
    /// Not found, auth, status errors; [`RegistryError::DigestMismatch`].
    pub async fn fetch_manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, String, Digest), RegistryError> {
        let url = self.repo_url(&format!("manifests/{reference}"));
        let accept = [
            media_type::OCI_INDEX,
            media_type::DOCKER_MANIFEST_LIST,
            media_type::DOCKER_MANIFEST,
            media_type::OCI_MANIFEST,
            SCHEMA1[0],
            SCHEMA1[1],
        ]
        .join(", ");
        let resp = self
            .send(Method::GET, &url, &[(header::ACCEPT, accept)], None)
            .await?;
        let resp = check(resp, &url).await?;
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let body = read_limited(resp, &url, MAX_DOCUMENT).await?;
        let digest = Digest::of(&body);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        let media = sniff_media_type(&body).unwrap_or(content_type);
        Ok((body, media, digest))
    }

    /// Resolves a tag or digest to the image manifest for `platform`, following an
    /// index / manifest list.
    ///
    /// # Errors
    /// [`RegistryError::Schema1`] for schema 1, [`RegistryError::NoMatchingPlatform`],
    /// [`RegistryError::UnsupportedMediaType`], and those of [`Self::fetch_manifest`].
    pub async fn resolve(
        &self,
        reference: &str,
        display: &str,
        platform: &PlatformSpec,
    ) -> Result<Pulled, RegistryError> {
        let (mut bytes, mut media, top) = self.fetch_manifest(reference).await?;
        let mut digest = top;
        for _ in 0..4 {
            if SCHEMA1.contains(&media.as_str()) {
                return Err(RegistryError::Schema1 {
                    reference: display.to_string(),
                });
            }
            if media == media_type::OCI_INDEX || media == media_type::DOCKER_MANIFEST_LIST {
                let index: Index = parse_doc("image index", &bytes)?;
                let chosen = index
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
                    .ok_or_else(|| RegistryError::NoMatchingPlatform {
                        platform: platform.to_string(),
                    })?;
                (bytes, media, digest) = self.fetch_manifest(&chosen.digest.to_string()).await?;
                continue;
            }
            if media == media_type::OCI_MANIFEST || media == media_type::DOCKER_MANIFEST {
                let manifest: Manifest = parse_doc("image manifest", &bytes)?;
                return Ok(Pulled {
                    digest: top,
                    manifest_digest: digest,
                    manifest,
                    manifest_bytes: bytes,
                    media_type: media,
                });
            }
            return Err(RegistryError::UnsupportedMediaType {
                reference: display.to_string(),
                media_type: media,
            });
        }
        Err(RegistryError::UnsupportedMediaType {
            reference: display.to_string(),
            media_type: "indexes nested too deep".into(),
        })
    }

    /// Fetches a small blob (a config) whole and verifies its digest.
    ///
    /// # Errors
    /// Not found, auth, status, size and digest errors.
    pub async fn fetch_blob_bytes(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let mut reader = self.open_blob(digest).await?;
        let mut out = Vec::new();
        let limit = MAX_DOCUMENT as u64;
        let n = tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(&mut reader, limit + 1),
            &mut out,
        )
        .await
        .map_err(|source| RegistryError::Read {
            path: digest.to_string(),
            source,
        })?;
        if n as u64 > limit {
            return Err(RegistryError::TooLarge {
                url: self.repo_url(&format!("blobs/{digest}")).to_string(),
                limit: MAX_DOCUMENT,
            });
        }
        let actual = Digest::of(&out);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        Ok(out)
    }

    /// Starts downloading a blob, following redirects (registries often send blobs
    /// from a storage host). The bytes are not verified here.
    ///
    /// # Errors
    /// Not found, auth, status and connection errors.
    pub async fn open_blob(&self, digest: &Digest) -> Result<BlobReader, RegistryError> {
        let mut url = self.repo_url(&format!("blobs/{digest}"));
        let mut resp = self.send(Method::GET, &url, &[], None).await?;
        for _ in 0..MAX_REDIRECTS {
            if !resp.status().is_redirection() {
                break;
            }
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| Url::parse(l, &self.endpoint))
                .ok_or_else(|| RegistryError::BadResponse {
                    url: url.to_string(),
                    message: "redirect without a usable Location".into(),
                })?;
            url = location;
            let auth = self.authorization.lock().expect("auth lock").clone();
            resp = self
                .send_once(&Method::GET, &url, &[], auth.as_deref(), empty())
                .await?;
        }
        let resp = check(resp, &url).await?;
        let content_length = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let stream = BodyDataStream::new(resp.into_body()).map_err(io::Error::other);
        Ok(BlobReader {
            inner: Box::pin(StreamReader::new(stream)),
            content_length,
        })
    }

    /// `HEAD` a blob: whether the repository has it.
    ///
    /// # Errors
    /// Auth, status and connection errors (404 is `Ok(false)`).
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.repo_url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url, &[], None).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(resp, &url).await.map(|_| true),
        }
    }

    /// Asks tokens for pull rights on another repository of the same registry too,
    /// so that a blob can be mounted from it.
    pub fn add_mount_source(&self, repository: &str) {
        let scope = format!("repository:{repository}:pull");
        let mut scopes = self.extra_scopes.lock().expect("scopes lock");
        if !scopes.contains(&scope) {
            scopes.push(scope);
            // A token is bound to its scopes: the next request re-authenticates.
            *self.authorization.lock().expect("auth lock") = None;
        }
    }

    /// Uploads a blob unless it is there: mount from `mount_from` when given, else a
    /// monolithic upload (`POST` then one `PUT` with the content and digest) up to
    /// [`CHUNKED_UPLOAD_MIN`] bytes, a chunked one (`PATCH`es of [`UPLOAD_CHUNK`] with
    /// `Content-Range`, then an empty `PUT` with the digest) above it or when the
    /// registry announces `OCI-Chunk-Min-Length`. Returns `true` when bytes were sent.
    ///
    /// # Errors
    /// Auth, status, connection and read errors.
    pub async fn upload_blob(
        &self,
        digest: &Digest,
        source: &UploadSource,
        mount_from: Option<&str>,
    ) -> Result<bool, RegistryError> {
        let mut url = self.repo_url("blobs/uploads/");
        if let Some(from) = mount_from {
            url = url
                .with_query("mount", &digest.to_string())
                .with_query("from", from);
        }
        let resp = self.send(Method::POST, &url, &[], None).await?;
        if resp.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(false);
        }
        let resp = check(resp, &url).await?;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| Url::parse(l, &self.endpoint))
            .ok_or_else(|| RegistryError::BadResponse {
                url: url.to_string(),
                message: "upload started without a Location".into(),
            })?;
        let min_chunk = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let len = source.len();
        if len <= CHUNKED_UPLOAD_MIN && min_chunk.is_none() {
            let put = location.with_query("digest", &digest.to_string());
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, len.to_string()),
            ];
            let resp = self.send(Method::PUT, &put, &headers, Some(source)).await?;
            check(resp, &put).await?;
            return Ok(true);
        }
        let chunk = chunk_size(min_chunk);
        let mut location = location;
        let mut offset = 0;
        while offset < len {
            let n = chunk.min(len - offset);
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, n.to_string()),
                (
                    header::CONTENT_RANGE,
                    format!("{}-{}", offset, offset + n - 1),
                ),
            ];
            let resp = self
                .send_part(
                    Method::PATCH,
                    &location,
                    &headers,
                    Some((source, offset, n)),
                )
                .await?;
            let resp = check(resp, &location).await?;
            // The registry says what it holds (`Range: 0-<last>`); each chunk must
            // extend it exactly, else the upload would be corrupt.
            let held = resp
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(range_end);
            if let Some(end) = held
                && end != offset + n - 1
            {
                return Err(RegistryError::BadResponse {
                    url: location.to_string(),
                    message: format!(
                        "upload holds bytes 0-{end} after a chunk ending at {}",
                        offset + n - 1
                    ),
                });
            }
            if let Some(next) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| Url::parse(l, &self.endpoint))
            {
                location = next;
            }
            offset += n;
        }
        let put = location.with_query("digest", &digest.to_string());
        let headers = [(header::CONTENT_LENGTH, "0".to_string())];
        let resp = self.send(Method::PUT, &put, &headers, None).await?;
        check(resp, &put).await?;
        Ok(true)
    }

    /// Uploads a blob whose bytes arrive in pieces and whose digest is known only at
    /// the end: a layer compressed while it is pushed, as Docker pushes. The pieces
    /// go up as PATCHes of at least the registry's chunk size, hashed on the way; the
    /// upload is completed with the digest they hash to only after
    /// [`StreamPiece::End`], so a producer that fails or vanishes half-way never leaves
    /// a short blob behind. Returns the digest and the length.
    ///
    /// # Errors
    /// The producer's error, auth, status and connection errors.
    pub async fn upload_stream(
        &self,
        mut pieces: tokio::sync::mpsc::Receiver<StreamPiece>,
        progress: Option<UploadProgress>,
    ) -> Result<(Digest, u64), RegistryError> {
        let url = self.repo_url("blobs/uploads/");
        let resp = self.send(Method::POST, &url, &[], None).await?;
        let resp = check(resp, &url).await?;
        let mut location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| Url::parse(l, &self.endpoint))
            .ok_or_else(|| RegistryError::BadResponse {
                url: url.to_string(),
                message: "upload started without a Location".into(),
            })?;
        let chunk = chunk_size(
            resp.headers()
                .get("oci-chunk-min-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
        ) as usize;
        let mut digester = berth_oci::Digester::new();
        let mut offset: u64 = 0;
        let mut pending: Vec<u8> = Vec::new();
        let mut ended = false;
        while !ended {
            match pieces.recv().await {
                Some(StreamPiece::Data(b)) => pending.extend_from_slice(&b),
                Some(StreamPiece::End) => ended = true,
                Some(StreamPiece::Failed(message)) => {
                    return Err(RegistryError::BadResponse {
                        url: location.to_string(),
                        message,
                    });
                }
                None => {
                    return Err(RegistryError::BadResponse {
                        url: location.to_string(),
                        message: "the blob's producer stopped before its end".into(),
                    });
                }
            }
            if pending.is_empty() || (!ended && pending.len() < chunk) {
                continue;
            }
            let body = Bytes::from(std::mem::take(&mut pending));
            let n = body.len() as u64;
            digester.update(&body);
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, n.to_string()),
                (
                    header::CONTENT_RANGE,
                    format!("{}-{}", offset, offset + n - 1),
                ),
            ];
            let resp = self
                .send(
                    Method::PATCH,
                    &location,
                    &headers,
                    Some(&UploadSource::Bytes(body)),
                )
                .await?;
            let resp = check(resp, &location).await?;
            if let Some(end) = resp
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(range_end)
                && end != offset + n - 1
            {
                return Err(RegistryError::BadResponse {
                    url: location.to_string(),
                    message: format!(
                        "upload holds bytes 0-{end} after a chunk ending at {}",
                        offset + n - 1
                    ),
                });
            }
            if let Some(next) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| Url::parse(l, &self.endpoint))
            {
                location = next;
            }
            offset += n;
            if let Some(p) = &progress {
                (p.0)(offset);
            }
        }
        let digest = digester.finish();
        let put = location.with_query("digest", &digest.to_string());
        let headers = [(header::CONTENT_LENGTH, "0".to_string())];
        let resp = self.send(Method::PUT, &put, &headers, None).await?;
        check(resp, &put).await?;
        Ok((digest, offset))
    }

    /// Puts a manifest under a tag (or digest); returns the digest the registry gave it.
    ///
    /// # Errors
    /// Auth, status and connection errors.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let url = self.repo_url(&format!("manifests/{reference}"));
        let headers = [
            (header::CONTENT_TYPE, media_type.to_string()),
            (header::CONTENT_LENGTH, bytes.len().to_string()),
        ];
        let digest = Digest::of(&bytes);
        let resp = self
            .send(
                Method::PUT,
                &url,
                &headers,
                Some(&UploadSource::Bytes(bytes)),
            )
            .await?;
        let resp = check(resp, &url).await?;
        let served = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(served.unwrap_or(digest))
    }

    /// The repository's tags (`pull --all-tags`).
    ///
    /// # Errors
    /// Not found, auth, status errors.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let url = self.repo_url("tags/list");
        let resp = self.send(Method::GET, &url, &[], None).await?;
        let resp = check(resp, &url).await?;
        let body = read_limited(resp, &url, MAX_DOCUMENT).await?;
        let tags: Tags = parse_doc("tag list", &body)?;
        Ok(tags.tags.unwrap_or_default())
    }
}

/// The chunk size for a chunked upload: ours, or the registry's minimum if bigger.
fn chunk_size(registry_min: Option<u64>) -> u64 {
    registry_min.map_or(UPLOAD_CHUNK, |m| m.max(UPLOAD_CHUNK))
}

/// The last byte of a `Range: 0-<end>` header (`bytes=` prefix tolerated).
fn range_end(v: &str) -> Option<u64> {
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    v.split_once('-')?.1.trim().parse().ok()
}

/// The `mediaType` a document declares, which wins over a generic Content-Type.
fn sniff_media_type(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(body).ok()?;
    match (p.media_type, p.schema_version, p.manifests) {
        (Some(m), _, _) => Some(m),
        (None, Some(1), _) => Some(SCHEMA1[0].to_string()),
        (None, Some(2), Some(_)) => Some(media_type::OCI_INDEX.to_string()),
        (None, Some(2), None) => Some(media_type::OCI_MANIFEST.to_string()),
        _ => None,
    }
}

fn parse_doc<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|source| RegistryError::InvalidDocument {
        what: what.to_string(),
        source,
    })
}

fn error_message(body: &[u8]) -> Option<String> {
    let e: ErrorBody = serde_json::from_slice(body).ok()?;
    let first = e.errors.into_iter().next()?;
    Some(if first.message.is_empty() {
        first.code.to_ascii_lowercase()
    } else {
        first.message
    })
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| e.code)
        .unwrap_or_default()
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
async fn read_limited(
    resp: Response<Incoming>,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, RegistryError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| RegistryError::Http {
            url: url.to_string(),
            source,
        })?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(RegistryError::TooLarge {
                    url: url.to_string(),
                    limit,
                });
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

/// Turns a non-success answer into an error with the registry's own words.
async fn check(resp: Response<Incoming>, url: &Url) -> Result<Response<Incoming>, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = read_limited(resp, url, 64 << 10).await.unwrap_or_default();
    let message =
        error_message(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    let url = url.to_string();
    Err(match status {
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
            url,
            message: if message.is_empty() {
                "authentication required".into()
            } else {
                message
            },
        },
        StatusCode::FORBIDDEN => RegistryError::Denied { url, message },
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            url,
            code: error_code(&body),
            message: if message.is_empty() {
                "not found".into()
            } else {
                message
            },
        },
        s => RegistryError::Status {
            url,
            status: s.as_u16(),
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_ours_unless_the_registry_wants_bigger_ones() {
        assert_eq!(chunk_size(None), UPLOAD_CHUNK);
        assert_eq!(chunk_size(Some(1024)), UPLOAD_CHUNK);
        assert_eq!(chunk_size(Some(UPLOAD_CHUNK * 2)), UPLOAD_CHUNK * 2);
    }

    #[test]
    fn upload_ranges_parse_with_or_without_unit() {
        assert_eq!(range_end("0-1023"), Some(1023));
        assert_eq!(range_end("bytes=0-99"), Some(99));
        assert_eq!(range_end("junk"), None);
    }

    #[test]
    fn urls_resolve_relative_locations_against_the_registry() {
        let e = Endpoint::for_domain("127.0.0.1:5000", &[]);
        let u = Url::parse("/v2/a/blobs/uploads/x?_state=1", &e).unwrap();
        assert_eq!(
            u.to_string(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1"
        );
        let u = u.with_query("digest", "sha256:ab");
        assert!(u.path.ends_with("&digest=sha256%3Aab"));
        let u = Url::parse("http://auth.local:8080/token", &e).unwrap();
        assert_eq!(u.authority, "auth.local:8080");
        assert_eq!(u.path, "/token");
        assert!(Url::parse("ftp://x", &e).is_none());
    }

    #[test]
    fn media_type_is_sniffed_from_the_document() {
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":1,"name":"x"}"#).as_deref(),
            Some(SCHEMA1[0])
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_type::OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).as_deref(),
            Some(media_type::DOCKER_MANIFEST)
        );
    }

    #[test]
    fn registry_error_bodies_give_their_message() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(body).as_deref(), Some("manifest unknown"));
        assert_eq!(error_code(body), "MANIFEST_UNKNOWN");
    }
}
