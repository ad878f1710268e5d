//! Writing a directory tree as a tarball in Docker's format, by file descriptor.
//!
//! The opposite of [`super::apply_layer`]: a layer diff (an overlay upperdir), a
//! container export and `docker cp` out of a container all walk a directory that a
//! container may be changing while we read it. So nothing here follows a path string:
//! every directory is opened with `O_NOFOLLOW` relative to its parent's fd, every file
//! is opened relative to its directory and checked with `fstat` before its bytes are
//! read, and a symlink is only ever read as a link. A container swapping a directory
//! for a symlink mid-walk gets that symlink archived, never the host file it names.
//!
//! The format follows Docker's `archive.TarWithOptions`: names are relative, without a
//! `./` prefix, directories end in `/`, entries of a directory come in byte order,
//! mtimes are whole seconds (Docker truncates them so that diff IDs are reproducible),
//! owners are numeric, a second name of an inode with several links becomes a hardlink
//! entry to the first, and xattrs travel as `SCHILY.xattr.` PAX records. With
//! [`PackOptions::overlay_whiteouts`] the overlay format is converted back: a 0:0
//! character device becomes an empty `.wh.<name>` file and an opaque directory gets a
//! `.wh..wh..opq` entry (Docker's `overlayWhiteoutConverter`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_oci::{Digest, Digester};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

/// The overlayfs xattr that marks a directory opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs overlayfs writes for itself (origin, impure, opaque, ...): never archived.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// How a tree is packed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Convert overlay whiteouts (0:0 char devices, opaque xattrs) to Docker's `.wh.`
    /// entries: set when packing an upperdir as a layer diff.
    pub overlay_whiteouts: bool,
}

/// What a finished tarball holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackStats {
    /// sha256 of the whole tarball: the layer's diff ID when it is a layer.
    pub digest: Digest,
    /// Length of the tarball.
    pub size: u64,
    /// Entries written (whiteouts and hardlinks included, PAX records not).
    pub entries: u64,
}

/// Writes tar entries for trees read by file descriptor, digesting the stream.
pub struct TreePacker<W: Write> {
    builder: tar::Builder<DigestWriter<W>>,
    opts: PackOptions,
    /// `(dev, ino)` of files with several links → the tar name of the first one seen.
    links: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
}

impl<W: Write> TreePacker<W> {
    /// Starts a tarball on `out`.
    pub fn new(out: W, opts: PackOptions) -> Self {
        TreePacker {
            builder: tar::Builder::new(DigestWriter {
                inner: out,
                digester: Digester::new(),
                count: 0,
            }),
            opts,
            links: HashMap::new(),
            entries: 0,
        }
    }

    /// Appends the children of directory `dir`, each named `prefix` + its name (the
    /// prefix is empty or ends in `/`), recursively.
    ///
    /// # Errors
    /// Reading the tree or writing the tarball failed. Entries that vanish while the
    /// walk runs (a running container deleting them) are skipped, not errors.
    pub fn append_children(&mut self, dir: BorrowedFd<'_>, prefix: &[u8]) -> io::Result<()> {
        for name in sorted_names(dir)? {
            let mut tar_name = prefix.to_vec();
            tar_name.extend_from_slice(&name);
            self.append_entry(dir, &name, &tar_name)?;
        }
        Ok(())
    }

