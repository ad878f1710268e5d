//! Volumes with `volume create -o type=… -o device=… -o o=…`: the local driver mounts
//! that filesystem on the volume's `_data` when a container using it starts, and
//! unmounts it when the last such container has stopped, as Docker's local driver does
//! (`docker volume create --opt type=tmpfs --opt device=tmpfs --opt o=size=100m`, a
//! bind of a host directory with `type=none,o=bind`, NFS...). Plain volumes need none
//! of this: their `_data` is an ordinary directory.
//!
//! What is mounted is tracked per volume as the set of containers holding it, plus, for
//! containers that were already running when berthd started, a question to the
//! container service (see [`super::VolumeStore::release`]).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use crate::DaemonError;

/// The options the local driver knows; anything else is refused at create.
const VALID: &[&str] = &["type", "device", "o", "size"];

/// Checks `volume create` options as Docker's local driver does.
///
/// # Errors
/// `InvalidArgument` in Docker's words (the caller adds `create NAME: `).
pub(super) fn validate(options: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(k) = options.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(format!("invalid option: {k:?}"));
    }
    if let Some(size) = options.get("size") {
        // Project quotas need an XFS data root mounted with pquota; berth has no quota
        // support, so, as Docker without it, a size is refused rather than ignored.
        let number = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let bytes: f64 = number
            .parse()
            .map_err(|_| format!("invalid size: '{size}'"))?;
        if bytes > 0.0 {
            return Err("quota size requested but no quota support".into());
        }
    }
    // Docker's table: each option on the left needs those on the right.
    for (opt, needs) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if options.contains_key(opt)
            && let Some(missing) = needs.iter().find(|n| !options.contains_key(**n))
        {
            return Err(format!("missing required option: {missing:?}"));
        }
    }
    Ok(())
}

/// Whether a volume with these options is mounted at use.
pub(super) fn needs_mount(options: &BTreeMap<String, String>) -> bool {
    options.contains_key("type") || options.contains_key("device")
}

/// `o=` split as moby's mount package does: the words it knows become mount flags
/// (and propagation), everything else is filesystem data passed through.
fn parse_options(o: &str) -> (MountFlags, MountPropagationFlags, String) {
    let mut flags = MountFlags::empty();
    let mut propagation = MountPropagationFlags::empty();
    let mut data = Vec::new();
    for word in o.split(',').filter(|w| !w.is_empty()) {
        let (set, clear) = match word {
            "defaults" => (MountFlags::empty(), MountFlags::empty()),
            "ro" => (MountFlags::RDONLY, MountFlags::empty()),
            "rw" => (MountFlags::empty(), MountFlags::RDONLY),
            "suid" => (MountFlags::empty(), MountFlags::NOSUID),
            "nosuid" => (MountFlags::NOSUID, MountFlags::empty()),
            "dev" => (MountFlags::empty(), MountFlags::NODEV),
            "nodev" => (MountFlags::NODEV, MountFlags::empty()),
            "exec" => (MountFlags::empty(), MountFlags::NOEXEC),
            "noexec" => (MountFlags::NOEXEC, MountFlags::empty()),
            "sync" => (MountFlags::SYNCHRONOUS, MountFlags::empty()),
            "async" => (MountFlags::empty(), MountFlags::SYNCHRONOUS),
            "dirsync" => (MountFlags::DIRSYNC, MountFlags::empty()),
            "mand" => (
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
                MountFlags::empty(),
            ),
            "nomand" => (
                MountFlags::empty(),
                MountFlags::PERMIT_MANDATORY_FILE_LOCKING,
            ),
            "atime" => (MountFlags::empty(), MountFlags::NOATIME),
            "noatime" => (MountFlags::NOATIME, MountFlags::empty()),
            "diratime" => (MountFlags::empty(), MountFlags::NODIRATIME),
            "nodiratime" => (MountFlags::NODIRATIME, MountFlags::empty()),
            "relatime" => (MountFlags::RELATIME, MountFlags::empty()),
            "norelatime" => (MountFlags::empty(), MountFlags::RELATIME),
            "strictatime" => (MountFlags::STRICTATIME, MountFlags::empty()),
            "nostrictatime" => (MountFlags::empty(), MountFlags::STRICTATIME),
            "bind" => (MountFlags::BIND, MountFlags::empty()),
            "rbind" => (MountFlags::BIND | MountFlags::REC, MountFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match word.trim_start_matches('r') {
                    "private" => MountPropagationFlags::PRIVATE,
                    "shared" => MountPropagationFlags::SHARED,
                    "slave" => MountPropagationFlags::DOWNSTREAM,
                    _ => MountPropagationFlags::UNBINDABLE,
                };
                propagation |= base;
                if word.starts_with('r') {
                    propagation |= MountPropagationFlags::REC;
                }
                continue;
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) - clear;
    }
    (flags, propagation, data.join(","))
}

/// Whether `path` is the root of a mount (statx's `STATX_ATTR_MOUNT_ROOT`).
pub(super) fn is_mount_root(path: &Path) -> bool {
    rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    )
    .is_ok_and(|s| s.stx_attributes.contains(StatxAttributes::MOUNT_ROOT))
}

