//! A container's filesystem from outside: `docker export`, and the archive API behind
//! `docker cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`).
//!
//! Everything works on a directory fd of the container's merged root
//! ([`ContainerRoot`]) and resolves user paths inside it with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, never by joining strings
//! (SECURITY.md rules 1 and 3, Docker CVE-2018-15664): a symlink in the container,
//! absolute or full of `..`, means what it means inside the container, even while the
//! container changes its files under us. Nothing here chroots into the container or
//! runs anything from it.
//!
//! Where the root comes from: a running container's overlay is mounted at its
//! `rootfs/`, which is opened. A stopped container gets a *detached* overlay
//! (`fsopen`/`fsmount` without `move_mount`): it exists only as the fd we hold, is
//! never reachable by path on the host, and vanishes when the fd is closed, so no
//! cleanup can be missed. Reads use a read-only overlay whose top lower dir is the
//! container's upperdir (no workdir, nothing written); `PUT` mounts a writable one
//! with the real upper and work dirs while holding the container's lifecycle lock, so
//! it cannot start (and mount the same upperdir) meanwhile.
//!
//! Volumes and bind mounts live in the container's mount namespace, not in its
//! overlay: a path under a mount's destination is resolved inside the mount's source
//! instead (rooted there), and a file mount (the generated `/etc/hosts`, a `-v` file)
//! is reached at its destination only. Known gaps: `--tmpfs` mounts are not reached,
//! and a symlink that leads into a mount resolves in the overlay's directory below it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use berth_store::layer::{self, ApplyOptions, PackOptions, TreePacker};
use chrono::{DateTime, Utc};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsconfig_set_string, fsmount,
    fsopen,
};
use serde::Serialize;

use super::rootfs::{self, RootfsPaths};
use super::{ContainerService, Entry};
use crate::DaemonError;

/// `openat2` fails with `EAGAIN` under `RESOLVE_IN_ROOT` when a rename races with the
/// lookup; retrying is the documented answer.
const EAGAIN_RETRIES: usize = 64;
/// Symlinks followed while computing a `linkTarget`, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

/// Docker's `container.PathStat`, sent base64-encoded in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// Base name of the requested path.
    pub name: String,
    /// `st_size`.
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits high, permissions low).
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink, the absolute path inside the container it resolves to.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// How `PUT /containers/{id}/archive` extracts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory with a non-directory or
    /// the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: give every file the container user's uid/gid when it has a
    /// configured user; otherwise (and without it) the tarball's owners are kept.
    pub copy_uid_gid: bool,
}

/// A container's merged root, held open as a directory fd, with its volume and bind
/// mounts (which live in the container's mount namespace, not in the overlay).
pub struct ContainerRoot {
    fd: OwnedFd,
    /// The container as the client named it, for messages.
    container: String,
    /// Directory mounts, each its own root for the paths under its destination.
    mounts: Vec<MountRoot>,
    /// `--read-only`: nothing may be extracted outside a writable mount.
    readonly_rootfs: bool,
}

/// A volume or bind mount seen through the archive API.
struct MountRoot {
    /// Destination relative to the container root, cleaned (`data/db`).
    dest: String,
    /// The mount's source directory, or for a file mount the directory holding it.
    fd: OwnedFd,
    /// For a file mount (`/etc/hosts`, `-v ./f:/f`), the source's name in `fd`: only
    /// the destination itself leads there, never a path below it.
    file: Option<String>,
    rw: bool,
}

impl ContainerService {
    /// Opens a read view of the container's filesystem (see the module docs).
    ///
    /// # Errors
    /// `NotFound` for the container, `Internal` when the overlay cannot be opened.
    pub fn open_root(&self, name: &str) -> Result<ContainerRoot, DaemonError> {
        let entry = self.get(name)?;
        self.root_of(&entry, name, false)
    }

