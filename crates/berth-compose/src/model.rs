//! The typed, normalized project: what `berth compose config` prints and what
//! `up` turns into Engine API calls.
//!
//! Every short syntax is expanded here into the long one (ports, volumes,
//! `depends_on`, networks, environment lists), relative paths are already
//! absolute, and durations and sizes are numbers, so the CLI never re-parses
//! text. Field names follow the Compose Specification so the serialized form
//! reads like `docker compose config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A whole project after loading, merging, `extends` and profiles.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Project {
    /// The project name (`-p`, `COMPOSE_PROJECT_NAME`, `name:`, or the directory).
    pub name: String,
    /// The project directory relative paths were resolved against.
    #[serde(skip)]
    pub working_dir: PathBuf,
    /// The files that made the project, in the order given.
    #[serde(skip)]
    pub config_files: Vec<PathBuf>,
    /// The services that are active with the chosen profiles.
    pub services: BTreeMap<String, Service>,
    /// Top-level networks (the implicit `default` included when used).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    /// Top-level named volumes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Top-level secrets.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileSource>,
    /// Top-level configs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileSource>,
    /// Services left out because none of their profiles is active.
    #[serde(skip)]
    pub disabled: BTreeMap<String, Service>,
}

/// One service, normalized.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Service {
    /// Profiles that enable the service (none: always enabled).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The image to run (or to tag the build with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// How to build the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Overrides the image's CMD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Overrides the image's ENTRYPOINT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Variables, `env_file` contents under `environment:`; `None` = unset.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    /// Published ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Exposed ports (`80`, `80/udp`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    /// Networks the service joins (`default` when none is named).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// `network_mode:` (`host`, `none`, `service:x`, `container:x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Services to start first, and how long to wait for them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependsOn>,
    /// The health check (overrides the image's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `no`, `always`, `on-failure[:n]`, `unless-stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Container labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// A fixed container name (then only one replica).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The container's hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The container's domain name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `user[:group]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The working directory inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Replicas (`deploy.replicas`, or the legacy `scale:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Run an init process as PID 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Allocate a TTY.
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Keep stdin open.
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Privileged mode.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Read-only root filesystem.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// The signal `stop` sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_seconds"
    )]
    pub stop_grace_period: Option<u64>,
    /// Capabilities to add.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Memory limit in bytes (`mem_limit` or `deploy.resources.limits.memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<i64>,
    /// CPUs (`cpus` or `deploy.resources.limits.cpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Process limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `/dev/shm` size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    /// `host:ip` entries for /etc/hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// DNS servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// tmpfs mounts (`/path[:options]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// `security_opt:` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Kernel parameters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `pull_policy:` (`always`, `never`, `missing`, `build`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// `platform:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Options that map one to one onto container create (`logging`, `ulimits`,
    /// `devices`, `ipc`, `pid`, `dns_search`, ...; [`CONTAINER_OPTIONS`]), kept as
    /// written once their shape is checked; the client translates them.
    #[serde(flatten)]
    pub container_options: BTreeMap<String, serde_json::Value>,
    /// `links:` (`service[:alias]`); each also makes a `depends_on`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// The `secrets:` the service is granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileGrant>,
    /// The `configs:` the service is granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileGrant>,
    /// The service as written (interpolated, merged, `extends` resolved),
    /// for docker-compose 1.29's config hash ([`crate::compat`]).
    #[serde(skip)]
    pub raw: serde_json::Map<String, serde_json::Value>,
}

/// Service keys that map one to one onto container create, kept in
/// [`Service::container_options`].
pub const CONTAINER_OPTIONS: [&str; 27] = [
    "logging",
    "ulimits",
    "devices",
    "ipc",
    "pid",
    "uts",
    "userns_mode",
    "cgroup",
    "cgroup_parent",
    "isolation",
    "runtime",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "oom_score_adj",
    "oom_kill_disable",
    "cpu_shares",
    "cpuset",
    "cpu_quota",
    "cpu_period",
    "dns_search",
    "dns_opt",
    "group_add",
    "mac_address",
    "volumes_from",
    "external_links",
    "device_cgroup_rules",
];

