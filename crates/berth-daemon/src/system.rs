//! Facts about the daemon and its host, for `/version` and `/info`.
//!
//! [`VersionInfo`] and [`SystemInfo`] keep the Docker Engine API's field names (v1.44
//! `SystemVersion` and `SystemInfo`) in their serde attributes, because docker clients
//! read these documents by those names; berth-api serves them as they are.
//!
//! Host facts come from `/proc` and `/sys` text files rather than syscalls, so this
//! module needs no `unsafe` and its parsers are tested on fixture strings. Every fact is
//! best effort: a file that cannot be read yields an empty or zero value, never an
//! error, because `docker info` must answer on any host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Daemon;

/// The Engine API version berth implements, the highest a client may ask for. The
/// `Api-Version` header and `/version`'s `ApiVersion` both say this.
pub const API_VERSION: &str = "1.51";
/// The oldest Engine API version berth still answers.
pub const MIN_API_VERSION: &str = "1.24";
/// berth's own release, reported where Docker reports its engine version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The name `/version` gives the platform (`Server: <name>` in `docker version`).
pub const PLATFORM_NAME: &str = "berth";

/// Where the cgroup hierarchy is mounted on every Linux host berth supports.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Response of `GET /version` (Docker's `SystemVersion`).
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// The product, shown as `Server: <Name>`.
    #[serde(rename = "Platform")]
    pub platform: Platform,
    /// The engine and, in Docker, containerd/runc; berth has just the engine.
    #[serde(rename = "Components")]
    pub components: Vec<ComponentVersion>,
    /// berth's version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Highest supported API version ([`API_VERSION`]).
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    /// Lowest supported API version ([`MIN_API_VERSION`]).
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// The commit berth was built from, when the build said (`BERTH_GIT_COMMIT`).
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    /// Docker reports its Go toolchain here; berth has none to report.
    #[serde(rename = "GoVersion")]
    pub go_version: String,
    /// Always `linux`.
    #[serde(rename = "Os")]
    pub os: String,
    /// CPU architecture in Go's spelling (`amd64`, `arm64`), as clients expect.
    #[serde(rename = "Arch")]
    pub arch: String,
    /// `uname -r`; omitted when unknown.
    #[serde(rename = "KernelVersion", skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    /// Experimental features; omitted when off, as Docker does.
    #[serde(rename = "Experimental", skip_serializing_if = "is_false")]
    pub experimental: bool,
    /// When berth was built, if the build said (`BERTH_BUILD_TIME`); else omitted.
    #[serde(rename = "BuildTime", skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `Platform` of [`VersionInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct Platform {
    /// Product name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// One entry of [`VersionInfo::components`].
#[derive(Debug, Clone, Serialize)]
pub struct ComponentVersion {
    /// Component name (`Engine`).
    #[serde(rename = "Name")]
    pub name: String,
    /// Component version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Free-form details; Docker repeats the top-level fields here as strings.
    #[serde(rename = "Details", skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// How many objects the daemon holds, for `/info`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ObjectCounts {
    /// All containers.
    #[serde(rename = "Containers")]
    pub containers: u64,
    /// Containers in state `running`.
    #[serde(rename = "ContainersRunning")]
    pub containers_running: u64,
    /// Containers in state `paused`.
    #[serde(rename = "ContainersPaused")]
    pub containers_paused: u64,
    /// Containers neither running nor paused.
    #[serde(rename = "ContainersStopped")]
    pub containers_stopped: u64,
    /// All images, tagged and dangling.
    #[serde(rename = "Images")]
    pub images: u64,
}

/// `/info`'s `FirewallBackend`: berth programs its rules in an nftables table of its own.
#[derive(Debug, Clone, Serialize)]
pub struct FirewallBackend {
    /// `nftables`.
    #[serde(rename = "Driver")]
    pub driver: String,
}

