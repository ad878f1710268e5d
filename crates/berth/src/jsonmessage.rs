//! Docker's JSON message streams (`load`, `import`, later `pull`/`push`/`build`):
//! newline-delimited (really: concatenated) JSON objects decoded as they
//! arrive and printed the way docker prints them to a non-terminal.
//!
//! Progress bars are not drawn: like docker writing to a pipe, messages that
//! carry a progress bar are skipped and the rest print one per line.

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// A message stream ended with an `error`/`errorDetail` message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StreamError {
    pub(crate) message: String,
}

/// Incrementally splits a byte stream into JSON values.
#[derive(Default)]
pub(crate) struct JsonStreamDecoder {
    buf: BytesMut,
}

impl JsonStreamDecoder {
    /// Adds bytes and returns every complete value now available.
    ///
    /// # Errors
    /// Malformed JSON (anything but an incomplete trailing value).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Value>, serde_json::Error> {
        self.buf.extend_from_slice(chunk);
        let mut values = Vec::new();
        let mut consumed = 0;
        {
            let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
            loop {
                match it.next() {
                    Some(Ok(v)) => {
                        values.push(v);
                        consumed = it.byte_offset();
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => return Err(e),
                    None => {
                        consumed = it.byte_offset();
                        break;
                    }
                }
            }
        }
        self.buf.advance(consumed);
        Ok(values)
    }

    /// Whether undecoded bytes (other than whitespace) remain.
    pub(crate) fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// Renders one message as docker's `JSONMessage.Display` does for a
/// non-terminal; `Ok(None)` for messages that print nothing.
///
/// # Errors
/// [`StreamError`] for an error message.
pub(crate) fn display(msg: &Value) -> Result<Option<String>, StreamError> {
    if let Some(detail) = msg.get("errorDetail").filter(|d| !d.is_null()) {
        let message = detail
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| msg.get("error").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        return Err(StreamError { message });
    }
    if let Some(error) = msg
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        return Err(StreamError {
            message: error.to_string(),
        });
    }
    if msg.get("aux").is_some_and(|a| !a.is_null()) {
        return Ok(None);
    }
    let progress_bar = msg.get("progressDetail").is_some_and(|p| {
        p.get("total").and_then(Value::as_i64).unwrap_or(0) > 0
            || p.get("current").and_then(Value::as_i64).unwrap_or(0) > 0
    });
    if progress_bar {
        return Ok(None);
    }
    let text = |k: &str| msg.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = String::new();
    if !text("id").is_empty() {
        out.push_str(&format!("{}: ", text("id")));
    }
    if !text("from").is_empty() {
        out.push_str(&format!("(from {}) ", text("from")));
    }
    if !text("progress").is_empty() {
        out.push_str(&format!("{} {}", text("status"), text("progress")));
    } else if !text("stream").is_empty() {
        out.push_str(text("stream"));
    } else {
        out.push_str(text("status"));
        out.push('\n');
    }
    Ok(Some(out))
}

/// Copies a message stream to `out` as docker does, stopping at the first error.
///
/// # Errors
/// [`StreamError`] from the daemon, or a broken/malformed stream.
pub(crate) async fn display_stream<S, W>(body: S, out: &mut W) -> anyhow::Result<()>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>>,
    W: std::io::Write,
{
    let mut decoder = JsonStreamDecoder::default();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        for msg in decoder.push(&chunk?)? {
            if let Some(text) = display(&msg)? {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
        }
    }
    if decoder.has_partial() {
        anyhow::bail!("unexpected EOF");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_values_split_across_chunks() {
        let mut d = JsonStreamDecoder::default();
        assert!(d.push(br#"{"stream":"Loaded im"#).unwrap().is_empty());
        let v = d.push(b"age: a:1\\n\"}\r\n{\"status\":\"x\"}").unwrap();
        assert_eq!(v.len(), 2);
        assert!(!d.has_partial());
    }

    #[test]
    fn display_prints_stream_and_status_like_docker() {
        let load = serde_json::json!({"stream": "Loaded image: busybox:latest\n"});
        assert_eq!(
            display(&load).unwrap().unwrap(),
            "Loaded image: busybox:latest\n"
        );
        let import = serde_json::json!({"status": "sha256:abc"});
        assert_eq!(display(&import).unwrap().unwrap(), "sha256:abc\n");
        let layer = serde_json::json!({"status": "Pull complete", "id": "abc"});
        assert_eq!(display(&layer).unwrap().unwrap(), "abc: Pull complete\n");
    }

    #[test]
    fn display_skips_progress_and_aux() {
        let p = serde_json::json!({"status": "Loading", "progressDetail": {"current": 5, "total": 10}, "id": "x"});
        assert!(display(&p).unwrap().is_none());
        assert!(
            display(&serde_json::json!({"aux": {"ID": "sha256:1"}}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn display_returns_stream_errors() {
        let e = serde_json::json!({"errorDetail": {"message": "bad tar"}, "error": "bad tar"});
        assert_eq!(display(&e).unwrap_err().message, "bad tar");
    }
}