    /// `name` is how the client named the container: Docker's messages repeat it.
    fn root_of(
        &self,
        entry: &Entry,
        name: &str,
        writable: bool,
    ) -> Result<ContainerRoot, DaemonError> {
        let record = entry.record();
        let paths = RootfsPaths::under(&self.dir(&record.id));
        let container = name.to_string();
        let fail = |e: std::io::Error| {
            DaemonError::internal(format!("cannot open the filesystem of {container}: {e}"))
        };
        if record.state.running && rootfs::is_mounted(&paths.merged) {
            let fd = rustix::fs::open(
                &paths.merged,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| fail(e.into()))?;
            return Ok(ContainerRoot {
                fd,
                container,
                mounts: mount_roots(&record, &self.dir(&record.id)),
                readonly_rootfs: record.host_config.readonly_rootfs,
            });
        }
        let image = record
            .image
            .parse()
            .map_err(|_| DaemonError::internal("corrupt image id"))?;
        let mut lowers = self.lower_dirs(&record.id, &image)?;
        if lowers.is_empty() {
            lowers.push(paths.empty.clone());
        }
        let fd = detached_overlay(&paths, &lowers, writable).map_err(fail)?;
        Ok(ContainerRoot {
            fd,
            container,
            mounts: mount_roots(&record, &self.dir(&record.id)),
            readonly_rootfs: record.host_config.readonly_rootfs,
        })
    }

    /// `PUT /containers/{id}/archive?path=`: extracts a tarball into the directory
    /// `path` of the container.
    ///
    /// # Errors
    /// `NotFound` for the container or path, `InvalidArgument` when the path is not a
    /// directory, the rootfs is read-only or the tarball is refused, `Internal` for
    /// filesystem failures.
    pub async fn extract_to(
        &self,
        name: &str,
        path: &str,
        body: impl Read + Send + 'static,
        opts: ExtractOptions,
    ) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let record = entry.record();
        let _op = entry.op.lock().await;
        let root = self.root_of(&entry, name, true)?;
        // As dockerd does (measured with 20.10 and read in 28's `tarCopyOptions`):
        // the tarball's owners are kept, and `-a` (copyUIDGID) gives every file the
        // container's configured user instead, when it has one.
        let owner = if opts.copy_uid_gid && !record.config.user.is_empty() {
            Some(root.user_ids(&record.config.user)?)
        } else {
            None
        };
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let body = SharedReader(std::sync::Arc::new(std::sync::Mutex::new(body)));
            let result = root.extract(&path, body.clone(), opts, owner);
            if result.is_err() {
                // Read what the client is still sending (within a bound) before
                // answering, as Go's server does: closing on an unread upload makes
                // the client report a broken pipe instead of this error.
                let _ = std::io::copy(&mut body.take(REFUSED_UPLOAD_DRAIN), &mut std::io::sink());
            }
            result
        })
        .await
        .map_err(|e| DaemonError::internal(format!("extract task failed: {e}")))?
    }
}

impl ContainerRoot {
    /// A writable detached overlay of `lowers` (top layer first) whose changes land
    /// in `upper` (with overlayfs's `work` beside it) and that belongs to no
    /// container: the build executor's COPY, ADD and WORKDIR write through it and
    /// commit `upper`, with no container record, init layer or mount point.
    ///
    /// # Errors
    /// `Internal` when the overlay cannot be made.
    pub fn scratch(
        upper: &std::path::Path,
        work: &std::path::Path,
        lowers: &[PathBuf],
        label: &str,
    ) -> Result<ContainerRoot, DaemonError> {
        let paths = RootfsPaths {
            upper: upper.to_path_buf(),
            work: work.to_path_buf(),
            merged: PathBuf::new(),
            empty: PathBuf::new(),
        };
        let fd = detached_overlay(&paths, lowers, true).map_err(|e| {
            DaemonError::internal(format!("cannot open the filesystem of {label}: {e}"))
        })?;
        Ok(ContainerRoot {
            fd,
            container: label.to_string(),
            mounts: Vec::new(),
            readonly_rootfs: false,
        })
    }

    /// Extracts a tarball into the directory `path`, keeping its owners, as
    /// `PUT /containers/{id}/archive` does. Blocking.
    ///
    /// # Errors
    /// As [`ContainerService::extract_to`].
    pub fn extract_tar(
        &self,
        path: &str,
        body: impl Read + Send + 'static,
    ) -> Result<(), DaemonError> {
        self.extract(path, body, ExtractOptions::default(), None)
    }

