//! Applying one layer tarball onto its own directory, in overlayfs's on-disk format.
//!
//! Each image layer is unpacked into an empty directory that later becomes one
//! overlayfs lower dir, so Docker's layer format is converted on the way in (as Docker's
//! overlay2 driver does): a `.wh.name` entry becomes a 0:0 character device `name`, a
//! `.wh..wh..opq` entry becomes `trusted.overlay.opaque=y` on its directory.
//!
//! We read with the `tar` crate but create every file ourselves: its unpacker refuses
//! absolute symlinks (legitimate in images), turns device nodes into files and writes
//! whiteouts as plain files. Every name is resolved inside the layer by file descriptor
//! ([`LayerRoot`]); see `/work/shared/SECURITY.md` rule 2 for the escapes this prevents.
//!
//! Behaviour follows Docker's `archive.Unpack` where the two could differ: an entry over
//! an existing one replaces it unless both are directories, directories get their
//! mtimes last, the root entry (`./`) is skipped, PAX global headers are ignored.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::entry_name::{EntryName, InvalidPathReason, bytes_to_path};
use super::root::{LayerRoot, nofollow_dir_flags};
use crate::durable::{WRITEBACK_WINDOW, start_writeback};

/// Prefix of a whiteout entry's base name (aufs format, what layer tarballs use).
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of aufs metadata entries; only [`WHITEOUT_OPAQUE`] among them means anything.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The entry that marks its directory opaque.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// The overlayfs xattr that marks a directory opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs that only overlayfs may write: from a tarball they would forge whiteouts,
/// opaque directories or redirects. `user.overlay.` is what overlayfs reads when
/// mounted with `userxattr`.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];
/// PAX record prefix carrying an xattr (the form Go's archive/tar, so Docker, writes).
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Docker's `boundTime` keeps times within what Go's `time.Unix(0, maxInt64)` holds.
const MAX_SECS: i64 = i64::MAX / 1_000_000_000;
/// Buffer for copying file data: big enough to amortize decompressor calls.
const COPY_BUF: usize = 256 * 1024;

/// Limits that keep a hostile tarball from exhausting memory or inodes.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Most entries one layer may hold (tar bombs made of empty files).
    pub max_entries: u64,
    /// Most bytes of headers read before one entry's data: its header plus any PAX
    /// extended header and GNU long name/long link records. The `tar` crate reads
    /// those into memory whole, so this is what bounds that memory. Go's archive/tar
    /// (Docker) allows 1 MiB per record.
    pub max_header_bytes: u64,
    /// Longest entry name or hardlink target after normalization (`PATH_MAX`).
    pub max_path_len: usize,
    /// Convert `.wh.` entries to overlay whiteouts (layers). Off for `docker cp`,
    /// which writes such names as ordinary files, as Docker's `Untar` does.
    pub whiteouts: bool,
    /// Owner given to every entry instead of the header's (`docker cp` without `-a`
    /// makes files the container root's).
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace a directory with a non-directory or the reverse (the
    /// archive API's `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_entries: 10_000_000,
            max_header_bytes: 4 << 20,
            max_path_len: libc::PATH_MAX as usize,
            whiteouts: true,
            owner: None,
            no_overwrite_dir_non_dir: false,
        }
    }
}

/// What applying a layer produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries read, including skipped ones and whiteouts.
    pub entries: u64,
    /// Bytes on disk as `docker images` counts them: the `st_size` of every non-directory
    /// (file contents and symlink targets), each hardlinked inode once.
    pub size: u64,
}

