//! The init layer: mount points the runtime needs, made once at create in a lower
//! dir of their own between the image and the container's upperdir (Docker's
//! `<id>-init` layer).
//!
//! Without it, the runtime creates `/proc`, `/sys`, `/dev` and the `/etc/hosts`-style
//! bind targets in the upperdir whenever the image lacks them, and they show up in
//! `docker diff` and in every committed layer. Only what the image lacks is made, so
//! the init layer never hides anything of the image; a path whose parent is a symlink
//! in the image is left to the runtime, which resolves it inside the root.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Directories and files Docker's init layer holds, as far as berth's runtime mounts
/// onto them (`/.dockerenv` and the `/etc/mtab` link are left out: nothing needs them).
const MOUNT_POINTS: [(&str, bool); 9] = [
    ("dev", true),
    ("dev/pts", true),
    ("dev/shm", true),
    ("proc", true),
    ("sys", true),
    ("etc", true),
    ("etc/hosts", false),
    ("etc/hostname", false),
    ("etc/resolv.conf", false),
];

/// The init layer directory of a container.
pub(super) fn path(container_dir: &Path) -> PathBuf {
    container_dir.join("init")
}

/// Makes the init layer under `container_dir` for an image whose layer directories
/// are `lowers` (top first).
///
/// # Errors
/// Reading the image layers or creating the directory.
pub(super) fn create(container_dir: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    let root = path(container_dir);
    fs::create_dir_all(&root)?;
    let lower_fds = lowers
        .iter()
        .map(|l| {
            rustix::fs::open(
                l,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (rel, is_dir) in MOUNT_POINTS {
        match lookup(&lower_fds, rel)? {
            Lookup::Present(_) | Lookup::Blocked => continue,
            Lookup::Missing => {}
        }
        let target = root.join(rel);
        if is_dir {
            fs::create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&target, b"")?;
        }
    }
    // A parent made for a missing child (`/etc` for `/etc/hostname`) is the top
    // copy of that directory in the overlay: it must look like the image's.
    for (rel, is_dir) in MOUNT_POINTS {
        let target = root.join(rel);
        if !is_dir || !target.is_dir() {
            continue;
        }
        if let Lookup::Present(st) = lookup(&lower_fds, rel)? {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(&target, Some(st.st_uid), Some(st.st_gid))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(st.st_mode & 0o7777))?;
            let mtime = std::time::UNIX_EPOCH
                + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
            fs::File::open(&target)?.set_modified(mtime)?;
        }
    }
    Ok(())
}

enum Lookup {
    /// Some layer has the path (whiteouts are not looked at: an image that deleted
    /// `/proc` gets it back from the runtime as before); its stat.
    Present(rustix::fs::Stat),
    /// Missing, and every existing parent is a real directory.
    Missing,
    /// A parent is a symlink or not a directory in the image: leave it alone.
    Blocked,
}

/// Looks `rel` up in each layer, component by component, following nothing.
fn lookup(lowers: &[OwnedFd], rel: &str) -> io::Result<Lookup> {
    let components: Vec<&str> = rel.split('/').collect();
    for fd in lowers {
        let mut dir: Option<OwnedFd> = None;
        for (i, c) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let parent = dir.as_ref().unwrap_or(fd);
            match rustix::fs::openat(
                parent,
                *c,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(next) => {
                    let st = rustix::fs::fstat(&next)?;
                    if last {
                        return Ok(Lookup::Present(st));
                    }
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        != rustix::fs::FileType::Directory
                    {
                        return Ok(Lookup::Blocked);
                    }
                    dir = Some(next);
                }
                Err(Errno::NOENT) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Lookup::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_image_lacks_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir_all(layer.join("etc")).unwrap();
        fs::write(layer.join("etc/hosts"), b"127.0.0.1 image").unwrap();
        std::os::unix::fs::symlink("/elsewhere", layer.join("dev")).unwrap();
        let c = tmp.path().join("c");
        create(&c, &[layer]).unwrap();
        let init = path(&c);
        assert!(init.join("proc").is_dir());
        assert!(init.join("etc/hostname").is_file());
        assert!(!init.join("etc/hosts").exists());
        assert!(!init.join("dev").exists(), "a symlinked /dev is left alone");
        use std::os::unix::fs::PermissionsExt;
        let image_etc = fs::metadata(tmp.path().join("layer/etc")).unwrap();
        let init_etc = fs::metadata(init.join("etc")).unwrap();
        assert_eq!(
            init_etc.permissions().mode(),
            image_etc.permissions().mode()
        );
        assert_eq!(init_etc.modified().unwrap(), image_etc.modified().unwrap());
    }
}
