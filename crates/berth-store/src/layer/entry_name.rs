//! Normalizing the names a layer tarball gives its entries.
//!
//! Names are image-supplied and hostile until proven otherwise. They are cut into
//! components here and nowhere else, so the rest of the extractor only ever sees a
//! relative, `..`-free name whose parent and base are plain byte slices.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A normalized entry name: components joined by single `/`, no leading `/`, no `.`
/// or empty components, no `..` components. The empty name is the layer root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryName {
    bytes: Vec<u8>,
    /// Index of the first byte of the last component.
    base_start: usize,
}

/// Why an entry name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPathReason {
    /// A `..` component: it could only serve to climb out of the layer.
    #[error("it contains a `..` component (breakout)")]
    ParentComponent,
    /// A NUL byte, which no file name can hold.
    #[error("it contains a NUL byte")]
    Nul,
    /// Longer than the configured limit (`PATH_MAX` by default).
    #[error("it is longer than {limit} bytes")]
    TooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl EntryName {
    /// Normalizes `raw`: strips leading `/` (absolute names are relative to the layer
    /// root) and `.` components, collapses repeated `/`, and refuses `..` components,
    /// NUL bytes and names longer than `max_len` bytes.
    pub(crate) fn parse(raw: &[u8], max_len: usize) -> Result<EntryName, InvalidPathReason> {
        if raw.contains(&0) {
            return Err(InvalidPathReason::Nul);
        }
        let mut bytes = Vec::with_capacity(raw.len());
        let mut base_start = 0;
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => continue,
                b".." => return Err(InvalidPathReason::ParentComponent),
                _ => {}
            }
            if !bytes.is_empty() {
                bytes.push(b'/');
            }
            base_start = bytes.len();
            bytes.extend_from_slice(component);
        }
        if bytes.len() > max_len {
            return Err(InvalidPathReason::TooLong { limit: max_len });
        }
        Ok(EntryName { bytes, base_start })
    }

    /// Whether this names the layer root itself (`/`, `./`, `.`).
    pub(crate) fn is_root(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The whole normalized name.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parent's normalized name (empty for an entry directly under the root).
    pub(crate) fn parent(&self) -> &[u8] {
        &self.bytes[..self.base_start.saturating_sub(1)]
    }

    /// The last component; empty only for the root.
    pub(crate) fn base(&self) -> &[u8] {
        &self.bytes[self.base_start..]
    }

    /// The name as a path, for error messages.
    pub(crate) fn to_path(&self) -> PathBuf {
        bytes_to_path(&self.bytes)
    }
}

/// Raw tarball bytes as a path, for error messages and logs.
pub(crate) fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<(String, String, String), InvalidPathReason> {
        let n = EntryName::parse(raw.as_bytes(), 4096)?;
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        Ok((s(n.as_bytes()), s(n.parent()), s(n.base())))
    }

    fn tup(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn strips_leading_slash_and_dot_components() {
        assert_eq!(norm("/etc/passwd"), Ok(tup("etc/passwd", "etc", "passwd")));
        assert_eq!(
            norm("./etc//./passwd"),
            Ok(tup("etc/passwd", "etc", "passwd"))
        );
        assert_eq!(norm("///usr/bin/"), Ok(tup("usr/bin", "usr", "bin")));
        assert_eq!(norm("file"), Ok(tup("file", "", "file")));
        assert_eq!(norm("./file"), Ok(tup("file", "", "file")));
    }

    #[test]
    fn root_spellings_normalize_to_the_empty_name() {
        for raw in ["/", ".", "./", "", "//./"] {
            let n = EntryName::parse(raw.as_bytes(), 4096).unwrap();
            assert!(n.is_root(), "{raw:?}");
            assert_eq!(n.parent(), b"");
            assert_eq!(n.base(), b"");
        }
    }

    #[test]
    fn rejects_dot_dot_anywhere() {
        for raw in ["..", "../etc/passwd", "a/../../b", "/../x", "a/..", "./.."] {
            assert_eq!(
                norm(raw),
                Err(InvalidPathReason::ParentComponent),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn keeps_names_that_merely_contain_dots() {
        assert_eq!(
            norm("a/..b/...c/.d"),
            Ok(tup("a/..b/...c/.d", "a/..b/...c", ".d"))
        );
        assert_eq!(
            norm(".wh..wh..opq"),
            Ok(tup(".wh..wh..opq", "", ".wh..wh..opq"))
        );
    }

    #[test]
    fn rejects_nul_and_overlong_names() {
        assert_eq!(norm("a\0b"), Err(InvalidPathReason::Nul));
        let long = "x/".repeat(3000);
        assert_eq!(norm(&long), Err(InvalidPathReason::TooLong { limit: 4096 }));
        // The limit applies after normalization: slashes that collapse do not count.
        let padded = format!("{}{}", "/".repeat(5000), "a");
        assert_eq!(norm(&padded), Ok(tup("a", "", "a")));
    }
}