/// Why a layer could not be applied. The layer directory is left as it was at the
/// failure and must be discarded by the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The layer root could not be opened as a directory.
    #[error("cannot open layer directory {path:?}")]
    OpenRoot {
        /// The layer root.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The tar stream is malformed, truncated or could not be read.
    #[error("cannot read layer tarball after {entries} entries")]
    Read {
        /// Entries read before the failure.
        entries: u64,
        /// The cause.
        source: io::Error,
    },
    /// An entry's headers (PAX records, GNU long names) exceed
    /// [`ApplyOptions::max_header_bytes`].
    #[error("layer tarball headers of entry {entry} exceed {limit} bytes")]
    HeaderTooLarge {
        /// 1-based index of the entry.
        entry: u64,
        /// The limit.
        limit: u64,
    },
    /// More entries than [`ApplyOptions::max_entries`].
    #[error("layer tarball has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// An entry name that is refused (Docker reports these as a breakout).
    #[error("invalid path {path:?} in layer tarball: {reason}")]
    InvalidPath {
        /// The name as the tarball gives it.
        path: PathBuf,
        /// Why it is refused.
        reason: InvalidPathReason,
    },
    /// A hardlink whose target is refused or missing from its header.
    #[error("invalid hardlink {path:?} -> {target:?} in layer tarball: {reason}")]
    InvalidLink {
        /// The link's name.
        path: PathBuf,
        /// The target as the tarball gives it.
        target: PathBuf,
        /// Why it is refused.
        reason: InvalidPathReason,
    },
    /// A hardlink or symlink entry without a target.
    #[error("link {path:?} in layer tarball has no target")]
    MissingLinkTarget {
        /// The link's name.
        path: PathBuf,
    },
    /// An entry type layers do not use (Docker: "unhandled tar header type").
    #[error("unhandled tar header type {kind:?} for {path:?}")]
    UnsupportedType {
        /// The entry's name.
        path: PathBuf,
        /// The type flag byte.
        kind: char,
    },
    /// A header field (mode, owner, time, device number) that cannot be decoded or
    /// does not fit.
    #[error("invalid {field} in tar header of {path:?}")]
    InvalidHeader {
        /// The entry's name.
        path: PathBuf,
        /// Which field.
        field: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// A file's data ended before the size its header gave.
    #[error("layer tarball ends inside {path:?}: {actual} of {expected} bytes")]
    Truncated {
        /// The entry's name.
        path: PathBuf,
        /// The size from the header.
        expected: u64,
        /// What the stream held.
        actual: u64,
    },
    /// The entry's parent directory could not be opened or created.
    #[error("cannot create parent directory of {path:?}")]
    Parent {
        /// The entry's name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The entry (file, directory, symlink, node, whiteout) could not be created.
    #[error("cannot create {path:?}")]
    Create {
        /// The entry's name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An existing entry of the same name could not be removed.
    #[error("cannot replace existing {path:?}")]
    Replace {
        /// The entry's name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An entry would replace a directory with a non-directory or the reverse, and
    /// [`ApplyOptions::no_overwrite_dir_non_dir`] forbids it.
    #[error("cannot overwrite {existing} {path:?} with {new}")]
    DirNonDir {
        /// The entry's name.
        path: PathBuf,
        /// What is there (`directory` or `non-directory`).
        existing: &'static str,
        /// What the entry is.
        new: &'static str,
    },
    /// A hardlink could not be made; its target must be an earlier entry of this layer.
    #[error("cannot link {path:?} to {target:?}")]
    Hardlink {
        /// The link's name.
        path: PathBuf,
        /// The normalized target.
        target: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// File data could not be written.
    #[error("cannot write {path:?}")]
    Write {
        /// The entry's name.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Owner, mode or times could not be set.
    #[error("cannot {op} {path:?}")]
    Metadata {
        /// The entry's name.
        path: PathBuf,
        /// `chown`, `chmod` or `set times of`.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// An extended attribute could not be set.
    #[error("cannot set xattr {name} on {path:?}")]
    Xattr {
        /// The entry's name.
        path: PathBuf,
        /// The attribute's name.
        name: String,
        /// The cause.
        source: io::Error,
    },
}

/// Applies one layer tarball (already decompressed, see [`super::decompress`]) onto
/// `root`, an existing directory that is normally empty, in overlayfs's format.
///
/// Reading stops at the tarball's end-of-archive marker; a caller that digests the
/// stream must read the rest itself ([`super::DigestReader::drain`]).
///
/// Owners, device nodes and `trusted.*` xattrs need root (`CAP_CHOWN`, `CAP_MKNOD`,
/// `CAP_SYS_ADMIN`).
///
/// # Errors
/// Any [`ApplyError`]: the tarball is malformed or exceeds `opts`, an entry name or
/// hardlink target is refused (`..`), or a filesystem call failed. The directory is
/// then partly written and should be removed.
pub fn apply_layer(
    root: &Path,
    tar: impl Read,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let layer = LayerRoot::open(root).map_err(|source| ApplyError::OpenRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let meter = Rc::new(Meter::default());
    let mut archive = tar::Archive::new(MeteredReader {
        inner: tar,
        meter: meter.clone(),
    });
    let mut applier = Applier {
        layer,
        opts,
        stats: ApplyStats::default(),
        dir_times: Vec::new(),
        buf: vec![0; COPY_BUF],
    };
    let read_error = |entries: u64, source: io::Error| ApplyError::Read { entries, source };

    let mut entries = archive.entries().map_err(|e| read_error(0, e))?;
    loop {
        let index = applier.stats.entries + 1;
        // Only headers are read while the meter is armed: each entry's data is read to
        // its end below, so `next()` has nothing of it left to skip.
        meter.arm(opts.max_header_bytes);
        let next = entries.next();
        meter.disarm();
        let mut entry = match next {
            None => break,
            Some(Ok(entry)) => entry,
            Some(Err(e)) if is_meter_error(&e) => {
                return Err(ApplyError::HeaderTooLarge {
                    entry: index,
                    limit: opts.max_header_bytes,
                });
            }
            Some(Err(e)) => return Err(read_error(applier.stats.entries, e)),
        };
        if index > opts.max_entries {
            return Err(ApplyError::TooManyEntries {
                limit: opts.max_entries,
            });
        }
        applier.stats.entries = index;

        let consumed = applier.apply_entry(&mut entry)?;
        let rest = io::copy(&mut entry, &mut io::sink())
            .map_err(|e| read_error(applier.stats.entries, e))?;
        let is_sparse = entry.header().entry_type().is_gnu_sparse();
        if !is_sparse && consumed + rest != entry.size() {
            return Err(ApplyError::Truncated {
                path: bytes_to_path(&entry.path_bytes()),
                expected: entry.size(),
                actual: consumed + rest,
            });
        }
    }
    applier.set_dir_times()?;
    Ok(applier.stats)
}

/// State of one application.
struct Applier<'o> {
    layer: LayerRoot,
    opts: &'o ApplyOptions,
    stats: ApplyStats,
    /// Directories whose times are set at the end, once nothing more is created in
    /// them, in tarball order (a later entry for the same directory wins).
    dir_times: Vec<(EntryName, Timestamps)>,
    buf: Vec<u8>,
}

/// What an entry's header says about ownership, mode, times and xattrs.
struct EntryMeta {
    uid: u32,
    gid: u32,
    mode: Mode,
    times: Timestamps,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Where to set an entry's metadata.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// An fd opened on the entry itself (regular files and directories).
    Fd(BorrowedFd<'a>),
    /// A name in a parent directory, never followed (symlinks, nodes, hardlinks).
    At(BorrowedFd<'a>, &'a [u8]),
}

impl Applier<'_> {
    /// Applies one entry and returns how many bytes of its data it read.
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<u64, ApplyError> {
        let mut kind = entry.header().entry_type();
        let raw_name = entry.path_bytes().into_owned();
        // Pre-POSIX tarballs mark directories as type NUL (a regular file) with a
        // trailing slash; Go's archive/tar, so Docker, reads those as directories.
        if entry.header().as_bytes()[156] == 0 && raw_name.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        if kind.is_pax_global_extensions() {
            tracing::debug!("ignoring PAX global extended header");
            return Ok(0);
        }
        let name = EntryName::parse(&raw_name, self.opts.max_path_len).map_err(|reason| {
            ApplyError::InvalidPath {
                path: bytes_to_path(&raw_name),
                reason,
            }
        })?;
        if name.is_root() {
            // Docker skips the root entry: the layer directory's own metadata is not
            // the image's to set.
            return Ok(0);
        }
        if self.opts.whiteouts
            && name.as_bytes().starts_with(WHITEOUT_META_PREFIX)
            && name.as_bytes() != WHITEOUT_OPAQUE
        {
            // Top-level aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`) and whatever is
            // under it: meaningless to overlayfs.
            tracing::debug!(path = ?name.to_path(), "skipping aufs metadata entry");
            return Ok(0);
        }

        let meta = self.entry_meta(entry, &name)?;
        let parent = self
            .layer
            .dir(name.parent(), true)
            .map_err(|source| ApplyError::Parent {
                path: name.to_path(),
                source,
            })?;
        let parent = parent.as_fd();
        let base = name.base();

        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX)
            && self.opts.whiteouts
        {
            return self.whiteout(parent, &name, hidden, &meta).map(|()| 0);
        }

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(parent, &name, entry, &meta)
            }
            EntryType::Directory => self.directory(parent, &name, &meta).map(|()| 0),
            EntryType::Symlink => {
                let target = link_target(entry, &name)?;
                self.symlink(parent, &name, &target, &meta).map(|()| 0)
            }
            EntryType::Link => {
                let target = link_target(entry, &name)?;
                self.hardlink(parent, &name, &target, &meta).map(|()| 0)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (file_type, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, device(entry, &name)?),
                    EntryType::Block => (FileType::BlockDevice, device(entry, &name)?),
                    _ => (FileType::Fifo, 0),
                };
                self.node(parent, &name, file_type, dev, &meta).map(|()| 0)
            }
            other => Err(ApplyError::UnsupportedType {
                path: name.to_path(),
                kind: char::from(other.as_byte()),
            }),
        }
    }

    /// Decodes the header fields and PAX records every entry kind needs.
    fn entry_meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &EntryName,
    ) -> Result<EntryMeta, ApplyError> {
        let invalid = |field: &'static str| {
            move |source: io::Error| ApplyError::InvalidHeader {
                path: name.to_path(),
                field,
                source,
            }
        };
        let out_of_range = |field: &'static str| {
            let path = name.to_path();
            move |_| ApplyError::InvalidHeader {
                path,
                field,
                source: io::Error::new(io::ErrorKind::InvalidData, "value out of range"),
            }
        };
        let header = entry.header();
        let old = header.as_old();
        let uid = numeric(header.uid(), &old.uid).map_err(invalid("uid"))?;
        let uid = u32::try_from(uid).map_err(out_of_range("uid"))?;
        let gid = numeric(header.gid(), &old.gid).map_err(invalid("gid"))?;
        let gid = u32::try_from(gid).map_err(out_of_range("gid"))?;
        let (uid, gid) = self.opts.owner.unwrap_or((uid, gid));
        let mode = numeric(header.mode().map(u64::from), &old.mode).map_err(invalid("mode"))?;
        let mode = Mode::from_raw_mode((mode & 0o7777) as u32);
        let header_mtime = numeric(header.mtime(), &old.mtime).map_err(invalid("mtime"))?;
        let mut mtime = bounded_time(i64::try_from(header_mtime).unwrap_or(i64::MAX), 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        // Records that do not parse are ignored, as the tar crate itself does for `path`.
        if let Some(records) = entry.pax_extensions().map_err(invalid("PAX records"))? {
            for record in records.flatten() {
                let key = record.key_bytes();
                if let Some(xattr) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    if xattr.is_empty() || xattr.contains(&0) {
                        continue;
                    }
                    if OVERLAY_XATTR_PREFIXES.iter().any(|p| xattr.starts_with(p)) {
                        tracing::warn!(
                            path = ?name.to_path(),
                            xattr = %String::from_utf8_lossy(xattr),
                            "dropping overlayfs xattr from layer tarball"
                        );
                        continue;
                    }
                    xattrs.push((xattr.to_vec(), record.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(record.value_bytes()) {
                        mtime = t;
                    }
                } else if key == b"atime" {
                    atime = parse_pax_time(record.value_bytes());
                }
            }
        }
        // Docker uses the later of atime and mtime as the access time.
        let atime = match atime {
            Some(a) if (a.tv_sec, a.tv_nsec) > (mtime.tv_sec, mtime.tv_nsec) => a,
            _ => mtime,
        };
        Ok(EntryMeta {
            uid,
            gid,
            mode,
            times: Timestamps {
                last_access: atime,
                last_modification: mtime,
            },
            xattrs,
        })
    }

    /// `dir/.wh.name`: a 0:0 character device `dir/name`, overlayfs's whiteout;
    /// `dir/.wh..wh..opq`: `trusted.overlay.opaque=y` on `dir`.
    fn whiteout(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        hidden: &[u8],
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        let create_err = |source: io::Error| ApplyError::Create {
            path: name.to_path(),
            source,
        };
        if name.base() == WHITEOUT_OPAQUE {
            return rustix::fs::fsetxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| create_err(e.into()));
        }
        if name.base().starts_with(WHITEOUT_META_PREFIX) {
            tracing::debug!(path = ?name.to_path(), "skipping aufs metadata entry");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(ApplyError::InvalidPath {
                path: name.to_path(),
                reason: InvalidPathReason::ParentComponent,
            });
        }
        let dev = rustix::fs::makedev(0, 0);
        self.create_replacing(parent, name, hidden, |parent| {
            rustix::fs::mknodat(
                parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                dev,
            )
        })?;
        rustix::fs::chownat(
            parent,
            hidden,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| metadata_err(name, "chown", e))
    }

    fn regular<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        data: &mut tar::Entry<'_, R>,
        meta: &EntryMeta,
    ) -> Result<u64, ApplyError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = self.create_replacing(parent, name, name.base(), |parent| {
            rustix::fs::openat(parent, name.base(), flags, Mode::from_raw_mode(0o600))
        })?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        let mut written_back = 0u64;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ApplyError::Read {
                        entries: self.stats.entries,
                        source,
                    });
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|source| ApplyError::Write {
                    path: name.to_path(),
                    source,
                })?;
            written += n as u64;
            // Big files go to disk while the rest of the layer streams in, rather than
            // all at the snapshot's sync (see `durable::start_writeback`).
            if written - written_back >= WRITEBACK_WINDOW {
                start_writeback(file.as_fd(), written_back, written - written_back);
                written_back = written;
            }
        }
        if written_back > 0 && written > written_back {
            start_writeback(file.as_fd(), written_back, written - written_back);
        }
        self.stats.size += written;
        self.set_metadata(Target::Fd(file.as_fd()), name, meta, true)?;
        set_times(Target::Fd(file.as_fd()), name, &meta.times)?;
        Ok(written)
    }

    fn directory(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        let base = name.base();
        let private = Mode::from_raw_mode(0o700);
        match rustix::fs::mkdirat(parent, base, private) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let existing = rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| replace_err(name, e.into()))?;
                // Directory over directory merges: only the metadata is new.
                if FileType::from_raw_mode(existing.st_mode) != FileType::Directory {
                    if self.opts.no_overwrite_dir_non_dir {
                        return Err(ApplyError::DirNonDir {
                            path: name.to_path(),
                            existing: "non-directory",
                            new: "directory",
                        });
                    }
                    self.remove_existing(parent, name, base)?;
                    rustix::fs::mkdirat(parent, base, private).map_err(|e| create_err(name, e))?;
                }
            }
            Err(e) => return Err(create_err(name, e)),
        }
        let fd = rustix::fs::openat(parent, base, nofollow_dir_flags(), Mode::empty())
            .map_err(|e| create_err(name, e))?;
        self.set_metadata(Target::Fd(fd.as_fd()), name, meta, true)?;
        self.dir_times.push((name.clone(), meta.times.clone()));
        // The next entries are most likely this directory's children.
        self.layer.remember(name.as_bytes().to_vec(), Rc::new(fd));
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        target: &[u8],
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        // The target is kept verbatim, absolute or not: it is resolved at run time,
        // inside the container, and by this extractor only through `LayerRoot`.
        self.create_replacing(parent, name, name.base(), |parent| {
            rustix::fs::symlinkat(target, parent, name.base())
        })?;
        self.stats.size += target.len() as u64;
        self.set_metadata(Target::At(parent, name.base()), name, meta, false)?;
        set_times(Target::At(parent, name.base()), name, &meta.times)
    }

    fn hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        raw_target: &[u8],
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        let target = EntryName::parse(raw_target, self.opts.max_path_len).map_err(|reason| {
            ApplyError::InvalidLink {
                path: name.to_path(),
                target: bytes_to_path(raw_target),
                reason,
            }
        })?;
        let link_err = |source: io::Error| ApplyError::Hardlink {
            path: name.to_path(),
            target: target.to_path(),
            source,
        };
        if target.is_root() {
            return Err(link_err(Errno::PERM.into()));
        }
        // The target's parent is resolved inside the layer like any name, and linkat
        // with no flags does not follow the target's last component: a hardlink can
        // only ever reach an inode already in this layer.
        let target_parent = self.layer.dir(target.parent(), false).map_err(link_err)?;
        self.create_replacing(parent, name, name.base(), |parent| {
            rustix::fs::linkat(
                &*target_parent,
                target.base(),
                parent,
                name.base(),
                AtFlags::empty(),
            )
        })
        .map_err(|e| match e {
            ApplyError::Create { source, .. } => link_err(source),
            other => other,
        })?;
        // Docker sets the header's metadata on the linked inode too, but leaves mode and
        // times alone when the target is a symlink (they would follow it).
        let st = rustix::fs::statat(parent, name.base(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| link_err(e.into()))?;
        let is_symlink = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        self.set_metadata(Target::At(parent, name.base()), name, meta, !is_symlink)?;
        if !is_symlink {
            set_times(Target::At(parent, name.base()), name, &meta.times)?;
        }
        Ok(())
    }

    fn node(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        file_type: FileType,
        dev: rustix::fs::Dev,
        meta: &EntryMeta,
    ) -> Result<(), ApplyError> {
        self.create_replacing(parent, name, name.base(), |parent| {
            rustix::fs::mknodat(parent, name.base(), file_type, Mode::empty(), dev)
        })?;
        self.set_metadata(Target::At(parent, name.base()), name, meta, true)?;
        set_times(Target::At(parent, name.base()), name, &meta.times)
    }

    /// Runs `create` (an `O_EXCL`-style call that fails with `EEXIST` rather than
    /// overwrite). If something is in the way, removes it, recursively for a
    /// directory, and tries once more: a later entry replaces an earlier one.
    fn create_replacing<T>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        base: &[u8],
        mut create: impl FnMut(BorrowedFd<'_>) -> Result<T, Errno>,
    ) -> Result<T, ApplyError> {
        match create(parent) {
            Err(Errno::EXIST) => {
                self.remove_existing(parent, name, base)?;
                create(parent).map_err(|e| create_err(name, e))
            }
            other => other.map_err(|e| create_err(name, e)),
        }
    }

    /// Removes `base` from `parent`, recursively if it is a directory.
    fn remove_existing(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &EntryName,
        base: &[u8],
    ) -> Result<(), ApplyError> {
        let st = rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| replace_err(name, e.into()))?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && self.opts.no_overwrite_dir_non_dir {
            return Err(ApplyError::DirNonDir {
                path: name.to_path(),
                existing: "directory",
                new: "non-directory",
            });
        }
        // Any cached directory may be this one or lie under it.
        self.layer.forget();
        let freed = if is_dir {
            remove_tree(parent, base).map_err(|e| replace_err(name, e))?
        } else {
            rustix::fs::unlinkat(parent, base, AtFlags::empty())
                .map_err(|e| replace_err(name, e.into()))?;
            freed_by_unlink(&st)
        };
        self.stats.size = self.stats.size.saturating_sub(freed);
        Ok(())
    }

    /// Owner, xattrs and mode, in that order: chown clears setuid/setgid bits and
    /// file capabilities, so those are set after it.
    fn set_metadata(
        &self,
        target: Target<'_>,
        name: &EntryName,
        meta: &EntryMeta,
        chmod: bool,
    ) -> Result<(), ApplyError> {
        let (uid, gid) = (Some(uid(meta.uid)), Some(gid(meta.gid)));
        match target {
            Target::Fd(fd) => rustix::fs::fchown(fd, uid, gid),
            Target::At(parent, base) => {
                rustix::fs::chownat(parent, base, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            }
        }
        .map_err(|e| metadata_err(name, "chown", e))?;

        for (xattr, value) in &meta.xattrs {
            let result = match target {
                Target::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, xattr.as_slice(), value, XattrFlags::empty())
                }
                // No `lsetxattrat` before Linux 6.13: go through the parent fd's
                // /proc entry. The parent is already resolved inside the layer and
                // the last component is not followed.
                Target::At(parent, base) => {
                    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
                    path.extend_from_slice(base);
                    rustix::fs::lsetxattr(
                        OsStr::from_bytes(&path),
                        xattr.as_slice(),
                        value,
                        XattrFlags::empty(),
                    )
                }
            };
            match result {
                Ok(()) => {}
                // Docker ignores EPERM: user.* xattrs cannot be set on symlinks and
                // device nodes, and some sandboxes refuse xattrs altogether.
                Err(Errno::PERM) => tracing::warn!(
                    path = ?name.to_path(),
                    xattr = %String::from_utf8_lossy(xattr),
                    "ignoring xattr the filesystem refuses"
                ),
                Err(e) => {
                    return Err(ApplyError::Xattr {
                        path: name.to_path(),
                        name: String::from_utf8_lossy(xattr).into_owned(),
                        source: e.into(),
                    });
                }
            }
        }

        if chmod {
            match target {
                Target::Fd(fd) => rustix::fs::fchmod(fd, meta.mode),
                // Never a symlink here (callers pass `chmod` only for other kinds), so
                // following the last component is harmless.
                Target::At(parent, base) => {
                    rustix::fs::chmodat(parent, base, meta.mode, AtFlags::empty())
                }
            }
            .map_err(|e| metadata_err(name, "chmod", e))?;
        }
        Ok(())
    }

    /// Sets directory times last, after all their children exist (Docker does the same).
    /// A directory that a later entry removed or replaced is skipped.
    fn set_dir_times(&mut self) -> Result<(), ApplyError> {
        for (name, times) in std::mem::take(&mut self.dir_times) {
            let fd = match self.layer.resolve(name.as_bytes(), nofollow_dir_flags()) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(metadata_err(&name, "set times of", e)),
            };
            rustix::fs::futimens(&fd, &times)
                .map_err(|e| metadata_err(&name, "set times of", e))?;
        }
        Ok(())
    }
}

