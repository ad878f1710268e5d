//! The flags of `create` and `run` (docker's `containerOptions`) and their
//! translation into the `POST /containers/create` body.
//!
//! The body is built as JSON with exactly the fields docker's Go structs
//! produce (`Config`, `HostConfig` with its embedded `Resources`,
//! `NetworkingConfig`), including Go's distinction between a nil slice
//! (`null`) and an empty one (`[]`) and its `omitempty` rules, so that a
//! daemon sees the same request from `berth run` as from `docker run`.
//! Validation happens where docker's does: values checked while flags parse
//! (clap `value_parser`s from [`super::values`], exit 125 with pflag's
//! message), the rest in [`ContainerFlags::build`] (exit 125, "berth: ...").

use std::collections::BTreeMap;

use clap::Args;
use serde_json::{Map, Value, json};

use super::values::{self, NetworkAttachment, cut};
use crate::client::version_less;

/// docker's `addFlags`: everything that maps to the container's config.
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct ContainerFlags {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(allow_hyphen_values = true, long = "add-host", value_name = "list", value_parser = values::validate_extra_host)]
    add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(allow_hyphen_values = true, long, value_name = "map")]
    annotation: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(allow_hyphen_values = true, short = 'a', long, value_name = "list", value_parser = values::validate_attach)]
    pub(crate) attach: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(allow_hyphen_values = true, long = "blkio-weight", value_name = "uint16", value_parser = values::go_u16, default_value = "0", hide_default_value = true)]
    blkio_weight: u16,
    /// Block IO weight (relative device weight)
    #[arg(allow_hyphen_values = true, long = "blkio-weight-device", value_name = "list", value_parser = values::parse_weight_device)]
    blkio_weight_device: Vec<Value>,
    /// Add Linux capabilities
    #[arg(allow_hyphen_values = true, long = "cap-add", value_name = "list")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(allow_hyphen_values = true, long = "cap-drop", value_name = "list")]
    cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(
        allow_hyphen_values = true,
        long = "cgroup-parent",
        value_name = "string",
        default_value = ""
    )]
    cgroup_parent: String,
    /// Cgroup namespace to use (host|private)
    /// 'host':    Run the container in the Docker host's cgroup namespace
    /// 'private': Run the container in its own private cgroup namespace
    /// '':        Use the cgroup namespace as configured by the
    ///            default-cgroupns-mode option on the daemon (default)
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = "",
        verbatim_doc_comment
    )]
    cgroupns: String,
    /// Write the container ID to the file
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    pub(crate) cidfile: String,
    /// CPU count (Windows only)
    #[arg(long = "cpu-count", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0", hide = true)]
    cpu_count: i64,
    /// CPU percent (Windows only)
    #[arg(long = "cpu-percent", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0", hide = true)]
    cpu_percent: i64,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    cpu_period: i64,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    cpu_quota: i64,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    cpu_rt_period: i64,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    cpu_rt_runtime: i64,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    cpu_shares: i64,
    /// Number of CPUs
    #[arg(allow_hyphen_values = true, long, value_name = "decimal", value_parser = values::parse_cpus, default_value = "0", hide_default_value = true)]
    cpus: i64,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(
        allow_hyphen_values = true,
        long = "cpuset-cpus",
        value_name = "string",
        default_value = ""
    )]
    cpuset_cpus: String,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(
        allow_hyphen_values = true,
        long = "cpuset-mems",
        value_name = "string",
        default_value = ""
    )]
    cpuset_mems: String,
    /// Add a host device to the container
    #[arg(allow_hyphen_values = true, long, value_name = "list")]
    device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(allow_hyphen_values = true, long = "device-cgroup-rule", value_name = "list", value_parser = values::validate_device_cgroup_rule)]
    device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(allow_hyphen_values = true, long = "device-read-bps", value_name = "list", value_parser = values::parse_throttle_bps)]
    device_read_bps: Vec<Value>,
    /// Limit read rate (IO per second) from a device
    #[arg(allow_hyphen_values = true, long = "device-read-iops", value_name = "list", value_parser = values::parse_throttle_iops)]
    device_read_iops: Vec<Value>,
    /// Limit write rate (bytes per second) to a device
    #[arg(allow_hyphen_values = true, long = "device-write-bps", value_name = "list", value_parser = values::parse_throttle_bps)]
    device_write_bps: Vec<Value>,
    /// Limit write rate (IO per second) to a device
    #[arg(allow_hyphen_values = true, long = "device-write-iops", value_name = "list", value_parser = values::parse_throttle_iops)]
    device_write_iops: Vec<Value>,
    /// Set custom DNS servers
    #[arg(allow_hyphen_values = true, long, value_name = "list", value_parser = values::validate_ip_address)]
    dns: Vec<String>,
    /// Set DNS options
    #[arg(
        allow_hyphen_values = true,
        long = "dns-option",
        alias = "dns-opt",
        value_name = "list"
    )]
    dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(allow_hyphen_values = true, long = "dns-search", value_name = "list", value_parser = values::validate_dns_search)]
    dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    domainname: String,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(allow_hyphen_values = true, long, value_name = "string")]
    entrypoint: Option<String>,
    /// Set environment variables
    #[arg(allow_hyphen_values = true, short = 'e', long, value_name = "list", value_parser = values::validate_env)]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(allow_hyphen_values = true, long = "env-file", value_name = "list")]
    env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(allow_hyphen_values = true, long, value_name = "list")]
    expose: Vec<String>,
    /// Add additional groups to join
    #[arg(allow_hyphen_values = true, long = "group-add", value_name = "list")]
    group_add: Vec<String>,
    /// Command to run to check health
    #[arg(
        allow_hyphen_values = true,
        long = "health-cmd",
        value_name = "string",
        default_value = ""
    )]
    health_cmd: String,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration", allow_hyphen_values = true, value_parser = values::go_duration, default_value = "0", hide_default_value = true)]
    health_interval: i64,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int", allow_hyphen_values = true, value_parser = values::go_int, default_value = "0")]
    health_retries: i64,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration", allow_hyphen_values = true, value_parser = values::go_duration, default_value = "0", hide_default_value = true)]
    health_start_interval: i64,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration", allow_hyphen_values = true, value_parser = values::go_duration, default_value = "0", hide_default_value = true)]
    health_start_period: i64,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration", allow_hyphen_values = true, value_parser = values::go_duration, default_value = "0", hide_default_value = true)]
    health_timeout: i64,
    /// Container host name
    #[arg(
        allow_hyphen_values = true,
        short = 'h',
        long,
        value_name = "string",
        default_value = ""
    )]
    hostname: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = values::go_bool)]
    init: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    ip: String,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    ip6: String,
    /// IPC mode to use
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    ipc: String,
    /// Container isolation technology
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    isolation: String,
    /// Kernel memory limit
    #[arg(allow_hyphen_values = true, long = "kernel-memory", value_name = "bytes", value_parser = values::ram_in_bytes, default_value = "0")]
    kernel_memory: i64,
    /// Set meta data on a container
    #[arg(allow_hyphen_values = true, short = 'l', long, value_name = "list", value_parser = values::validate_label)]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(allow_hyphen_values = true, long = "label-file", value_name = "list")]
    label_file: Vec<String>,
    /// Add link to another container
    #[arg(allow_hyphen_values = true, long, value_name = "list", value_parser = values::validate_link)]
    link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(
        allow_hyphen_values = true,
        long = "link-local-ip",
        value_name = "list"
    )]
    link_local_ip: Vec<String>,
    /// Logging driver for the container
    #[arg(
        allow_hyphen_values = true,
        long = "log-driver",
        value_name = "string",
        default_value = ""
    )]
    log_driver: String,
    /// Log driver options
    #[arg(allow_hyphen_values = true, long = "log-opt", value_name = "list")]
    log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(
        allow_hyphen_values = true,
        long = "mac-address",
        value_name = "string",
        default_value = ""
    )]
    mac_address: String,
    /// Memory limit
    #[arg(allow_hyphen_values = true, short = 'm', long, value_name = "bytes", value_parser = values::ram_in_bytes, default_value = "0")]
    memory: i64,
    /// Memory soft limit
    #[arg(allow_hyphen_values = true, long = "memory-reservation", value_name = "bytes", value_parser = values::ram_in_bytes, default_value = "0")]
    memory_reservation: i64,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true, value_parser = values::mem_swap_bytes, default_value = "0")]
    memory_swap: i64,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "-1")]
    memory_swappiness: i64,
    /// Attach a filesystem mount to the container
    #[arg(allow_hyphen_values = true, long, value_name = "mount", value_parser = values::parse_mount)]
    mount: Vec<Value>,
    /// Connect a container to a network
    #[arg(allow_hyphen_values = true, long, alias = "net", value_name = "network", value_parser = values::parse_network)]
    network: Vec<NetworkAttachment>,
    /// Add network-scoped alias for the container
    #[arg(
        allow_hyphen_values = true,
        long = "network-alias",
        alias = "net-alias",
        value_name = "list"
    )]
    network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = values::go_bool)]
    no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = values::go_bool)]
    oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true, value_parser = values::go_int, default_value = "0")]
    oom_score_adj: i64,
    /// PID namespace to use
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    pid: String,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true, value_parser = values::go_i64, default_value = "0")]
    pids_limit: i64,
    /// Give extended privileges to this container
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = values::go_bool)]
    privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(allow_hyphen_values = true, short = 'p', long, value_name = "list")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = values::go_bool)]
    read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = "no"
    )]
    restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = values::go_bool)]
    pub(crate) auto_remove: bool,
    /// Runtime to use for this container
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    runtime: String,
    /// Security Options
    #[arg(allow_hyphen_values = true, long = "security-opt", value_name = "list")]
    security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(allow_hyphen_values = true, long = "shm-size", value_name = "bytes", value_parser = values::ram_in_bytes, default_value = "0")]
    shm_size: i64,
    /// Signal to stop the container
    #[arg(
        allow_hyphen_values = true,
        long = "stop-signal",
        value_name = "string",
        default_value = ""
    )]
    stop_signal: String,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true, value_parser = values::go_int)]
    stop_timeout: Option<i64>,
    /// Storage driver options for the container
    #[arg(allow_hyphen_values = true, long = "storage-opt", value_name = "list")]
    storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(allow_hyphen_values = true, long, value_name = "map", value_parser = values::validate_sysctl)]
    sysctl: Vec<(String, String)>,
    /// Mount a tmpfs directory
    #[arg(allow_hyphen_values = true, long, value_name = "list")]
    tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Ulimit options
    #[arg(allow_hyphen_values = true, long, value_name = "ulimit", value_parser = values::parse_ulimit)]
    ulimit: Vec<Value>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(
        allow_hyphen_values = true,
        short = 'u',
        long,
        value_name = "string",
        default_value = ""
    )]
    user: String,
    /// User namespace to use
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    userns: String,
    /// UTS namespace to use
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    uts: String,
    /// Bind mount a volume
    #[arg(allow_hyphen_values = true, short = 'v', long, value_name = "list")]
    volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(
        allow_hyphen_values = true,
        long = "volume-driver",
        value_name = "string",
        default_value = ""
    )]
    volume_driver: String,
    /// Mount volumes from the specified container(s)
    #[arg(allow_hyphen_values = true, long = "volumes-from", value_name = "list")]
    volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(
        allow_hyphen_values = true,
        short = 'w',
        long,
        value_name = "string",
        default_value = ""
    )]
    workdir: String,
}

