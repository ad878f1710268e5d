//! Layer application as root: hostile tarballs, overlay whiteouts, ownership, device
//! nodes and xattrs, checked on the real filesystem.
//!
//! Every tarball is built here, entry by entry, with raw header fields where the `tar`
//! crate's builder would refuse a hostile name. Needs root (`CAP_CHOWN`, `CAP_MKNOD`,
//! `trusted.*` xattrs): `cargo test -p berth-e2e --test layer_apply` as root. Without
//! root every test fails with a message saying so; none is skipped silently.

use std::fs;
use std::io::{BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_oci::Digest;
use berth_store::layer::{
    ApplyError, ApplyOptions, ApplyStats, Compression, DigestReader, InvalidPathReason,
    apply_layer, decompress,
};
use tar::{EntryType, Header};

/// Fails the test unless it runs as root.
fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert_eq!(
        euid, "0",
        "layer_apply tests need root (chown, mknod, trusted.* xattrs): \
         run `cargo test -p berth-e2e --test layer_apply` as root"
    );
}

/// A tarball under construction.
struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

/// Header fields a test may set; the rest default to root-owned, 0644, a fixed mtime.
#[derive(Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

const MTIME: u64 = 1_600_000_000;

impl Default for Meta {
    fn default() -> Self {
        Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: MTIME,
        }
    }
}

impl Layer {
    fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with `name` and `link` written raw into the ustar fields, so
    /// hostile names (`..`, absolute) survive.
    fn raw(
        &mut self,
        name: &str,
        kind: EntryType,
        link: &str,
        meta: &Meta,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "raw names must fit ustar fields"
        );
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_mtime(meta.mtime);
        h.set_cksum();
        self.builder.append(&h, data).expect("append entry");
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name, EntryType::Regular, "", &Meta::default(), data)
    }

    fn file_with(&mut self, name: &str, meta: &Meta, data: &[u8]) -> &mut Self {
        self.raw(name, EntryType::Regular, "", meta, data)
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        let meta = Meta {
            mode: 0o755,
            ..Meta::default()
        };
        self.raw(name, EntryType::Directory, "", &meta, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let meta = Meta {
            mode: 0o777,
            ..Meta::default()
        };
        self.raw(name, EntryType::Symlink, target, &meta, b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, EntryType::Link, target, &Meta::default(), b"")
    }

    fn device(
        &mut self,
        name: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.builder.append(&h, &b""[..]).expect("append device");
        self
    }

    /// A PAX extended header describing the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            // "<len> <key>=<value>\n", where len counts itself.
            let body = 1 + key.len() + 1 + value.len() + 1;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(
            "PaxHeaders.0/next",
            EntryType::XHeader,
            "",
            &Meta::default(),
            &data,
        )
    }

    fn finish(&mut self) -> Vec<u8> {
        self.builder.finish().expect("finish tarball");
        std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()))
            .into_inner()
            .expect("tarball bytes")
    }
}

/// A fresh, empty layer directory inside a tempdir whose parent the tests also check
/// stays untouched.
struct Target {
    tmp: tempfile::TempDir,
}

impl Target {
    fn new() -> Target {
        require_root();
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("layer")).expect("layer dir");
        Target { tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("layer")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn apply(&self, tar: &[u8]) -> Result<ApplyStats, ApplyError> {
        apply_layer(&self.root(), tar, &ApplyOptions::default())
    }

    /// Names directly beside the layer directory: anything but `layer` escaped.
    fn siblings(&self) -> Vec<String> {
        fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "layer")
            .collect()
    }
}

fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {p:?}: {e}"))
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("lgetxattr {p:?} {name}: {e}"),
    }
}

fn host_file_fingerprint(p: &str) -> (u64, u64, Vec<u8>) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.ino(), m.nlink(), fs::read(p).unwrap())
}

// --- hostile names -------------------------------------------------------------------

