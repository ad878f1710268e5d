//! ADD from a URL: a plain HTTP/1.0 GET, streamed to a file and hashed on the way
//! (the hash is part of the step's cache key, as the classic builder checksums what it
//! downloaded). HTTP/1.0 keeps the client small (no chunked bodies, the server closes
//! the connection at the end); `https://` needs TLS, which this client does not do.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The parts of an `http://host[:port]/path` URL.
fn split_url(url: &str) -> Result<(String, String, String), DaemonError> {
    let bad = || DaemonError::invalid(format!("invalid URL for ADD: {url}"));
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(DaemonError::invalid(format!(
            "ADD from {url}: only http:// URLs are supported by this builder"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let name = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    Ok((addr, path.to_string(), name))
}

fn fail(url: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::invalid(format!("failed to GET {url}: {e}"))
}

/// Downloads `url` to `to`.
///
/// # Errors
/// `InvalidArgument` for a URL this client cannot fetch, a connection failure or a
/// non-2xx status (Docker's "failed to GET … with status …").
pub(super) async fn download(url: &str, to: &Path) -> Result<Download, DaemonError> {
    let (addr, path, name) = split_url(url)?;
    if name.is_empty() {
        return Err(DaemonError::invalid(format!(
            "cannot determine filename from url: {url}"
        )));
    }
    let host = addr.trim_end_matches(":80");
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(fail(url))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: berth\r\nAccept: */*\r\n\r\n");
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
    loop {
        let n = stream.read(&mut buf).await.map_err(fail(url))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
        file.write_all(&buf[..n]).await.map_err(fail(url))?;
    }
    file.flush().await.map_err(fail(url))?;
    Ok(Download {
        path: to.to_path_buf(),
        name,
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
        let (a, p, n) = split_url("http://127.0.0.1:8000/dir/file.txt?x=1").unwrap();
        assert_eq!(
            (a.as_str(), p.as_str(), n.as_str()),
            ("127.0.0.1:8000", "/dir/file.txt?x=1", "file.txt")
        );
        let (a, _, n) = split_url("http://example.com").unwrap();
        assert_eq!((a.as_str(), n.as_str()), ("example.com:80", ""));
        assert!(split_url("https://example.com/x").is_err());
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
}