/// Response of `GET /info` (Docker's `SystemInfo`, as of API 1.44).
///
/// Fields that a version of the API dropped or added after 1.44 are left out; fields
/// Docker always sends are always sent, empty if berth has nothing to say, because
/// clients index into them without checking.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// A stable, random identifier of this daemon's data root.
    #[serde(rename = "ID")]
    pub id: String,
    /// Object counts, flattened into the top level as Docker sends them.
    #[serde(flatten)]
    pub counts: ObjectCounts,
    /// Storage driver name.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Storage driver facts as label/value pairs.
    #[serde(rename = "DriverStatus")]
    pub driver_status: Vec<[String; 2]>,
    /// Plugins by type.
    #[serde(rename = "Plugins")]
    pub plugins: PluginsInfo,
    /// Memory limits supported.
    #[serde(rename = "MemoryLimit")]
    pub memory_limit: bool,
    /// Swap limits supported.
    #[serde(rename = "SwapLimit")]
    pub swap_limit: bool,
    /// Kernel TCP memory limit supported (cgroup v1 only); omitted when false.
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_false")]
    pub kernel_memory_tcp: bool,
    /// CFS period supported.
    #[serde(rename = "CpuCfsPeriod")]
    pub cpu_cfs_period: bool,
    /// CFS quota supported.
    #[serde(rename = "CpuCfsQuota")]
    pub cpu_cfs_quota: bool,
    /// CPU shares supported.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// cpusets supported.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// PID limits supported.
    #[serde(rename = "PidsLimit")]
    pub pids_limit: bool,
    /// OOM-kill disabling supported (cgroup v1 only).
    #[serde(rename = "OomKillDisable")]
    pub oom_kill_disable: bool,
    /// `net.ipv4.ip_forward` is on.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// Always false: API versions below 1.50 carry the field, Docker sends false; the
    /// API layer leaves it out (`None`) for newer clients.
    #[serde(rename = "BridgeNfIptables", skip_serializing_if = "Option::is_none")]
    pub bridge_nf_iptables: Option<bool>,
    /// As above.
    #[serde(rename = "BridgeNfIp6tables", skip_serializing_if = "Option::is_none")]
    pub bridge_nf_ip6tables: Option<bool>,
    /// How published ports and NAT are programmed (API 1.49 on; `None` before).
    #[serde(rename = "FirewallBackend", skip_serializing_if = "Option::is_none")]
    pub firewall_backend: Option<FirewallBackend>,
    /// The daemon logs at debug level.
    #[serde(rename = "Debug")]
    pub debug: bool,
    /// Open file descriptors of the daemon process.
    #[serde(rename = "NFd")]
    pub n_fd: u64,
    /// Docker's goroutine count; berth reports its thread count.
    #[serde(rename = "NGoroutines")]
    pub n_goroutines: u64,
    /// Now, RFC 3339 with nanoseconds, local time.
    #[serde(rename = "SystemTime")]
    pub system_time: String,
    /// Default logging driver for containers.
    #[serde(rename = "LoggingDriver")]
    pub logging_driver: String,
    /// `cgroupfs` (berth never delegates to systemd).
    #[serde(rename = "CgroupDriver")]
    pub cgroup_driver: String,
    /// `"1"` or `"2"`: which hierarchy `/sys/fs/cgroup` is.
    #[serde(rename = "CgroupVersion")]
    pub cgroup_version: String,
    /// Event stream subscribers.
    #[serde(rename = "NEventsListener")]
    pub n_events_listener: u64,
    /// `uname -r`.
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
    /// `PRETTY_NAME` from os-release.
    #[serde(rename = "OperatingSystem")]
    pub operating_system: String,
    /// `VERSION_ID` from os-release.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// Always `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `uname -m` (`x86_64`), unlike `/version`'s Go-style `Arch`, as Docker does.
    #[serde(rename = "Architecture")]
    pub architecture: String,
    /// Default registry index for search and login.
    #[serde(rename = "IndexServerAddress")]
    pub index_server_address: String,
    /// Registry settings.
    #[serde(rename = "RegistryConfig")]
    pub registry_config: RegistryConfig,
    /// Logical CPUs usable by the daemon.
    #[serde(rename = "NCPU")]
    pub ncpu: u64,
    /// Physical memory in bytes.
    #[serde(rename = "MemTotal")]
    pub mem_total: u64,
    /// Swarm generic resources; none.
    #[serde(rename = "GenericResources")]
    pub generic_resources: Option<Vec<serde_json::Value>>,
    /// Persistent state root (`--data-root`).
    #[serde(rename = "DockerRootDir")]
    pub docker_root_dir: PathBuf,
    /// `HTTP_PROXY` of the daemon, credentials masked.
    #[serde(rename = "HttpProxy")]
    pub http_proxy: String,
    /// `HTTPS_PROXY` of the daemon, credentials masked.
    #[serde(rename = "HttpsProxy")]
    pub https_proxy: String,
    /// `NO_PROXY` of the daemon.
    #[serde(rename = "NoProxy")]
    pub no_proxy: String,
    /// Host name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Daemon labels.
    #[serde(rename = "Labels")]
    pub labels: Vec<String>,
    /// Experimental features on.
    #[serde(rename = "ExperimentalBuild")]
    pub experimental_build: bool,
    /// berth's version.
    #[serde(rename = "ServerVersion")]
    pub server_version: String,
    /// Runtimes by the name `--runtime` takes.
    #[serde(rename = "Runtimes")]
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    /// The runtime used when a container names none.
    #[serde(rename = "DefaultRuntime")]
    pub default_runtime: String,
    /// Swarm state: always inactive.
    #[serde(rename = "Swarm")]
    pub swarm: SwarmInfo,
    /// Containers survive a daemon restart.
    #[serde(rename = "LiveRestoreEnabled")]
    pub live_restore_enabled: bool,
    /// Windows only; empty on Linux.
    #[serde(rename = "Isolation")]
    pub isolation: String,
    /// The init binary for `--init`.
    #[serde(rename = "InitBinary")]
    pub init_binary: String,
    /// Docker's containerd build; berth has no containerd.
    #[serde(rename = "ContainerdCommit")]
    pub containerd_commit: Commit,
    /// Docker's runc build; berth's runtime is built in.
    #[serde(rename = "RuncCommit")]
    pub runc_commit: Commit,
    /// Docker's init build.
    #[serde(rename = "InitCommit")]
    pub init_commit: Commit,
    /// Enabled security features (`name=seccomp,profile=builtin`).
    #[serde(rename = "SecurityOptions")]
    pub security_options: Vec<String>,
    /// CDI spec directories; empty unless experimental, as in Docker.
    #[serde(rename = "CDISpecDirs")]
    pub cdi_spec_dirs: Vec<String>,
    /// Messages for the user about missing features.
    #[serde(rename = "Warnings")]
    pub warnings: Vec<String>,
}