/// What [`ContainerFlags::build`] needs to know besides the flags.
pub(crate) struct BuildContext<'a> {
    /// The image as the user named it.
    pub(crate) image: &'a str,
    /// The command and its arguments after the image.
    pub(crate) cmd: &'a [String],
    /// The negotiated API version (fields differ below 1.44).
    pub(crate) api_version: &'a str,
    /// The terminal size of our stdout, (height, width), or (0, 0).
    pub(crate) console_size: (u16, u16),
}

/// The body of `POST /containers/create`.
#[derive(Debug)]
pub(crate) struct CreateRequest {
    /// `Config` with `HostConfig` and `NetworkingConfig` inside, as the API takes it.
    pub(crate) body: Value,
}

impl CreateRequest {
    /// `Config.Tty`.
    pub(crate) fn tty(&self) -> bool {
        self.body["Tty"].as_bool().unwrap_or(false)
    }

    /// Which streams `run` attaches: (stdin, stdout, stderr).
    pub(crate) fn attach(&self) -> (bool, bool, bool) {
        let b = |k: &str| self.body[k].as_bool().unwrap_or(false);
        (b("AttachStdin"), b("AttachStdout"), b("AttachStderr"))
    }

    /// `run -d`: nothing attached, stdin not closed after one client.
    pub(crate) fn detach(&mut self) {
        for k in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
            self.body[k] = Value::Bool(false);
        }
    }
}

