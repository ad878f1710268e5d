//! Basic authentication against an htpasswd file of bcrypt entries (`htpasswd -B`), the
//! one scheme Docker's registry offers without a token server.
//!
//! bcrypt is slow on purpose (htpasswd's default cost 5 is ~2 ms, cost 10 is ~60 ms) and
//! clients send credentials on every request, so a successful check is remembered by a
//! sha256 of the `user:password` pair; a pull of many blobs pays for bcrypt once. The
//! cache holds no password, only that hash.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// Why an htpasswd file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// It cannot be read.
    #[error("cannot read htpasswd file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `user:$2y$...`.
    #[error("htpasswd file {path}, line {line}: expected user:bcrypt-hash (htpasswd -B)")]
    Entry {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// The users of an htpasswd file.
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Reads an htpasswd file. Blank lines and `#` comments are skipped.
    ///
    /// # Errors
    /// [`HtpasswdError`] when the file is unreadable or holds a non-bcrypt entry.
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|line| HtpasswdError::Entry {
            path: path.to_path_buf(),
            line,
        })
    }

    /// Parses htpasswd text; the error is the 1-based number of the bad line.
    fn parse(text: &str) -> Result<Htpasswd, usize> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or(n + 1)?;
            if user.is_empty() || !hash.starts_with("$2") {
                return Err(n + 1);
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Checks an `Authorization` header value; `Some(user)` when it carries Basic
    /// credentials of a user whose password matches.
    pub fn check(&self, authorization: Option<&str>) -> Option<String> {
        let encoded = authorization?.strip_prefix("Basic ")?.trim();
        let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let hash = self.users.get(user)?;
        let key: [u8; 32] = Sha256::digest(decoded.as_bytes()).into();
        let cached = self
            .verified
            .lock()
            .expect("the verified set's lock is never poisoned")
            .contains(&key);
        if cached || bcrypt::verify(password, hash).unwrap_or(false) {
            self.verified
                .lock()
                .expect("the verified set's lock is never poisoned")
                .insert(key);
            Some(user.to_string())
        } else {
            None
        }
    }
}

/// Standard-alphabet base64 with optional padding, as Basic auth sends it.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_checked_against_bcrypt_entries() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let h = Htpasswd::parse(&format!("# users\n\nalice:{hash}\n")).unwrap();
        // "alice:s3cret", "alice:wrong", "bob:s3cret"
        assert_eq!(
            h.check(Some("Basic YWxpY2U6czNjcmV0")),
            Some("alice".into())
        );
        // Second time from the cache.
        assert_eq!(
            h.check(Some("Basic YWxpY2U6czNjcmV0")),
            Some("alice".into())
        );
        assert_eq!(h.check(Some("Basic YWxpY2U6d3Jvbmc=")), None);
        assert_eq!(h.check(Some("Basic Ym9iOnMzY3JldA==")), None);
        assert_eq!(h.check(Some("Bearer x")), None);
        assert_eq!(h.check(None), None);
    }

    #[test]
    fn non_bcrypt_entries_are_refused_with_their_line() {
        assert_eq!(
            Htpasswd::parse("alice:$2y$05$x\nbob:{SHA}abc\n").err(),
            Some(2)
        );
        assert_eq!(Htpasswd::parse("nocolon").err(), Some(1));
    }
}