/// Mounts the volume's filesystem on `data` (a no-op when something already is).
///
/// # Errors
/// Docker's `error while mounting volume` message with the mount's arguments.
pub(super) fn mount(options: &BTreeMap<String, String>, data: &Path) -> Result<(), DaemonError> {
    if is_mount_root(data) {
        return Ok(());
    }
    let device = options.get("device").map(String::as_str).unwrap_or("");
    let fstype = options.get("type").map(String::as_str).unwrap_or("");
    let (flags, propagation, fsdata) = parse_options(options.get("o").map_or("", String::as_str));
    let failed = |e: rustix::io::Errno| {
        let mut what = format!(
            "mount {device}:{}, flags: {:#x}",
            data.display(),
            flags.bits()
        );
        if !fsdata.is_empty() {
            what.push_str(&format!(", data: {fsdata}"));
        }
        DaemonError::internal(format!(
            "error while mounting volume '{}': failed to mount local volume: {what}: {}",
            data.display(),
            // Go's errno texts, which Docker prints, are lower case.
            std::io::Error::from(e)
                .to_string()
                .split(" (os error")
                .next()
                .unwrap_or("")
                .to_lowercase()
        ))
    };
    if device.is_empty() {
        return Err(DaemonError::internal("missing device in volume options"));
    }
    let c_data = CString::new(fsdata.clone())
        .map_err(|_| DaemonError::invalid("volume mount options contain a NUL byte"))?;
    let data_arg = (!fsdata.is_empty()).then_some(c_data.as_c_str());
    rustix::mount::mount(device, data, fstype, flags, data_arg).map_err(failed)?;
    if !propagation.is_empty() {
        rustix::mount::mount_change(data, propagation).map_err(failed)?;
    }
    // A bind mount takes `ro` only on a remount, as moby's mount package does it.
    if flags.contains(MountFlags::BIND | MountFlags::RDONLY) {
        rustix::mount::mount_remount(data, flags | MountFlags::BIND, "").map_err(failed)?;
    }
    Ok(())
}

/// Unmounts what [`mount`] mounted; nothing when `data` is not a mount root.
///
/// # Errors
/// The unmount failed (busy, say): the caller must then not touch what is below.
pub(super) fn unmount(data: &Path) -> std::io::Result<()> {
    if !is_mount_root(data) {
        return Ok(());
    }
    rustix::mount::unmount(data, UnmountFlags::empty()).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_like_dockers_local_driver() {
        assert_eq!(validate(&opts(&[])), Ok(()));
        assert_eq!(
            validate(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m")
            ])),
            Ok(())
        );
        assert_eq!(
            validate(&opts(&[("foo", "x")])),
            Err(r#"invalid option: "foo""#.into())
        );
        assert_eq!(
            validate(&opts(&[("type", "tmpfs")])),
            Err(r#"missing required option: "device""#.into())
        );
        assert_eq!(
            validate(&opts(&[("device", "/x")])),
            Err(r#"missing required option: "type""#.into())
        );
        assert_eq!(
            validate(&opts(&[("size", "10m")])),
            Err("quota size requested but no quota support".into())
        );
    }

    #[test]
    fn o_splits_into_flags_and_filesystem_data() {
        let (flags, prop, data) = parse_options("bind,ro,size=10m,uid=1000,rshared");
        assert_eq!(flags, MountFlags::BIND | MountFlags::RDONLY);
        assert_eq!(
            prop,
            MountPropagationFlags::SHARED | MountPropagationFlags::REC
        );
        assert_eq!(data, "size=10m,uid=1000");
        let (flags, _, data) = parse_options("ro,rw,noexec");
        assert_eq!(flags, MountFlags::NOEXEC);
        assert_eq!(data, "");
    }
}