    /// Appends the entry `base` of directory `parent` under the tar name `name`, and
    /// its children when it is a directory.
    ///
    /// # Errors
    /// As [`TreePacker::append_children`]; `ENOENT` when `base` itself is missing.
    pub fn append_tree(
        &mut self,
        parent: BorrowedFd<'_>,
        base: &[u8],
        name: &[u8],
    ) -> io::Result<()> {
        let st = rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)?;
        self.append_stat(parent, base, name, &st)
    }

    /// Appends one directory entry, tolerating its disappearance.
    fn append_entry(&mut self, parent: BorrowedFd<'_>, base: &[u8], name: &[u8]) -> io::Result<()> {
        match rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match self.append_stat(parent, base, name, &st) {
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => Ok(()),
                other => other,
            },
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn append_stat(
        &mut self,
        parent: BorrowedFd<'_>,
        base: &[u8],
        name: &[u8],
        st: &Stat,
    ) -> io::Result<()> {
        let kind = FileType::from_raw_mode(st.st_mode);
        let mut header = base_header(st);
        match kind {
            FileType::Directory => {
                let fd = rustix::fs::openat(
                    parent,
                    base,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let xattrs = self.xattrs(&fd)?;
                let opaque = self.opts.overlay_whiteouts
                    && matches!(get_xattr(&fd, OVERLAY_OPAQUE_XATTR)?, Some(v) if v == b"y");
                let mut dir_name = name.to_vec();
                if !dir_name.is_empty() && !dir_name.ends_with(b"/") {
                    dir_name.push(b'/');
                }
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.write_entry(&mut header, &dir_name, None, &xattrs, io::empty())?;
                if opaque {
                    let mut wh = Header::new_gnu();
                    wh.set_entry_type(EntryType::Regular);
                    wh.set_mode(st.st_mode & 0o777);
                    wh.set_uid(st.st_uid.into());
                    wh.set_gid(st.st_gid.into());
                    wh.set_mtime(0);
                    wh.set_size(0);
                    let mut wh_name = dir_name.clone();
                    wh_name.extend_from_slice(b".wh..wh..opq");
                    self.write_entry(&mut wh, &wh_name, None, &[], io::empty())?;
                }
                self.append_children(fd.as_fd(), &dir_name)
            }
            FileType::CharacterDevice if self.opts.overlay_whiteouts && st.st_rdev == 0 => {
                let (dir, file) = match name.iter().rposition(|&b| b == b'/') {
                    Some(i) => name.split_at(i + 1),
                    None => (&b""[..], name),
                };
                let mut wh_name = dir.to_vec();
                wh_name.extend_from_slice(b".wh.");
                wh_name.extend_from_slice(file);
                header.set_entry_type(EntryType::Regular);
                header.set_mode(0o600);
                header.set_size(0);
                self.write_entry(&mut header, &wh_name, None, &[], io::empty())
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(parent, base, Vec::new())?;
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.write_entry(&mut header, name, Some(target.as_bytes()), &[], io::empty())
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match kind {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                if kind != FileType::Fifo {
                    header.set_device_major(rustix::fs::major(st.st_rdev))?;
                    header.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                header.set_size(0);
                self.write_entry(&mut header, name, None, &[], io::empty())
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        header.set_entry_type(EntryType::Link);
                        header.set_size(0);
                        return self.write_entry(&mut header, name, Some(&first), &[], io::empty());
                    }
                    self.links.insert(key, name.to_vec());
                }
                // O_NONBLOCK: if the file was swapped for a fifo since the stat, the open
                // must not hang; the fstat below then refuses it.
                let fd = rustix::fs::openat(
                    parent,
                    base,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let now = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Err(Errno::NOENT.into());
                }
                let xattrs = self.xattrs(&fd)?;
                let size = now.st_size.max(0) as u64;
                let mut header = base_header(&now);
                header.set_entry_type(EntryType::Regular);
                header.set_size(size);
                // A file a running container is writing may grow or shrink while it is
                // read: exactly `size` bytes go out either way (short reads padded).
                let data = ExactReader {
                    inner: File::from(fd),
                    left: size,
                };
                self.write_entry(&mut header, name, None, &xattrs, data)
            }
            // Sockets cannot be archived (Docker skips them too).
            _ => Ok(()),
        }
    }

    /// The xattrs of an open file worth archiving: all but overlayfs's own.
    fn xattrs(&self, fd: &OwnedFd) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let names = match list_xattrs(fd) {
            Ok(n) => n,
            Err(Errno::NOTSUP) | Err(Errno::PERM) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for name in names {
            if OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            if let Some(value) = get_xattr(fd, name.as_slice())? {
                out.push((name, value));
            }
        }
        Ok(out)
    }

    /// Writes PAX records (xattrs) when there are any, then the entry.
    fn write_entry(
        &mut self,
        header: &mut Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        mut data: impl Read,
    ) -> io::Result<()> {
        if !xattrs.is_empty() {
            let mut records = Vec::new();
            for (k, v) in xattrs {
                let mut key = b"SCHILY.xattr.".to_vec();
                key.extend_from_slice(k);
                pax_record(&mut records, &key, v);
            }
            let mut pax = Header::new_ustar();
            pax.set_entry_type(EntryType::XHeader);
            let mut pax_name = b"PaxHeaders.0/".to_vec();
            pax_name.extend_from_slice(&name[name.len().saturating_sub(80)..]);
            pax.as_old_mut().name[..pax_name.len().min(100)]
                .copy_from_slice(&pax_name[..pax_name.len().min(100)]);
            pax.set_mode(0o644);
            pax.set_size(records.len() as u64);
            pax.set_cksum();
            self.builder.append(&pax, &records[..])?;
        }
        // Names are written as given: the tar crate's path setters normalize `./x`
        // to `x`, but `docker cp` rebases entries by their leading component, which
        // for a `dir/.` copy is `.`.
        self.long_record(EntryType::GNULongName, name)?;
        set_field(&mut header.as_old_mut().name, name);
        if let Some(target) = link {
            self.long_record(EntryType::GNULongLink, target)?;
            set_field(&mut header.as_old_mut().linkname, target);
        }
        header.set_cksum();
        self.builder.append(header, &mut data)?;
        self.entries += 1;
        Ok(())
    }

    /// Writes a GNU long name or long link record when `value` does not fit the
    /// header's 100-byte field.
    fn long_record(&mut self, kind: EntryType, value: &[u8]) -> io::Result<()> {
        if value.len() <= 100 {
            return Ok(());
        }
        let mut h = Header::new_gnu();
        set_field(&mut h.as_old_mut().name, b"././@LongLink");
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        let mut data = value.to_vec();
        data.push(0);
        self.builder.append(&h, &data[..])
    }

    /// Writes the end-of-archive blocks and returns the stream with its digest.
    ///
    /// # Errors
    /// Writing to the output failed.
    pub fn finish(mut self) -> io::Result<(W, PackStats)> {
        self.builder.finish()?;
        let entries = self.entries;
        let w = self.builder.into_inner()?;
        let stats = PackStats {
            digest: w.digester.finish(),
            size: w.count,
            entries,
        };
        Ok((w.inner, stats))
    }
}

/// Copies `value` into a fixed header field, truncated (a GNU long record before the
/// header carries the whole value) and NUL-padded.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

/// A header with the fields every entry shares: mode, owner, mtime.
fn base_header(st: &Stat) -> Header {
    let mut h = Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h
}

/// One PAX record: `<len> <key>=<value>\n`, where `len` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The names in `dir` (without `.` and `..`), in byte order.
pub(crate) fn sorted_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    // `Dir::read_from` reopens the directory, so our fd's offset is left alone.
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// The xattr names of `fd`.
fn list_xattrs(fd: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 4096];
    loop {
        match rustix::fs::flistxattr(fd, &mut buf[..]) {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|&b| b == 0)
                    .filter(|n| !n.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            Err(Errno::RANGE) => {
                let need = rustix::fs::flistxattr_query(fd)?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One xattr of `fd`, `None` when it is absent.
pub(crate) fn get_xattr(
    fd: &OwnedFd,
    name: impl rustix::path::Arg + Copy,
) -> Result<Option<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::fgetxattr(fd, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) => {
                let need = rustix::fs::fgetxattr_query(fd, name)?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads exactly `left` bytes: the file's, then zeros if it shrank.
struct ExactReader {
    inner: File,
    left: u64,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Digests and counts everything written through it.
struct DigestWriter<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
