//! From a container's Docker configuration to what its shim runs: validation in
//! Docker's words, the image-defaults merge, mounts, and the [`LaunchSpec`].

use std::collections::BTreeMap;
use std::path::Path;

use berth_oci::image::ContainerConfig as ImageRunConfig;
use berth_shim_protocol::{
    LaunchSpec, LogSpec, MountSpec, Namespaces, NetworkNamespace, ProcessSpec, Resources, Seccomp,
};

use super::model::{Config, ContainerRecord, HostConfig, MountPoint};
use super::rootfs::RootfsPaths;
use crate::DaemonError;

/// Docker's default `/dev/shm` size.
const DEFAULT_SHM_SIZE: u64 = 64 << 20;
/// Docker's minimum `--memory`.
const MIN_MEMORY: i64 = 6 << 20;

/// Checks a restart policy (create and update).
///
/// # Errors
/// `InvalidArgument` with Docker's message.
pub(super) fn validate_restart_policy(p: &super::model::RestartPolicy) -> Result<(), DaemonError> {
    let policy = p.name.as_str();
    if !matches!(
        policy,
        "" | "no" | "always" | "on-failure" | "unless-stopped"
    ) {
        return Err(DaemonError::invalid(format!(
            "invalid restart policy: unknown policy '{policy}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )));
    }
    if policy != "on-failure" && p.maximum_retry_count != 0 {
        return Err(DaemonError::invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ));
    }
    if p.maximum_retry_count < 0 {
        return Err(DaemonError::invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    Ok(())
}

/// Checks (and normalizes) a container's Config as Docker's create does, before the
/// image is looked up: a bad setting is the client's mistake whether or not the image
/// exists, and some of these would otherwise only fail at start, or inside the
/// container's init.
///
/// # Errors
/// `InvalidArgument` with Docker's message.
pub(super) fn validate_config(config: &mut Config) -> Result<(), DaemonError> {
    if !config.working_dir.is_empty() {
        if !config.working_dir.starts_with('/') {
            return Err(DaemonError::invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        config.working_dir = clean_path(&config.working_dir);
    }
    if let Some(sig) = config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        parse_signal(sig)?;
    }
    for e in config.env.iter().flatten() {
        if e.split('=').next().unwrap_or("").is_empty() {
            return Err(DaemonError::invalid(format!(
                "invalid environment variable: {e}"
            )));
        }
    }
    Ok(())
}

/// Go's `filepath.Clean` for an absolute path: no `.`, `..` or repeated and trailing
/// slashes.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The environment a process gets, as Docker's `ReplaceOrAppendEnvValues`: each
/// `KEY=value` of `overrides` replaces the same key in `defaults` or is appended, and a
/// bare `KEY` (what `-e KEY` sends when the client has no such variable) removes it.
pub(super) fn replace_or_append_env(defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<Option<String>> = defaults.into_iter().map(Some).collect();
    for o in overrides {
        let k = key(o);
        let slot = out
            .iter_mut()
            .find(|e| e.as_deref().is_some_and(|e| key(e) == k));
        match (o.contains('='), slot) {
            (true, Some(slot)) => *slot = Some(o.clone()),
            (true, None) => out.push(Some(o.clone())),
            (false, Some(slot)) => *slot = None,
            (false, None) => {}
        }
    }
    out.into_iter().flatten().collect()
}

/// Checks the `HostConfig` fields Docker's create checks that have no typed model here:
/// `ExtraHosts`, `PortBindings`, `Isolation` and `Annotations`.
fn validate_host_config_extras(hc: &HostConfig) -> Result<(), DaemonError> {
    for extra in hc.extra_hosts.iter().flatten() {
        let Some((_, ip)) = extra.split_once(':').filter(|(n, _)| !n.is_empty()) else {
            return Err(DaemonError::invalid(format!(
                "bad format for add-host: {extra:?}"
            )));
        };
        if ip != "host-gateway" && ip.trim().parse::<std::net::IpAddr>().is_err() {
            return Err(DaemonError::invalid(format!(
                "invalid IP address in add-host: {ip:?}"
            )));
        }
    }
    if let Some(map) = hc.port_bindings.as_ref().and_then(|b| b.as_object()) {
        let bad = |p: &str| DaemonError::invalid(format!("invalid port specification: {p:?}"));
        for (key, list) in map {
            let port = key.split_once('/').map_or(key.as_str(), |(p, _)| p);
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return Err(bad(port));
            }
            for binding in list.as_array().into_iter().flatten() {
                let host = binding["HostPort"].as_str().unwrap_or("");
                let host_port = host.split_once('/').map_or(host, |(p, _)| p);
                if host_port.is_empty() {
                    continue;
                }
                let (a, b) = host_port.split_once('-').unwrap_or((host_port, host_port));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) if a <= b => {}
                    _ => return Err(bad(host)),
                }
            }
        }
    }
    if let Some(isolation) = hc
        .extra
        .get("Isolation")
        .and_then(serde_json::Value::as_str)
        && !matches!(isolation.to_ascii_lowercase().as_str(), "" | "default")
    {
        return Err(DaemonError::invalid(format!(
            "invalid isolation '{isolation}' on linux"
        )));
    }
    if let Some(annotations) = hc
        .extra
        .get("Annotations")
        .and_then(serde_json::Value::as_object)
        && annotations.contains_key("")
    {
        return Err(DaemonError::invalid(
            "invalid Annotations: the empty string is not permitted as an annotation key",
        ));
    }
    Ok(())
}

/// A `HostConfig` list the model keeps in `extra` (`MaskedPaths`, `ReadonlyPaths`):
/// `None` when absent or `null`.
fn path_list(hc: &HostConfig, key: &str) -> Option<Vec<String>> {
    let list = hc.extra.get(key)?.as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    )
}

/// What Docker's create fills in that the client left unset, so inspect shows the
/// values the container runs with (`adaptContainerSettings` and the masked and
/// read-only path defaults).
pub(super) fn apply_create_defaults(hc: &mut HostConfig) {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    // Without swap accounting Docker leaves swap unlimited (its "Memory limited
    // without swap" warning); berth then leaves it unset.
    let swap_limit =
        unified || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    if hc.memory > 0 && hc.memory_swap == 0 && swap_limit {
        hc.memory_swap = hc.memory * 2;
    }
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE as i64;
    }
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = "private".into();
    }
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if unified { "private" } else { "host" }.into();
    }
    if hc.oom_kill_disable.is_none() {
        hc.oom_kill_disable = Some(false);
    }
    if !hc.privileged {
        let unset = |hc: &HostConfig, key: &str| hc.extra.get(key).is_none_or(|v| v.is_null());
        if unset(hc, "MaskedPaths") {
            hc.extra.insert(
                "MaskedPaths".into(),
                berth_shim_protocol::default_masked_paths().into(),
            );
        }
        if unset(hc, "ReadonlyPaths") {
            hc.extra.insert(
                "ReadonlyPaths".into(),
                berth_shim_protocol::READONLY_PATHS.to_vec().into(),
            );
        }
    }
}

