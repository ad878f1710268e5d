//! The layer directory, held open as a dirfd, and every lookup inside it.
//!
//! All image-supplied names are resolved here with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` from the layer's dirfd, so a symlink in the layer (`x -> /etc`,
//! `x -> ../../..`) means the same thing it will mean inside the container: a place
//! under the layer root, never on the host. Callers then create the last component
//! with `*at()` calls relative to the parent fd returned here.
//!
//! Tarballs list a directory's children right after it, so the last few parent fds
//! are kept: most entries need no lookup at all.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How many parent directory fds are kept open. Tarballs are depth-first, so the
/// directories along the current path are the ones asked for again.
const CACHE_SLOTS: usize = 16;

/// `openat2` fails with `EAGAIN` under `RESOLVE_IN_ROOT` when a rename anywhere on the
/// system races with the lookup (openat2(2)); retrying is the documented answer.
const EAGAIN_RETRIES: usize = 64;

/// Mode of directories that a tarball implies but does not list (Docker's
/// `ImpliedDirectoryMode`).
pub(crate) const IMPLIED_DIR_MODE: u32 = 0o755;

/// A directory fd inside the layer, shared with the cache.
pub(crate) type DirFd = Rc<OwnedFd>;

/// The layer root and a small cache of recently used directories inside it.
pub(crate) struct LayerRoot {
    root: DirFd,
    /// `(normalized name, fd)`, most recently used last. Each fd is exactly what
    /// resolving that name in the root gave, so reusing it is equivalent as long as
    /// nothing along the name was removed since: [`LayerRoot::forget`] is called on
    /// every removal.
    cache: Vec<(Vec<u8>, DirFd)>,
}

impl LayerRoot {
    /// Opens `path`, which must be an existing directory.
    pub(crate) fn open(path: &Path) -> io::Result<LayerRoot> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())?;
        Ok(LayerRoot {
            root: Rc::new(fd),
            cache: Vec::with_capacity(CACHE_SLOTS),
        })
    }

    /// Opens the directory `name` (normalized; empty means the root), resolving every
    /// component inside the layer. With `create`, missing directories are made with
    /// mode 0755, as Docker does for directories a tarball implies.
    ///
    /// # Errors
    /// `ENOENT` (without `create`), `ENOTDIR` when a component is not a directory,
    /// `ELOOP` when a component is a dangling symlink that `create` cannot replace,
    /// and any error of `openat2` or `mkdirat`.
    pub(crate) fn dir(&mut self, name: &[u8], create: bool) -> io::Result<DirFd> {
        if name.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(i) = self.cache.iter().rposition(|(n, _)| n == name) {
            let hit = self.cache.remove(i);
            let fd = hit.1.clone();
            self.cache.push(hit);
            return Ok(fd);
        }
        let fd = match self.resolve(name, dir_flags()) {
            Err(e) if create && e == Errno::NOENT => self.create_dirs(name)?,
            other => other?,
        };
        let fd = Rc::new(fd);
        self.remember(name.to_vec(), fd.clone());
        Ok(fd)
    }

    /// Resolves `name` (non-empty, normalized) inside the root with `flags`.
    pub(crate) fn resolve(&self, name: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(&self.root, name, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Records `fd` as the directory `name`, typically one the caller just created.
    pub(crate) fn remember(&mut self, name: Vec<u8>, fd: DirFd) {
        if let Some(i) = self.cache.iter().position(|(n, _)| *n == name) {
            self.cache.remove(i);
        } else if self.cache.len() == CACHE_SLOTS {
            self.cache.remove(0);
        }
        self.cache.push((name, fd));
    }

    /// Drops every cached directory. Called whenever something is removed, since a
    /// removed directory (or one reached through it) must be looked up afresh.
    pub(crate) fn forget(&mut self) {
        self.cache.clear();
    }

    /// Creates the missing directories of `name` one component at a time. Each prefix
    /// is resolved in the root (so symlinks keep their in-layer meaning); a missing
    /// component is made with `mkdirat` in the fd of the prefix before it and reopened
    /// with `O_NOFOLLOW`, so what we open is the directory we made.
    fn create_dirs(&mut self, name: &[u8]) -> io::Result<OwnedFd> {
        let mut current: Option<OwnedFd> = None;
        let ends = name
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .chain([name.len()]);
        let mut start = 0;
        for end in ends {
            let component = &name[start..end];
            start = end + 1;
            match self.resolve(&name[..end], dir_flags()) {
                Ok(fd) => current = Some(fd),
                Err(Errno::NOENT) => {
                    let parent = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
                    match rustix::fs::mkdirat(parent, component, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd =
                        rustix::fs::openat(parent, component, nofollow_dir_flags(), Mode::empty())?;
                    // mkdirat's mode is filtered by the umask; set it exactly.
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(IMPLIED_DIR_MODE))?;
                    current = Some(fd);
                }
                Err(e) => return Err(e.into()),
            }
        }
        current.ok_or_else(|| io::Error::from(Errno::NOENT))
    }
}

/// Flags for a directory we will create entries in or set metadata on.
pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// [`dir_flags`] that refuse a symlink as the last component.
pub(crate) fn nofollow_dir_flags() -> OFlags {
    dir_flags() | OFlags::NOFOLLOW
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("layer");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        let mut layer = LayerRoot::open(&root).unwrap();
        let inside = std::fs::metadata(root.join("etc")).unwrap();
        for name in ["abs", "up/etc", "up/up/abs"] {
            let fd = layer.dir(name.as_bytes(), false).unwrap();
            let st = rustix::fs::fstat(&*fd).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(st.st_ino, inside.ino(), "{name}");
        }
    }

    #[test]
    fn creates_missing_parents_with_mode_0755() {
        let tmp = tempfile::tempdir().unwrap();
        let mut layer = LayerRoot::open(tmp.path()).unwrap();
        layer.dir(b"a/b/c", true).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for p in ["a", "a/b", "a/b/c"] {
            let m = std::fs::symlink_metadata(tmp.path().join(p)).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.permissions().mode() & 0o7777, 0o755, "{p}");
        }
    }

    #[test]
    fn missing_parent_through_dangling_symlink_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("/nonexistent", tmp.path().join("x")).unwrap();
        let mut layer = LayerRoot::open(tmp.path()).unwrap();
        assert!(layer.dir(b"x/y", true).is_err());
        assert!(!Path::new("/nonexistent").exists());
    }

    #[test]
    fn cache_returns_the_same_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut layer = LayerRoot::open(tmp.path()).unwrap();
        let a = layer.dir(b"a", true).unwrap();
        let again = layer.dir(b"a", false).unwrap();
        assert!(Rc::ptr_eq(&a, &again));
        layer.forget();
        let fresh = layer.dir(b"a", false).unwrap();
        assert!(!Rc::ptr_eq(&a, &fresh));
    }
}