    /// The names in the directory `path`, resolved inside the root (`.` and `..`
    /// left out, unsorted): how the build's `COPY --from` expands wildcards.
    ///
    /// # Errors
    /// `NotFound` when `path` is missing or not a directory.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>, DaemonError> {
        let split = SplitPath::new(path);
        let fd = self
            .resolve(split.full.as_bytes(), OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| self.map_errno(path, e))?;
        let mut dir = rustix::fs::Dir::read_from(&fd).map_err(|e| self.map_errno(path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| self.map_errno(path, e))?;
            let name = entry.file_name().to_string_lossy();
            if name != "." && name != ".." {
                out.push(name.into_owned());
            }
        }
        Ok(out)
    }

    fn not_found(&self, path: &str) -> DaemonError {
        DaemonError::not_found(format!(
            "Could not find the file {path} in container {}",
            self.container
        ))
    }

    fn io_error(&self, path: &str, e: impl std::fmt::Display) -> DaemonError {
        DaemonError::internal(format!("{path} in container {}: {e}", self.container))
    }

    fn map_errno(&self, path: &str, e: Errno) -> DaemonError {
        match e {
            Errno::NOENT | Errno::NOTDIR => self.not_found(path),
            Errno::LOOP => {
                DaemonError::invalid(format!("too many levels of symbolic links: {path}"))
            }
            e => self.io_error(path, std::io::Error::from(e)),
        }
    }

    /// The mount whose destination holds `path` (cleaned, relative), if any, and
    /// the rest of the path below it.
    fn mount_of<'a>(&self, path: &'a [u8]) -> Option<(&MountRoot, &'a [u8])> {
        self.mounts
            .iter()
            .filter_map(|m| {
                let rest = path.strip_prefix(m.dest.as_bytes())?;
                match rest {
                    [] => Some((m, rest)),
                    [b'/', tail @ ..] if m.file.is_none() => Some((m, tail)),
                    _ => None,
                }
            })
            .max_by_key(|(m, _)| m.dest.len())
    }

    /// Opens `path` (relative to the root, cleaned; `""` is the root) inside the root,
    /// or inside the mount that holds it.
    fn resolve(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
        let (root, path) = match self.mount_of(path) {
            Some((
                MountRoot {
                    fd, file: Some(f), ..
                },
                _,
            )) => {
                return rustix::fs::openat(fd, f.as_str(), flags | OFlags::CLOEXEC, Mode::empty());
            }
            Some((m, rest)) => (&m.fd, rest),
            None => (&self.fd, path),
        };
        if path.is_empty() {
            return rustix::fs::openat(root, ".", flags | OFlags::CLOEXEC, Mode::empty());
        }
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), how) {
                Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Finds what `path` names: its parent directory and base name (`None` for the
    /// root itself), following a final symlink only when the path ends in `/` or
    /// `/.` (Docker's rule).
    fn locate(&self, path: &str) -> Result<Located, DaemonError> {
        let split = SplitPath::new(path);
        // A mount's destination itself is the mount's root, not the directory under
        // it in the overlay.
        if let Some((m, [])) = self.mount_of(split.full.as_bytes()) {
            if let Some(file) = &m.file {
                let parent = m.fd.try_clone().map_err(|e| self.io_error(path, e))?;
                return Ok(Located {
                    parent,
                    base: Some(file.clone()),
                    follow: split.follow,
                    split,
                });
            }
            let parent = self
                .resolve(split.full.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
                .map_err(|e| self.map_errno(path, e))?;
            return Ok(Located {
                parent,
                base: None,
                follow: true,
                split,
            });
        }
        let parent = self
            .resolve(split.parent.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| self.map_errno(path, e))?;
        let Some(base) = split.base.clone() else {
            return Ok(Located {
                parent,
                base: None,
                follow: true,
                split,
            });
        };
        match rustix::fs::statat(&parent, base.as_bytes(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => {}
            Err(e) => return Err(self.map_errno(path, e)),
        }
        Ok(Located {
            parent,
            base: Some(base),
            follow: split.follow,
            split,
        })
    }

    /// `HEAD /containers/{id}/archive`: the stat of `path`.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn stat(&self, path: &str) -> Result<PathStat, DaemonError> {
        let loc = self.locate(path)?;
        let st = match (&loc.base, loc.follow) {
            (None, _) => rustix::fs::fstat(&loc.parent),
            (Some(base), false) => {
                rustix::fs::statat(&loc.parent, base.as_bytes(), AtFlags::SYMLINK_NOFOLLOW)
            }
            (Some(_), true) => self
                .resolve(loc.split.full.as_bytes(), OFlags::PATH)
                .and_then(|fd| rustix::fs::fstat(&fd)),
        }
        .map_err(|e| self.map_errno(path, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        // `file/` or `file/.` names a directory that is not there: say so now, before
        // a GET has sent its headers and could only abort an empty body.
        if loc.follow && loc.base.is_some() && kind != FileType::Directory {
            return Err(DaemonError::invalid(format!(
                "lstat {path}: not a directory"
            )));
        }
        let link_target = if kind == FileType::Symlink {
            self.real_path(&loc.split.full)
        } else {
            String::new()
        };
        let mtime = DateTime::<Utc>::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .unwrap_or_default();
        Ok(PathStat {
            name: loc.split.name.clone(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: crate::images::go_time(mtime),
            link_target,
        })
    }

    /// Where `path` leads inside the container with every symlink followed, as an
    /// absolute path (Docker's `linkTarget`). Best effort: a dangling link yields the
    /// path it names.
    fn real_path(&self, path: &str) -> String {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut links = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let dir = resolved.join("/");
            let target = self
                .resolve(dir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
                .ok()
                .and_then(|fd| rustix::fs::readlinkat(&fd, c.as_str(), Vec::new()).ok());
            match target {
                Some(t) if links < MAX_SYMLINKS => {
                    links += 1;
                    let t = t.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(
                        t.split('/')
                            .rev()
                            .filter(|c| !c.is_empty())
                            .map(str::to_string),
                    );
                }
                _ => resolved.push(c),
            }
        }
        format!("/{}", resolved.join("/"))
    }

    /// `GET /containers/{id}/archive`: the stat of `path`, then (by
    /// [`ContainerRoot::write_archive`]) a tarball of it named by its base name.
    ///
    /// # Errors
    /// `NotFound` when it does not exist; `Internal` when reading or writing fails.
    pub fn write_archive(&self, path: &str, out: impl Write) -> Result<(), DaemonError> {
        let loc = self.locate(path)?;
        // The root is archived as `.`: tar names are relative.
        let name = match loc.split.name.as_str() {
            "/" => ".".to_string(),
            n => n.to_string(),
        };
        let mut packer = TreePacker::new(out, PackOptions::default());
        let fail = |e: std::io::Error| self.io_error(path, e);
        match (&loc.base, loc.follow) {
            (Some(base), false) => packer
                .append_tree(loc.parent.as_fd(), base.as_bytes(), name.as_bytes())
                .map_err(fail)?,
            _ => {
                // The root, or a path ending in `/` or `/.`: what it leads to, which
                // must then be a directory (or a file, for `file/`: Docker errors).
                let dir = self
                    .resolve(
                        loc.split.full.as_bytes(),
                        OFlags::RDONLY | OFlags::DIRECTORY,
                    )
                    .map_err(|e| self.map_errno(path, e))?;
                append_dir(&mut packer, dir.as_fd(), &name).map_err(fail)?;
            }
        }
        packer.finish().map_err(fail)?;
        Ok(())
    }

    /// `GET /containers/{id}/export`: the whole filesystem as a tarball.
    ///
    /// # Errors
    /// `Internal` when reading or writing fails.
    pub fn write_export(&self, out: impl Write) -> Result<(), DaemonError> {
        let mut packer = TreePacker::new(out, PackOptions::default());
        let fail = |e: std::io::Error| self.io_error("/", e);
        let root = self
            .resolve(b"", OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(fail_errno(&fail))?;
        packer.append_children(root.as_fd(), b"").map_err(fail)?;
        packer.finish().map_err(fail)?;
        Ok(())
    }

    /// Resolves `user[:group]` (names or numbers) with the container's own
    /// `/etc/passwd` and `/etc/group`, read through the root (never the host's
    /// resolver, SECURITY.md rule 3).
    fn user_ids(&self, spec: &str) -> Result<(u32, u32), DaemonError> {
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        let read = |path: &str| -> String {
            self.resolve(path.as_bytes(), OFlags::RDONLY)
                .ok()
                .and_then(|fd| {
                    let mut s = String::new();
                    std::fs::File::from(fd)
                        .take(4 << 20)
                        .read_to_string(&mut s)
                        .ok()
                        .map(|_| s)
                })
                .unwrap_or_default()
        };
        let unknown = |what: &str, name: &str| {
            DaemonError::invalid(format!(
                "unable to find {what} {name}: no matching entries in {what} file"
            ))
        };
        let (uid, mut gid) = if user.is_empty() {
            (0, 0)
        } else if let Ok(n) = user.parse::<u32>() {
            let passwd = read("etc/passwd");
            let gid = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == user)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(0);
            (n, gid)
        } else {
            let passwd = read("etc/passwd");
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[0] == user)
                .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .ok_or_else(|| unknown("user", user))?
        };
        if !group.is_empty() {
            gid = match group.parse::<u32>() {
                Ok(n) => n,
                Err(_) => read("etc/group")
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == group)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| unknown("group", group))?,
            };
        }
        Ok((uid, gid))
    }

    /// Extracts `body` into the directory `path`.
    fn extract(
        &self,
        path: &str,
        body: impl Read + Send + 'static,
        opts: ExtractOptions,
        owner: Option<(u32, u32)>,
    ) -> Result<(), DaemonError> {
        let split = SplitPath::new(path);
        match self.mount_of(split.full.as_bytes()) {
            Some((m, _)) if !m.rw => {
                return Err(DaemonError::invalid("mounted volume is marked read-only"));
            }
            None if self.readonly_rootfs => {
                return Err(DaemonError::invalid("container rootfs is marked read-only"));
            }
            _ => {}
        }
        let dir = match self.resolve(split.full.as_bytes(), OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOTDIR) => {
                return Err(DaemonError::invalid("extraction point is not a directory"));
            }
            Err(e) => return Err(self.map_errno(path, e)),
        };
        let apply = ApplyOptions {
            whiteouts: false,
            owner,
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            ..ApplyOptions::default()
        };
        // The extractor resolves every entry inside the directory it is given, by fd:
        // hand it the directory we resolved, through its /proc/self/fd link.
        let dir_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        // Docker takes compressed bodies too; gzip and zstd are what our reader knows.
        let (_, body) = layer::decompress(std::io::BufReader::with_capacity(1 << 20, body))
            .map_err(|e| DaemonError::invalid(format!("cannot read archive: {e}")))?;
        layer::apply_layer(&dir_path, body, &apply).map_err(|e| match e {
            layer::ApplyError::Read { .. }
            | layer::ApplyError::InvalidPath { .. }
            | layer::ApplyError::InvalidLink { .. }
            | layer::ApplyError::DirNonDir { .. }
            | layer::ApplyError::HeaderTooLarge { .. }
            | layer::ApplyError::TooManyEntries { .. }
            | layer::ApplyError::UnsupportedType { .. }
            | layer::ApplyError::InvalidHeader { .. }
            | layer::ApplyError::Truncated { .. }
            | layer::ApplyError::MissingLinkTarget { .. } => DaemonError::invalid(e.to_string()),
            layer::ApplyError::Parent { ref source, .. }
            | layer::ApplyError::Create { ref source, .. }
            | layer::ApplyError::Replace { ref source, .. }
            | layer::ApplyError::Hardlink { ref source, .. }
                if caused_by_tarball(source) =>
            {
                DaemonError::invalid(format!("{e}: {source}"))
            }
            other => self.io_error(path, other),
        })?;
        Ok(())
    }
}

/// Whether an extraction failure is the tarball's doing (an entry under a file, a
/// hardlink to a name it never created, a name clash) rather than the host's (full
/// disk, I/O error): the former is the client's mistake, a 400.
fn caused_by_tarball(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::NotFound
            | K::NotADirectory
            | K::IsADirectory
            | K::AlreadyExists
            | K::DirectoryNotEmpty
            | K::InvalidInput
            | K::InvalidFilename
            | K::CrossesDevices
    ) || e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// The container's volume and bind mounts of directories, longest destination
/// first wins at lookup. Sources that cannot be opened are left out (the overlay's
/// directory is then what is seen, as before the mount).
fn mount_roots(record: &super::ContainerRecord, dir: &std::path::Path) -> Vec<MountRoot> {
    let mut out: Vec<MountRoot> = record
        .mounts
        .iter()
        .filter(|m| m.kind == "volume" || m.kind == "bind")
        .filter_map(|m| mount_root(std::path::Path::new(&m.source), &m.destination, m.rw))
        .collect();
    // The generated files bind-mounted over the image's (see `etc`), unless a mount
    // of the user's takes their place.
    for (file, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        if !record.mounts.iter().any(|m| m.destination == dest)
            && let Some(m) = mount_root(&dir.join(file), dest, true)
        {
            out.push(m);
        }
    }
    out
}

/// A mount's root: its source directory, or the directory holding its source file.
fn mount_root(source: &std::path::Path, destination: &str, rw: bool) -> Option<MountRoot> {
    let dest = SplitPath::new(destination).full;
    if dest.is_empty() {
        return None;
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let meta = std::fs::metadata(source).ok()?;
    if meta.is_dir() {
        let fd = rustix::fs::open(source, flags, Mode::empty()).ok()?;
        return Some(MountRoot {
            dest,
            fd,
            file: None,
            rw,
        });
    }
    let fd = rustix::fs::open(source.parent()?, flags, Mode::empty()).ok()?;
    let file = source.file_name()?.to_str()?.to_string();
    Some(MountRoot {
        dest,
        fd,
        file: Some(file),
        rw,
    })
}

fn fail_errno<'a>(
    fail: &'a impl Fn(std::io::Error) -> DaemonError,
) -> impl Fn(Errno) -> DaemonError + 'a {
    move |e| fail(e.into())
}