#[test]
fn dot_dot_name_is_refused_naming_the_entry() {
    let t = Target::new();
    let tar = Layer::new()
        .file("ok", b"fine")
        .file("../escaped", b"bad")
        .finish();
    match t.apply(&tar) {
        Err(ApplyError::InvalidPath { path, reason }) => {
            assert_eq!(path, Path::new("../escaped"));
            assert_eq!(reason, InvalidPathReason::ParentComponent);
        }
        other => panic!("expected InvalidPath, got {other:?}"),
    }
    assert!(t.siblings().is_empty(), "escaped: {:?}", t.siblings());
}

#[test]
fn dot_dot_inside_a_name_is_refused() {
    let t = Target::new();
    let tar = Layer::new().file("a/../../escaped", b"bad").finish();
    assert!(matches!(t.apply(&tar), Err(ApplyError::InvalidPath { .. })));
    assert!(t.siblings().is_empty());
}

#[test]
fn absolute_name_lands_inside_the_root() {
    let t = Target::new();
    let tar = Layer::new()
        .file("/etc/berth-layer-apply-absolute", b"inside")
        .finish();
    t.apply(&tar).unwrap();
    assert_eq!(
        fs::read(t.path("etc/berth-layer-apply-absolute")).unwrap(),
        b"inside"
    );
    assert!(!Path::new("/etc/berth-layer-apply-absolute").exists());
    // The implied parent gets Docker's implied-directory mode.
    assert_eq!(lstat(&t.path("etc")).mode() & 0o7777, 0o755);
}