/// Times of a symlink, node or hardlink, without following it.
fn set_times(target: Target<'_>, name: &EntryName, times: &Timestamps) -> Result<(), ApplyError> {
    match target {
        Target::Fd(fd) => rustix::fs::futimens(fd, times),
        Target::At(parent, base) => {
            rustix::fs::utimensat(parent, base, times, AtFlags::SYMLINK_NOFOLLOW)
        }
    }
    .map_err(|e| metadata_err(name, "set times of", e))
}

/// Removes the directory `base` in `parent` and everything under it, never following
/// a symlink. Returns the bytes freed, as [`freed_by_unlink`] counts them.
fn remove_tree(parent: BorrowedFd<'_>, base: &[u8]) -> io::Result<u64> {
    let dir_fd: OwnedFd = rustix::fs::openat(parent, base, nofollow_dir_flags(), Mode::empty())?;
    let mut dir = rustix::fs::Dir::read_from(&dir_fd)?;
    let mut children = Vec::new();
    while let Some(child) = dir.read() {
        let child = child?;
        let child_name = child.file_name().to_bytes();
        if child_name != b"." && child_name != b".." {
            children.push((child_name.to_vec(), child.file_type()));
        }
    }
    let mut freed = 0;
    for (child, file_type) in children {
        if file_type == FileType::Directory {
            freed += remove_tree(dir_fd.as_fd(), &child)?;
            continue;
        }
        let st = rustix::fs::statat(&dir_fd, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            // The directory entry's type was `Unknown` (some filesystems never fill it).
            freed += remove_tree(dir_fd.as_fd(), &child)?;
        } else {
            rustix::fs::unlinkat(&dir_fd, child.as_slice(), AtFlags::empty())?;
            freed += freed_by_unlink(&st);
        }
    }
    rustix::fs::unlinkat(parent, base, AtFlags::REMOVEDIR)?;
    Ok(freed)
}