/// Checks a HostConfig as Docker's create does.
///
/// # Errors
/// `InvalidArgument` with Docker's message.
pub(super) fn validate_host_config(hc: &HostConfig) -> Result<(), DaemonError> {
    validate_restart_policy(&hc.restart_policy)?;
    super::mount_config::validate(hc)?;
    validate_host_config_extras(hc)?;
    // `runc` is the one runtime name berth answers to (`/info` lists it as the default).
    if let Some(name) = hc.extra.get("Runtime").and_then(serde_json::Value::as_str)
        && !matches!(name, "" | "runc")
    {
        return Err(DaemonError::invalid(format!(
            "unknown or invalid runtime name: {name}"
        )));
    }
    // The drivers berth has: every container's output goes to its json-file log
    // (`local` is the same to a user; `none` keeps nothing readable by `logs`).
    if !matches!(
        hc.log_config.kind.as_str(),
        "" | "json-file" | "local" | "none"
    ) {
        return Err(DaemonError::invalid(format!(
            "logger: no log driver named '{}' is registered",
            hc.log_config.kind
        )));
    }
    if hc.auto_remove && !matches!(hc.restart_policy.name.as_str(), "" | "no") {
        return Err(DaemonError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return Err(DaemonError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if hc.memory_swap > 0 && hc.memory > 0 && hc.memory_swap < hc.memory {
        return Err(DaemonError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if hc.memory_swap > 0 && hc.memory == 0 {
        return Err(DaemonError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if hc.memory_reservation > 0 && hc.memory_reservation < MIN_MEMORY {
        return Err(DaemonError::invalid(
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if hc.memory > 0 && hc.memory_reservation > 0 && hc.memory < hc.memory_reservation {
        return Err(DaemonError::invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    // Unmodelled numeric fields, checked in the JSON they came in.
    let extra_int = |key: &str| hc.extra.get(key).and_then(serde_json::Value::as_i64);
    if let Some(swappiness) = extra_int("MemorySwappiness")
        && swappiness != -1
        && !(0..=100).contains(&swappiness)
    {
        return Err(DaemonError::invalid(format!(
            "Invalid value: {swappiness}, valid memory swappiness range is 0-100"
        )));
    }
    if let Some(weight) = extra_int("BlkioWeight")
        && weight != 0
        && !(10..=1000).contains(&weight)
    {
        return Err(DaemonError::invalid(
            "Range of blkio weight is from 10 to 1000",
        ));
    }
    if hc.cpu_shares < 0 {
        return Err(DaemonError::invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            hc.cpu_shares
        )));
    }
    if hc.shm_size < 0 {
        return Err(DaemonError::invalid("SHM size can not be less than 0"));
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(DaemonError::invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return Err(DaemonError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return Err(DaemonError::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    if hc.nano_cpus < 0 || hc.nano_cpus > ncpu * 1_000_000_000 {
        return Err(DaemonError::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    check_cfs(hc.cpu_period, hc.cpu_quota)?;
    check_cpuset(&hc.cpuset_cpus, &hc.cpuset_mems)?;
    // Network names are checked by the network service when the container is created.
    if hc.network_mode == "container:" {
        return Err(DaemonError::invalid(
            "invalid network mode: container: requires a container name or ID",
        ));
    }
    if !matches!(hc.cgroupns_mode.as_str(), "" | "host" | "private") {
        return Err(DaemonError::invalid(format!(
            "invalid cgroup namespace mode: {}",
            hc.cgroupns_mode
        )));
    }
    Ok(())
}

/// Checks a CFS period and quota (create and update), in Docker's words.
///
/// # Errors
/// `InvalidArgument` for a period outside 1ms–1s or a quota under 1ms.
pub(super) fn check_cfs(period: i64, quota: i64) -> Result<(), DaemonError> {
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(DaemonError::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(DaemonError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    Ok(())
}

/// Checks `--cpuset-cpus` and `--cpuset-mems` against the host's online CPUs and
/// memory nodes (create and update): the kernel would refuse them at the cgroup
/// write, a 500 for what is the client's mistake.
///
/// # Errors
/// `InvalidArgument` in Docker's words for a malformed list or one naming what the
/// host does not have.
pub(super) fn check_cpuset(cpus: &str, mems: &str) -> Result<(), DaemonError> {
    let online = |file: &str, fallback: &str| {
        std::fs::read_to_string(file)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| fallback.to_string())
    };
    for (list, what, plural, file) in [
        (cpus, "cpus", "CPUs", "/sys/devices/system/cpu/online"),
        (
            mems,
            "mems",
            "memory nodes",
            "/sys/devices/system/node/online",
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        let requested = parse_uint_list(list).ok_or_else(|| {
            DaemonError::invalid(format!("Invalid value {list} for cpuset {what}"))
        })?;
        let available = online(file, "0");
        let have = parse_uint_list(&available).unwrap_or_default();
        if !requested.iter().all(|n| have.contains(n)) {
            return Err(DaemonError::invalid(format!(
                "Requested {plural} are not available - requested {list}, available: {available}"
            )));
        }
    }
    Ok(())
}

/// A kernel list such as `0-3,5` (Docker's `parsers.ParseUintList`), at most 1024
/// entries long so a hostile `0-4294967295` costs nothing.
fn parse_uint_list(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi - lo >= 1024 || out.len() > 1024 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

/// Fills what the client left unset from the image's run defaults, as Docker's
/// `merge` does: env by key, the image's `Cmd` only when no entrypoint was given.
pub(super) fn merge_image_config(config: &mut Config, image: Option<&ImageRunConfig>) {
    let Some(image) = image else { return };
    if config.user.is_empty() {
        config.user = image.user.clone().unwrap_or_default();
    }
    if let Some(ports) = &image.exposed_ports {
        let mine = config.exposed_ports.get_or_insert_with(BTreeMap::new);
        for (k, v) in ports {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(env) = &image.env {
        let mine = config.env.take().unwrap_or_default();
        let mut merged: Vec<String> = env
            .iter()
            .filter(|e| {
                let key = e.split('=').next().unwrap_or("");
                !mine.iter().any(|m| m.split('=').next() == Some(key))
            })
            .cloned()
            .collect();
        merged.extend(mine);
        config.env = Some(merged);
    }
    let no_entrypoint = config.entrypoint.as_ref().is_none_or(|e| e.is_empty());
    if no_entrypoint {
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            config.cmd = image.cmd.clone();
        }
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone();
        }
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone().unwrap_or_default();
    }
    if let Some(vols) = &image.volumes {
        let mine = config.volumes.get_or_insert_with(BTreeMap::new);
        for (k, v) in vols {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(labels) = &image.labels {
        let mine = config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in labels {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if config.stop_signal.is_none() {
        config.stop_signal = image.stop_signal.clone();
    }
    super::health::merge_image_healthcheck(config, image.extra.get("Healthcheck"));
    if config.on_build.is_none() {
        config.on_build = image
            .extra
            .get("OnBuild")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
    }
}

/// `Path` and `Args`: entrypoint then cmd; `--entrypoint ""` clears the entrypoint.
///
/// # Errors
/// `InvalidArgument` "No command specified" when both are empty.
pub(super) fn command_line(config: &Config) -> Result<(String, Vec<String>), DaemonError> {
    let mut argv: Vec<String> = config
        .entrypoint
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    let cleared = config
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.len() == 1 && e[0].is_empty());
    if !cleared || argv.is_empty() {
        argv.extend(config.cmd.iter().flatten().cloned());
    }
    let mut it = argv.into_iter();
    match it.next() {
        Some(path) => Ok((path, it.collect())),
        None => Err(DaemonError::invalid("No command specified")),
    }
}

/// What every process of a container starts from before its own variables, as
/// Docker's `CreateDaemonEnvironment`.
pub(super) fn base_env(hostname: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    env
}

/// Signal names and numbers as Docker accepts them (`SIGKILL`, `KILL`, `kill`, `9`).
///
/// # Errors
/// `InvalidArgument` "Invalid signal: X".
pub(super) fn parse_signal(s: &str) -> Result<i32, DaemonError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(DaemonError::invalid(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    const NAMES: &[(&str, i32)] = &[
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if (0..=30).contains(&off) {
            return Ok(34 + off);
        }
    }
    Err(DaemonError::invalid(format!("Invalid signal: {s}")))
}

/// Resolves `-v`, `--mount`, `--tmpfs` and the image's `VOLUME`s into mount points,
/// creating named and anonymous volume directories as needed.
///
/// # Errors
/// `InvalidArgument` for malformed specs, in Docker's words.
pub(super) fn mounts_for(
    record: &ContainerRecord,
    store: &crate::volumes::VolumeStore,
    inherited: Vec<MountPoint>,
) -> Result<Vec<MountPoint>, DaemonError> {
    let mut out: Vec<MountPoint> = Vec::new();
    let add = |mut m: MountPoint, out: &mut Vec<MountPoint>| -> Result<(), DaemonError> {
        if !m.destination.starts_with('/') {
            return Err(DaemonError::invalid(format!(
                "invalid mount config: mount path must be absolute: {}",
                m.destination
            )));
        }
        m.destination = super::mount_config::clean_destination(&m.destination);
        if out.iter().any(|o| o.destination == m.destination) {
            return Err(DaemonError::invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
        out.push(m);
        Ok(())
    };
    let ensure_volume = |name: &str| -> Result<String, DaemonError> {
        let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        Ok(store
            .ensure_for_container(name, anonymous)?
            .display()
            .to_string())
    };
    for bind in record.host_config.binds.iter().flatten() {
        let super::mount_config::BindSpec {
            source: src,
            destination: dst,
            mode,
        } = super::mount_config::parse_bind(bind)?;
        let rw = !mode.split(',').any(|o| o == "ro");
        let propagation = mode
            .split(',')
            .find(|o| PROPAGATIONS.contains(o))
            .unwrap_or("rprivate");
        if src.starts_with('/') {
            if !Path::new(src).exists() {
                std::fs::create_dir_all(src).map_err(|e| {
                    DaemonError::invalid(format!(
                        "error while creating mount source path '{src}': {e}"
                    ))
                })?;
            }
            add(
                MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src.into(),
                    destination: dst.into(),
                    driver: String::new(),
                    mode: mode.into(),
                    rw,
                    propagation: propagation.into(),
                    anonymous: false,
                    no_copy: false,
                    subpath: String::new(),
                },
                &mut out,
            )?;
        } else {
            let (name, anonymous) = if src.is_empty() {
                (super::names::new_id(), true)
            } else {
                (src.to_string(), false)
            };
            if !anonymous && !crate::volumes::valid_name(&name) {
                return Err(DaemonError::invalid(format!(
                    "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )));
            }
            let source = ensure_volume(&name)?;
            add(
                MountPoint {
                    kind: "volume".into(),
                    name,
                    source,
                    destination: dst.into(),
                    driver: "local".into(),
                    mode: if mode.is_empty() {
                        "z".into()
                    } else {
                        mode.into()
                    },
                    rw,
                    propagation: String::new(),
                    anonymous,
                    no_copy: mode.split(',').any(|o| o == "nocopy"),
                    subpath: String::new(),
                },
                &mut out,
            )?;
        }
    }
    for m in record.host_config.mounts.iter().flatten() {
        match m.kind.as_str() {
            "bind" => {
                if !Path::new(&m.source).exists() {
                    return Err(DaemonError::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
                add(
                    MountPoint {
                        kind: "bind".into(),
                        name: String::new(),
                        source: m.source.clone(),
                        destination: m.target.clone(),
                        driver: String::new(),
                        mode: String::new(),
                        rw: !m.read_only,
                        propagation: m
                            .bind_options
                            .as_ref()
                            .and_then(|o| o["Propagation"].as_str())
                            .filter(|p| !p.is_empty())
                            .unwrap_or("rprivate")
                            .into(),
                        anonymous: false,
                        no_copy: false,
                        subpath: String::new(),
                    },
                    &mut out,
                )?;
            }
            "volume" => {
                let (name, anonymous) = if m.source.is_empty() {
                    (super::names::new_id(), true)
                } else {
                    (m.source.clone(), false)
                };
                let subpath = volume_subpath(m, anonymous)?;
                let source = ensure_volume(&name)?;
                add(
                    MountPoint {
                        kind: "volume".into(),
                        name,
                        source,
                        destination: m.target.clone(),
                        driver: "local".into(),
                        mode: "z".into(),
                        rw: !m.read_only,
                        propagation: String::new(),
                        anonymous,
                        no_copy: m
                            .volume_options
                            .as_ref()
                            .and_then(|o| o.get("NoCopy"))
                            .and_then(serde_json::Value::as_bool)
                            .unwrap_or(false),
                        subpath,
                    },
                    &mut out,
                )?;
            }
            "tmpfs" => add(
                MountPoint {
                    kind: "tmpfs".into(),
                    name: String::new(),
                    source: String::new(),
                    destination: m.target.clone(),
                    driver: String::new(),
                    mode: super::mount_config::tmpfs_options_of(m).map_err(|why| {
                        DaemonError::invalid(format!(
                            "invalid mount config for type \"tmpfs\": {why}"
                        ))
                    })?,
                    rw: !m.read_only,
                    propagation: String::new(),
                    anonymous: false,
                    no_copy: false,
                    subpath: String::new(),
                },
                &mut out,
            )?,
            other => {
                return Err(DaemonError::invalid(format!(
                    "invalid mount config: mount type unknown: {other:?}"
                )));
            }
        }
    }
    for (dst, opts) in record.host_config.tmpfs.iter().flatten() {
        add(
            MountPoint {
                kind: "tmpfs".into(),
                name: String::new(),
                source: String::new(),
                destination: dst.clone(),
                driver: String::new(),
                mode: opts.clone(),
                rw: true,
                propagation: String::new(),
                anonymous: false,
                no_copy: false,
                subpath: String::new(),
            },
            &mut out,
        )?;
    }
    // Inherited mounts (`--volumes-from`) give way to the container's own.
    let inherited: Vec<MountPoint> = inherited
        .into_iter()
        .filter(|i| !out.iter().any(|o| o.destination == i.destination))
        .collect();
    for dst in record.config.volumes.iter().flat_map(|v| v.keys()) {
        if out.iter().chain(&inherited).any(|o| o.destination == *dst) {
            continue;
        }
        let name = super::names::new_id();
        let source = ensure_volume(&name)?;
        out.push(MountPoint {
            kind: "volume".into(),
            name,
            source,
            destination: dst.clone(),
            driver: "local".into(),
            mode: String::new(),
            rw: true,
            propagation: String::new(),
            anonymous: true,
            no_copy: false,
            subpath: String::new(),
        });
    }
    let mut all = inherited;
    all.extend(out);
    Ok(all)
}

/// Points each volume mount that has a subpath at that directory inside the volume,
/// resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the volume's
/// root: a symlink a container left in the volume cannot lead the mount to the host.
/// The mount source becomes the `/proc/<berthd>/fd/N` link of the resolved directory, so
/// what the shim mounts is the object checked here; the returned descriptors must stay
/// open until the shim has mounted (the container has started).
///
/// # Errors
/// `InvalidArgument` when a subpath does not exist in its volume (Docker refuses the
/// start the same way).
pub(super) fn resolve_subpaths(
    record: &ContainerRecord,
    mounts: &mut [MountSpec],
) -> Result<Vec<std::os::fd::OwnedFd>, DaemonError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let mut held = Vec::new();
    for m in record.mounts.iter().filter(|m| !m.subpath.is_empty()) {
        let cannot = |e: rustix::io::Errno| {
            // Go's wording ("no such file or directory"), without Rust's "(os error N)".
            let why = std::io::Error::from(e).to_string();
            let why = why.split(" (os error").next().unwrap_or_default();
            DaemonError::invalid(format!(
                "error while mounting volume '{}': cannot access path {}: {}",
                m.name,
                Path::new(&m.source).join(&m.subpath).display(),
                why.to_lowercase()
            ))
        };
        let root = rustix::fs::open(
            m.source.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(cannot)?;
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        let fd = loop {
            match rustix::fs::openat2(
                &root,
                m.subpath.as_str(),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                how,
            ) {
                // A rename racing the lookup; retrying is the documented answer.
                Err(rustix::io::Errno::AGAIN) if tries < 64 => tries += 1,
                other => break other.map_err(cannot)?,
            }
        };
        let source = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        );
        for spec in mounts.iter_mut().filter(|s| s.destination == m.destination) {
            spec.source = source.clone();
        }
        held.push(fd);
    }
    Ok(held)
}

/// `VolumeOptions.Subpath` checked as Docker checks it at create: a relative path that
/// stays inside the volume, and only for a named volume. Whether it exists is known
/// only at start, when it is resolved inside the volume.
fn volume_subpath(m: &super::model::MountRequest, anonymous: bool) -> Result<String, DaemonError> {
    let subpath = m
        .volume_options
        .as_ref()
        .and_then(|o| o.get("Subpath"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if subpath.is_empty() {
        return Ok(String::new());
    }
    let refuse = |why: &str| {
        DaemonError::invalid(format!("invalid mount config for type \"volume\": {why}"))
    };
    if anonymous {
        return Err(refuse("must not set Subpath when using anonymous volumes"));
    }
    let local = !subpath.starts_with('/')
        && !subpath.contains('\0')
        && Path::new(subpath)
            .components()
            .try_fold(0usize, |depth, c| match c {
                std::path::Component::Normal(_) => Some(depth + 1),
                std::path::Component::CurDir => Some(depth),
                std::path::Component::ParentDir => depth.checked_sub(1),
                _ => None,
            })
            .is_some();
    if !local {
        return Err(refuse("subpath must be a relative path within the volume"));
    }
    Ok(subpath.to_string())
}

fn mount_spec(m: &MountPoint) -> MountSpec {
    match m.kind.as_str() {
        "tmpfs" => {
            let mut options = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            options.extend(
                m.mode
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string),
            );
            if !m.rw {
                options.push("ro".into());
            }
            MountSpec {
                destination: m.destination.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options,
            }
        }
        _ => {
            let mut options = vec![
                "rbind".into(),
                if m.propagation.is_empty() {
                    "rprivate".into()
                } else {
                    m.propagation.clone()
                },
            ];
            if !m.rw {
                options.push("ro".into());
            }
            MountSpec {
                destination: m.destination.clone(),
                kind: "bind".into(),
                source: m.source.clone(),
                options,
            }
        }
    }
}

/// Mount propagation modes a bind may name (Docker's, from the kernel's).
const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// The shim's launch spec for a container about to start.
///
/// # Errors
/// `InvalidArgument` for settings the runtime cannot express.
pub(super) fn launch_spec(
    record: &ContainerRecord,
    dir: &Path,
    paths: &RootfsPaths,
    default_cgroup_parent: &str,
) -> Result<LaunchSpec, DaemonError> {
    let hc = &record.host_config;
    let c = &record.config;
    // Create checks the client's variables; an image's own can still be nameless, which
    // the container's init cannot set (runc refuses the same way).
    if let Some(bad) = c
        .env
        .iter()
        .flatten()
        .find(|e| e.starts_with('=') || e.is_empty())
    {
        return Err(DaemonError::invalid(format!(
            "invalid environment variable: {bad}"
        )));
    }
    let mut mounts: Vec<MountSpec> = record.mounts.iter().map(mount_spec).collect();
    for (file, dst) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        if !mounts.iter().any(|m| m.destination == dst) {
            mounts.push(MountSpec {
                destination: dst.into(),
                kind: "bind".into(),
                source: dir.join(file).display().to_string(),
                options: vec!["rbind".into(), "rprivate".into()],
            });
        }
    }
    let mut no_new_privileges = false;
    let mut seccomp = Seccomp::Default;
    for opt in hc.security_opt.iter().flatten() {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "no-new-privileges" => no_new_privileges = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => seccomp = Seccomp::Unconfined,
            "seccomp" => seccomp = Seccomp::Custom(v.to_string()),
            "apparmor" | "label" => {}
            _ => {
                return Err(DaemonError::invalid(format!(
                    "invalid --security-opt 2: \"{opt}\""
                )));
            }
        }
    }
    let network = match hc.network_mode.as_str() {
        "host" => NetworkNamespace::Host,
        // `none`; for bridge networks and `container:` the service that sets up the
        // namespace replaces this with its path.
        _ => NetworkNamespace::New,
    };
    let cgroup_path = cgroup_path(record, default_cgroup_parent);
    let (cpu_quota, cpu_period) = cfs_quota_period(hc.nano_cpus, hc.cpu_quota, hc.cpu_period);
    let log_path = dir.join(format!("{}-json.log", record.id));
    let log_opts = &hc.log_config.config;
    let max_size = match log_opts.get("max-size") {
        Some(s) => Some(
            parse_size(s).ok_or_else(|| DaemonError::invalid(format!("invalid max-size: {s}")))?,
        ),
        None => None,
    };
    let max_files = match log_opts.get("max-file") {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| DaemonError::invalid(format!("invalid value for max-file: {s}")))?,
        None => 1,
    };
    let devices = hc
        .devices
        .iter()
        .flatten()
        .map(|d| berth_shim_protocol::DeviceSpec {
            host_path: d["PathOnHost"].as_str().unwrap_or_default().to_string(),
            container_path: d["PathInContainer"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(d["PathOnHost"].as_str())
                .unwrap_or_default()
                .to_string(),
            permissions: d["CgroupPermissions"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("rwm")
                .to_string(),
        })
        .collect();
    let ulimits = hc
        .ulimits
        .iter()
        .flatten()
        .filter_map(|u| {
            Some(berth_shim_protocol::Ulimit {
                name: u["Name"].as_str()?.to_string(),
                soft: u["Soft"].as_i64()? as u64,
                hard: u["Hard"].as_i64()? as u64,
            })
        })
        .collect();
    Ok(LaunchSpec {
        id: record.id.clone(),
        rootfs: paths.merged.clone(),
        readonly_rootfs: hc.readonly_rootfs,
        process: ProcessSpec {
            args: std::iter::once(record.path.clone())
                .chain(record.args.iter().cloned())
                .collect(),
            env: replace_or_append_env(
                base_env(&c.hostname, c.tty),
                c.env.as_deref().unwrap_or_default(),
            ),
            cwd: if c.working_dir.is_empty() {
                "/".into()
            } else {
                c.working_dir.clone()
            },
            user: c.user.clone(),
            additional_groups: hc.group_add.clone().unwrap_or_default(),
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            console_size: console_size(hc),
        },
        hostname: c.hostname.clone(),
        domainname: c.domainname.clone(),
        mounts,
        privileged: hc.privileged,
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        no_new_privileges,
        seccomp,
        devices,
        namespaces: Namespaces {
            network,
            pid_host: hc.pid_mode == "host",
            ipc_host: hc.ipc_mode == "host",
            uts_host: hc.uts_mode == "host",
            // Docker's default: host on cgroup v1, private on v2.
            cgroupns_host: match hc.cgroupns_mode.as_str() {
                "host" => true,
                "private" => false,
                _ => !Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            },
        },
        resources: Resources {
            memory: (hc.memory > 0).then_some(hc.memory),
            memory_swap: (hc.memory_swap != 0).then_some(hc.memory_swap),
            memory_reservation: (hc.memory_reservation > 0).then_some(hc.memory_reservation),
            cpu_shares: (hc.cpu_shares > 0).then_some(hc.cpu_shares as u64),
            cpu_quota,
            cpu_period,
            cpuset_cpus: (!hc.cpuset_cpus.is_empty()).then(|| hc.cpuset_cpus.clone()),
            cpuset_mems: (!hc.cpuset_mems.is_empty()).then(|| hc.cpuset_mems.clone()),
            pids_limit: hc.pids_limit.filter(|p| *p != 0),
            oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
        },
        cgroup_path,
        sysctls: hc.sysctls.clone().unwrap_or_default(),
        shm_size: if hc.shm_size > 0 {
            hc.shm_size as u64
        } else {
            DEFAULT_SHM_SIZE
        },
        ulimits,
        oom_score_adj: (hc.oom_score_adj != 0).then_some(hc.oom_score_adj),
        init: hc.init.unwrap_or(false),
        masked_paths: path_list(hc, "MaskedPaths"),
        readonly_paths: path_list(hc, "ReadonlyPaths"),
        log: LogSpec {
            path: log_path,
            max_size,
            max_files,
        },
    })
}

/// go-units' RAMInBytes: `10m`, `1g`, `512k`, plain bytes.
/// The CFS quota and period (µs) for Docker's limits: `--cpus` (NanoCpus) is a quota
/// over a 100 ms period; otherwise `--cpu-quota`/`--cpu-period` as given (0: unset).
pub(super) fn cfs_quota_period(
    nano_cpus: i64,
    quota: i64,
    period: i64,
) -> (Option<i64>, Option<u64>) {
    if nano_cpus > 0 {
        (Some(nano_cpus / 10_000), Some(100_000))
    } else {
        (
            (quota != 0).then_some(quota),
            (period != 0).then_some(period as u64),
        )
    }
}

/// The container's cgroup path as the runtime creates it: `/<parent>/<id>`, the parent
/// being `--cgroup-parent` or the daemon's default.
pub(super) fn cgroup_path(record: &ContainerRecord, default_parent: &str) -> String {
    let parent = if record.host_config.cgroup_parent.is_empty() {
        default_parent
    } else {
        record.host_config.cgroup_parent.as_str()
    };
    format!("/{}/{}", parent.trim_matches('/'), record.id)
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// `HostConfig.ConsoleSize` (`[height, width]`, API 1.42+): the client's terminal size,
/// so the first prompt is drawn at the right width before any resize arrives.
fn console_size(hc: &HostConfig) -> Option<(u16, u16)> {
    let size = hc.extra.get("ConsoleSize")?.as_array()?;
    let dim = |i: usize| size.get(i)?.as_u64().and_then(|v| u16::try_from(v).ok());
    let (h, w) = (dim(0)?, dim(1)?);
    (h > 0 && w > 0).then_some((h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_must_parse_and_name_what_the_host_has() {
        assert_eq!(parse_uint_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        for bad in ["", "x", "2-1", "0-4294967295", "1,,2", "-1"] {
            assert_eq!(parse_uint_list(bad), None, "{bad}");
        }
        assert!(check_cpuset("0", "").is_ok());
        assert_eq!(
            check_cpuset("garbage", "").unwrap_err().message(),
            "Invalid value garbage for cpuset cpus"
        );
        assert!(
            check_cpuset("999", "")
                .unwrap_err()
                .message()
                .starts_with("Requested CPUs are not available - requested 999, available: ")
        );
        assert!(check_cpuset("", "77").is_err());
    }

    #[test]
    fn out_of_range_resources_are_refused_in_dockers_words() {
        let check = |v: serde_json::Value| {
            let hc: HostConfig = serde_json::from_value(v).unwrap();
            validate_host_config(&hc).map_err(|e| e.message().to_string())
        };
        for (hc, message) in [
            (
                serde_json::json!({"CpuShares": -5}),
                "invalid CPU shares (-5): value must be a positive integer",
            ),
            (
                serde_json::json!({"ShmSize": -1}),
                "SHM size can not be less than 0",
            ),
            (
                serde_json::json!({"OomScoreAdj": 5000}),
                "Invalid value 5000, range for oom score adj is [-1000, 1000]",
            ),
            (
                serde_json::json!({"MemorySwappiness": 500}),
                "Invalid value: 500, valid memory swappiness range is 0-100",
            ),
            (
                serde_json::json!({"BlkioWeight": 5}),
                "Range of blkio weight is from 10 to 1000",
            ),
            (
                serde_json::json!({"MemoryReservation": 1}),
                "Minimum memory reservation allowed is 6MB",
            ),
        ] {
            assert_eq!(check(hc.clone()), Err(message.to_string()), "{hc}");
        }
        for ok in [
            serde_json::json!({"MemorySwappiness": -1, "OomScoreAdj": -1000, "PidsLimit": -1}),
            serde_json::json!({"BlkioWeight": 0, "CpuShares": 0, "ShmSize": 0}),
        ] {
            assert_eq!(check(ok.clone()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn create_refuses_what_dockers_create_refuses_in_the_host_config() {
        let check = |hc: serde_json::Value| {
            let hc: HostConfig = serde_json::from_value(hc).unwrap();
            validate_host_config(&hc).map_err(|e| e.message().to_string())
        };
        for (hc, message) in [
            (
                serde_json::json!({"ExtraHosts": ["nocolon"]}),
                r#"bad format for add-host: "nocolon""#,
            ),
            (
                serde_json::json!({"ExtraHosts": ["h:300.1.1.1"]}),
                r#"invalid IP address in add-host: "300.1.1.1""#,
            ),
            (
                serde_json::json!({"PortBindings": {"99999/tcp": []}}),
                r#"invalid port specification: "99999""#,
            ),
            (
                serde_json::json!({"PortBindings": {"80/tcp": [{"HostPort": "9-1"}]}}),
                r#"invalid port specification: "9-1""#,
            ),
            (
                serde_json::json!({"Isolation": "hyperv"}),
                "invalid isolation 'hyperv' on linux",
            ),
            (
                serde_json::json!({"Annotations": {"": "x"}}),
                "invalid Annotations: the empty string is not permitted as an annotation key",
            ),
        ] {
            assert_eq!(check(hc.clone()), Err(message.to_string()), "{hc}");
        }
        let ok = serde_json::json!({
            "ExtraHosts": ["a:10.0.0.1", "b:::1", "c:host-gateway"],
            "PortBindings": {"80/tcp": [{"HostPort": ""}, {"HostPort": "8000-8010"}], "53/udp": null},
            "Isolation": "default",
        });
        assert_eq!(check(ok), Ok(()));
    }

    #[test]
    fn create_checks_and_cleans_the_config_like_docker() {
        let check = |c: serde_json::Value| {
            let mut c: Config = serde_json::from_value(c).unwrap();
            validate_config(&mut c).map(|()| c.working_dir)
        };
        assert_eq!(
            check(serde_json::json!({"WorkingDir": "/a/./b/../c/"})).unwrap(),
            "/a/c"
        );
        for (c, message) in [
            (
                serde_json::json!({"WorkingDir": "rel"}),
                "the working directory 'rel' is invalid, it needs to be an absolute path",
            ),
            (
                serde_json::json!({"StopSignal": "SIGFOO"}),
                "Invalid signal: SIGFOO",
            ),
            (
                serde_json::json!({"Env": ["A=1", "=x"]}),
                "invalid environment variable: =x",
            ),
            (
                serde_json::json!({"Env": [""]}),
                "invalid environment variable: ",
            ),
        ] {
            assert_eq!(check(c.clone()).unwrap_err().message(), message, "{c}");
        }
    }

    #[test]
    fn a_bare_env_name_unsets_like_dockers_replace_or_append() {
        let out = replace_or_append_env(
            base_env("h", true),
            &[
                "A=1".into(),
                "PATH=/x".into(),
                "TERM".into(),
                "NOPE".into(),
                "A=2".into(),
            ],
        );
        assert_eq!(out, vec!["PATH=/x", "HOSTNAME=h", "A=2"]);
    }

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn entrypoint_and_cmd_merge_like_docker() {
        let image = ImageRunConfig {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..Default::default()
        };
        let mut c = Config {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, Some(&image));
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(
            c.env.as_deref().unwrap(),
            &["PATH=/bin".to_string(), "A=2".to_string()]
        );
        let mut c = Config {
            entrypoint: Some(vec!["/bin/echo".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, Some(&image));
        assert_eq!(c.cmd, None, "a user entrypoint drops the image's CMD");
        assert_eq!(command_line(&c).unwrap(), ("/bin/echo".to_string(), vec![]));
        let c = Config {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["ls".into(), "-l".into()]),
            ..Default::default()
        };
        assert_eq!(
            command_line(&c).unwrap(),
            ("ls".to_string(), vec!["-l".to_string()])
        );
        assert!(command_line(&Config::default()).is_err());
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
    }
}
