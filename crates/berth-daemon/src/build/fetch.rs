//! ADD from a URL: a plain HTTP/1.0 GET, streamed to a file and hashed on the way
//! (the hash is part of the step's cache key, as the classic builder checksums what it
//! downloaded). HTTP/1.0 keeps the client small (no chunked bodies, the server closes
//! the connection at the end). `https://` goes through the registry client's TLS
//! (rustls with the ring provider, Mozilla's roots plus the CAs Docker's layout puts
//! under `/etc/docker/certs.d/<host:port>/`), so the daemon has one TLS stack.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::DaemonError;

/// A downloaded file, ready to be copied.
#[derive(Debug, Clone)]
pub(super) struct Download {
    /// Where it was saved.
    pub path: PathBuf,
    /// Its name in the image when the destination is a directory: the URL's last
    /// path segment.
    pub name: String,
    /// `hex(sha256)` of the content.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// `Last-Modified` as Unix seconds, else now.
    pub mtime: u64,
}

/// The parts of an `http[s]://host[:port]/path` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    tls: bool,
    /// `host:port`, the port defaulted by scheme.
    addr: String,
    /// The host as written (no port): the TLS server name.
    host: String,
    /// The authority as written, for the `Host` header and the certs directory.
    authority: String,
    /// Path and query.
    path: String,
    /// The last path segment: the file's name.
    name: String,
}

fn split_url(url: &str) -> Result<Url, DaemonError> {
    let bad = || DaemonError::invalid(format!("invalid URL for ADD: {url}"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(DaemonError::invalid(format!(
            "ADD from {url}: only http:// and https:// URLs are supported"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let port_split = if authority.ends_with(']') {
        None
    } else {
        authority.rsplit_once(':')
    };
    let (host, addr) = match port_split {
        // An IPv6 address needs its brackets.
        Some((h, _)) if h.contains(':') && !h.ends_with(']') => return Err(bad()),
        Some((h, _)) => (h, authority.to_string()),
        None => (
            authority,
            format!("{authority}:{}", if tls { 443 } else { 80 }),
        ),
    };
    let name = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    Ok(Url {
        tls,
        addr,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        authority: authority.to_string(),
        path: path.to_string(),
        name,
    })
}

/// A connection to the server, plain or TLS.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

fn fail(url: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::invalid(format!("failed to GET {url}: {e}"))
}

/// Downloads `url` to `to`.
///
/// # Errors
/// `InvalidArgument` for a URL this client cannot fetch, a connection failure or a
/// non-2xx status (Docker's "failed to GET … with status …").
pub(super) async fn download(url: &str, to: &Path) -> Result<Download, DaemonError> {
    let u = split_url(url)?;
    if u.name.is_empty() {
        return Err(DaemonError::invalid(format!(
            "cannot determine filename from url: {url}"
        )));
    }
    let tcp = tokio::net::TcpStream::connect(&u.addr)
        .await
        .map_err(fail(url))?;
    let mut stream: Box<dyn Conn> = if u.tls {
        let certs = Path::new(berth_registry::tls::DEFAULT_CERTS_DIR);
        Box::new(
            berth_registry::tls::connect(certs, &u.authority, &u.host, tcp)
                .await
                .map_err(fail(url))?,
        )
    } else {
        Box::new(tcp)
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: berth\r\nAccept: */*\r\n\r\n",
        u.path, u.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(fail(url))?;
    // Headers first (bounded), then the body to the file.
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let body_start = loop {
        let n = stream.read(&mut buf).await.map_err(fail(url))?;
        if n == 0 {
            return Err(DaemonError::invalid(format!(
                "failed to GET {url}: connection closed before the response"
            )));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(DaemonError::invalid(format!(
                "failed to GET {url}: response headers too large"
            )));
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).into_owned();
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or("").trim();
    if !(200..300).contains(&code) {
        return Err(DaemonError::invalid(format!(
            "failed to GET {url} with status {code} {reason}"
        )));
    }
    let mtime = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("last-modified")
                .then(|| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
                .flatten()
        })
        .map(|t| t.timestamp().max(0) as u64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp().max(0) as u64);
    let mut file = tokio::fs::File::create(to).await.map_err(fail(url))?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let first = &head[body_start..];
    hash.update(first);
    size += first.len() as u64;
    file.write_all(first).await.map_err(fail(url))?;
    let length: Option<u64> = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    });
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            // A TLS server that closes without close_notify: the end of an HTTP/1.0
            // body, provided the length (when given) says it is complete.
            Err(e) if u.tls && e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(fail(url)(e)),
        };
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
        file.write_all(&buf[..n]).await.map_err(fail(url))?;
    }
    file.flush().await.map_err(fail(url))?;
    if length.is_some_and(|l| l != size) {
        return Err(DaemonError::invalid(format!(
            "failed to GET {url}: the body ended after {size} of {} bytes",
            length.unwrap_or(0)
        )));
    }
    Ok(Download {
        path: to.to_path_buf(),
        name: u.name,
        sha256: hex::encode(hash.finalize()),
        size,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_path_and_file_name() {
        let u = split_url("http://127.0.0.1:8000/dir/file.txt?x=1").unwrap();
        assert_eq!(
            (u.tls, u.addr.as_str(), u.path.as_str(), u.name.as_str()),
            (false, "127.0.0.1:8000", "/dir/file.txt?x=1", "file.txt")
        );
        let u = split_url("http://example.com").unwrap();
        assert_eq!((u.addr.as_str(), u.name.as_str()), ("example.com:80", ""));
        let u = split_url("https://example.com/a/b.tgz").unwrap();
        assert_eq!(
            (
                u.tls,
                u.addr.as_str(),
                u.host.as_str(),
                u.authority.as_str()
            ),
            (true, "example.com:443", "example.com", "example.com")
        );
        let u = split_url("https://[::1]:8443/x").unwrap();
        assert_eq!((u.addr.as_str(), u.host.as_str()), ("[::1]:8443", "::1"));
        assert!(split_url("ftp://example.com/x").is_err());
        assert!(split_url("https://user@example.com/x").is_err());
    }

    #[tokio::test]
    async fn download_saves_the_body_and_refuses_errors() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for status in ["200 OK", "404 Not Found"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut req = vec![0u8; 1024];
                let _ = s.read(&mut req).await;
                let resp = format!(
                    "HTTP/1.0 {status}\r\nLast-Modified: Tue, 15 Nov 1994 08:12:31 GMT\r\n\r\nhello"
                );
                s.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://{addr}/f.txt");
        let d = download(&url, &dir.path().join("x")).await.unwrap();
        assert_eq!(std::fs::read(&d.path).unwrap(), b"hello");
        assert_eq!((d.name.as_str(), d.size, d.mtime), ("f.txt", 5, 784887151));
        let e = download(&url, &dir.path().join("y")).await.unwrap_err();
        assert_eq!(
            e.message(),
            format!("failed to GET {url} with status 404 Not Found")
        );
    }

    #[tokio::test]
    async fn https_goes_through_tls_and_a_plain_server_fails_the_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut hello = vec![0u8; 1024];
            // A TLS ClientHello arrives (a handshake record, 0x16), not a GET.
            let n = s.read(&mut hello).await.unwrap();
            assert!(n > 0 && hello[0] == 0x16, "{:?}", &hello[..n.min(8)]);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nplain").await;
        });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("https://{addr}/f.txt");
        let e = download(&url, &dir.path().join("x")).await.unwrap_err();
        assert!(
            e.message().starts_with(&format!("failed to GET {url}: ")),
            "{}",
            e.message()
        );
    }
}