/// What unlinking a non-directory takes off [`ApplyStats::size`]: its size when this
/// was the inode's last link (the size was counted once, when the inode was made).
fn freed_by_unlink(st: &rustix::fs::Stat) -> u64 {
    let file_type = FileType::from_raw_mode(st.st_mode);
    if matches!(file_type, FileType::RegularFile | FileType::Symlink) && st.st_nlink == 1 {
        u64::try_from(st.st_size).unwrap_or(0)
    } else {
        0
    }
}

/// The link target of a symlink or hardlink entry.
fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &EntryName,
) -> Result<Vec<u8>, ApplyError> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => Ok(target.into_owned()),
        _ => Err(ApplyError::MissingLinkTarget {
            path: name.to_path(),
        }),
    }
}

/// The device number of a char or block device entry.
fn device<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &EntryName,
) -> Result<rustix::fs::Dev, ApplyError> {
    let invalid = |field: &'static str| {
        move |source: io::Error| ApplyError::InvalidHeader {
            path: name.to_path(),
            field,
            source,
        }
    };
    let header = entry.header();
    let major = header
        .device_major()
        .map_err(invalid("device major"))?
        .unwrap_or(0);
    let minor = header
        .device_minor()
        .map_err(invalid("device minor"))?
        .unwrap_or(0);
    Ok(rustix::fs::makedev(major, minor))
}