/// Go's `[]string` in JSON: `null` when nil (no values), else the list.
fn nil_or_list(v: &[String]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

impl ContainerFlags {
    /// The flags given whose support depends on the daemon (docker's
    /// "version" and "ostype" flag annotations).
    pub(crate) fn versioned(&self) -> Vec<(&'static str, &'static str, bool)> {
        vec![
            ("annotation", "1.43", !self.annotation.is_empty()),
            ("cgroupns", "1.41", !self.cgroupns.is_empty()),
            ("cpu-count", "windows", self.cpu_count != 0),
            ("cpu-percent", "windows", self.cpu_percent != 0),
            (
                "health-start-interval",
                "1.44",
                self.health_start_interval != 0,
            ),
        ]
    }

    /// docker's `parse`: the create request for these flags.
    ///
    /// # Errors
    /// docker's message for the first invalid option.
    pub(crate) fn build(&self, ctx: &BuildContext<'_>) -> Result<CreateRequest, String> {
        let mut attach_stdin = self.attach.iter().any(|a| a == "stdin");
        let mut attach_stdout = self.attach.iter().any(|a| a == "stdout");
        let mut attach_stderr = self.attach.iter().any(|a| a == "stderr");
        if !self.mac_address.is_empty() && !values::valid_mac(&self.mac_address) {
            return Err(format!("{} is not a valid mac address", self.mac_address));
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        let swappiness = self.memory_swappiness;
        if swappiness != -1 && !(0..=100).contains(&swappiness) {
            return Err(format!(
                "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
            ));
        }

        // -v: sources make binds, the rest anonymous volumes (duplicates once).
        let mut binds: Vec<String> = Vec::new();
        let mut volumes: BTreeMap<String, Value> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for spec in &self.volume {
            if !seen.insert(spec.as_str()) {
                continue;
            }
            let (source, is_path) = values::volume_spec_source(spec)?;
            if source.is_empty() {
                volumes.insert(spec.clone(), json!({}));
            } else if is_path {
                binds.push(values::bind_with_absolute_source(spec));
            } else {
                binds.push(spec.clone());
            }
        }

        let mut tmpfs = Map::new();
        for t in &self.tmpfs {
            let (k, v, _) = cut(t, ':');
            tmpfs.insert(k.to_string(), v.into());
        }

        let entrypoint = match self.entrypoint.as_deref() {
            None => Value::Null,
            Some(e) => json!([e]),
        };

        let mut ports = values::parse_publish(&self.publish)?;
        for e in &self.expose {
            for p in values::parse_expose(e)? {
                ports.exposed.insert(p);
            }
        }

        let mut devices = Vec::new();
        let mut cdi_devices = Vec::new();
        for d in &self.device {
            if values::is_cdi_name(d) {
                cdi_devices.push(d.clone());
            } else {
                devices.push(values::parse_linux_device(d)?);
            }
        }

        let env = self.environment()?;
        let mut labels_list = Vec::new();
        for f in &self.label_file {
            labels_list.extend(values::parse_kv_file(f, None)?);
        }
        labels_list.extend(self.label.iter().cloned());
        let labels: BTreeMap<&str, &str> = labels_list
            .iter()
            .map(|l| {
                let (k, v, _) = cut(l, '=');
                (k, v)
            })
            .collect();

        if !(self.pid.is_empty()
            || self.pid == "host"
            || self
                .pid
                .strip_prefix("container:")
                .is_some_and(|c| !c.is_empty()))
        {
            return Err("--pid: invalid PID mode".to_string());
        }
        if !(self.uts.is_empty() || self.uts == "host") {
            return Err("--uts: invalid UTS mode".to_string());
        }
        if !(self.userns.is_empty() || self.userns == "host") {
            return Err("--userns: invalid USER mode".to_string());
        }
        if !matches!(self.cgroupns.as_str(), "" | "host" | "private") {
            return Err("--cgroupns: invalid CGROUP mode".to_string());
        }
        let (restart_name, restart_count) = values::parse_restart_policy(&self.restart)?;

        let log_config: BTreeMap<&str, &str> = self
            .log_opt
            .iter()
            .map(|o| {
                let (k, v, _) = cut(o, '=');
                (k, v)
            })
            .collect();
        if self.log_driver == "none" && !self.log_opt.is_empty() {
            return Err(format!(
                "invalid logging opts for driver {}",
                self.log_driver
            ));
        }

        let security = values::parse_security_opts(&self.security_opt)?;
        let unconfined = security.iter().any(|o| o == "systempaths=unconfined");
        // Go filters into `opts[:0]`: still an empty (not nil) list when
        // every option was filtered out.
        let security = if self.security_opt.is_empty() {
            Value::Null
        } else {
            json!(
                security
                    .into_iter()
                    .filter(|o| o != "systempaths=unconfined")
                    .collect::<Vec<String>>()
            )
        };
        let (masked, readonly_paths) = if unconfined {
            (json!([]), json!([]))
        } else {
            (Value::Null, Value::Null)
        };

        let mut storage = Map::new();
        for o in &self.storage_opt {
            let (k, v, ok) = cut(o, '=');
            if !ok {
                return Err("invalid storage option".to_string());
            }
            storage.insert(k.to_string(), v.into());
        }

        let healthcheck = self.healthcheck()?;

        let mut device_requests = Value::Null;
        if !cdi_devices.is_empty() {
            device_requests = json!([{
                "Driver": "cdi", "Count": 0, "DeviceIDs": cdi_devices,
                "Capabilities": null, "Options": null,
            }]);
        }

        let network_mode = self
            .network
            .first()
            .map_or("default".to_string(), |n| n.target.clone());
        let endpoints = self.endpoints()?;

        let mut ulimits: Vec<Value> = Vec::new();
        for u in &self.ulimit {
            // Later values for the same name replace earlier ones; sorted by name.
            ulimits.retain(|x| x["Name"] != u["Name"]);
            ulimits.push(u.clone());
        }
        ulimits.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));

        let sysctls: BTreeMap<&str, &str> = self
            .sysctl
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let annotations: BTreeMap<&str, &str> = self
            .annotation
            .iter()
            .map(|a| {
                let (k, v, _) = cut(a, '=');
                (k, v)
            })
            .collect();

        let mut config = json!({
            "Hostname": self.hostname,
            "Domainname": self.domainname,
            "User": self.user,
            "AttachStdin": attach_stdin,
            "AttachStdout": attach_stdout,
            "AttachStderr": attach_stderr,
            "Tty": self.tty,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive && attach_stdin,
            "Env": nil_or_list(&env),
            "Cmd": nil_or_list(ctx.cmd),
            "Image": ctx.image,
            "Volumes": volumes,
            "WorkingDir": self.workdir,
            "Entrypoint": entrypoint,
            "OnBuild": null,
            "Labels": labels,
        });
        let c = config.as_object_mut().expect("a JSON object literal");
        if !ports.exposed.is_empty() {
            let exposed: Map<String, Value> = ports
                .exposed
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("ExposedPorts".into(), Value::Object(exposed));
        }
        if let Some(h) = healthcheck {
            c.insert("Healthcheck".into(), h);
        }
        if !self.stop_signal.is_empty() {
            c.insert("StopSignal".into(), self.stop_signal.clone().into());
        }
        if let Some(t) = self.stop_timeout {
            c.insert("StopTimeout".into(), t.into());
        }
        // The container-wide MacAddress is deprecated from API 1.44 on, where
        // the endpoint carries it.
        if !self.mac_address.is_empty() && version_less(ctx.api_version, "1.44") {
            c.insert("MacAddress".into(), self.mac_address.clone().into());
        }

        let port_bindings: Map<String, Value> = ports
            .bindings
            .iter()
            .map(|(port, list)| {
                let list: Vec<Value> = list
                    .iter()
                    .map(|(ip, hp)| json!({"HostIp": ip, "HostPort": hp}))
                    .collect();
                (port.clone(), Value::Array(list))
            })
            .collect();

        let mut host = json!({
            "Binds": nil_or_list(&binds),
            "ContainerIDFile": self.cidfile,
            "LogConfig": {"Type": self.log_driver, "Config": log_config},
            "NetworkMode": network_mode,
            "PortBindings": port_bindings,
            "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": restart_count},
            "AutoRemove": self.auto_remove && !version_less(ctx.api_version, "1.25"),
            "VolumeDriver": self.volume_driver,
            "VolumesFrom": nil_or_list(&self.volumes_from),
            "ConsoleSize": [ctx.console_size.0, ctx.console_size.1],
            "CapAdd": normalize_capabilities(&self.cap_add),
            "CapDrop": normalize_capabilities(&self.cap_drop),
            "CgroupnsMode": self.cgroupns,
            "Dns": self.dns,
            "DnsOptions": self.dns_option,
            "DnsSearch": self.dns_search,
            "ExtraHosts": nil_or_list(&self.add_host),
            "GroupAdd": nil_or_list(&self.group_add),
            "IpcMode": self.ipc,
            "Cgroup": "",
            "Links": nil_or_list(&self.link),
            "OomScoreAdj": self.oom_score_adj,
            "PidMode": self.pid,
            "Privileged": self.privileged,
            "PublishAllPorts": self.publish_all,
            "ReadonlyRootfs": self.read_only,
            "SecurityOpt": security,
            "UTSMode": self.uts,
            "UsernsMode": self.userns,
            "ShmSize": self.shm_size,
            "Isolation": self.isolation,
            // Resources
            "CpuShares": self.cpu_shares,
            "Memory": self.memory,
            "NanoCpus": self.cpus,
            "CgroupParent": self.cgroup_parent,
            "BlkioWeight": self.blkio_weight,
            "BlkioWeightDevice": self.blkio_weight_device,
            "BlkioDeviceReadBps": self.device_read_bps,
            "BlkioDeviceWriteBps": self.device_write_bps,
            "BlkioDeviceReadIOps": self.device_read_iops,
            "BlkioDeviceWriteIOps": self.device_write_iops,
            "CpuPeriod": self.cpu_period,
            "CpuQuota": self.cpu_quota,
            "CpuRealtimePeriod": self.cpu_rt_period,
            "CpuRealtimeRuntime": self.cpu_rt_runtime,
            "CpusetCpus": self.cpuset_cpus,
            "CpusetMems": self.cpuset_mems,
            "Devices": devices,
            "DeviceCgroupRules": nil_or_list(&self.device_cgroup_rule),
            "DeviceRequests": device_requests,
            "MemoryReservation": self.memory_reservation,
            "MemorySwap": self.memory_swap,
            "MemorySwappiness": swappiness,
            "OomKillDisable": self.oom_kill_disable,
            "PidsLimit": self.pids_limit,
            "Ulimits": ulimits,
            "CpuCount": self.cpu_count,
            "CpuPercent": self.cpu_percent,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": masked,
            "ReadonlyPaths": readonly_paths,
        });
        let h = host.as_object_mut().expect("a JSON object literal");
        if !annotations.is_empty() {
            h.insert("Annotations".into(), json!(annotations));
        }
        if !storage.is_empty() {
            h.insert("StorageOpt".into(), Value::Object(storage));
        }
        if !tmpfs.is_empty() {
            h.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        if !sysctls.is_empty() {
            h.insert("Sysctls".into(), json!(sysctls));
        }
        if !self.runtime.is_empty() {
            h.insert("Runtime".into(), self.runtime.clone().into());
        }
        // KernelMemory exists only from API 1.40 to 1.41.
        if self.kernel_memory != 0
            && !version_less(ctx.api_version, "1.40")
            && version_less(ctx.api_version, "1.42")
        {
            h.insert("KernelMemory".into(), self.kernel_memory.into());
        }
        if !self.mount.is_empty() {
            h.insert("Mounts".into(), json!(self.mount));
        }
        if let Some(init) = self.init {
            h.insert("Init".into(), init.into());
        }
        if self.auto_remove && restart_name != "no" && !restart_name.is_empty() {
            return Err("conflicting options: cannot specify both --restart and --rm".to_string());
        }
        // Older daemons read the MAC address from Config (see above).
        if version_less(ctx.api_version, "1.44") {
            if let Some(mac) = endpoints
                .get(&network_name(&network_mode))
                .and_then(|e| e["MacAddress"].as_str())
                .filter(|m| !m.is_empty())
            {
                c_insert_mac(&mut config, mac);
            }
        }

        let obj = config.as_object_mut().expect("a JSON object literal");
        obj.insert("HostConfig".into(), host);
        obj.insert(
            "NetworkingConfig".into(),
            json!({"EndpointsConfig": endpoints}),
        );
        Ok(CreateRequest { body: config })
    }

    /// `--env-file` contents then `-e` values (a later `-e` of the same name
    /// replaces an earlier one, as docker's map of them does).
    fn environment(&self) -> Result<Vec<String>, String> {
        let lookup = |k: &str| std::env::var(k).ok();
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(values::parse_kv_file(f, Some(&lookup))?);
        }
        let mut from_flags: Vec<String> = Vec::new();
        for e in &self.env {
            let (k, _, _) = cut(e, '=');
            from_flags.retain(|x| cut(x, '=').0 != k);
            from_flags.push(e.clone());
        }
        env.extend(from_flags);
        Ok(env)
    }

    /// docker's `--health-*`/`--no-healthcheck` handling.
    fn healthcheck(&self) -> Result<Option<Value>, String> {
        let have = !self.health_cmd.is_empty()
            || self.health_interval != 0
            || self.health_timeout != 0
            || self.health_start_period != 0
            || self.health_retries != 0
            || self.health_start_interval != 0;
        if self.no_healthcheck {
            if have {
                return Err("--no-healthcheck conflicts with --health-* options".to_string());
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !have {
            return Ok(None);
        }
        for (v, name) in [
            (self.health_interval, "--health-interval"),
            (self.health_timeout, "--health-timeout"),
            (self.health_retries, "--health-retries"),
            (self.health_start_period, "--health-start-period"),
            (self.health_start_interval, "--health-start-interval"),
        ] {
            if v < 0 {
                return Err(format!("{name} cannot be negative"));
            }
        }
        let mut h = Map::new();
        if !self.health_cmd.is_empty() {
            h.insert("Test".into(), json!(["CMD-SHELL", self.health_cmd]));
        }
        for (k, v) in [
            ("Interval", self.health_interval),
            ("Timeout", self.health_timeout),
            ("StartPeriod", self.health_start_period),
            ("StartInterval", self.health_start_interval),
            ("Retries", self.health_retries),
        ] {
            if v != 0 {
                h.insert(k.into(), v.into());
            }
        }
        Ok(Some(Value::Object(h)))
    }

    /// docker's `parseNetworkOpts`: endpoint settings per network.
    fn endpoints(&self) -> Result<Map<String, Value>, String> {
        let mut endpoints = Map::new();
        let (mut user_defined, mut builtin) = (false, false);
        if self.network.is_empty() {
            let mut n = NetworkAttachment {
                target: "default".to_string(),
                ..Default::default()
            };
            self.apply_container_options(&mut n)?;
            endpoints.insert("default".into(), endpoint_settings(&n)?);
        }
        for (i, n) in self.network.iter().enumerate() {
            let mut n = n.clone();
            if values::is_user_defined_network(&n.target) {
                user_defined = true;
            } else {
                builtin = true;
            }
            if i == 0 {
                self.apply_container_options(&mut n)?;
            }
            let ep = endpoint_settings(&n)?;
            if endpoints.contains_key(&n.target) {
                return Err(format!(
                    "network {:?} is specified multiple times",
                    n.target
                ));
            }
            // A single network without options sends no endpoint config.
            if i == 0
                && self.network.len() == 1
                && ep == endpoint_settings(&NetworkAttachment::default_for(&n.target))?
            {
                continue;
            }
            endpoints.insert(n.target.clone(), ep);
        }
        if user_defined && builtin {
            return Err("conflicting options: cannot attach both user-defined and non-user-defined network-modes".to_string());
        }
        Ok(endpoints)
    }

    /// docker's `applyContainerOptions`: the flat flags apply to the first network.
    fn apply_container_options(&self, n: &mut NetworkAttachment) -> Result<(), String> {
        let conflict = |what: &str| Err(format!("conflicting options: cannot specify both {what}"));
        if !n.aliases.is_empty() && !self.network_alias.is_empty() {
            return conflict("--network-alias and per-network alias");
        }
        if !n.links.is_empty() && !self.link.is_empty() {
            return conflict("--link and per-network links");
        }
        if !n.ipv4.is_empty() && !self.ip.is_empty() {
            return conflict("--ip and per-network IPv4 address");
        }
        if !n.ipv6.is_empty() && !self.ip6.is_empty() {
            return conflict("--ip6 and per-network IPv6 address");
        }
        if !n.mac.is_empty() && !self.mac_address.is_empty() {
            return conflict("--mac-address and per-network MAC address");
        }
        if !n.link_local_ips.is_empty() && !self.link_local_ip.is_empty() {
            return conflict("--link-local-ip and per-network link-local IP addresses");
        }
        if !self.network_alias.is_empty() {
            n.aliases = self.network_alias.clone();
        }
        if values::is_user_defined_network(&n.target) && !self.link.is_empty() {
            n.links = self.link.clone();
        }
        if !self.ip.is_empty() {
            n.ipv4 = self.ip.clone();
        }
        if !self.ip6.is_empty() {
            n.ipv6 = self.ip6.clone();
        }
        if !self.mac_address.is_empty() {
            n.mac = self.mac_address.clone();
        }
        if !self.link_local_ip.is_empty() {
            n.link_local_ips = self.link_local_ip.clone();
        }
        Ok(())
    }
}

impl NetworkAttachment {
    fn default_for(target: &str) -> Self {
        NetworkAttachment {
            target: target.to_string(),
            ..Default::default()
        }
    }
}

/// docker's `parseNetworkAttachmentOpt`: one `EndpointSettings`.
fn endpoint_settings(ep: &NetworkAttachment) -> Result<Value, String> {
    if ep.target.trim().is_empty() {
        return Err("no name set for network".to_string());
    }
    if !values::is_user_defined_network(&ep.target) {
        if !ep.aliases.is_empty() {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".to_string(),
            );
        }
        if !ep.links.is_empty() {
            return Err("links are only supported for user-defined networks".to_string());
        }
    }
    let ipam = if !ep.ipv4.is_empty() || !ep.ipv6.is_empty() || !ep.link_local_ips.is_empty() {
        let mut m = Map::new();
        if !ep.ipv4.is_empty() {
            m.insert("IPv4Address".into(), ep.ipv4.clone().into());
        }
        if !ep.ipv6.is_empty() {
            m.insert("IPv6Address".into(), ep.ipv6.clone().into());
        }
        if !ep.link_local_ips.is_empty() {
            m.insert("LinkLocalIPs".into(), json!(ep.link_local_ips));
        }
        Value::Object(m)
    } else {
        Value::Null
    };
    if !ep.mac.is_empty() && !values::valid_mac(&ep.mac) {
        return Err(format!("{} is not a valid mac address", ep.mac));
    }
    Ok(json!({
        "IPAMConfig": ipam,
        "Links": nil_or_list(&ep.links),
        "Aliases": nil_or_list(&ep.aliases),
        "MacAddress": ep.mac,
        "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) },
        "GwPriority": ep.gw_priority,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": null,
    }))
}