/// `Plugins` of [`SystemInfo`]: the drivers built into berth, by type.
#[derive(Debug, Clone, Serialize)]
pub struct PluginsInfo {
    /// Volume drivers.
    #[serde(rename = "Volume")]
    pub volume: Vec<String>,
    /// Network drivers.
    #[serde(rename = "Network")]
    pub network: Vec<String>,
    /// Authorization plugins (none; `null` as in Docker).
    #[serde(rename = "Authorization")]
    pub authorization: Option<Vec<String>>,
    /// Logging drivers.
    #[serde(rename = "Log")]
    pub log: Vec<String>,
}

/// `RegistryConfig` of [`SystemInfo`] (Docker's `RegistryServiceConfig`).
#[derive(Debug, Clone, Serialize)]
pub struct RegistryConfig {
    /// Deprecated; `null`, still present below API 1.47.
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    pub allow_nondistributable_artifacts_cidrs: Option<Vec<String>>,
    /// Deprecated; `null`, still present below API 1.47.
    #[serde(rename = "AllowNondistributableArtifactsHostnames")]
    pub allow_nondistributable_artifacts_hostnames: Option<Vec<String>>,
    /// Networks whose registries are spoken to over plain HTTP.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    /// Per-registry settings by host name.
    #[serde(rename = "IndexConfigs")]
    pub index_configs: BTreeMap<String, IndexInfo>,
    /// Mirrors of docker.io.
    #[serde(rename = "Mirrors")]
    pub mirrors: Vec<String>,
}

/// One entry of [`RegistryConfig::index_configs`].
#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    /// Registry host name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Mirrors of this registry.
    #[serde(rename = "Mirrors")]
    pub mirrors: Vec<String>,
    /// False for an insecure registry.
    #[serde(rename = "Secure")]
    pub secure: bool,
    /// True for Docker Hub.
    #[serde(rename = "Official")]
    pub official: bool,
}

/// One entry of [`SystemInfo::runtimes`].
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    /// The runtime's executable.
    pub path: String,
    /// Extra arguments.
    #[serde(rename = "runtimeArgs", skip_serializing_if = "Option::is_none")]
    pub runtime_args: Option<Vec<String>>,
}

