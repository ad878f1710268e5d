//! The OCI runtime spec for a [`LaunchSpec`], with Docker's defaults.
//!
//! The daemon has applied everything that depends on its own state (image config merged,
//! volumes resolved, generated /etc files); this module adds what moby's
//! `oci/defaults.go` and `daemon/oci_linux.go` add when they build a spec: the default
//! capability set and seccomp profile, the default mounts, device rules, masked and
//! read-only paths, namespaces, and the translation of `--privileged`, `--read-only`,
//! resources, sysctls, ulimits and so on.
//!
//! [`build_spec`] is pure: every fact about the host (the engine's capabilities, the
//! kernel version, which sysctls exist, rlimit ceilings, host devices) arrives in
//! [`HostInfo`], and the user and `--device` entries arrive resolved. So it is unit
//! tested without root; [`HostInfo::detect`] is the only part that looks at the host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use berth_shim_protocol::{LaunchSpec, NetworkNamespace, Seccomp};
use oci_spec::runtime::{
    BoxBuilder, Capability, LinuxCapabilities, LinuxCpu, LinuxDevice, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources,
    Mount, PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};

use crate::caps::{self, CapError, CapSet};
use crate::seccomp::{self, SeccompError, SeccompHost};

/// Docker's default `PATH` (moby `oci.DefaultPathEnv`), used when the spec has none.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where Docker mounts its init (`--init`) inside the container.
pub const CONTAINER_INIT_PATH: &str = "/sbin/docker-init";

/// Facts about the host that shape the spec.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// The capabilities the engine holds (its effective set): the ceiling of what a
    /// container can get, and "all" for `--privileged`.
    pub available_caps: CapSet,
    /// Architecture and kernel, for the seccomp profile's conditions.
    pub seccomp: SeccompHost,
    /// Sysctls Docker sets by default, present on this kernel.
    pub sysctls_present: HashSet<String>,
    /// Hard rlimits of the engine by Docker's ulimit name (`nofile`, …). Asking for more
    /// needs `CAP_SYS_RESOURCE`, which root lacks on some hosts, so ulimits are capped.
    pub rlimit_hard: BTreeMap<String, u64>,
    /// `/sys/devices/system/cpu/cpuN/thermal_throttle` directories that exist (Docker
    /// masks them).
    pub thermal_throttle_paths: Vec<String>,
    /// All host devices, for `--privileged` (empty otherwise).
    pub host_devices: Vec<LinuxDevice>,
    /// The host's `docker-init` (tini) for `--init`, if there is one.
    pub init_binary: Option<PathBuf>,
}

/// The user the process runs as, resolved from the container's /etc/passwd and
/// /etc/group (see [`crate::user`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// UID.
    pub uid: u32,
    /// Primary GID.
    pub gid: u32,
    /// The primary GID, the user's supplementary groups, then `--group-add`, as Docker
    /// orders them.
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (`/` when none), for `HOME`.
    pub home: String,
}

/// A `--device` resolved on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDevice {
    /// The node to create in the container.
    pub device: LinuxDevice,
    /// Its device-cgroup rule.
    pub rule: LinuxDeviceCgroup,
}

/// Why a spec cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A bad `--cap-add`/`--cap-drop`.
    #[error(transparent)]
    Capability(#[from] CapError),
    /// A bad seccomp profile.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// A `--ulimit` name Docker does not know.
    #[error("invalid ulimit type: {0}")]
    Ulimit(String),
    /// The process has no command.
    #[error("no command specified")]
    NoCommand,
    /// `--init` without an init binary on the host.
    #[error("docker-init binary not found on the host")]
    NoInitBinary,
    /// Building an OCI value failed (an invariant of this module).
    #[error("building the OCI spec")]
    Oci(#[from] oci_spec::OciSpecError),
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn options_mut(m: &mut Mount) -> &mut Vec<String> {
    if m.options().is_none() {
        m.set_options(Some(Vec::new()));
    }
    m.options_mut().as_mut().expect("options were just set")
}

/// moby's `DefaultLinuxSpec` mounts.
fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777"],
        ),
    ]
}