/// A secret or config a service is granted: which one, and where it appears.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileGrant {
    /// The top-level secret or config.
    pub source: String,
    /// The path in the container (relative ones are under `/run/secrets` for
    /// secrets); `None` for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner of the file when berth writes it (content or environment sources);
    /// file sources are bind mounts and keep the host file's owner and mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Group of the file when berth writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Mode of the file when berth writes it (0444 by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl FileGrant {
    /// The absolute path in the container: secrets default to and resolve
    /// relative targets under `/run/secrets/`, configs default to `/<source>`.
    pub fn path(&self, secret: bool) -> String {
        let target = self.target.clone().unwrap_or_else(|| self.source.clone());
        if target.starts_with('/') {
            target
        } else if secret {
            format!("/run/secrets/{target}")
        } else {
            format!("/{target}")
        }
    }
}

/// A top-level secret or config: where its content comes from.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileSource {
    /// A file on the host (absolute once loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The value of an environment variable of the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Inline content (configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The value of `environment` when the project was loaded (never printed).
    #[serde(skip)]
    pub environment_value: Option<String>,
    /// Defined outside the project (swarm only): refused at use.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
}

impl FileSource {
    /// What berth writes into the container for a source that is not a file.
    pub fn inline(&self) -> Option<&str> {
        self.content
            .as_deref()
            .or(self.environment_value.as_deref())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A duration in nanoseconds as Go prints it (`1m30s`, `2s`, `500ms`), the
/// form compose files use.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos % 1_000_000_000 != 0 {
        return if nanos % 1_000_000 == 0 {
            format!("{}ms", nanos / 1_000_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = nanos / 1_000_000_000;
    let (h, m, sec) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

fn serialize_nanos<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&go_duration(*n)),
        None => s.serialize_none(),
    }
}

fn serialize_seconds<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&go_duration((*n as i64).saturating_mul(1_000_000_000))),
        None => s.serialize_none(),
    }
}

impl Service {
    /// The number of containers `up` keeps (1 unless scaled).
    pub fn replicas(&self) -> u32 {
        self.scale.unwrap_or(1)
    }