/// `Swarm` of [`SystemInfo`]; berth has no swarm mode.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmInfo {
    /// Empty.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Empty.
    #[serde(rename = "NodeAddr")]
    pub node_addr: String,
    /// `inactive`.
    #[serde(rename = "LocalNodeState")]
    pub local_node_state: String,
    /// False.
    #[serde(rename = "ControlAvailable")]
    pub control_available: bool,
    /// Empty.
    #[serde(rename = "Error")]
    pub error: String,
    /// `null`.
    #[serde(rename = "RemoteManagers")]
    pub remote_managers: Option<Vec<serde_json::Value>>,
}

/// A build commit of a component ([`SystemInfo::runc_commit`] and its siblings).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Commit {
    /// The commit, empty when there is none to report.
    #[serde(rename = "ID")]
    pub id: String,
    /// Below API 1.49 Docker repeats `ID` here; omitted when empty, as in Docker.
    #[serde(rename = "Expected", skip_serializing_if = "String::is_empty")]
    pub expected: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Daemon {
    /// The daemon's and host's versions, for `GET /version`.
    pub fn version_info(&self) -> VersionInfo {
        let kernel_version = read_trimmed("/proc/sys/kernel/osrelease");
        let git_commit = option_env!("BERTH_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_owned();
        let build_time =
            option_env!("BERTH_BUILD_TIME").map_or_else(executable_time, str::to_owned);
        // Docker names its Go toolchain; berth is built by rustc, whose version is not
        // known to the compiled code without a build script.
        let go_version = "n/a".to_owned();
        let arch = go_arch(std::env::consts::ARCH).to_owned();
        let experimental = false;

        let mut details = BTreeMap::new();
        for (k, v) in [
            ("ApiVersion", API_VERSION),
            ("Arch", &arch),
            ("BuildTime", &build_time),
            ("Experimental", if experimental { "true" } else { "false" }),
            ("GitCommit", &git_commit),
            ("GoVersion", &go_version),
            ("KernelVersion", &kernel_version),
            ("MinAPIVersion", MIN_API_VERSION),
            ("Os", "linux"),
        ] {
            details.insert(k.to_owned(), v.to_owned());
        }

        VersionInfo {
            platform: Platform {
                name: PLATFORM_NAME.to_owned(),
            },
            components: vec![ComponentVersion {
                name: "Engine".to_owned(),
                version: ENGINE_VERSION.to_owned(),
                details,
            }],
            version: ENGINE_VERSION.to_owned(),
            api_version: API_VERSION.to_owned(),
            min_api_version: MIN_API_VERSION.to_owned(),
            git_commit,
            go_version,
            os: "linux".to_owned(),
            arch,
            kernel_version,
            experimental,
            build_time,
        }
    }

    /// The daemon's configuration and host facts, for `GET /info`.
    ///
    pub fn system_info(&self) -> SystemInfo {
        let data_root = &self.config().data_root;
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let cgroup = CgroupFeatures::detect(&mounts, Path::new(CGROUP_ROOT));
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let os_release = OsRelease::parse(&os_release);
        let backing_fs = backing_filesystem(&mounts, data_root);

        let mut warnings = Vec::new();
        if !cgroup.memory {
            warnings.push("WARNING: No memory limit support".to_owned());
        }
        if cgroup.memory && !cgroup.swap {
            warnings.push("WARNING: No swap limit support".to_owned());
        }

        let mut index_configs = BTreeMap::new();
        index_configs.insert(
            "docker.io".to_owned(),
            IndexInfo {
                name: "docker.io".to_owned(),
                mirrors: Vec::new(),
                secure: true,
                official: true,
            },
        );

        // Clients and compose files name Docker's default runtime "runc"; berth's
        // built-in libcontainer runtime, run through berth-shim, answers to that name.
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "runc".to_owned(),
            RuntimeInfo {
                path: "berth-shim".to_owned(),
                runtime_args: None,
            },
        );

        SystemInfo {
            id: engine_id(data_root),
            counts: {
                let (containers, running, paused, stopped) = self.containers().counts();
                ObjectCounts {
                    containers,
                    containers_running: running,
                    containers_paused: paused,
                    containers_stopped: stopped,
                    images: self.images().count() as u64,
                }
            },
            driver: "overlay2".to_owned(),
            driver_status: vec![
                ["Backing Filesystem".to_owned(), backing_fs],
                ["Supports d_type".to_owned(), "true".to_owned()],
                ["Using metacopy".to_owned(), "false".to_owned()],
                ["Native Overlay Diff".to_owned(), "true".to_owned()],
                ["userxattr".to_owned(), "false".to_owned()],
            ],
            plugins: PluginsInfo {
                volume: vec!["local".to_owned()],
                network: vec!["bridge".to_owned(), "host".to_owned(), "null".to_owned()],
                authorization: None,
                log: vec!["json-file".to_owned()],
            },
            memory_limit: cgroup.memory,
            swap_limit: cgroup.swap,
            kernel_memory_tcp: cgroup.kernel_memory_tcp,
            cpu_cfs_period: cgroup.cpu,
            cpu_cfs_quota: cgroup.cpu,
            cpu_shares: cgroup.cpu,
            cpu_set: cgroup.cpuset,
            pids_limit: cgroup.pids,
            oom_kill_disable: cgroup.oom_kill_disable,
            ipv4_forwarding: read_trimmed("/proc/sys/net/ipv4/ip_forward") == "1",
            bridge_nf_iptables: Some(false),
            bridge_nf_ip6tables: Some(false),
            firewall_backend: Some(FirewallBackend {
                driver: "nftables".into(),
            }),
            debug: false,
            n_fd: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            n_goroutines: thread_count(
                &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
            ),
            system_time: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            logging_driver: "json-file".to_owned(),
            cgroup_driver: "cgroupfs".to_owned(),
            cgroup_version: cgroup.version.to_owned(),
            n_events_listener: 0,
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            operating_system: os_release.pretty_name,
            os_version: os_release.version_id,
            os_type: "linux".to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            index_server_address: "https://index.docker.io/v1/".to_owned(),
            registry_config: RegistryConfig {
                allow_nondistributable_artifacts_cidrs: None,
                allow_nondistributable_artifacts_hostnames: None,
                insecure_registry_cidrs: vec!["127.0.0.0/8".to_owned()],
                index_configs,
                mirrors: Vec::new(),
            },
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            mem_total: mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()),
            generic_resources: None,
            docker_root_dir: data_root.clone(),
            http_proxy: mask_credentials(&proxy_env("HTTP_PROXY")),
            https_proxy: mask_credentials(&proxy_env("HTTPS_PROXY")),
            no_proxy: proxy_env("NO_PROXY"),
            name: read_trimmed("/proc/sys/kernel/hostname"),
            labels: Vec::new(),
            experimental_build: false,
            server_version: ENGINE_VERSION.to_owned(),
            runtimes,
            default_runtime: "runc".to_owned(),
            swarm: SwarmInfo {
                node_id: String::new(),
                node_addr: String::new(),
                local_node_state: "inactive".to_owned(),
                control_available: false,
                error: String::new(),
                remote_managers: None,
            },
            live_restore_enabled: false,
            isolation: String::new(),
            // `--init` runs the static init berthd carries, under Docker's name.
            init_binary: "docker-init".to_owned(),
            containerd_commit: Commit::default(),
            runc_commit: Commit::default(),
            init_commit: Commit::default(),
            security_options: vec!["name=seccomp,profile=builtin".to_owned()],
            cdi_spec_dirs: Vec::new(),
            warnings,
        }
    }
}