/// Writes a directory entry named `name` for the open directory `dir`, then its
/// children under `name/`.
fn append_dir<W: Write>(
    packer: &mut TreePacker<W>,
    dir: BorrowedFd<'_>,
    name: &str,
) -> std::io::Result<()> {
    // `dir` has no parent fd to be looked up from: name it through itself.
    packer.append_tree(dir, b".", name.as_bytes())
}

/// A located path: the directory holding it and its base name.
struct Located {
    parent: OwnedFd,
    /// `None` when the path is the root.
    base: Option<String>,
    /// Whether a final symlink is followed.
    follow: bool,
    split: SplitPath,
}

/// A request path taken apart lexically, as Docker's `SplitPathDirEntry` does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SplitPath {
    /// The whole path, relative to the root, without trailing `/` or `/.`.
    full: String,
    /// Everything before the last component.
    parent: String,
    /// The last component, `None` for the root.
    base: Option<String>,
    /// The name the tarball and stat use: the last component as written (`.` for a
    /// path ending in `/.`), `/` for the root.
    name: String,
    /// Whether the path ended in `/` or `/.`.
    follow: bool,
}

impl SplitPath {
    fn new(path: &str) -> SplitPath {
        let follow = path.ends_with('/') || path.ends_with("/.") || path == ".";
        let dot = path.ends_with("/.") || path == ".";
        // Lexically cleaned, as Docker's `filepath.Join("/", path)` does: `..` never
        // climbs above the root.
        let mut components: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    components.pop();
                }
                c => components.push(c),
            }
        }
        let full = components.join("/");
        let (parent, base) = match components.split_last() {
            Some((last, rest)) => (rest.join("/"), Some(last.to_string())),
            None => (String::new(), None),
        };
        let name = if dot {
            ".".to_string()
        } else {
            base.clone().unwrap_or_else(|| "/".to_string())
        };
        SplitPath {
            full,
            parent,
            base,
            name,
            follow,
        }
    }
}