    /// The image reference containers are created from: `image:`, else the
    /// name a build is tagged with (`<project>_<service>` as docker-compose
    /// 1.29 names it).
    pub fn image_name(&self, project: &str, service: &str) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{project}_{service}"))
    }

    /// The `com.docker.compose.config-hash` label: SHA-256 of the service's
    /// normalized configuration (replica count left out, so scaling does not
    /// recreate) and the image ID it runs, so a new image also recreates.
    pub fn config_hash(&self, image_id: Option<&str>) -> String {
        let mut unscaled = self.clone();
        unscaled.scale = None;
        unscaled.raw = serde_json::Map::new();
        let doc = serde_json::json!({ "service": unscaled, "image_id": image_id });
        let text = serde_json::to_string(&doc).expect("the model serializes");
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// `build:`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Build {
    /// The context directory (absolute) or URL.
    pub context: String,
    /// The Dockerfile, relative to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    /// The stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Build without the cache.
    #[serde(skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Pull newer base images.
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    /// `network:` for RUN steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// One published port, long syntax.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Port {
    /// The container port.
    pub target: u16,
    /// The host port (`None`: an ephemeral one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// The host address to bind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One mount, long syntax.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceVolume {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A named volume, an absolute host path, or nothing (anonymous).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The path inside the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// How a service joins one network.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// Extra DNS names on that network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

/// What `up` waits for before starting a dependent service.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers are running.
    ServiceStarted,
    /// The dependency's containers report healthy.
    ServiceHealthy,
    /// The dependency's containers exited 0.
    ServiceCompletedSuccessfully,
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DependsOn {
    /// When the dependency counts as ready.
    pub condition: Condition,
    /// Restart this service when the dependency is recreated.
    #[serde(skip_serializing_if = "is_false")]
    pub restart: bool,
    /// When false, a missing or disabled dependency is ignored.
    pub required: bool,
}

/// `healthcheck:`. Durations in nanoseconds, as the Engine API takes them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_nanos"
    )]
    pub interval: Option<i64>,
    /// How long one check may take.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_nanos"
    )]
    pub timeout: Option<i64>,
    /// Failures before unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Grace time after start.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_nanos"
    )]
    pub start_period: Option<i64>,
    /// Time between checks during the start period.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_nanos"
    )]
    pub start_interval: Option<i64>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Network {
    /// The engine-side name (`<project>_<key>` unless `name:` or external).
    pub name: String,
    /// Created outside the project: never created or removed by it.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    /// The driver (`bridge` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// User labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// No outside connectivity.
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Containers may attach by hand.
    #[serde(skip_serializing_if = "is_false")]
    pub attachable: bool,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Volume {
    /// The engine-side name (`<project>_<key>` unless `name:` or external).
    pub name: String,
    /// Created outside the project.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    /// The driver (`local` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// User labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Project {
    /// Service names in an order where every service comes after the ones it
    /// depends on (ties by name), or the services of a dependency cycle.
    ///
    /// # Errors
    /// The names on a cycle, when there is one.
    pub fn start_order(&self) -> Result<Vec<String>, Vec<String>> {
        let mut order: Vec<String> = Vec::new();
        let mut remaining: BTreeMap<&str, &Service> =
            self.services.iter().map(|(k, v)| (k.as_str(), v)).collect();
        while !remaining.is_empty() {
            let ready: Vec<&str> = remaining
                .iter()
                .filter(|(_, s)| {
                    s.depends_on
                        .keys()
                        .all(|d| !remaining.contains_key(d.as_str()))
                })
                .map(|(k, _)| *k)
                .collect();
            if ready.is_empty() {
                return Err(remaining.keys().map(|k| k.to_string()).collect());
            }
            for k in ready {
                remaining.remove(k);
                order.push(k.to_string());
            }
        }
        Ok(order)
    }

    /// `services` with everything they depend on, transitively, in no
    /// particular order; all services when `services` is empty.
    pub fn with_dependencies(&self, services: &[String]) -> Vec<String> {
        if services.is_empty() {
            return self.services.keys().cloned().collect();
        }
        let mut seen: Vec<String> = Vec::new();
        let mut stack: Vec<String> = services.to_vec();
        while let Some(s) = stack.pop() {
            if seen.contains(&s) {
                continue;
            }
            if let Some(svc) = self.services.get(&s) {
                stack.extend(svc.depends_on.keys().cloned());
            }
            seen.push(s);
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(deps: &[&str]) -> Service {
        Service {
            depends_on: deps
                .iter()
                .map(|d| {
                    (
                        d.to_string(),
                        DependsOn {
                            condition: Condition::ServiceStarted,
                            restart: false,
                            required: true,
                        },
                    )
                })
                .collect(),
            ..Service::default()
        }
    }

    fn project(services: Vec<(&str, Service)>) -> Project {
        Project {
            name: "p".into(),
            working_dir: PathBuf::new(),
            config_files: vec![],
            services: services
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            networks: BTreeMap::new(),
            volumes: BTreeMap::new(),
            secrets: BTreeMap::new(),
            configs: BTreeMap::new(),
            disabled: BTreeMap::new(),
        }
    }

    #[test]
    fn dependencies_start_first() {
        let p = project(vec![
            ("web", svc(&["api"])),
            ("api", svc(&["db"])),
            ("db", svc(&[])),
        ]);
        assert_eq!(p.start_order().unwrap(), ["db", "api", "web"]);
        let mut deps = p.with_dependencies(&["api".into()]);
        deps.sort();
        assert_eq!(deps, ["api", "db"]);
    }

    #[test]
    fn a_cycle_is_reported_with_its_members() {
        let p = project(vec![
            ("a", svc(&["b"])),
            ("b", svc(&["a"])),
            ("c", svc(&[])),
        ]);
        assert_eq!(p.start_order().unwrap_err(), ["a", "b"]);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(2_000_000_000), "2s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(0), "0s");
    }

    #[test]
    fn scaling_does_not_change_the_config_hash() {
        let mut s = Service {
            image: Some("busybox".into()),
            ..Service::default()
        };
        let h = s.config_hash(Some("sha256:1"));
        s.scale = Some(3);
        assert_eq!(s.config_hash(Some("sha256:1")), h);
        assert_ne!(s.config_hash(Some("sha256:2")), h);
        s.command = Some(vec!["true".into()]);
        assert_ne!(s.config_hash(Some("sha256:1")), h);
    }
}
