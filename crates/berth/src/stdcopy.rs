//! Docker's multiplexed stream format (its `stdcopy` package), decoded.
//!
//! Attach and logs of a container without a TTY carry stdout and stderr in
//! one byte stream as frames: `[stream, 0, 0, 0, len as u32 big-endian]`
//! then `len` bytes; stream 1 is stdout, 2 stderr, 3 an error from the
//! daemon. A container with a TTY sends a raw stream instead, which callers
//! copy without this decoder.
//!
//! The decoder is fed chunks as they arrive (frames straddle chunk and read
//! boundaries) and writes each payload as soon as it is complete, flushing so
//! that interleaved stdout/stderr reach a terminal in the order sent.

use std::io::Write;

const HEADER_LEN: usize = 8;

/// The stream carried something `docker` would refuse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemuxError {
    /// A system-error frame (stream 3) from the daemon.
    #[error("error from daemon in stream: {0}")]
    Daemon(String),
    /// A frame named a stream that does not exist.
    #[error("Unrecognized input header: {0}")]
    BadHeader(u8),
    /// Writing to our stdout/stderr failed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// Decodes frames fed to it in arbitrary chunks.
#[derive(Default)]
pub(crate) struct Demuxer {
    pending: Vec<u8>,
}

impl Demuxer {
    /// Consumes `chunk`, writing every complete frame's payload to `out`
    /// (stdout, and stdin echoes) or `err` (stderr).
    ///
    /// # Errors
    /// [`DemuxError`] for a daemon error frame, an unknown stream or a write failure.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<(), DemuxError> {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while self.pending.len() - start >= HEADER_LEN {
            let header = &self.pending[start..start + HEADER_LEN];
            let stream = header[0];
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if !matches!(stream, 0..=3) {
                return Err(DemuxError::BadHeader(stream));
            }
            if self.pending.len() - start - HEADER_LEN < len {
                break;
            }
            let payload = &self.pending[start + HEADER_LEN..start + HEADER_LEN + len];
            match stream {
                0 | 1 => {
                    out.write_all(payload)?;
                    out.flush()?;
                }
                2 => {
                    err.write_all(payload)?;
                    err.flush()?;
                }
                _ => {
                    return Err(DemuxError::Daemon(
                        String::from_utf8_lossy(payload).into_owned(),
                    ));
                }
            }
            start += HEADER_LEN + len;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_split_across_chunks_are_reassembled() {
        let mut data = frame(1, b"out\n");
        data.extend(frame(2, b"err\n"));
        data.extend(frame(1, b""));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut d = Demuxer::default();
        for b in data.chunks(3) {
            d.feed(b, &mut out, &mut err).unwrap();
        }
        assert_eq!(out, b"out\n");
        assert_eq!(err, b"err\n");
    }

    #[test]
    fn system_error_frames_fail_with_the_message() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = Demuxer::default()
            .feed(&frame(3, b"boom"), &mut out, &mut err)
            .unwrap_err();
        assert_eq!(e.to_string(), "error from daemon in stream: boom");
        let e = Demuxer::default()
            .feed(&frame(9, b"x"), &mut out, &mut err)
            .unwrap_err();
        assert_eq!(e.to_string(), "Unrecognized input header: 9");
    }
}
