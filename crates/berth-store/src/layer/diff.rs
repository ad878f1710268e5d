//! A container's changes, read from its overlay upperdir: as a layer tarball (what
//! `commit` and every Dockerfile `RUN`/`COPY` step store) and as a list of added,
//! changed and deleted paths (`docker diff`).
//!
//! The upperdir holds exactly what the container wrote, in overlayfs's format:
//! copied-up and new files, 0:0 character devices for deletions, and
//! `trusted.overlay.opaque=y` on directories that replace a lower one. The mount uses
//! `index=off,redirect_dir=off` and no metacopy, so every entry there is complete and
//! no rename is recorded as a redirect: packing the upperdir with the whiteouts
//! converted is the layer (Docker's overlay2 `Diff`).
//!
//! The change list needs the lower layers too, to tell an added path from a changed
//! one; it follows Docker's `ChangesDirs` rules: a path only in the upper layer is
//! added (with everything under it), a path in both is changed when its mode, owner
//! or device differs (for non-directories also size or mtime), a whiteout over a
//! visible lower path is a deletion, and a directory with any change below it is
//! reported as changed. The lower layers are walked alongside by directory fd, so a
//! symlink in a layer never sends the lookup elsewhere.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::packer::{PackOptions, PackStats, TreePacker, get_xattr, sorted_names};