/// `NetworkMode.NetworkName()`: the endpoint key of the main network.
fn network_name(mode: &str) -> String {
    if mode.starts_with("container:") {
        "container".to_string()
    } else {
        mode.to_string()
    }
}

fn c_insert_mac(config: &mut Value, mac: &str) {
    if let Some(c) = config.as_object_mut() {
        c.insert("MacAddress".into(), mac.into());
    }
}

/// The docker client's `normalizeCapabilities`: upper case, "CAP_" prefix
/// (except "ALL"), duplicates dropped, sorted; `null` when none.
fn normalize_capabilities(caps: &[String]) -> Value {
    if caps.is_empty() {
        return Value::Null;
    }
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let c = c.to_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    json!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Wrapper {
        #[command(flatten)]
        flags: ContainerFlags,
    }

    fn build(args: &[&str]) -> Result<Value, String> {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        let w = Wrapper::try_parse_from(argv).map_err(|e| e.to_string())?;
        let ctx = BuildContext {
            image: "busybox",
            cmd: &[],
            api_version: "1.44",
            console_size: (0, 0),
        };
        w.flags.build(&ctx).map(|r| r.body)
    }

    #[test]
    fn no_flags_match_dockers_defaults() {
        let b = build(&[]).unwrap();
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["Env"], Value::Null);
        assert_eq!(b["Volumes"], json!({}));
        assert_eq!(b["Labels"], json!({}));
        assert!(b.get("ExposedPorts").is_none());
        let h = &b["HostConfig"];
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(h["NetworkMode"], "default");
        assert_eq!(h["Dns"], json!([]));
        assert_eq!(h["Binds"], Value::Null);
        assert_eq!(h["MemorySwappiness"], -1);
        assert_eq!(h["LogConfig"], json!({"Type": "", "Config": {}}));
        assert!(h.get("Init").is_none() && h.get("Mounts").is_none() && h.get("Tmpfs").is_none());
        let ep = &b["NetworkingConfig"]["EndpointsConfig"]["default"];
        assert_eq!(ep["IPAMConfig"], Value::Null);
        assert_eq!(ep["GwPriority"], 0);
    }

    #[test]
    fn resources_use_dockers_units() {
        let b = build(&[
            "-m",
            "512m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--shm-size",
            "64m",
            "-c",
            "512",
            "--pids-limit",
            "100",
        ])
        .unwrap();
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 536870912);
        assert_eq!(h["MemorySwap"], -1);
        assert_eq!(h["NanoCpus"], 1500000000);
        assert_eq!(h["ShmSize"], 67108864);
        assert_eq!(h["CpuShares"], 512);
        assert_eq!(h["PidsLimit"], 100);
    }

    #[test]
    fn interactive_attaches_and_closes_stdin_once() {
        let b = build(&["-i"]).unwrap();
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        let a = build(&["-a", "stderr"]).unwrap();
        assert_eq!(
            (a["AttachStdout"].clone(), a["AttachStderr"].clone()),
            (json!(false), json!(true))
        );
    }

    #[test]
    fn entrypoint_empty_string_clears_it() {
        assert_eq!(
            build(&["--entrypoint", ""]).unwrap()["Entrypoint"],
            json!([""])
        );
        assert_eq!(
            build(&["--entrypoint", "sh"]).unwrap()["Entrypoint"],
            json!(["sh"])
        );
        assert_eq!(build(&[]).unwrap()["Entrypoint"], Value::Null);
    }

    #[test]
    fn volumes_split_into_binds_and_anonymous_volumes() {
        let b = build(&[
            "-v",
            "/data",
            "-v",
            "/tmp:/host:ro",
            "-v",
            "named:/n",
            "-v",
            "/data",
        ])
        .unwrap();
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(
            b["HostConfig"]["Binds"],
            json!(["/tmp:/host:ro", "named:/n"])
        );
    }

    #[test]
    fn ports_and_expose_fill_both_maps() {
        let b = build(&["-p", "8080:80", "--expose", "1000-1001", "-P"]).unwrap();
        assert_eq!(
            b["ExposedPorts"],
            json!({"1000/tcp": {}, "1001/tcp": {}, "80/tcp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(b["HostConfig"]["PublishAllPorts"], true);
    }

    #[test]
    fn env_later_values_win_and_files_come_first() {
        let dir = std::env::temp_dir().join(format!("berth-envfile-{}", std::process::id()));
        std::fs::write(&dir, "F=1\n").unwrap();
        let b = build(&[
            "-e",
            "A=1",
            "-e",
            "A=2",
            "--env-file",
            dir.to_str().unwrap(),
        ])
        .unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(b["Env"], json!(["F=1", "A=2"]));
    }

    #[test]
    fn options_and_conflicts_report_dockers_messages() {
        assert_eq!(
            build(&["--rm", "--restart", "always"]).unwrap_err(),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert!(build(&["--rm=false", "--restart", "always"]).is_ok());
        assert_eq!(
            build(&["--pid", "bogus"]).unwrap_err(),
            "--pid: invalid PID mode"
        );
        assert_eq!(
            build(&["--network-alias", "x"]).unwrap_err(),
            "network-scoped aliases are only supported for user-defined networks"
        );
        assert_eq!(
            build(&["--memory-swappiness", "200"]).unwrap_err(),
            "invalid value: 200. Valid memory swappiness range is 0-100"
        );
        assert_eq!(
            build(&["--no-healthcheck", "--health-cmd", "x"]).unwrap_err(),
            "--no-healthcheck conflicts with --health-* options"
        );
    }

    #[test]
    fn networks_send_endpoints_only_when_configured() {
        let b = build(&["--network", "mynet"]).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "mynet");
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));
        let a = build(&[
            "--network",
            "mynet",
            "--network-alias",
            "web",
            "--ip",
            "10.0.0.5",
        ])
        .unwrap();
        let ep = &a["NetworkingConfig"]["EndpointsConfig"]["mynet"];
        assert_eq!(ep["Aliases"], json!(["web"]));
        assert_eq!(ep["IPAMConfig"], json!({"IPv4Address": "10.0.0.5"}));
        assert!(build(&["--network", "host", "--network", "mynet"]).is_err());
    }

    #[test]
    fn health_and_init_and_caps() {
        let b = build(&[
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--init",
            "--cap-add",
            "net_admin",
            "--cap-add",
            "CAP_NET_ADMIN",
        ])
        .unwrap();
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5000000000i64})
        );
        assert_eq!(b["HostConfig"]["Init"], true);
        assert_eq!(b["HostConfig"]["CapAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(
            build(&["--init=false"]).unwrap()["HostConfig"]["Init"],
            false
        );
        assert_eq!(build(&["--stop-timeout", "3"]).unwrap()["StopTimeout"], 3);
    }
}
