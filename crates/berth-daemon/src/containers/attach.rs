//! Terminal control of a running container: `POST /containers/{id}/resize`.
//!
//! The attach stream itself is a byte pipe to the shim ([`ContainerService::attach_stream`]);
//! the shim owns the pty master, so a resize is one request to it.

use berth_shim_protocol::{Reply, Request};

use super::{ContainerService, shim};
use crate::DaemonError;

impl ContainerService {
    /// `POST /containers/{id}/resize?h=&w=`: sets the container's terminal size (the
    /// process gets SIGWINCH). A container without a TTY accepts and ignores it, as
    /// Docker does.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` ("Container … is not running") when it does not run.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let r = entry.record();
        if !r.state.running {
            return Err(DaemonError::conflict(format!(
                "Container {} is not running",
                r.id
            )));
        }
        match shim::call(&self.state_dir(&r.id), &Request::Resize { height, width }).await {
            Ok(Reply::Ok) => {
                let size = [("height", height.to_string()), ("width", width.to_string())];
                self.event(&r, "resize", &size);
                Ok(())
            }
            Ok(other) => Err(DaemonError::internal(format!(
                "cannot resize the terminal of container {}: {other:?}",
                r.id
            ))),
            Err(_) => Err(DaemonError::conflict(format!(
                "Container {} is not running",
                r.id
            ))),
        }
    }
}

/// Docker's default detach sequence, Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Parses a detach sequence in Docker's notation: comma-separated keys, each a single
/// character or `ctrl-<c>` with `<c>` one of `a`–`z`, `@`, `[`, `\`, `]`, `^`, `_`.
/// An empty string is the default sequence.
///
/// # Errors
/// `InvalidArgument` ("Invalid detach keys (…) provided").
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, DaemonError> {
    if spec.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let invalid = || DaemonError::invalid(format!("Invalid detach keys ({spec}) provided"));
    let mut keys = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let code = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b @ (b'[' | b'\\' | b']' | b'^' | b'_')] => b - b'[' + 27,
                _ => return Err(invalid()),
            };
            keys.push(code);
        } else if key.len() == 1 {
            keys.push(key.as_bytes()[0]);
        } else {
            return Err(invalid());
        }
    }
    Ok(keys)
}

/// Watches a client's stdin for the detach sequence, as Docker's escape proxy does:
/// bytes that could begin the sequence are held back until they either complete it
/// (the client detaches; they never reach the container) or turn out not to (they are
/// passed on).
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// A scanner for `keys` (never detaches when empty).
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }

    /// Appends to `out` what of `input` goes to the container. Returns `true` when the
    /// sequence is complete: the client detaches and the rest of `input` is dropped.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_use_dockers_notation() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            vec![0, 27, 31]
        );
        let err = parse_detach_keys("ctrl-1").unwrap_err();
        assert_eq!(err.to_string(), "Invalid detach keys (ctrl-1) provided");
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn the_sequence_is_swallowed_and_ends_the_session() {
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        let mut out = Vec::new();
        assert!(!s.feed(b"ls\r\x10", &mut out));
        assert_eq!(out, b"ls\r");
        assert!(s.feed(b"\x11after", &mut out));
        assert_eq!(out, b"ls\r");
    }

    #[test]
    fn a_broken_prefix_is_passed_on() {
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        let mut out = Vec::new();
        assert!(!s.feed(b"\x10a\x10\x10", &mut out));
        assert_eq!(out, b"\x10a\x10");
        assert!(s.feed(b"\x11", &mut out));
        let mut s = DetachScanner::new(Vec::new());
        let mut out = Vec::new();
        assert!(!s.feed(b"\x10\x11", &mut out));
        assert_eq!(out, b"\x10\x11");
    }
}
