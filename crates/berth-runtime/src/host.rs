//! What the spec needs to know about the host, read once per container.
//!
//! Kept apart from [`crate::spec`] so that spec generation stays pure. Everything here
//! is cheap (a few small /proc and /sys reads) except the host device walk, which only
//! `--privileged` pays for.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::caps::CapSet;
use crate::seccomp::SeccompHost;
use crate::spec::{HostInfo, ResolvedDevice, ULIMIT_NAMES};

/// A `--device` that cannot be given to the container.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The host path cannot be read.
    #[error("error gathering device information while adding custom device {path:?}")]
    Stat {
        /// The host path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The host path is neither a device nor a directory of devices.
    #[error(
        "error gathering device information while adding custom device {0:?}: not a device node"
    )]
    NotADevice(String),
    /// Permissions other than a subset of `rwm`.
    #[error("invalid device cgroup permissions {0:?}")]
    Permissions(String),
}

impl HostInfo {
    /// Reads the host facts. `privileged` adds the host's devices.
    pub fn detect(privileged: bool) -> Self {
        let sysctls_present = [
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_unprivileged_port_start",
        ]
        .iter()
        .filter(|key| Path::new("/proc/sys").join(key.replace('.', "/")).exists())
        .map(|key| key.to_string())
        .collect::<HashSet<_>>();
        HostInfo {
            available_caps: effective_caps().unwrap_or(CapSet::ALL_KNOWN),
            seccomp: SeccompHost::detect(),
            sysctls_present,
            rlimit_hard: rlimit_ceilings(),
            thermal_throttle_paths: berth_shim_protocol::thermal_throttle_paths(),
            host_devices: if privileged {
                host_devices()
            } else {
                Vec::new()
            },
            init_binary: [
                "/usr/bin/docker-init",
                "/usr/local/bin/docker-init",
                // Debian's tini: the static build first, since it runs in images
                // without a libc (busybox).
                "/usr/bin/tini-static",
                "/usr/bin/tini",
            ]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
        }
    }
}

/// This process's effective capability set, from /proc/self/status.
fn effective_caps() -> Option<CapSet> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok().map(CapSet)
}

fn rlimit_ceilings() -> BTreeMap<String, u64> {
    ULIMIT_NAMES
        .iter()
        .filter_map(|name| {
            let resource = match *name {
                "core" => libc::RLIMIT_CORE,
                "cpu" => libc::RLIMIT_CPU,
                "data" => libc::RLIMIT_DATA,
                "fsize" => libc::RLIMIT_FSIZE,
                "locks" => libc::RLIMIT_LOCKS,
                "memlock" => libc::RLIMIT_MEMLOCK,
                "msgqueue" => libc::RLIMIT_MSGQUEUE,
                "nice" => libc::RLIMIT_NICE,
                "nofile" => libc::RLIMIT_NOFILE,
                "nproc" => libc::RLIMIT_NPROC,
                "rss" => libc::RLIMIT_RSS,
                "rtprio" => libc::RLIMIT_RTPRIO,
                "rttime" => libc::RLIMIT_RTTIME,
                "sigpending" => libc::RLIMIT_SIGPENDING,
                "stack" => libc::RLIMIT_STACK,
                "as" => libc::RLIMIT_AS,
                _ => return None,
            };
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::getrlimit(resource, &mut lim) };
            (rc == 0).then(|| (name.to_string(), lim.rlim_max))
        })
        .collect()
}

fn device_from_metadata(path: &Path, meta: &std::fs::Metadata) -> Option<LinuxDevice> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut dev = LinuxDevice::default();
    dev.set_path(path.to_path_buf());
    dev.set_typ(typ);
    dev.set_major(libc::major(rdev).into());
    dev.set_minor(libc::minor(rdev).into());
    dev.set_file_mode(Some(meta.mode() & 0o7777));
    dev.set_uid(Some(meta.uid()));
    dev.set_gid(Some(meta.gid()));
    Some(dev)
}

/// Every device node under /dev, as containerd's `HostDevices` lists them for
/// privileged containers (skipping /dev/pts, /dev/shm, /dev/mqueue, /dev/fd and the
/// console, which the runtime sets up itself).
fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    walk_devices(Path::new("/dev"), Path::new("/dev"), &mut out, true);
    out
}

fn walk_devices(dir: &Path, container_dir: &Path, out: &mut Vec<LinuxDevice>, top: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if top
            && matches!(
                name_str.as_ref(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev" | "console"
            )
        {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            walk_devices(&entry.path(), &container_dir.join(&name), out, false);
        } else if let Some(dev) = device_from_metadata(&container_dir.join(&name), &meta) {
            out.push(dev);
        }
    }
}

/// Resolves `--device HOST[:CONTAINER[:PERMS]]` entries on the host: a device node, or
/// a directory whose device nodes are all given (moby `DevicesFromPath`).
///
/// # Errors
/// [`DeviceError`] for a missing path, a path that holds no device, bad permissions.
pub fn resolve_devices(
    specs: &[berth_shim_protocol::DeviceSpec],
) -> Result<Vec<ResolvedDevice>, DeviceError> {
    let mut out = Vec::new();
    for spec in specs {
        let perms = if spec.permissions.is_empty() {
            "rwm"
        } else {
            spec.permissions.as_str()
        };
        if !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(DeviceError::Permissions(perms.to_string()));
        }
        let host = Path::new(&spec.host_path);
        let container = if spec.container_path.is_empty() {
            host
        } else {
            Path::new(&spec.container_path)
        };
        // A symlink to a device (/dev/disk/by-id/...) counts as the device.
        let meta = std::fs::metadata(host).map_err(|source| DeviceError::Stat {
            path: spec.host_path.clone(),
            source,
        })?;
        let mut found = Vec::new();
        if meta.is_dir() {
            walk_devices(host, container, &mut found, false);
        } else if let Some(dev) = device_from_metadata(container, &meta) {
            found.push(dev);
        }
        if found.is_empty() {
            return Err(DeviceError::NotADevice(spec.host_path.clone()));
        }
        for device in found {
            let mut rule = LinuxDeviceCgroup::default();
            rule.set_allow(true);
            rule.set_typ(Some(device.typ()));
            rule.set_major(Some(device.major()));
            rule.set_minor(Some(device.minor()));
            rule.set_access(Some(perms.to_string()));
            out.push(ResolvedDevice { device, rule });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_resolves_to_char_1_3_with_its_permissions() {
        let devs = resolve_devices(&[berth_shim_protocol::DeviceSpec {
            host_path: "/dev/null".into(),
            container_path: "/dev/mynull".into(),
            permissions: "rw".into(),
        }])
        .unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].device.path(), Path::new("/dev/mynull"));
        assert_eq!((devs[0].device.major(), devs[0].device.minor()), (1, 3));
        assert_eq!(devs[0].rule.access().as_deref(), Some("rw"));
    }

    #[test]
    fn a_regular_file_is_not_a_device() {
        let err = resolve_devices(&[berth_shim_protocol::DeviceSpec {
            host_path: "/etc/hostname".into(),
            container_path: String::new(),
            permissions: String::new(),
        }])
        .unwrap_err();
        assert!(matches!(err, DeviceError::NotADevice(_)));
    }

    #[test]
    fn detect_reads_this_processes_capabilities() {
        let info = HostInfo::detect(false);
        assert!(info.rlimit_hard.contains_key("nofile"));
        assert!(info.host_devices.is_empty());
    }
}
