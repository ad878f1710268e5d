//! The Engine API client: HTTP/1.1 over a unix socket (or plain TCP).
//!
//! It behaves like docker's Go client where users can see it: the API version
//! is negotiated lazily before the first request (`HEAD /_ping`, falling back
//! to `GET`, then `min(1.51, server's Api-Version)`; `DOCKER_API_VERSION`
//! overrides), errors read as "Error response from daemon: ..." or "Cannot
//! connect to the Docker daemon at ...", and request/response bodies are
//! streamed so that image tarballs never sit whole in memory.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::OnceCell;

/// The highest API version this client speaks (Docker 28.5's).
pub(crate) const MAX_API_VERSION: &str = "1.51";
/// What a daemon that sends no `Api-Version` header is assumed to speak.
const FALLBACK_API_VERSION: &str = "1.24";
/// The default daemon address.
pub(crate) const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// Connecting and the version ping must not hang when nobody answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of the chunks a request body is streamed in.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A request body: small bodies in memory, tarballs streamed.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// An error talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Nothing listens at the host address.
    #[error("Cannot connect to the Docker daemon at {host}. Is the docker daemon running?")]
    Connect { host: String },
    /// The socket exists but we may not open it.
    #[error(
        "permission denied while trying to connect to the Docker daemon socket at {host}: {source}"
    )]
    Permission {
        host: String,
        source: std::io::Error,
    },
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Daemon { status: StatusCode, message: String },
    /// The connection broke mid-request.
    #[error("error during connect: {method} {path}: {reason}")]
    Transport {
        method: Method,
        path: String,
        reason: String,
    },
    /// The daemon's answer was not what the API promises.
    #[error("Error reading JSON: {0}")]
    BadJson(#[from] serde_json::Error),
    /// `-H` names a scheme we cannot speak.
    #[error("unable to parse docker host `{0}`")]
    BadHost(String),
}

impl ClientError {
    /// The daemon said 404 (docker's `errdefs.IsNotFound`).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Daemon { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

#[derive(Debug, Clone)]
enum Address {
    Unix(PathBuf),
    Tcp(String),
}

/// A handle on one daemon. Cheap to share by reference; every request opens
/// its own connection, as requests here are few and long streams are common.
pub(crate) struct Client {
    host: String,
    address: Address,
    /// The version from `DOCKER_API_VERSION`, if set: no negotiation then.
    pinned_version: Option<String>,
    negotiated: OnceCell<String>,
}

impl Client {
    /// A client for `host` (`unix:///path`, `tcp://host:port`, `fd://` is refused).
    ///
    /// # Errors
    /// [`ClientError::BadHost`] for an unsupported address.
    pub(crate) fn new(host: &str, pinned_version: Option<String>) -> Result<Self, ClientError> {
        let address = if let Some(path) = host.strip_prefix("unix://") {
            Address::Unix(PathBuf::from(path))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            let addr = if addr.contains(':') {
                addr.to_string()
            } else {
                format!("{addr}:2375")
            };
            Address::Tcp(addr)
        } else if host.starts_with('/') {
            Address::Unix(PathBuf::from(host))
        } else {
            return Err(ClientError::BadHost(host.to_string()));
        };
        Ok(Client {
            host: host.to_string(),
            address,
            pinned_version: pinned_version.filter(|v| !v.is_empty()),
            negotiated: OnceCell::new(),
        })
    }

    /// Another handle on the same daemon (for tasks that outlive a borrow),
    /// sharing the negotiated version when there is one.
    pub(crate) fn clone_handle(&self) -> Client {
        let negotiated = OnceCell::new();
        if let Some(v) = self.negotiated.get() {
            let _ = negotiated.set(v.clone());
        }
        Client {
            host: self.host.clone(),
            address: self.address.clone(),
            pinned_version: self.pinned_version.clone(),
            negotiated,
        }
    }

    /// The API version requests use, negotiating it on first use.
    pub(crate) async fn api_version(&self) -> String {
        if let Some(v) = &self.pinned_version {
            return v.clone();
        }
        self.negotiated
            .get_or_init(|| async {
                match self.ping().await {
                    Ok(Some(server)) => min_version(&server, MAX_API_VERSION).to_string(),
                    Ok(None) => FALLBACK_API_VERSION.to_string(),
                    // Keep the default; the real request will report the failure.
                    Err(_) => MAX_API_VERSION.to_string(),
                }
            })
            .await
            .clone()
    }

    /// `HEAD /_ping` (then `GET` if HEAD is refused); the server's `Api-Version`.
    async fn ping(&self) -> Result<Option<String>, ClientError> {
        let head = self
            .send_unversioned(Method::HEAD, "/_ping", empty())
            .await?;
        let resp = if head.status() == StatusCode::OK
            || head.status() == StatusCode::INTERNAL_SERVER_ERROR
        {
            head
        } else {
            self.send_unversioned(Method::GET, "/_ping", empty())
                .await?
        };
        Ok(resp
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string))
    }