/// Go's `os.FileMode` for a `st_mode`.
fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m |= match FileType::from_raw_mode(mode) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        _ => 0,
    };
    m
}

/// Docker's `populateVolumes`, run at create: a volume (named or anonymous) mounted
/// where the image has a directory, and still empty, is first filled with that
/// directory's content and given its owner and mode, unless the mount says `nocopy`.
/// The image's view comes from a detached read-only overlay of the container's
/// layers, and the destination is resolved inside it (`RESOLVE_IN_ROOT`), so an
/// image's symlink at the mount path never leads the copy out of the image.
pub(super) fn populate_volumes(
    paths: &RootfsPaths,
    lowers: &[PathBuf],
    mounts: &[super::model::MountPoint],
) -> Result<(), DaemonError> {
    let empty_dir = |p: &str| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none());
    let wanted: Vec<_> = mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.no_copy && empty_dir(&m.source))
        .collect();
    if wanted.is_empty() || lowers.is_empty() {
        return Ok(());
    }
    let fail = |what: &str, e: std::io::Error| {
        DaemonError::internal(format!("failed to populate volume: {what}: {e}"))
    };
    let root = detached_overlay(paths, lowers, false).map_err(|e| fail("image view", e))?;
    for m in wanted {
        let rel = m.destination.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let dir = match rustix::fs::openat2(
            &root,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // Nothing (or no directory) at that path in the image: nothing to copy.
            Err(Errno::NOENT | Errno::NOTDIR) => continue,
            Err(e) => return Err(fail(&m.destination, e.into())),
        };
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| fail("pipe", e.into()))?;
        let (reader, writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
        let packer = std::thread::spawn(move || -> std::io::Result<()> {
            let mut packer = TreePacker::new(writer, PackOptions::default());
            packer.append_children(dir.as_fd(), b"")?;
            packer.finish().map(|_| ())
        });
        let opts = ApplyOptions {
            whiteouts: false,
            ..ApplyOptions::default()
        };
        let applied = layer::apply_layer(std::path::Path::new(&m.source), reader, &opts);
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("packer panicked")));
        applied.map_err(|e| fail(&m.destination, std::io::Error::other(e.to_string())))?;
        packed.map_err(|e| fail(&m.destination, e))?;
        // The volume's root takes the image directory's owner and mode, as Docker's
        // copy does (a database image's data dir owned by its user stays so).
        let st = rustix::fs::statat(&root, rel, AtFlags::empty())
            .map_err(|e| fail(&m.destination, e.into()))?;
        let target = std::path::Path::new(&m.source);
        std::os::unix::fs::chown(target, Some(st.st_uid), Some(st.st_gid))
            .map_err(|e| fail(&m.source, e))?;
        std::fs::set_permissions(
            target,
            std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
        )
        .map_err(|e| fail(&m.source, e))?;
    }
    Ok(())
}