pub use berth_shim_protocol::{MASKED_PATHS, READONLY_PATHS};

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: i64,
    minor: i64,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ);
    if major >= 0 || typ.is_some() {
        r.set_major(Some(major));
        r.set_minor(Some(minor));
    }
    r.set_access(Some("rwm".to_string()));
    r
}

/// moby's default device cgroup rules: deny all, allow the basic character devices,
/// deny fuse. (The runtime adds its own always-allowed set: pts, ptmx, full, …)
fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_string()));
    vec![
        deny_all,
        device_rule(true, c, 1, 5),
        device_rule(true, c, 1, 3),
        device_rule(true, c, 1, 9),
        device_rule(true, c, 1, 8),
        device_rule(true, c, 5, 0),
        device_rule(true, c, 5, 1),
        device_rule(false, c, 10, 229),
    ]
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        "as" => RlimitAs,
        _ => return None,
    })
}

/// Docker's ulimit names, for [`HostInfo::detect`].
pub const ULIMIT_NAMES: [&str; 16] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];

/// Options for a tmpfs mount: Docker's defaults (`noexec,nosuid,nodev,rprivate`) with
/// the user's options on top, a user flag replacing its opposite and a user `key=` value
/// replacing the same key (moby `mount.MergeTmpfsOptions`).
fn merge_tmpfs_options(user: &[String]) -> Vec<String> {
    let opposite = |o: &str| -> Option<&'static str> {
        Some(match o {
            "exec" => "noexec",
            "noexec" => "exec",
            "suid" => "nosuid",
            "nosuid" => "suid",
            "dev" => "nodev",
            "nodev" => "dev",
            "ro" => "rw",
            "rw" => "ro",
            "atime" => "noatime",
            "noatime" => "atime",
            _ => return None,
        })
    };
    let propagation = |o: &str| {
        matches!(
            o,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
        )
    };
    let mut out: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for opt in user {
        let key = opt.split_once('=').map(|(k, _)| k);
        out.retain(|existing| {
            if existing == opt {
                return false;
            }
            if let Some(op) = opposite(opt) {
                if existing == op {
                    return false;
                }
            }
            if propagation(opt) && propagation(existing) {
                return false;
            }
            match key {
                Some(k) => existing.split_once('=').map(|(e, _)| e) != Some(k),
                None => true,
            }
        });
        out.push(opt.clone());
    }
    out
}

/// Options for a bind mount: recursive unless asked otherwise, private propagation
/// unless given, as Docker's defaults make them.
fn bind_options(user: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(user.len() + 2);
    if !user.iter().any(|o| o == "bind" || o == "rbind") {
        out.push("rbind".to_string());
    }
    out.extend(user.iter().cloned());
    let has_propagation = user.iter().any(|o| {
        matches!(
            o.as_str(),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
        )
    });
    if !has_propagation {
        out.push("rprivate".to_string());
    }
    out
}

pub(crate) fn oci_caps(set: CapSet) -> HashSet<Capability> {
    set.names()
        .iter()
        .filter_map(|name| {
            serde_json::from_value::<Capability>(serde_json::Value::String(name.to_string())).ok()
        })
        .collect()
}

