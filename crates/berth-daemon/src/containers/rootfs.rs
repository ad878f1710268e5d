//! A container's root filesystem: an overlay of its image's layer snapshots (read-only
//! lower dirs) and its own upper and work dirs, mounted while it runs.
//!
//! The overlay is assembled with the new mount API (fsopen/fsconfig), one `lowerdir+`
//! per layer, because the classic `lowerdir=a:b:c` option string is capped at a page
//! and overflows around 40 layers of long snapshot paths. Kernels without `lowerdir+`
//! (before 6.8) get the classic mount.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, unmount,
};

/// Where a container's overlay pieces live (under its data directory).
#[derive(Debug, Clone)]
pub(super) struct RootfsPaths {
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs's work dir.
    pub work: PathBuf,
    /// The mount point.
    pub merged: PathBuf,
    /// An empty lower dir, for images without layers.
    pub empty: PathBuf,
}

impl RootfsPaths {
    /// The paths under a container's data directory.
    pub(super) fn under(dir: &Path) -> Self {
        RootfsPaths {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("rootfs"),
            empty: dir.join("empty"),
        }
    }

    /// Creates the directories.
    ///
    /// # Errors
    /// Creating a directory.
    pub(super) fn create(&self) -> io::Result<()> {
        for d in [&self.upper, &self.work, &self.merged, &self.empty] {
            fs::create_dir_all(d)?;
        }
        Ok(())
    }
}

/// Whether `path` is a mount point (its device differs from its parent's, or
/// /proc/self/mountinfo lists it).
pub(super) fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| unescape(mp) == target))
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mounts the overlay: `lowers` top layer first.
///
/// # Errors
/// The mount syscalls.
pub(super) fn mount(paths: &RootfsPaths, lowers: &[PathBuf]) -> io::Result<()> {
    if is_mounted(&paths.merged) {
        return Ok(());
    }
    let empty = [paths.empty.clone()];
    let lowers = if lowers.is_empty() {
        &empty[..]
    } else {
        lowers
    };
    match mount_new_api(paths, lowers) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc_einval()) || e.raw_os_error() == Some(38) => {
            mount_classic(paths, lowers)
        }
        Err(e) => Err(e),
    }
}

const fn libc_einval() -> i32 {
    22
}

fn mount_new_api(paths: &RootfsPaths, lowers: &[PathBuf]) -> io::Result<()> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
    }
    fsconfig_set_string(&fs, "upperdir", paths.upper.as_path())?;
    fsconfig_set_string(&fs, "workdir", paths.work.as_path())?;
    // Docker's overlay2 options: no index (hardlinks across layers stay cheap) and no
    // redirect_dir, so that diffs read as plain directory trees.
    fsconfig_set_string(&fs, "index", "off")?;
    fsconfig_set_string(&fs, "redirect_dir", "off")?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        paths.merged.as_path(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

fn mount_classic(paths: &RootfsPaths, lowers: &[PathBuf]) -> io::Result<()> {
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off",
        lower.join(":"),
        paths.upper.display(),
        paths.work.display()
    );
    let data = std::ffi::CString::new(data).map_err(io::Error::other)?;
    rustix::mount::mount(
        "overlay",
        paths.merged.as_path(),
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )?;
    Ok(())
}

/// Unmounts the overlay if mounted (lazily, so a stray process holding it cannot
/// wedge container removal).
///
/// # Errors
/// The unmount syscall, other than "not mounted".
pub(super) fn unmount_rootfs(paths: &RootfsPaths) -> io::Result<()> {
    if !is_mounted(&paths.merged) {
        return Ok(());
    }
    match unmount(paths.merged.as_path(), UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => Ok(()),
        Err(e) => Err(e.into()),
    }
}