/// A numeric header field, with an empty one (all NUL or spaces) read as 0 the way Go's
/// archive/tar (so Docker) reads it; the `tar` crate refuses those.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// A time Docker would keep, else the epoch (Docker's `boundTime`).
fn bounded_time(secs: i64, nanos: i64) -> Timespec {
    if !(0..=MAX_SECS).contains(&secs) {
        return Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
    }
    Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    }
}

/// Parses a PAX time record (`1700000000.123456789`, possibly negative), bounded as
/// Docker bounds times. `None` when it does not parse.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let value = std::str::from_utf8(value).ok()?;
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = &frac[..frac.len().min(9)];
    let mut nanos: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in digits.len()..9 {
        nanos *= 10;
    }
    if value.starts_with('-') {
        // Any time before the epoch is bounded to it.
        return Some(bounded_time(-1, 0));
    }
    Some(bounded_time(secs, nanos))
}

fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

fn create_err(name: &EntryName, e: Errno) -> ApplyError {
    ApplyError::Create {
        path: name.to_path(),
        source: e.into(),
    }
}

fn replace_err(name: &EntryName, source: io::Error) -> ApplyError {
    ApplyError::Replace {
        path: name.to_path(),
        source,
    }
}

fn metadata_err(name: &EntryName, op: &'static str, e: Errno) -> ApplyError {
    ApplyError::Metadata {
        path: name.to_path(),
        op,
        source: e.into(),
    }
}