/// Builds the OCI spec for `launch` with Docker's defaults.
///
/// # Errors
/// [`SpecError`]: an unknown or unavailable capability, a bad seccomp profile or ulimit
/// name, no command, `--init` without an init binary.
pub fn build_spec(
    launch: &LaunchSpec,
    user: &ResolvedUser,
    devices: &[ResolvedDevice],
    host: &HostInfo,
) -> Result<Spec, SpecError> {
    if launch.process.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let privileged = launch.privileged;
    let ns = &launch.namespaces;

    // Capabilities.
    let capset = caps::resolve(
        &launch.cap_add,
        &launch.cap_drop,
        privileged,
        host.available_caps,
    )?;
    let oci = oci_caps(capset);
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(oci.clone()));
    capabilities.set_effective(Some(oci.clone()));
    capabilities.set_permitted(Some(oci));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    // Process.
    let mut args = launch.process.args.clone();
    let mut init_mount = None;
    if launch.init && !ns.pid_host {
        let binary = host.init_binary.as_ref().ok_or(SpecError::NoInitBinary)?;
        args.splice(0..0, [CONTAINER_INIT_PATH.to_string(), "--".to_string()]);
        init_mount = Some(mount(
            CONTAINER_INIT_PATH,
            "bind",
            &binary.to_string_lossy(),
            &["bind", "ro"],
        ));
    }
    let mut env = launch.process.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH_ENV.to_string());
    }
    // HOME from the container's own passwd, read through the rootfs by us: left unset,
    // the runtime would look it up with the host libc from inside the container.
    if !env.iter().any(|e| e.starts_with("HOME=") && e.len() > 5) {
        env.retain(|e| !e.starts_with("HOME="));
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    oci_user.set_additional_gids(Some(if user.additional_gids.is_empty() {
        vec![user.gid]
    } else {
        user.additional_gids.clone()
    }));

    let mut rlimits = Vec::with_capacity(launch.ulimits.len());
    for ul in &launch.ulimits {
        let name = ul.name.to_ascii_lowercase();
        let typ = rlimit_type(&name).ok_or_else(|| SpecError::Ulimit(ul.name.clone()))?;
        let ceiling = host.rlimit_hard.get(&name).copied().unwrap_or(u64::MAX);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .hard(ul.hard.min(ceiling))
                .soft(ul.soft.min(ul.hard).min(ceiling))
                .build()?,
        );
    }

    let mut process = Process::default();
    // With a TTY the runtime makes the pty inside the container and sends its master
    // to the shim's console socket (see `console`).
    process.set_terminal(Some(launch.process.tty));
    let console_size = match launch.process.console_size.filter(|_| launch.process.tty) {
        Some((h, w)) => Some(BoxBuilder::default().height(h).width(w).build()?),
        None => None,
    };
    process.set_console_size(console_size);
    process.set_user(oci_user);
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(if launch.process.cwd.is_empty() {
        "/"
    } else {
        &launch.process.cwd
    }));
    process.set_capabilities(Some(capabilities));
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(launch.no_new_privileges.then_some(true));
    process.set_oom_score_adj(launch.oom_score_adj);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);

    // Mounts: the defaults less those a user mount replaces (and everything under /dev
    // when /dev itself is user-mounted), then the user's, in order.
    let user_dests: HashSet<&str> = launch
        .mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    let user_dev = user_dests.contains("/dev");
    let mut mounts: Vec<Mount> = Vec::with_capacity(8 + launch.mounts.len());
    for mut m in default_mounts() {
        let dest = m.destination().to_string_lossy().into_owned();
        if user_dests.contains(dest.as_str()) || (user_dev && dest.starts_with("/dev/")) {
            continue;
        }
        if dest == "/dev/shm" && launch.shm_size > 0 {
            options_mut(&mut m).push(format!("size={}", launch.shm_size));
        }
        mounts.push(m);
    }
    if let Some(m) = init_mount {
        mounts.push(m);
    }
    let defaults_end = mounts.len();
    for um in &launch.mounts {
        let options = match um.kind.as_str() {
            "bind" => bind_options(&um.options),
            "tmpfs" => merge_tmpfs_options(&um.options),
            _ => um.options.clone(),
        };
        let opts: Vec<&str> = options.iter().map(String::as_str).collect();
        mounts.push(mount(&um.destination, &um.kind, &um.source, &opts));
    }
    if launch.readonly_rootfs {
        for m in &mut mounts[..defaults_end] {
            let dest = m.destination().to_string_lossy().into_owned();
            if matches!(
                dest.as_str(),
                "/proc" | "/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev"
            ) {
                continue;
            }
            let opts = options_mut(m);
            if !opts.iter().any(|o| o == "ro") {
                opts.push("ro".to_string());
            }
        }
    }
    if privileged {
        // /sys and the cgroup hierarchy read-write (moby clears "ro" on both).
        for m in &mut mounts[..defaults_end] {
            let is_sys = m.destination() == Path::new("/sys");
            let is_cgroup = m.typ().as_deref() == Some("cgroup");
            if is_sys || is_cgroup {
                options_mut(m).retain(|o| o != "ro");
            }
        }
    }

    // Namespaces, in moby's order.
    let mut namespaces = Vec::with_capacity(6);
    let mut add_ns = |typ: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path);
        namespaces.push(n);
    };
    add_ns(LinuxNamespaceType::Mount, None);
    match &ns.network {
        NetworkNamespace::New => add_ns(LinuxNamespaceType::Network, None),
        NetworkNamespace::Path(p) => add_ns(LinuxNamespaceType::Network, Some(p.clone())),
        NetworkNamespace::Host => {}
    }
    if !ns.uts_host {
        add_ns(LinuxNamespaceType::Uts, None);
    }
    if !ns.pid_host {
        add_ns(LinuxNamespaceType::Pid, None);
    }
    if !ns.ipc_host {
        add_ns(LinuxNamespaceType::Ipc, None);
    }
    if !ns.cgroupns_host {
        add_ns(LinuxNamespaceType::Cgroup, None);
    }

    // Sysctls: Docker's safe defaults for a private network namespace, then the user's.
    let mut sysctl: HashMap<String, String> = HashMap::new();
    if !matches!(ns.network, NetworkNamespace::Host) {
        for (key, value) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if host.sysctls_present.contains(key) {
                sysctl.insert(key.to_string(), value.to_string());
            }
        }
    }
    for (k, v) in &launch.sysctls {
        sysctl.insert(k.clone(), v.clone());
    }

    // Devices and their cgroup rules.
    let (linux_devices, device_rules) = if privileged {
        let mut allow_all = LinuxDeviceCgroup::default();
        allow_all.set_allow(true);
        allow_all.set_access(Some("rwm".to_string()));
        let mut devs = host.host_devices.clone();
        devs.extend(
            devices
                .iter()
                .filter(|d| {
                    !host
                        .host_devices
                        .iter()
                        .any(|h| h.path() == d.device.path())
                })
                .map(|d| d.device.clone()),
        );
        (devs, vec![allow_all])
    } else {
        let mut rules = default_device_rules();
        rules.extend(devices.iter().map(|d| d.rule.clone()));
        (devices.iter().map(|d| d.device.clone()).collect(), rules)
    };

    // Resources, with Docker's meanings: memory_swap is memory+swap (-1 unlimited), as
    // the OCI `swap` field is; zero or negative values leave the default.
    let r = &launch.resources;
    let mut memory = LinuxMemory::default();
    let mut any_memory = false;
    if let Some(limit) = r.memory.filter(|m| *m > 0) {
        memory.set_limit(Some(limit));
        any_memory = true;
    }
    if let Some(res) = r.memory_reservation.filter(|m| *m > 0) {
        memory.set_reservation(Some(res));
        any_memory = true;
    }
    if let Some(swap) = r.memory_swap.filter(|s| *s > 0 || *s == -1) {
        memory.set_swap(Some(swap));
        any_memory = true;
    }
    if r.oom_kill_disable {
        memory.set_disable_oom_killer(Some(true));
        any_memory = true;
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if let Some(shares) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.set_shares(Some(shares));
        any_cpu = true;
    }
    if let Some(quota) = r.cpu_quota.filter(|q| *q != 0) {
        cpu.set_quota(Some(quota));
        any_cpu = true;
    }
    if let Some(period) = r.cpu_period.filter(|p| *p != 0) {
        cpu.set_period(Some(period));
        any_cpu = true;
    }
    if let Some(cpus) = r.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        cpu.set_cpus(Some(cpus));
        any_cpu = true;
    }
    if let Some(mems) = r.cpuset_mems.clone().filter(|m| !m.is_empty()) {
        cpu.set_mems(Some(mems));
        any_cpu = true;
    }
    let pids = r.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        p.set_limit(if limit <= 0 { -1 } else { limit });
        p
    });
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(device_rules));
    resources.set_memory(any_memory.then_some(memory));
    resources.set_cpu(any_cpu.then_some(cpu));
    resources.set_pids(pids);

    // Seccomp: Docker's profile unless unconfined; privileged containers only get one
    // they asked for by name.
    let linux_seccomp = match &launch.seccomp {
        Seccomp::Unconfined => None,
        Seccomp::Default if privileged => None,
        Seccomp::Default => Some(seccomp::docker_default(capset, &host.seccomp)?),
        Seccomp::Custom(json) => seccomp::load_profile(json, capset, &host.seccomp)?,
    };

    let (masked, readonly) = if privileged {
        (Vec::new(), Vec::new())
    } else {
        let masked = launch.masked_paths.clone().unwrap_or_else(|| {
            let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
            masked.extend(host.thermal_throttle_paths.iter().cloned());
            masked
        });
        let readonly = launch
            .readonly_paths
            .clone()
            .unwrap_or_else(|| READONLY_PATHS.iter().map(|s| s.to_string()).collect());
        (masked, readonly)
    };

    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_devices(Some(linux_devices));
    linux.set_resources(Some(resources));
    linux.set_cgroups_path(Some(PathBuf::from(&launch.cgroup_path)));
    linux.set_sysctl((!sysctl.is_empty()).then_some(sysctl));
    linux.set_seccomp(linux_seccomp);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_rootfs_propagation(None);

    let mut root = Root::default();
    root.set_path(launch.rootfs.clone());
    root.set_readonly(Some(launch.readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_hostname(
        (!ns.uts_host && !launch.hostname.is_empty()).then(|| launch.hostname.clone()),
    );
    spec.set_domainname(
        (!ns.uts_host && !launch.domainname.is_empty()).then(|| launch.domainname.clone()),
    );
    spec.set_hooks(None);
    spec.set_annotations(None);
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim_protocol::{MountSpec, Namespaces, ProcessSpec, Resources, Ulimit};

    fn host() -> HostInfo {
        HostInfo {
            available_caps: CapSet(0x0000_01ff_feff_ffff),
            seccomp: SeccompHost {
                arch: "amd64",
                kernel: (6, 1),
            },
            sysctls_present: [
                "net.ipv4.ping_group_range".to_string(),
                "net.ipv4.ip_unprivileged_port_start".to_string(),
            ]
            .into(),
            rlimit_hard: [("nofile".to_string(), 20000)].into(),
            thermal_throttle_paths: vec![],
            host_devices: vec![],
            init_binary: Some(PathBuf::from("/usr/bin/docker-init")),
        }
    }

    fn launch() -> LaunchSpec {
        LaunchSpec {
            id: "a".repeat(64),
            rootfs: PathBuf::from("/rootfs"),
            process: ProcessSpec {
                args: vec!["sh".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                ..Default::default()
            },
            hostname: "abc".into(),
            cgroup_path: "/berth/aaa".into(),
            shm_size: 64 << 20,
            ..Default::default()
        }
    }

    fn user() -> ResolvedUser {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![0, 10],
            home: "/root".into(),
        }
    }

    fn build(l: &LaunchSpec) -> Spec {
        build_spec(l, &user(), &[], &host()).unwrap()
    }

    fn find_mount<'a>(s: &'a Spec, dest: &str) -> Option<&'a Mount> {
        s.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(dest))
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    fn ns_types(s: &Spec) -> Vec<LinuxNamespaceType> {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    fn caps_of(s: &Spec) -> HashSet<Capability> {
        s.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .effective()
            .clone()
            .unwrap()
    }

    #[test]
    fn default_spec_has_dockers_mounts_in_order() {
        let s = build(&launch());
        let dests: Vec<String> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        let pts = find_mount(&s, "/dev/pts").unwrap();
        assert_eq!(
            opts(pts),
            [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"
            ]
        );
        assert!(opts(find_mount(&s, "/sys").unwrap()).contains(&"ro".to_string()));
        assert_eq!(
            opts(find_mount(&s, "/dev/shm").unwrap()).last().unwrap(),
            "size=67108864"
        );
    }

    #[test]
    fn default_spec_has_dockers_capabilities_masks_and_namespaces() {
        let s = build(&launch());
        assert_eq!(caps_of(&s).len(), 14);
        let linux = s.linux().as_ref().unwrap();
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
        assert_eq!(
            ns_types(&s),
            [
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Cgroup
            ]
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/aaa"))
        );
        assert!(linux.seccomp().is_some());
        let sysctl = linux.sysctl().as_ref().unwrap();
        assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 2147483647");
        assert_eq!(s.hostname().as_deref(), Some("abc"));
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), 8);
        assert!(!rules[0].allow());
    }

    #[test]
    fn home_comes_from_the_resolved_user_unless_set() {
        let s = build(&launch());
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"HOME=/root".to_string()));
        let mut l = launch();
        l.process.env.push("HOME=/x".into());
        let env = build(&l).process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"HOME=/x".to_string()));
        assert!(!env.contains(&"HOME=/root".to_string()));
    }

    #[test]
    fn privileged_gets_all_caps_rw_sys_no_masks_no_seccomp() {
        let mut l = launch();
        l.privileged = true;
        let s = build(&l);
        assert_eq!(caps_of(&s).len(), 40);
        assert!(!opts(find_mount(&s, "/sys").unwrap()).contains(&"ro".to_string()));
        assert!(!opts(find_mount(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
        assert!(linux.seccomp().is_none());
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
    }

    #[test]
    fn host_namespaces_are_left_out() {
        let mut l = launch();
        l.namespaces = Namespaces {
            network: NetworkNamespace::Host,
            pid_host: true,
            ipc_host: true,
            uts_host: true,
            cgroupns_host: true,
        };
        let s = build(&l);
        assert_eq!(ns_types(&s), [LinuxNamespaceType::Mount]);
        assert!(s.hostname().is_none());
        assert!(s.linux().as_ref().unwrap().sysctl().is_none());
    }

    #[test]
    fn joined_network_namespace_keeps_its_path() {
        let mut l = launch();
        l.namespaces.network = NetworkNamespace::Path("/run/netns/x".into());
        let s = build(&l);
        let net = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap()[1].clone();
        assert_eq!(net.typ(), LinuxNamespaceType::Network);
        assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/x")));
    }

    #[test]
    fn readonly_rootfs_marks_sys_ro_but_not_dev_or_proc() {
        let mut l = launch();
        l.readonly_rootfs = true;
        l.mounts.push(MountSpec {
            destination: "/data".into(),
            kind: "bind".into(),
            source: "/host".into(),
            options: vec![],
        });
        let s = build(&l);
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
        assert!(!opts(find_mount(&s, "/proc").unwrap()).contains(&"ro".to_string()));
        assert!(!opts(find_mount(&s, "/dev").unwrap()).contains(&"ro".to_string()));
        assert!(!opts(find_mount(&s, "/data").unwrap()).contains(&"ro".to_string()));
    }

    #[test]
    fn user_mounts_replace_defaults_and_get_dockers_options() {
        let mut l = launch();
        l.mounts = vec![
            MountSpec {
                destination: "/dev/shm".into(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options: vec!["exec".into(), "size=1m".into()],
            },
            MountSpec {
                destination: "/etc/hosts".into(),
                kind: "bind".into(),
                source: "/x/hosts".into(),
                options: vec!["ro".into()],
            },
        ];
        let s = build(&l);
        let shm: Vec<_> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(
            opts(shm[0]),
            ["nosuid", "nodev", "rprivate", "exec", "size=1m"]
        );
        assert_eq!(
            opts(find_mount(&s, "/etc/hosts").unwrap()),
            ["rbind", "ro", "rprivate"]
        );
    }

    #[test]
    fn user_dev_mount_drops_default_dev_submounts() {
        let mut l = launch();
        l.mounts = vec![MountSpec {
            destination: "/dev".into(),
            kind: "bind".into(),
            source: "/dev".into(),
            options: vec![],
        }];
        let s = build(&l);
        assert!(find_mount(&s, "/dev/pts").is_none());
        assert!(find_mount(&s, "/dev/shm").is_none());
        assert!(find_mount(&s, "/proc").is_some());
    }

    #[test]
    fn resources_follow_dockers_meanings() {
        let mut l = launch();
        l.resources = Resources {
            memory: Some(8 << 20),
            memory_swap: Some(-1),
            memory_reservation: Some(0),
            cpu_shares: Some(512),
            cpu_quota: Some(20000),
            cpu_period: Some(100000),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(0),
            ..Default::default()
        };
        let s = build(&l);
        let res = s.linux().as_ref().unwrap().resources().clone().unwrap();
        let mem = res.memory().unwrap();
        assert_eq!(mem.limit(), Some(8 << 20));
        assert_eq!(mem.swap(), Some(-1));
        assert_eq!(mem.reservation(), None);
        let cpu = res.cpu().clone().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(20000));
        assert_eq!(cpu.period(), Some(100000));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(res.pids().unwrap().limit(), -1);
        let none = build(&launch());
        let res = none.linux().as_ref().unwrap().resources().clone().unwrap();
        assert!(res.memory().is_none() && res.cpu().is_none() && res.pids().is_none());
    }

    #[test]
    fn ulimits_are_capped_at_the_hosts_hard_limit() {
        let mut l = launch();
        l.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1 << 20,
            hard: 1 << 20,
        }];
        let s = build(&l);
        let r = s.process().as_ref().unwrap().rlimits().clone().unwrap();
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r[0].soft(), r[0].hard()), (20000, 20000));
        l.ulimits[0].name = "bogus".into();
        assert!(matches!(
            build_spec(&l, &user(), &[], &host()),
            Err(SpecError::Ulimit(_))
        ));
    }

    #[test]
    fn init_wraps_the_command_and_binds_the_hosts_init() {
        let mut l = launch();
        l.init = true;
        let s = build(&l);
        assert_eq!(
            s.process().as_ref().unwrap().args().clone().unwrap(),
            ["/sbin/docker-init", "--", "sh"]
        );
        let m = find_mount(&s, CONTAINER_INIT_PATH).unwrap();
        assert_eq!(opts(m), ["bind", "ro"]);
    }

    #[test]
    fn spec_round_trips_through_json_as_the_runtime_reads_it() {
        let s = build(&launch());
        let text = serde_json::to_string(&s).unwrap();
        let back: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert!(text.contains("\"CAP_AUDIT_WRITE\""));
    }

    #[test]
    fn cap_add_and_drop_reach_the_spec() {
        let mut l = launch();
        l.cap_drop = vec!["ALL".into()];
        assert!(caps_of(&build(&l)).is_empty());
        l.cap_add = vec!["bogus".into()];
        assert!(matches!(
            build_spec(&l, &user(), &[], &host()),
            Err(SpecError::Capability(_))
        ));
    }
}
