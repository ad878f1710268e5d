//! Streaming a hijacked attach connection, as docker's `hijackedIOStreamer`.
//!
//! Output and input run side by side. Output is the container's stdout and
//! stderr: demultiplexed ([`crate::stdcopy`]) when the container has no TTY,
//! copied raw when it has one. Input is our stdin when attached; when it
//! ends (or at once when stdin is not attached) the write side of the
//! connection is shut down, a half-close that tells the daemon stdin is done
//! while the output keeps flowing until the daemon closes the connection.
//!
//! The TTY path is where raw terminal mode, detach keys and resizing belong:
//! [`Streams::tty`] already selects the raw copy; [`RawTerminal`] puts our
//! terminal in raw mode for the duration when stdin is a terminal.

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Hijacked;
use crate::stdcopy::Demuxer;

/// Which streams are attached, and how the container's output is framed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Streams {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// The container has a TTY: one raw stream, no frames.
    pub(crate) tty: bool,
}

/// The user typed the detach sequence (docker's `term.EscapeError`).
#[derive(Debug, thiserror::Error)]
#[error("read escape sequence")]
pub(crate) struct Detached;

/// Docker's detach notation (`ctrl-p,ctrl-q`, `ctrl-a,x`) as bytes; `None` when
/// invalid. Empty is the default, Ctrl-P Ctrl-Q.
pub(crate) fn detach_key_bytes(spec: &str) -> Option<Vec<u8>> {
    if spec.is_empty() {
        return Some(vec![0x10, 0x11]);
    }
    spec.split(',')
        .map(|key| {
            let lower = key.to_ascii_lowercase();
            match lower.strip_prefix("ctrl-").map(str::as_bytes) {
                Some([b @ b'a'..=b'z']) => Some(b - b'a' + 1),
                Some([b'@']) => Some(0),
                Some([b @ (b'[' | b'\\' | b']' | b'^' | b'_')]) => Some(b - b'[' + 27),
                Some(_) => None,
                None if key.len() == 1 => Some(key.as_bytes()[0]),
                None => None,
            }
        })
        .collect()
}

/// Watches typed bytes for the detach sequence, holding back a partial match
/// (docker's escape proxy). Returns true when the sequence is complete.
fn scan_detach(keys: &[u8], matched: &mut usize, input: &[u8], out: &mut Vec<u8>) -> bool {
    for &b in input {
        if keys.is_empty() {
            out.push(b);
        } else if b == keys[*matched] {
            *matched += 1;
            if *matched == keys.len() {
                return true;
            }
        } else {
            out.extend_from_slice(&keys[..*matched]);
            *matched = usize::from(b == keys[0]);
            if *matched == 0 {
                out.push(b);
            } else if keys.len() == 1 {
                return true;
            }
        }
    }
    false
}

/// Copies between the hijacked connection and our stdio until the output
/// ends (or, with nothing to output, until stdin is done). With a TTY and
/// stdin, typing `detach_keys` (docker's notation; empty for Ctrl-P Ctrl-Q)
/// ends the session with [`Detached`] and leaves the container running.
///
/// # Errors
/// [`Detached`]; broken connections, write failures and daemon errors inside
/// the stream.
pub(crate) async fn stream(
    conn: Hijacked,
    streams: Streams,
    detach_keys: &str,
) -> anyhow::Result<()> {
    let keys = if streams.stdin && streams.tty {
        detach_key_bytes(detach_keys).unwrap_or_else(|| {
            eprintln!("invalid detach escape keys, using default: {detach_keys}");
            vec![0x10, 0x11]
        })
    } else {
        Vec::new()
    };
    let _raw = if streams.stdin && streams.tty {
        RawTerminal::enable()
    } else {
        None
    };
    let (mut reader, mut writer) = tokio::io::split(conn.io);
    let has_output = streams.stdout || streams.stderr;

    let input = async move {
        if streams.stdin {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            let mut pass = Vec::with_capacity(buf.len());
            let mut matched = 0;
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        pass.clear();
                        let detach = scan_detach(&keys, &mut matched, &buf[..n], &mut pass);
                        if writer.write_all(&pass).await.is_err() {
                            break;
                        }
                        let _ = writer.flush().await;
                        if detach {
                            return true;
                        }
                    }
                }
            }
        }
        // Half-close: stdin is done, the output keeps coming.
        let _ = writer.shutdown().await;
        false
    };

    let output = async move {
        if !has_output {
            return Ok(());
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut demux = Demuxer::default();
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                // The daemon may reset the connection once the container is gone.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(anyhow::Error::new(e)),
            };
            let chunk = &buf[..n];
            if streams.tty {
                let mut out = std::io::stdout().lock();
                out.write_all(chunk)?;
                out.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                let mut err = std::io::stderr().lock();
                demux.feed(chunk, &mut out, &mut err)?;
            }
        }
    };

    tokio::pin!(input);
    tokio::pin!(output);
    tokio::select! {
        result = &mut output => result,
        detached = &mut input => {
            if detached {
                Err(Detached.into())
            } else if has_output {
                output.await
            } else {
                Ok(())
            }
        }
    }
}

/// Whether an attach ended because the user detached.
pub(crate) fn is_detached(result: &anyhow::Result<()>) -> bool {
    matches!(result, Err(e) if e.is::<Detached>())
}

/// Our terminal in raw mode while a TTY container is attached with stdin;
/// the previous mode comes back on drop.
pub(crate) struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    /// Switches stdin to raw mode when it is a terminal (`None` otherwise).
    pub(crate) fn enable() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Our stdout's terminal size as (height, width), or (0, 0) when it is not
/// a terminal (docker's `GetTtySize`).
pub(crate) fn terminal_size() -> (u16, u16) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(ws) => (ws.ws_row, ws.ws_col),
        Err(_) => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_dockers_notation() {
        assert_eq!(detach_key_bytes(""), Some(vec![16, 17]));
        assert_eq!(detach_key_bytes("ctrl-a,x"), Some(vec![1, b'x']));
        assert_eq!(detach_key_bytes("ctrl-\\"), Some(vec![28]));
        assert_eq!(detach_key_bytes("ctrl-1"), None);
    }

    #[test]
    fn the_detach_sequence_is_held_back_and_ends_the_session() {
        let keys = [16, 17];
        let (mut m, mut out) = (0, Vec::new());
        assert!(!scan_detach(&keys, &mut m, b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!scan_detach(&keys, &mut m, b"c\x10", &mut out));
        assert_eq!(out, b"ab\x10c");
        assert!(scan_detach(&keys, &mut m, b"\x11", &mut out));
        assert_eq!(out, b"ab\x10c");
    }
}