    /// Sends a request to `/v<version><path>`; an error status becomes
    /// [`ClientError::Daemon`] with the daemon's message.
    ///
    /// # Errors
    /// Connection failures and error statuses.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_with_headers(method, path, body, content_type, &[])
            .await
    }

    /// [`Client::send`] with extra request headers (`X-Registry-Auth`).
    ///
    /// # Errors
    /// Connection failures and error statuses.
    pub(crate) async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        let version = self.api_version().await;
        let full = format!("/v{version}{path}");
        let resp = self
            .send_raw(method, &full, body, content_type, headers)
            .await?;
        check_status(resp).await
    }

    async fn send_unversioned(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_raw(method, path, body, None, &[]).await
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        let transport = |reason: String| ClientError::Transport {
            method: method.clone(),
            path: path.to_string(),
            reason,
        };
        let mut sender = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| ClientError::Connect {
                host: self.host.clone(),
            })??;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "api.moby.localhost")
            .header(
                header::USER_AGENT,
                concat!("berth/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req.body(body).map_err(|e| transport(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| transport(e.to_string()))
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<Body>, ClientError> {
        let connect_err = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                ClientError::Permission {
                    host: self.host.clone(),
                    source: e,
                }
            } else {
                ClientError::Connect {
                    host: self.host.clone(),
                }
            }
        };
        match &self.address {
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                self.handshake(stream).await
            }
            Address::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<S>(
        &self,
        stream: S,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>, ClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ClientError::Connect {
                host: self.host.clone(),
            })?;
        tokio::spawn(async move {
            // The connection ends with the response body; errors surface there.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// `POST path` hijacked as docker's attach does it: `Connection: Upgrade`,
    /// `Upgrade: tcp`, and the raw connection once the daemon answers 101.
    /// Whether the stream is multiplexed follows from the container's TTY
    /// setting, as in docker's client, not from the answer's `Content-Type`.
    ///
    /// # Errors
    /// Connection failures, [`ClientError::Daemon`] for an error status,
    /// [`ClientError::Transport`] for any other status than 101.
    pub(crate) async fn hijack(&self, path: &str) -> Result<Hijacked, ClientError> {
        self.hijack_with(path, None).await
    }

    /// [`Client::hijack`] with a JSON body, as docker's client starts an exec
    /// (`{"Detach":false,"Tty":...}`): dockerd refuses `POST /exec/{id}/start`
    /// with a `text/plain` body.
    ///
    /// # Errors
    /// As [`Client::hijack`].
    pub(crate) async fn hijack_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Hijacked, ClientError> {
        self.hijack_with(path, Some(body)).await
    }

    async fn hijack_with(
        &self,
        path: &str,
        json_body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, ClientError> {
        let version = self.api_version().await;
        let full = format!("/v{version}{path}");
        let transport = |reason: String| ClientError::Transport {
            method: Method::POST,
            path: full.clone(),
            reason,
        };
        let mut sender = tokio::time::timeout(CONNECT_TIMEOUT, self.connect_upgradable())
            .await
            .map_err(|_| ClientError::Connect {
                host: self.host.clone(),
            })??;
        let req = Request::builder()
            .method(Method::POST)
            .uri(&full)
            .header(header::HOST, "api.moby.localhost")
            .header(
                header::USER_AGENT,
                concat!("berth/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                header::CONTENT_TYPE,
                if json_body.is_some() {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(match json_body {
                Some(v) => self::full(serde_json::to_vec(v)?),
                None => empty(),
            })
            .map_err(|e| transport(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let resp = check_status(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(transport(format!(
                "unable to upgrade to tcp, received {}",
                resp.status().as_u16()
            )));
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| transport(e.to_string()))?;
        Ok(Hijacked {
            io: TokioIo::new(upgraded),
        })
    }

    async fn connect_upgradable(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>, ClientError> {
        let connect_err = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                ClientError::Permission {
                    host: self.host.clone(),
                    source: e,
                }
            } else {
                ClientError::Connect {
                    host: self.host.clone(),
                }
            }
        };
        let handshake_err = |_| ClientError::Connect {
            host: self.host.clone(),
        };
        let sender = match &self.address {
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                handshake(stream).await.map_err(handshake_err)?
            }
            Address::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                handshake(stream).await.map_err(handshake_err)?
            }
        };
        Ok(sender)
    }

    /// `GET path` and decode the JSON answer.
    ///
    /// # Errors
    /// As [`Client::send`], and [`ClientError::BadJson`].
    pub(crate) async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let bytes = self.get_bytes(path).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `GET path`, the whole body as bytes.
    ///
    /// # Errors
    /// As [`Client::send`].
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Bytes, ClientError> {
        let resp = self.send(Method::GET, path, empty(), None).await?;
        read_body(resp).await
    }

    /// `method path` with an optional JSON body; the answer decoded as JSON
    /// (`Null` for an empty body).
    ///
    /// # Errors
    /// As [`Client::send`], and [`ClientError::BadJson`].
    pub(crate) async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let (body, ct) = match body {
            Some(v) => (full(serde_json::to_vec(v)?), Some("application/json")),
            None => (empty(), None),
        };
        let resp = self.send(method, path, body, ct).await?;
        let bytes = read_body(resp).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// A hijacked attach connection.
pub(crate) struct Hijacked {
    /// The raw connection: read the container's output, write its stdin;
    /// shutting down the write side half-closes it (stdin EOF).
    pub(crate) io: TokioIo<hyper::upgrade::Upgraded>,
}

/// An empty request body.
pub(crate) fn empty() -> Body {
    full(Vec::new())
}

/// A request body held in memory.
pub(crate) fn full(data: Vec<u8>) -> Body {
    Full::new(Bytes::from(data))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body streamed from `reader` in fixed-size chunks, never read whole.
pub(crate) fn streamed<R: AsyncRead + Send + Unpin + 'static>(reader: R) -> Body {
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(chunks))
}

/// Reads a whole (small) response body.
///
/// # Errors
/// [`ClientError::Transport`] when the connection breaks.
pub(crate) async fn read_body(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Transport {
            method: Method::GET,
            path: String::new(),
            reason: e.to_string(),
        })
}

/// A response body as a stream of chunks, for copying out or decoding messages.
pub(crate) fn body_stream(
    resp: Response<Incoming>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    TryStreamExt::map_err(
        http_body_util::BodyStream::new(resp.into_body()),
        std::io::Error::other,
    )
    .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
}

/// Turns an error status into [`ClientError::Daemon`] the way docker's client
/// reads it: the JSON `message`, or the body as text.
async fn check_status(resp: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    let status = resp.status();
    if status.as_u16() < 400 {
        return Ok(resp);
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = read_body(resp).await.unwrap_or_default();
    let status_text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let message = if body.is_empty() {
        format!(
            "request returned {status_text}; check if the server supports the requested API version"
        )
    } else if is_json {
        let parsed: serde_json::Value = serde_json::from_slice(&body)?;
        match parsed.get("message").and_then(|m| m.as_str()) {
            Some(m) if !m.is_empty() => m.trim().to_string(),
            _ => format!(
                "API returned a {} ({}) but provided no error-message",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        }
    } else {
        String::from_utf8_lossy(&body).trim().to_string()
    };
    Err(ClientError::Daemon { status, message })
}

/// The lower of two "major.minor" API versions.
pub(crate) fn min_version<'a>(a: &'a str, b: &'a str) -> &'a str {
    if version_less(a, b) { a } else { b }
}

/// Whether API version `a` is lower than `b` ("1.41" < "1.44").
pub(crate) fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// Percent-encodes a query component as Go's `url.QueryEscape` does
/// (everything but unreserved characters; a space becomes '+').
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `path?k=v&...` from pairs, escaping values; no `?` when empty.
pub(crate) fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    // A path may carry a fixed query already (`/build/prune?all=1`).
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{}", q.join("&"))
}

/// Percent-encodes one path segment (an image reference may hold '/' and ':'
/// which the daemon routes as part of the name, so those stay).
pub(crate) fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':' | b'@')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// HTTP/1 over any connected stream; the connection is driven in the background, with
/// upgrades, so attach can take the socket over after a 101.
async fn handshake<S>(stream: S) -> hyper::Result<hyper::client::conn::http1::SendRequest<Body>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_lower_version() {
        assert_eq!(min_version("1.41", MAX_API_VERSION), "1.41");
        assert_eq!(min_version("1.52", MAX_API_VERSION), "1.51");
        assert_eq!(min_version("1.9", "1.10"), "1.9");
    }

    #[test]
    fn query_values_are_escaped() {
        let q = with_query(
            "/images/json",
            &[("filters", r#"{"a":{"b=c":true}}"#.to_string())],
        );
        assert_eq!(
            q,
            "/images/json?filters=%7B%22a%22%3A%7B%22b%3Dc%22%3Atrue%7D%7D"
        );
        assert_eq!(with_query("/x", &[]), "/x");
    }

    #[test]
    fn hosts_parse_by_scheme() {
        assert!(Client::new("unix:///run/x.sock", None).is_ok());
        assert!(Client::new("tcp://127.0.0.1:2375", None).is_ok());
        assert!(matches!(
            Client::new("ssh://x", None),
            Err(ClientError::BadHost(_))
        ));
    }

    #[tokio::test]
    async fn missing_socket_fails_fast_with_dockers_message() {
        let c = Client::new("unix:///nonexistent/berth-test.sock", None).unwrap();
        let err = c.get_json("/info").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot connect to the Docker daemon at unix:///nonexistent/berth-test.sock. Is the docker daemon running?"
        );
    }
}