/// Rust's `std::env::consts::ARCH` in Go's `GOARCH` spelling, which clients compare
/// against image platforms.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// When the running executable was written, RFC 3339: the link time of a build that
/// did not stamp `BERTH_BUILD_TIME`, which is as close to Docker's `BuildTime` as
/// berth can get without a build script. Empty if unknown.
fn executable_time() -> String {
    std::fs::metadata("/proc/self/exe")
        .and_then(|m| m.modified())
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn proxy_env(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_ascii_lowercase()))
        .unwrap_or_default()
}

/// The daemon ID: random, made once per data root and kept in `<data-root>/engine-id`
/// so that it survives restarts (Docker keeps its own the same way). An unwritable
/// data root gives an empty ID rather than failing `/info`.
fn engine_id(data_root: &Path) -> String {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return id.to_owned();
        }
    }
    let bytes: [u8; 16] = rand::random();
    let h = hex::encode(bytes);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    // Write-temp-then-rename: a crash never leaves a half-written ID, and two racing
    // first calls each leave a complete one.
    let tmp = data_root.join(format!(".engine-id.{}", std::process::id()));
    let written = std::fs::write(&tmp, &id).and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => id,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "cannot persist engine ID");
            String::new()
        }
    }
}

/// `PRETTY_NAME` and `VERSION_ID` of an os-release file.
#[derive(Debug, Default, PartialEq)]
struct OsRelease {
    pretty_name: String,
    version_id: String,
}