/// The overlayfs xattr that marks a directory opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Docker's change kinds, with the API's numbers (`FilesystemChange.Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// `C`: the path exists below and was modified.
    Modify = 0,
    /// `A`: the path is new.
    Add = 1,
    /// `D`: the path was deleted.
    Delete = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modify => 'C',
            ChangeKind::Add => 'A',
            ChangeKind::Delete => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container (`/etc/passwd`), bytes as on disk.
    pub path: Vec<u8>,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// Why a diff could not be computed or written.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A layer directory could not be opened.
    #[error("cannot open layer directory {path:?}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Walking the layers or writing the tarball failed.
    #[error("cannot read the changes in {path:?}")]
    Walk {
        /// The upper directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn open_dir(path: &Path) -> Result<OwnedFd, DiffError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| DiffError::Open {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Writes the layer tarball of an overlay upper directory to `out`: Docker's layer
/// format, whiteouts converted, entries streamed. The returned digest is the layer's
/// diff ID.
///
/// # Errors
/// [`DiffError::Open`] when `upper` cannot be opened, [`DiffError::Walk`] when reading
/// it or writing `out` fails.
pub fn write_diff<W: Write>(upper: &Path, out: W) -> Result<(W, PackStats), DiffError> {
    let root = open_dir(upper)?;
    let walk = |source| DiffError::Walk {
        path: upper.to_path_buf(),
        source,
    };
    let mut packer = TreePacker::new(
        out,
        PackOptions {
            overlay_whiteouts: true,
        },
    );
    packer.append_children(root.as_fd(), b"").map_err(walk)?;
    packer.finish().map_err(walk)
}

/// The changes an overlay upper directory makes over `lowers` (top layer first), in
/// path order.
///
/// # Errors
/// [`DiffError::Open`] for a directory that cannot be opened, [`DiffError::Walk`] for
/// a failure while reading.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, DiffError> {
    let root = open_dir(upper)?;
    let lower_fds = lowers
        .iter()
        .map(|l| open_dir(l).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    walk_changes(root.as_fd(), &lower_fds, b"", false, &mut out).map_err(|source| {
        DiffError::Walk {
            path: upper.to_path_buf(),
            source,
        }
    })?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Records the changes inside the upper directory `dir` (named `prefix`, `""` for the
/// root) over the lower directories `lowers` (the same directory in each lower layer
/// where it is visible). `added` means the directory itself is new, so everything
/// under it is too.
fn walk_changes(
    dir: BorrowedFd<'_>,
    lowers: &[Option<OwnedFd>],
    prefix: &[u8],
    added: bool,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    let names = sorted_names(dir)?;
    for name in &names {
        let st = match rustix::fs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        let kind = FileType::from_raw_mode(st.st_mode);
        let lower = if added {
            None
        } else {
            lower_stat(lowers, name)?
        };
        if is_whiteout(&st) {
            if lower.is_some() {
                out.push(Change {
                    path,
                    kind: ChangeKind::Delete,
                });
            }
            continue;
        }
        let before = out.len();
        let self_kind = match &lower {
            None => Some(ChangeKind::Add),
            Some(l) if stat_differs(l, &st) => Some(ChangeKind::Modify),
            Some(_) => None,
        };
        if let Some(kind) = self_kind {
            out.push(Change {
                path: path.clone(),
                kind,
            });
        }
        if kind == FileType::Directory {
            let fd = match rustix::fs::openat(
                dir,
                name.as_slice(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let opaque = matches!(get_xattr(&fd, OVERLAY_OPAQUE_XATTR)?, Some(v) if v == b"y");
            let child_added = lower.is_none();
            let child_lowers = if child_added {
                Vec::new()
            } else {
                descend(lowers, name)?
            };
            if opaque && !child_added {
                // Everything visible below that the upper directory does not hold again
                // was deleted by replacing the directory.
                let upper_children: BTreeSet<Vec<u8>> =
                    sorted_names(fd.as_fd())?.into_iter().collect();
                for gone in visible_names(&child_lowers)? {
                    if !upper_children.contains(&gone) {
                        let mut p = path.clone();
                        p.push(b'/');
                        p.extend_from_slice(&gone);
                        out.push(Change {
                            path: p,
                            kind: ChangeKind::Delete,
                        });
                    }
                }
            }
            walk_changes(fd.as_fd(), &child_lowers, &path, child_added, out)?;
            // A directory with changes below it is reported as changed, as Docker does
            // (its metadata travels with the layer).
            if self_kind.is_none() && out.len() > before {
                out.insert(
                    before,
                    Change {
                        path,
                        kind: ChangeKind::Modify,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Whether `st` is an overlay whiteout (a 0:0 character device).
fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Docker's `statDifferent`: mode, owner and device always; size and mtime (to the
/// second when either side has no nanoseconds) for non-directories.
fn stat_differs(old: &Stat, new: &Stat) -> bool {
    if old.st_mode != new.st_mode
        || old.st_uid != new.st_uid
        || old.st_gid != new.st_gid
        || old.st_rdev != new.st_rdev
    {
        return true;
    }
    if FileType::from_raw_mode(new.st_mode) == FileType::Directory {
        return false;
    }
    let same_time = old.st_mtime == new.st_mtime
        && (old.st_mtime_nsec == new.st_mtime_nsec
            || old.st_mtime_nsec == 0
            || new.st_mtime_nsec == 0);
    old.st_size != new.st_size || !same_time
}

/// The stat of `name` as the lower layers show it (the topmost layer that has it),
/// `None` when no layer has it or the topmost one whites it out.
fn lower_stat(lowers: &[Option<OwnedFd>], name: &[u8]) -> io::Result<Option<Stat>> {
    for fd in lowers.iter().flatten() {
        match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if is_whiteout(&st) => return Ok(None),
            Ok(st) => return Ok(Some(st)),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// The lower directories `name` merges, top first: a layer where `name` is not a
/// directory (a whiteout or a file) hides every layer below it, and so does an opaque
/// directory after itself.
fn descend(lowers: &[Option<OwnedFd>], name: &[u8]) -> io::Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::with_capacity(lowers.len());
    let mut hidden = false;
    for fd in lowers {
        let Some(fd) = fd.as_ref().filter(|_| !hidden) else {
            out.push(None);
            continue;
        };
        match rustix::fs::openat(
            fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(child) => {
                if matches!(get_xattr(&child, OVERLAY_OPAQUE_XATTR)?, Some(v) if v == b"y") {
                    hidden = true;
                }
                out.push(Some(child));
            }
            Err(Errno::NOENT) => out.push(None),
            Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                hidden = true;
                out.push(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The names visible in the merge of `lowers` (top first, whiteouts applied).
fn visible_names(lowers: &[Option<OwnedFd>]) -> io::Result<BTreeSet<Vec<u8>>> {
    let mut seen = BTreeSet::new();
    let mut visible = BTreeSet::new();
    for fd in lowers.iter().flatten() {
        for name in sorted_names(fd.as_fd())? {
            if !seen.insert(name.clone()) {
                continue;
            }
            match rustix::fs::statat(fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if is_whiteout(&st) => {}
                Ok(_) => {
                    visible.insert(name);
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(visible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                if kind == tar::EntryType::Link || kind == tar::EntryType::Symlink {
                    data = e.link_name_bytes().unwrap().to_vec();
                } else {
                    std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                }
                (name, kind, data)
            })
            .collect()
    }

    #[test]
    fn layer_tarball_has_files_links_and_digest_of_the_stream() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path();
        fs::create_dir_all(up.join("etc/sub")).unwrap();
        fs::write(up.join("etc/a"), b"hello").unwrap();
        fs::hard_link(up.join("etc/a"), up.join("etc/sub/b")).unwrap();
        symlink("/etc/a", up.join("abs")).unwrap();
        fs::set_permissions(up.join("etc/a"), fs::Permissions::from_mode(0o4750)).unwrap();
        let (buf, stats) = write_diff(up, Vec::new()).unwrap();
        assert_eq!(stats.digest, berth_oci::Digest::of(&buf));
        assert_eq!(stats.size, buf.len() as u64);
        let got = entries(&buf);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["abs", "etc/", "etc/a", "etc/sub/", "etc/sub/b"]);
        assert_eq!(got[0].2, b"/etc/a");
        assert_eq!(got[1].1, tar::EntryType::Directory);
        assert_eq!(got[2].2, b"hello");
        assert_eq!(got[4].1, tar::EntryType::Link);
        assert_eq!(got[4].2, b"etc/a");
        let mut a = tar::Archive::new(&buf[..]);
        let e = a.entries().unwrap().nth(2).unwrap().unwrap();
        assert_eq!(e.header().mode().unwrap(), 0o4750);
        assert_eq!(
            e.header().mtime().unwrap() as i64,
            fs::metadata(up.join("etc/a")).unwrap().mtime()
        );
    }

    #[test]
    fn long_names_survive_the_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let long = "d".repeat(120);
        fs::create_dir(tmp.path().join(&long)).unwrap();
        fs::write(tmp.path().join(&long).join("f".repeat(150)), b"x").unwrap();
        let (buf, _) = write_diff(tmp.path(), Vec::new()).unwrap();
        let got = entries(&buf);
        assert_eq!(got[1].0, format!("{long}/{}", "f".repeat(150)));
    }
}