/// How much of a refused upload is read and discarded before the error is sent.
const REFUSED_UPLOAD_DRAIN: u64 = 64 << 20;

/// A reader shared between the extraction and the drain that follows a refusal.
struct SharedReader<R>(std::sync::Arc<std::sync::Mutex<R>>);

impl<R> Clone for SharedReader<R> {
    fn clone(&self) -> Self {
        SharedReader(self.0.clone())
    }
}

impl<R: Read> Read for SharedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().expect("upload reader lock").read(buf)
    }
}

/// A detached overlay of the container's layers: read-only with the upperdir as its
/// top lower dir, or writable with the real upper and work dirs.
fn detached_overlay(
    paths: &RootfsPaths,
    lowers: &[PathBuf],
    writable: bool,
) -> std::io::Result<OwnedFd> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    if writable {
        for l in lowers {
            fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
        }
        fsconfig_set_string(&fs, "upperdir", paths.upper.as_path())?;
        fsconfig_set_string(&fs, "workdir", paths.work.as_path())?;
    } else {
        fsconfig_set_string(&fs, "lowerdir+", paths.upper.as_path())?;
        for l in lowers {
            fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
        }
    }
    // The same options as the container's own mount (rootfs.rs).
    fsconfig_set_string(&fs, "index", "off")?;
    fsconfig_set_string(&fs, "redirect_dir", "off")?;
    fsconfig_create(&fs)?;
    let attrs = if writable {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    };
    Ok(fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_docker() {
        let s = SplitPath::new("/etc/passwd");
        assert_eq!(
            (
                s.parent.as_str(),
                s.base.as_deref(),
                s.name.as_str(),
                s.follow
            ),
            ("etc", Some("passwd"), "passwd", false)
        );
        let s = SplitPath::new("/dir/.");
        assert_eq!(
            (s.full.as_str(), s.name.as_str(), s.follow),
            ("dir", ".", true)
        );
        let s = SplitPath::new("link/");
        assert_eq!(
            (s.full.as_str(), s.name.as_str(), s.follow),
            ("link", "link", true)
        );
        let s = SplitPath::new("/");
        assert_eq!((s.base, s.name.as_str()), (None, "/"));
        let s = SplitPath::new("/a/../../b");
        assert_eq!(s.full, "b");
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o020666), (1 << 26) | (1 << 21) | 0o666);
    }

    fn root_at(dir: &std::path::Path) -> ContainerRoot {
        ContainerRoot {
            fd: rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            container: "c".into(),
            mounts: Vec::new(),
            readonly_rootfs: false,
        }
    }

    #[test]
    fn a_file_named_as_a_directory_fails_before_any_tarball() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        std::os::unix::fs::symlink("file", tmp.path().join("link")).unwrap();
        let r = root_at(tmp.path());
        for path in ["/file/", "/file/.", "/link/"] {
            let e = r.stat(path).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{path}");
            assert_eq!(e.message(), format!("lstat {path}: not a directory"));
        }
        assert!(r.stat("/file").is_ok());
    }

    #[test]
    fn tarball_entries_that_cannot_be_placed_are_the_clients_mistake() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        let r = root_at(tmp.path());
        let tarball = |name: &str, link: Option<&str>| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_uid(rustix::process::geteuid().as_raw().into());
            h.set_gid(rustix::process::getegid().as_raw().into());
            match link {
                Some(target) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, name, target).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(1);
                    b.append_data(&mut h, name, &b"x"[..]).unwrap();
                }
            }
            b.into_inner().unwrap()
        };
        for (name, link) in [("file/x", None), ("hl", Some("/no/such/target"))] {
            let e = r
                .extract(
                    "/",
                    std::io::Cursor::new(tarball(name, link)),
                    ExtractOptions::default(),
                    None,
                )
                .unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{name}: {e}");
        }
    }

    #[test]
    fn read_dir_lists_names_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("out")).unwrap();
        std::fs::write(root.join("out/a.txt"), "a").unwrap();
        std::fs::write(root.join("out/b.log"), "b").unwrap();
        std::fs::write(tmp.path().join("outside"), "x").unwrap();
        std::os::unix::fs::symlink("/..", root.join("up")).unwrap();
        let r = root_at(&root);
        let mut names = r.read_dir("/out").unwrap();
        names.sort();
        assert_eq!(names, ["a.txt", "b.log"]);
        // `/..` resolves to the root itself, never to the directory above it.
        let mut top = r.read_dir("/up").unwrap();
        top.sort();
        assert_eq!(top, ["out", "up"]);
        assert_eq!(
            r.read_dir("/out/a.txt").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn symlinks_never_lead_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("dots")).unwrap();
        std::fs::write(tmp.path().join("host-secret"), b"host").unwrap();
        std::os::unix::fs::symlink("../host-secret", root.join("escape")).unwrap();
        let r = root_at(&root);
        let mut out = Vec::new();
        r.write_archive("/up/etc/passwd", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "inside");
        assert_eq!(r.stat("/dots").unwrap().link_target, "/etc");
        assert_eq!(r.stat("/escape").unwrap().link_target, "/host-secret");
        assert_eq!(
            r.stat("/escape/").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
        // Extracting through the link lands inside the root.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Owned by whoever runs the test: it needs no root.
        h.set_uid(rustix::process::geteuid().as_raw().into());
        h.set_gid(rustix::process::getegid().as_raw().into());
        b.append_data(&mut h, "f", &b"x"[..]).unwrap();
        let tarball = b.into_inner().unwrap();
        r.extract(
            "/up/etc/",
            std::io::Cursor::new(tarball),
            ExtractOptions::default(),
            None,
        )
        .unwrap();
        assert!(root.join("etc/f").exists());
    }

    #[test]
    fn archive_of_dir_contents_uses_dot() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("d/sub")).unwrap();
        std::fs::write(tmp.path().join("d/sub/f"), b"x").unwrap();
        let r = root_at(tmp.path());
        let mut out = Vec::new();
        r.write_archive("/d/.", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["./", "./sub/", "./sub/f"]);
        let mut out = Vec::new();
        r.write_archive("/d", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["d/", "d/sub/", "d/sub/f"]);
        assert_eq!(r.stat("/d").unwrap().mode & (1 << 31), 1 << 31);
        assert_eq!(
            r.stat("/nope").unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn paths_under_a_mount_resolve_in_its_source() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("in-volume"), b"v").unwrap();
        let mut r = root_at(&root);
        let mount = |rw| MountRoot {
            dest: "data".into(),
            fd: rustix::fs::open(&vol, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            file: None,
            rw,
        };
        r.mounts.push(mount(true));
        assert_eq!(r.stat("/data/in-volume").unwrap().size, 1);
        assert_eq!(r.stat("/data").unwrap().name, "data");
        let mut out = Vec::new();
        r.write_archive("/data", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["data/", "data/in-volume"]);
        r.mounts = vec![mount(false)];
        let err = r
            .extract(
                "/data",
                std::io::Cursor::new(Vec::new()),
                ExtractOptions::default(),
                None,
            )
            .unwrap_err();
        assert_eq!(err.message(), "mounted volume is marked read-only");
    }

    #[test]
    fn a_file_mount_is_reached_only_at_its_destination() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let cdir = tmp.path().join("container");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hosts"), b"image").unwrap();
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::write(cdir.join("hosts"), b"generated").unwrap();
        std::fs::write(cdir.join("config.json"), b"secret").unwrap();
        let mut r = root_at(&root);
        r.mounts
            .push(mount_root(&cdir.join("hosts"), "/etc/hosts", true).unwrap());
        let mut out = Vec::new();
        r.write_archive("/etc/hosts", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), b"hosts");
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "generated");
        assert_eq!(r.stat("/etc/hosts").unwrap().size, 9);
        assert!(r.stat("/etc/hosts/../config.json").is_err());
        assert!(r.stat("/etc/hosts/config.json").is_err());
    }
}