impl OsRelease {
    fn parse(text: &str) -> Self {
        let mut out = OsRelease::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            match key.trim() {
                "PRETTY_NAME" => out.pretty_name = value.to_owned(),
                "VERSION_ID" => out.version_id = value.to_owned(),
                _ => {}
            }
        }
        out
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes (the file says kB).
fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `Threads` of `/proc/self/status`.
fn thread_count(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One line of `/proc/self/mounts`: mount point and filesystem type.
fn mount_entries(mounts: &str) -> impl Iterator<Item = (String, &str)> {
    mounts.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let _source = fields.next()?;
        let target = fields.next()?;
        let fstype = fields.next()?;
        Some((unescape_mount_path(target), fstype))
    })
}

/// The kernel writes space, tab, newline and backslash in mount paths as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The filesystem type of the mount holding `path` (the longest mount point that is a
/// prefix of it), in Docker's words: ext2/3/4 are `extfs`.
fn backing_filesystem(mounts: &str, path: &Path) -> String {
    let best = mount_entries(mounts)
        .filter(|(target, _)| path.starts_with(target))
        // Later mounts over the same point hide earlier ones, so prefer the last.
        .fold(None::<(String, &str)>, |best, cur| match &best {
            Some((b, _)) if b.len() > cur.0.len() => best,
            _ => Some(cur),
        });
    match best.map(|(_, fstype)| fstype) {
        Some("ext2" | "ext3" | "ext4") => "extfs".to_owned(),
        Some(other) => other.to_owned(),
        None => "<unknown>".to_owned(),
    }
}

/// Which cgroup hierarchy the host has and which controllers it offers.
#[derive(Debug, Default, PartialEq)]
struct CgroupFeatures {
    version: &'static str,
    memory: bool,
    swap: bool,
    kernel_memory_tcp: bool,
    oom_kill_disable: bool,
    cpu: bool,
    cpuset: bool,
    pids: bool,
}

impl CgroupFeatures {
    /// Reads the features from `mounts` (the text of `/proc/self/mounts`) and the
    /// hierarchy at `root`. The host is v2 only when `root` itself is a cgroup2 mount;
    /// a hybrid host (v1 controllers with cgroup2 at `root/unified`) is v1, because
    /// that is where its controllers are.
    fn detect(mounts: &str, root: &Path) -> Self {
        let root_is_v2 = mount_entries(mounts)
            .filter(|(target, _)| Path::new(target) == root)
            .last()
            .map(|(_, fstype)| fstype)
            == Some("cgroup2");
        if root_is_v2 {
            let controllers =
                std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            CgroupFeatures {
                version: "2",
                memory: has("memory"),
                // memory.swap.max lives in non-root cgroups; its presence follows the
                // kernel's swap accounting, which the root's children show.
                swap: has("memory") && swap_accounting_v2(root),
                kernel_memory_tcp: false,
                oom_kill_disable: false,
                cpu: has("cpu"),
                cpuset: has("cpuset"),
                pids: has("pids"),
            }
        } else {
            let controller_dir = |c: &str| root.join(c);
            let memory = controller_dir("memory")
                .join("memory.limit_in_bytes")
                .exists();
            CgroupFeatures {
                version: "1",
                memory,
                swap: controller_dir("memory")
                    .join("memory.memsw.limit_in_bytes")
                    .exists(),
                kernel_memory_tcp: controller_dir("memory")
                    .join("memory.kmem.tcp.limit_in_bytes")
                    .exists(),
                oom_kill_disable: controller_dir("memory").join("memory.oom_control").exists(),
                cpu: controller_dir("cpu").join("cpu.cfs_quota_us").exists(),
                cpuset: controller_dir("cpuset").join("cpuset.cpus").exists(),
                pids: controller_dir("pids").join("pids.max").exists()
                    || controller_dir("pids").is_dir(),
            }
        }
    }
}

fn swap_accounting_v2(root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| e.path().join("memory.swap.max").exists())
}