#[test]
fn write_through_absolute_symlink_stays_inside_the_root() {
    let t = Target::new();
    let before = host_file_fingerprint("/etc/passwd");
    let tar = Layer::new()
        .dir("etc/")
        .symlink("x", "/etc")
        .file("x/passwd", b"root::0:0::/:/bin/sh\n")
        .file("x/berth-layer-apply-escape", b"inside")
        .finish();
    t.apply(&tar).unwrap();
    assert_eq!(
        fs::read(t.path("etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh\n"
    );
    assert!(t.path("etc/berth-layer-apply-escape").is_file());
    assert_eq!(host_file_fingerprint("/etc/passwd"), before);
    assert!(!Path::new("/etc/berth-layer-apply-escape").exists());
}

#[test]
fn write_through_absolute_symlink_to_missing_dir_fails_without_touching_the_host() {
    let t = Target::new();
    let tar = Layer::new()
        .symlink("x", "/etc")
        .file("x/berth-layer-apply-escape", b"bad")
        .finish();
    let err = t.apply(&tar).unwrap_err();
    assert!(matches!(err, ApplyError::Parent { .. }), "{err:?}");
    assert!(!Path::new("/etc/berth-layer-apply-escape").exists());
}

#[test]
fn write_through_climbing_symlink_stays_inside_the_root() {
    let t = Target::new();
    let tar = Layer::new()
        .dir("a/b/")
        .symlink("a/b/up", "../../../../..")
        .file("a/b/up/berth-layer-apply-escape", b"inside")
        .symlink("x", "../../..")
        .file("x/also-inside", b"inside")
        .finish();
    t.apply(&tar).unwrap();
    assert_eq!(
        fs::read(t.path("berth-layer-apply-escape")).unwrap(),
        b"inside"
    );
    assert_eq!(fs::read(t.path("also-inside")).unwrap(), b"inside");
    assert!(t.siblings().is_empty(), "escaped: {:?}", t.siblings());
}

#[test]
fn hardlink_to_host_file_absent_from_the_layer_fails() {
    let t = Target::new();
    let before = host_file_fingerprint("/etc/passwd");
    let tar = Layer::new().hardlink("stolen", "/etc/passwd").finish();
    let err = t.apply(&tar).unwrap_err();
    assert!(matches!(err, ApplyError::Hardlink { .. }), "{err:?}");
    assert!(!t.path("stolen").exists());
    assert_eq!(host_file_fingerprint("/etc/passwd"), before);
}

#[test]
fn hardlink_with_absolute_target_links_inside_the_layer() {
    let t = Target::new();
    let tar = Layer::new()
        .file("etc/passwd", b"layer passwd")
        .hardlink("copy", "/etc/passwd")
        .finish();
    t.apply(&tar).unwrap();
    assert_eq!(
        lstat(&t.path("copy")).ino(),
        lstat(&t.path("etc/passwd")).ino()
    );
    assert_eq!(fs::read(t.path("copy")).unwrap(), b"layer passwd");
}

#[test]
fn hardlink_with_dot_dot_target_is_refused() {
    let t = Target::new();
    let before = host_file_fingerprint("/etc/passwd");
    let tar = Layer::new().hardlink("stolen", "../../etc/passwd").finish();
    match t.apply(&tar) {
        Err(ApplyError::InvalidLink {
            path,
            target,
            reason,
        }) => {
            assert_eq!(path, Path::new("stolen"));
            assert_eq!(target, Path::new("../../etc/passwd"));
            assert_eq!(reason, InvalidPathReason::ParentComponent);
        }
        other => panic!("expected InvalidLink, got {other:?}"),
    }
    assert_eq!(host_file_fingerprint("/etc/passwd"), before);
}

#[test]
fn hardlink_through_symlinked_dir_to_host_stays_inside() {
    let t = Target::new();
    let before = host_file_fingerprint("/etc/passwd");
    let tar = Layer::new()
        .symlink("x", "/etc")
        .hardlink("stolen", "x/passwd")
        .finish();
    assert!(matches!(t.apply(&tar), Err(ApplyError::Hardlink { .. })));
    assert_eq!(host_file_fingerprint("/etc/passwd"), before);
}

// --- overlay format ------------------------------------------------------------------

#[test]
fn whiteouts_become_overlay_char_devices() {
    let t = Target::new();
    let tar = Layer::new()
        .dir("dir/")
        .file("dir/.wh.gone", b"")
        .file(".wh.topfile", b"")
        .file("implied/.wh.deep", b"")
        .finish();
    t.apply(&tar).unwrap();
    for p in ["dir/gone", "topfile", "implied/deep"] {
        let m = lstat(&t.path(p));
        assert!(m.file_type().is_char_device(), "{p} is not a char device");
        assert_eq!(m.rdev(), 0, "{p}");
    }
    for p in ["dir/.wh.gone", ".wh.topfile", "implied/.wh.deep"] {
        assert!(
            fs::symlink_metadata(t.path(p)).is_err(),
            "{p} written as a file"
        );
    }
}

#[test]
fn opaque_marker_sets_the_overlay_xattr() {
    let t = Target::new();
    let tar = Layer::new()
        .dir("dir/")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/kept", b"new")
        .dir("plain/")
        .finish();
    t.apply(&tar).unwrap();
    assert_eq!(
        xattr(&t.path("dir"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr(&t.path("plain"), "trusted.overlay.opaque"), None);
    assert!(fs::symlink_metadata(t.path("dir/.wh..wh..opq")).is_err());
    assert_eq!(fs::read(t.path("dir/kept")).unwrap(), b"new");
}

#[test]
fn aufs_metadata_entries_are_skipped() {
    let t = Target::new();
    let tar = Layer::new()
        .dir(".wh..wh.plnk/")
        .file(".wh..wh.plnk/1234.5678", b"x")
        .dir("dir/")
        .file("dir/.wh..wh.aufs", b"")
        .finish();
    let stats = t.apply(&tar).unwrap();
    assert_eq!(stats.entries, 4);
    assert!(fs::symlink_metadata(t.path(".wh..wh.plnk")).is_err());
    assert!(fs::symlink_metadata(t.path("dir/.wh..wh.aufs")).is_err());
    assert!(fs::symlink_metadata(t.path("dir/.wh.aufs")).is_err());
}

#[test]
fn forged_overlay_xattrs_are_dropped_and_others_kept() {
    let t = Target::new();
    let tar = Layer::new()
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ("SCHILY.xattr.user.note", b"kept"),
            ("SCHILY.xattr.trusted.berth", b"kept too"),
        ])
        .dir("forged/")
        .pax(&[(
            "SCHILY.xattr.security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        )])
        .file_with(
            "bin/ping",
            &Meta {
                mode: 0o755,
                ..Meta::default()
            },
            b"\x7fELF",
        )
        .finish();
    t.apply(&tar).unwrap();
    let dir = t.path("forged");
    assert_eq!(xattr(&dir, "trusted.overlay.opaque"), None);
    assert_eq!(xattr(&dir, "trusted.overlay.redirect"), None);
    assert_eq!(xattr(&dir, "user.overlay.opaque"), None);
    assert_eq!(xattr(&dir, "user.note").as_deref(), Some(&b"kept"[..]));
    assert_eq!(
        xattr(&dir, "trusted.berth").as_deref(),
        Some(&b"kept too"[..])
    );
    // File capabilities survive the chown that follows the data write.
    assert!(xattr(&t.path("bin/ping"), "security.capability").is_some());
}

// --- entry kinds and metadata ----------------------------------------------------------

#[test]
fn hardlinks_share_an_inode_and_count_once() {
    let t = Target::new();
    let tar = Layer::new()
        .file("bin/busybox", b"0123456789")
        .hardlink("bin/sh", "bin/busybox")
        .hardlink("./bin/ls", "./bin/busybox")
        .finish();
    let stats = t.apply(&tar).unwrap();
    let ino = lstat(&t.path("bin/busybox")).ino();
    assert_eq!(lstat(&t.path("bin/sh")).ino(), ino);
    assert_eq!(lstat(&t.path("bin/ls")).ino(), ino);
    assert_eq!(lstat(&t.path("bin/busybox")).nlink(), 3);
    assert_eq!(
        stats,
        ApplyStats {
            entries: 3,
            size: 10
        }
    );
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let t = Target::new();
    let tar = Layer::new()
        .symlink("s", "/etc/passwd")
        .hardlink("s2", "s")
        .finish();
    t.apply(&tar).unwrap();
    assert!(lstat(&t.path("s2")).file_type().is_symlink());
    assert_eq!(lstat(&t.path("s2")).ino(), lstat(&t.path("s")).ino());
}

#[test]
fn symlinks_are_kept_verbatim() {
    let t = Target::new();
    let tar = Layer::new()
        .symlink("abs", "/etc/passwd")
        .symlink("rel", "../../../usr/bin")
        .symlink("dangling", "/nonexistent/berth")
        .finish();
    let stats = t.apply(&tar).unwrap();
    assert_eq!(
        fs::read_link(t.path("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(t.path("rel")).unwrap(),
        Path::new("../../../usr/bin")
    );
    assert_eq!(
        fs::read_link(t.path("dangling")).unwrap(),
        Path::new("/nonexistent/berth")
    );
    // docker images counts a symlink's st_size, the length of its target.
    assert_eq!(stats.size, (11 + 16 + 18) as u64);
}

#[test]
fn device_nodes_and_fifos_are_kept() {
    let t = Target::new();
    let tar = Layer::new()
        .device("dev/null", EntryType::Char, 1, 3, 0o666)
        .device("dev/loop0", EntryType::Block, 7, 0, 0o660)
        .device("run/fifo", EntryType::Fifo, 0, 0, 0o600)
        .finish();
    t.apply(&tar).unwrap();
    let null = lstat(&t.path("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lo = lstat(&t.path("dev/loop0"));
    assert!(lo.file_type().is_block_device());
    assert_eq!(lo.rdev(), rustix::fs::makedev(7, 0));
    assert_eq!(lo.mode() & 0o7777, 0o660);
    let fifo = lstat(&t.path("run/fifo"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o600);
    assert_eq!(fifo.mtime(), MTIME as i64);
}

#[test]
fn modes_owners_and_mtimes_are_kept() {
    let t = Target::new();
    let suid = Meta {
        mode: 0o4755,
        uid: 1000,
        gid: 2000,
        mtime: 1_500_000_000,
    };
    let sticky = Meta {
        mode: 0o1777,
        uid: 0,
        gid: 0,
        mtime: 1_400_000_000,
    };
    let setgid_dir = Meta {
        mode: 0o2750,
        uid: 33,
        gid: 44,
        mtime: 1_300_000_000,
    };
    let link_meta = Meta {
        mode: 0o777,
        uid: 55,
        gid: 66,
        mtime: 1_200_000_000,
    };
    let tar = Layer::new()
        .raw("tmp/", EntryType::Directory, "", &sticky, b"")
        .raw("srv/", EntryType::Directory, "", &setgid_dir, b"")
        // Children written after their directory must not disturb its mtime, and a
        // file in a setgid directory still gets the gid its header says.
        .file_with("srv/su", &suid, b"#!/bin/sh\n")
        .file("srv/plain", b"x")
        .file("tmp/later", b"y")
        .raw("srv/link", EntryType::Symlink, "su", &link_meta, b"")
        .finish();
    t.apply(&tar).unwrap();

    let su = lstat(&t.path("srv/su"));
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept after chown");
    assert_eq!((su.uid(), su.gid()), (1000, 2000));
    assert_eq!(su.mtime(), 1_500_000_000);

    let plain = lstat(&t.path("srv/plain"));
    assert_eq!((plain.uid(), plain.gid()), (0, 0));

    let tmp = lstat(&t.path("tmp"));
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(tmp.mtime(), 1_400_000_000);

    let srv = lstat(&t.path("srv"));
    assert_eq!(srv.mode() & 0o7777, 0o2750);
    assert_eq!((srv.uid(), srv.gid()), (33, 44));
    assert_eq!(srv.mtime(), 1_300_000_000);

    let link = lstat(&t.path("srv/link"));
    assert!(link.file_type().is_symlink());
    assert_eq!((link.uid(), link.gid()), (55, 66));
    assert_eq!(link.mtime(), 1_200_000_000);
}

#[test]
fn pax_records_override_owner_mtime_and_long_names() {
    let t = Target::new();
    let long_name = format!("{}/file", "d".repeat(150));
    let tar = Layer::new()
        .pax(&[
            ("path", long_name.as_bytes()),
            ("uid", b"3000000"),
            ("mtime", b"1700000000.25"),
        ])
        .file("short-name-ignored", b"data")
        .finish();
    t.apply(&tar).unwrap();
    let m = lstat(&t.path(&long_name));
    assert_eq!(m.uid(), 3_000_000);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
    assert!(fs::symlink_metadata(t.path("short-name-ignored")).is_err());
}

#[test]
fn gnu_long_names_from_the_tar_builder_work() {
    let t = Target::new();
    let long_dir = "x".repeat(120);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, format!("{long_dir}/{long_dir}"), &b"abc"[..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    t.apply(&tar).unwrap();
    assert_eq!(
        fs::read(t.path(&format!("{long_dir}/{long_dir}"))).unwrap(),
        b"abc"
    );
}

// --- replacement of duplicate names ----------------------------------------------------

#[test]
fn later_entries_replace_earlier_ones() {
    let t = Target::new();
    let tar = Layer::new()
        // file, then directory of the same name
        .file("a", b"file")
        .dir("a/")
        .file("a/child", b"c")
        // directory with children, then a file
        .dir("b/")
        .file("b/old", b"old")
        .dir("b/sub/")
        .file("b/sub/deep", b"deep")
        .file("b", b"now a file")
        // directory over directory merges and takes the new metadata
        .dir("c/")
        .file("c/kept", b"kept")
        .raw(
            "c/",
            EntryType::Directory,
            "",
            &Meta {
                mode: 0o700,
                ..Meta::default()
            },
            b"",
        )
        // file over file, symlink over file
        .file("d", b"first")
        .file("d", b"second")
        .file("e", b"file")
        .symlink("e", "/target")
        // a symlink pointing outside, then a file of the same name: the file replaces
        // the symlink instead of writing through it
        .symlink("f", "/etc/passwd")
        .file("f", b"plain")
        .finish();
    let before = host_file_fingerprint("/etc/passwd");
    let stats = t.apply(&tar).unwrap();
    assert!(lstat(&t.path("a")).is_dir());
    assert_eq!(fs::read(t.path("a/child")).unwrap(), b"c");
    assert_eq!(fs::read(t.path("b")).unwrap(), b"now a file");
    assert!(lstat(&t.path("c")).is_dir());
    assert_eq!(lstat(&t.path("c")).mode() & 0o7777, 0o700);
    assert_eq!(fs::read(t.path("c/kept")).unwrap(), b"kept");
    assert_eq!(fs::read(t.path("d")).unwrap(), b"second");
    assert_eq!(fs::read_link(t.path("e")).unwrap(), Path::new("/target"));
    assert!(lstat(&t.path("f")).is_file());
    assert_eq!(fs::read(t.path("f")).unwrap(), b"plain");
    assert_eq!(host_file_fingerprint("/etc/passwd"), before);
    // Replaced files no longer count: c + "now a file" + kept + second + "/target" + plain.
    assert_eq!(stats.size, 1 + 10 + 4 + 6 + 7 + 5);
}

#[test]
fn replacing_a_directory_with_a_symlink_then_writing_through_it_stays_inside() {
    let t = Target::new();
    let tar = Layer::new()
        .dir("etc/")
        .dir("d/")
        .file("d/x", b"x")
        .symlink("d", "/etc")
        .file("d/berth-layer-apply-escape", b"inside")
        .finish();
    t.apply(&tar).unwrap();
    assert!(t.path("etc/berth-layer-apply-escape").is_file());
    assert!(!Path::new("/etc/berth-layer-apply-escape").exists());
}

// --- compression and digests -----------------------------------------------------------

fn sample_layer() -> Vec<u8> {
    Layer::new()
        .dir("usr/")
        .file("usr/hello", &b"hello world\n".repeat(1000))
        .symlink("usr/link", "hello")
        .finish()
}

fn apply_compressed(blob: &[u8], expect: Compression) {
    let t = Target::new();
    let plain = sample_layer();
    let mut compressed = DigestReader::new(BufReader::new(blob));
    let (compression, reader) = decompress(&mut compressed).unwrap();
    assert_eq!(compression, expect);
    let mut uncompressed = DigestReader::new(reader);
    let stats = apply_layer(&t.root(), &mut uncompressed, &ApplyOptions::default()).unwrap();
    uncompressed.drain().unwrap();
    assert_eq!(
        uncompressed.finish(),
        (Digest::of(&plain), plain.len() as u64),
        "diff ID"
    );
    assert_eq!(
        compressed.finish(),
        (Digest::of(blob), blob.len() as u64),
        "blob digest"
    );
    assert_eq!(stats.entries, 3);
    assert_eq!(
        fs::read(t.path("usr/hello")).unwrap(),
        b"hello world\n".repeat(1000)
    );
}

#[test]
fn gzip_layer_round_trips_with_both_digests() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&sample_layer()).unwrap();
    apply_compressed(&enc.finish().unwrap(), Compression::Gzip);
}

#[test]
fn zstd_layer_round_trips_with_both_digests() {
    apply_compressed(
        &zstd::encode_all(&sample_layer()[..], 3).unwrap(),
        Compression::Zstd,
    );
}

#[test]
fn uncompressed_layer_round_trips_with_its_digest() {
    apply_compressed(&sample_layer(), Compression::None);
}