/// Counts bytes read through [`MeteredReader`] and, while armed, caps them.
///
/// The `tar` crate reads PAX records and GNU long names into memory whole, with no
/// limit of its own; a few compressed megabytes could make it allocate gigabytes. The
/// applier arms the meter around each `Entries::next()`, the only time those records
/// are read.
#[derive(Default)]
struct Meter {
    read: Cell<u64>,
    /// Absolute count at which reads fail; `None` when disarmed.
    limit: Cell<Option<u64>>,
}

impl Meter {
    fn arm(&self, budget: u64) {
        self.limit.set(Some(self.read.get().saturating_add(budget)));
    }

    fn disarm(&self) {
        self.limit.set(None);
    }
}

/// The payload of the io error a [`MeteredReader`] returns when its budget is spent.
#[derive(Debug, thiserror::Error)]
#[error("tar headers exceed the configured limit")]
struct HeaderBudgetSpent;

fn is_meter_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<HeaderBudgetSpent>())
}

/// The tarball stream as the `tar` crate sees it, metered by a shared [`Meter`].
struct MeteredReader<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for MeteredReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.meter.read.get();
        let buf = match self.meter.limit.get() {
            None => buf,
            Some(limit) => {
                let allowed = limit.saturating_sub(read);
                if allowed == 0 && !buf.is_empty() {
                    return Err(io::Error::other(HeaderBudgetSpent));
                }
                let len = buf
                    .len()
                    .min(usize::try_from(allowed).unwrap_or(usize::MAX));
                &mut buf[..len]
            }
        };
        let n = self.inner.read(buf)?;
        self.meter.read.set(read + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block with `name` written raw, bypassing the `tar` crate's
    /// own refusal to build hostile names.
    fn raw_header(name: &[u8], kind: EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(rustix::process::geteuid().as_raw().into());
        h.set_gid(rustix::process::getegid().as_raw().into());
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        h
    }

    fn tarball(entries: &[(tar::Header, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn apply(
        tar: &[u8],
        opts: &ApplyOptions,
    ) -> (tempfile::TempDir, Result<ApplyStats, ApplyError>) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("layer")).unwrap();
        let result = apply_layer(&tmp.path().join("layer"), tar, opts);
        (tmp, result)
    }

    #[test]
    fn dot_dot_name_is_refused_and_nothing_escapes() {
        let tar = tarball(&[(raw_header(b"../escaped", EntryType::Regular, 3), b"bad")]);
        let (tmp, result) = apply(&tar, &ApplyOptions::default());
        match result {
            Err(ApplyError::InvalidPath { path, reason }) => {
                assert_eq!(path, Path::new("../escaped"));
                assert_eq!(reason, InvalidPathReason::ParentComponent);
            }
            other => panic!("expected InvalidPath, got {other:?}"),
        }
        assert!(!tmp.path().join("escaped").exists());
    }

    #[test]
    fn files_and_implied_dirs_are_written_without_root() {
        let tar = tarball(&[(raw_header(b"/a/b/file", EntryType::Regular, 5), b"hello")]);
        let (tmp, result) = apply(&tar, &ApplyOptions::default());
        let stats = result.unwrap();
        assert_eq!(
            stats,
            ApplyStats {
                entries: 1,
                size: 5
            }
        );
        let file = tmp.path().join("layer/a/b/file");
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&file).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o644);
        assert_eq!(m.mtime(), 1_600_000_000);
    }

    #[test]
    fn oversized_pax_header_is_refused_before_it_is_buffered() {
        let mut pax = raw_header(b"PaxHeaders/x", EntryType::XHeader, 0);
        let records = vec![b'a'; 64 * 1024];
        pax.set_size(records.len() as u64);
        pax.set_cksum();
        let tar = tarball(&[
            (pax, &records),
            (raw_header(b"x", EntryType::Regular, 0), b""),
        ]);
        let opts = ApplyOptions {
            max_header_bytes: 16 * 1024,
            ..ApplyOptions::default()
        };
        let (_tmp, result) = apply(&tar, &opts);
        assert!(
            matches!(
                result,
                Err(ApplyError::HeaderTooLarge {
                    entry: 1,
                    limit: 16384
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn entry_count_is_capped() {
        let entries: Vec<_> = (0..5)
            .map(|i| {
                (
                    raw_header(format!("f{i}").as_bytes(), EntryType::Regular, 0),
                    &b""[..],
                )
            })
            .collect();
        let tar = tarball(&entries);
        let opts = ApplyOptions {
            max_entries: 4,
            ..ApplyOptions::default()
        };
        let (_tmp, result) = apply(&tar, &opts);
        assert!(
            matches!(result, Err(ApplyError::TooManyEntries { limit: 4 })),
            "{result:?}"
        );
    }

    #[test]
    fn truncated_file_data_is_an_error() {
        let mut tar = tarball(&[(
            raw_header(b"big", EntryType::Regular, 4096),
            &[7u8; 4096][..],
        )]);
        tar.truncate(512 + 1000);
        let (_tmp, result) = apply(&tar, &ApplyOptions::default());
        assert!(
            matches!(
                result,
                Err(ApplyError::Truncated {
                    expected: 4096,
                    actual: 1000,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn garbage_is_a_read_error_not_a_panic() {
        let (_tmp, result) = apply(&[0x55; 2048], &ApplyOptions::default());
        assert!(
            matches!(result, Err(ApplyError::Read { entries: 0, .. })),
            "{result:?}"
        );
    }

    #[test]
    fn empty_numeric_fields_read_as_zero_like_go() {
        let mut h = raw_header(b"f", EntryType::Regular, 0);
        h.as_old_mut().mtime = [0; 12];
        h.as_old_mut().mode = *b"  0644 \0";
        h.set_cksum();
        let tar = tarball(&[(h, b"")]);
        let (tmp, result) = apply(&tar, &ApplyOptions::default());
        result.unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(tmp.path().join("layer/f"))
                .unwrap()
                .mtime(),
            0
        );
        let mut bad = raw_header(b"g", EntryType::Regular, 0);
        bad.as_old_mut().gid = *b"12x4567\0";
        bad.set_cksum();
        let (_tmp, result) = apply(&tarball(&[(bad, b"")]), &ApplyOptions::default());
        assert!(
            matches!(result, Err(ApplyError::InvalidHeader { field: "gid", .. })),
            "{result:?}"
        );
    }

    #[test]
    fn old_style_directory_with_trailing_slash_is_a_directory() {
        let mut h = raw_header(b"d/", EntryType::Regular, 0);
        h.as_mut_bytes()[156] = 0;
        h.set_mode(0o755);
        h.set_cksum();
        let tar = tarball(&[(h, b""), (raw_header(b"d/f", EntryType::Regular, 1), b"x")]);
        let (tmp, result) = apply(&tar, &ApplyOptions::default());
        result.unwrap();
        assert!(tmp.path().join("layer/d").is_dir());
        assert_eq!(std::fs::read(tmp.path().join("layer/d/f")).unwrap(), b"x");
    }

    #[test]
    fn pax_times_parse_with_fractions_and_bounds() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"12.1234567891").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 123_456_789));
        let t = parse_pax_time(b"-5.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 0));
        assert!(parse_pax_time(b"soon").is_none());
        assert!(parse_pax_time(b"1.x").is_none());
    }

    #[test]
    fn copy_options_keep_wh_names_and_refuse_dir_non_dir() {
        let opts = ApplyOptions {
            whiteouts: false,
            no_overwrite_dir_non_dir: true,
            ..Default::default()
        };
        let tar = tarball(&[
            (raw_header(b".wh.x", EntryType::Regular, 1), b"w"),
            (raw_header(b"d/", EntryType::Directory, 0), b""),
            (raw_header(b"d", EntryType::Regular, 1), b"f"),
        ]);
        let (tmp, result) = apply(&tar, &opts);
        assert!(
            matches!(result, Err(ApplyError::DirNonDir { .. })),
            "{result:?}"
        );
        assert_eq!(std::fs::read(tmp.path().join("layer/.wh.x")).unwrap(), b"w");
        assert!(tmp.path().join("layer/d").is_dir());
    }
}