/// Hides the password of a proxy URL (`http://user:secret@host` →
/// `http://user:xxxxx@host`), as Docker does, so `/info` never discloses it.
fn mask_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:xxxxx"),
        None => "xxxxx".to_owned(),
    };
    format!("{scheme}://{masked}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DaemonConfig;

    const HYBRID_MOUNTS: &str = "\
sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
/dev/sdb1 /var/lib/my\\040data xfs rw 0 0
";

    #[test]
    fn cgroup_version_is_1_on_hybrid_host_and_2_on_unified_host() {
        let root = tempfile::tempdir().unwrap();
        let hybrid = HYBRID_MOUNTS.replace("/sys/fs/cgroup", root.path().to_str().unwrap());
        assert_eq!(CgroupFeatures::detect(&hybrid, root.path()).version, "1");

        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let unified = format!("cgroup2 {} cgroup2 rw 0 0\n", root.path().display());
        let f = CgroupFeatures::detect(&unified, root.path());
        assert_eq!(
            (f.version, f.memory, f.cpu, f.cpuset, f.pids),
            ("2", true, true, true, true)
        );
    }

    #[test]
    fn cgroup_v1_features_follow_controller_files() {
        let root = tempfile::tempdir().unwrap();
        let mem = root.path().join("memory");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "").unwrap();
        let f = CgroupFeatures::detect("", root.path());
        assert!(f.memory);
        assert!(!f.swap);
        assert!(!f.cpu);
    }

    #[test]
    fn backing_filesystem_picks_longest_mount_prefix_and_unescapes() {
        assert_eq!(
            backing_filesystem(HYBRID_MOUNTS, Path::new("/var/lib/berth")),
            "extfs"
        );
        assert_eq!(
            backing_filesystem(HYBRID_MOUNTS, Path::new("/var/lib/my data/x")),
            "xfs"
        );
    }

    #[test]
    fn os_release_reads_quoted_and_bare_values() {
        let r = OsRelease::parse(
            "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=12\n",
        );
        assert_eq!(
            r,
            OsRelease {
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                version_id: "12".into()
            }
        );
    }

    #[test]
    fn mem_total_converts_kib_to_bytes() {
        assert_eq!(
            mem_total("MemTotal:        2048 kB\nMemFree: 1 kB\n"),
            2048 * 1024
        );
        assert_eq!(mem_total("garbage"), 0);
    }

    #[test]
    fn proxy_password_is_masked() {
        assert_eq!(
            mask_credentials("http://bob:secret@proxy:3128/"),
            "http://bob:xxxxx@proxy:3128/"
        );
        assert_eq!(mask_credentials("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(mask_credentials(""), "");
    }

    #[test]
    fn go_arch_uses_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("s390x"), "s390x");
    }

    fn daemon() -> (tempfile::TempDir, Daemon) {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::open(DaemonConfig {
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            cgroup_parent: "berth".into(),
            network: Default::default(),
        })
        .unwrap();
        (dir, d)
    }

    #[test]
    fn engine_id_is_stable_across_calls() {
        let (_dir, d) = daemon();
        let a = d.system_info().id;
        assert_eq!(a.len(), 36);
        assert_eq!(a, d.system_info().id);
    }

    #[test]
    fn system_info_serializes_with_docker_field_names() {
        let (_dir, d) = daemon();
        let v = serde_json::to_value(d.system_info()).unwrap();
        for key in [
            "ID",
            "Containers",
            "ContainersRunning",
            "Images",
            "Driver",
            "NCPU",
            "MemTotal",
            "CpuCfsPeriod",
            "CPUShares",
            "OSType",
            "DockerRootDir",
            "HttpProxy",
            "RegistryConfig",
            "Swarm",
            "SecurityOptions",
            "Warnings",
            "CgroupVersion",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["Containers"], 0);
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(
            v["RegistryConfig"]["InsecureRegistryCIDRs"][0],
            "127.0.0.0/8"
        );
        assert!(v["Warnings"].is_array());
    }

    #[test]
    fn version_info_reports_api_range() {
        let (_dir, d) = daemon();
        let v = serde_json::to_value(d.version_info()).unwrap();
        assert_eq!(v["ApiVersion"], "1.51");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Components"][0]["Name"], "Engine");
        assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.51");
        assert!(v.get("Experimental").is_none());
    }
}
