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

/// Copies between the hijacked connection and our stdio until the output
/// ends (or, with nothing to output, until stdin is done).
///
/// # Errors
/// Broken connections, write failures and daemon errors inside the stream.
pub(crate) async fn stream(conn: Hijacked, streams: Streams) -> anyhow::Result<()> {
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
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let _ = writer.flush().await;
                    }
                }
            }
        }
        // Half-close: stdin is done, the output keeps coming.
        let _ = writer.shutdown().await;
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
        () = &mut input => {
            if has_output { output.await } else { Ok(()) }
        }
    }
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
