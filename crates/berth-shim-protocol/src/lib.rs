//! The contract between `berthd` and `berth-shim`, the per-container supervisor.
//!
//! This crate is types only, so that the daemon can speak to shims without linking the
//! container runtime (libcontainer must never run inside the multi-threaded daemon; see
//! ARCHITECTURE.md).
//!
//! # Lifecycle
//! 1. berthd prepares a *state directory* for the container (under its exec root),
//!    mounts the container's rootfs, and writes [`LaunchSpec`] to
//!    `<state-dir>/launch.json` (see [`LAUNCH_FILE`]).
//! 2. berthd spawns `berth-shim <state-dir>` with stdout connected to a pipe. The shim
//!    starts its own session (it must outlive the daemon), binds
//!    `<state-dir>/shim.sock` ([`SOCKET_FILE`]), creates the container (namespaces,
//!    cgroups, mounts; the process is ready but has not exec'd the user command), then
//!    writes exactly one JSON line, a [`Ready`], to that stdout and closes it. From
//!    then on it is no longer the daemon's child in any way that matters.
//! 3. berthd connects clients that attached before start ([`Request::Attach`]), then
//!    sends [`Request::Start`]. Output the process writes after start reaches every
//!    attach stream connected before it, and always the log file.
//! 4. When the process exits, the shim records an [`ExitStatus`] in
//!    `<state-dir>/exit.json` ([`EXIT_FILE`], written atomically) *before* answering
//!    any [`Request::Wait`], drains stdout/stderr into the log and attach streams,
//!    tears the container down (cgroup, namespaces), and exits. A daemon restarted
//!    while the shim was gone learns the outcome from that file.
//!
//! # Wire format on `shim.sock`
//! One connection per request. The client writes one JSON [`Request`] followed by
//! `\n`; the shim answers with one JSON [`Reply`] followed by `\n`. Only
//! [`Request::Attach`] keeps the connection open afterwards, as a raw byte stream:
//! - shim → client: the container's output. Without a TTY every chunk is framed as
//!   Docker frames it: `[stream, 0, 0, 0, len as u32 big-endian]` then `len` bytes,
//!   stream 1 = stdout, 2 = stderr. With a TTY: raw bytes. The shim closes the
//!   connection after the process exited and its output is drained.
//! - client → shim (when the attach asked for stdin): raw stdin bytes. When the client
//!   half-closes its write side, the shim closes the container's stdin if the launch
//!   spec says `stdin_once`, else it just stops reading from that client.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The launch spec's file name in the state directory.
pub const LAUNCH_FILE: &str = "launch.json";
/// The control socket's file name in the state directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// The exit record's file name in the state directory.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's own log (its stderr), in the state directory.
pub const SHIM_LOG_FILE: &str = "shim.log";

/// Everything the shim needs to create and run one container. The daemon has already
/// applied Docker's semantics that depend on daemon state (image defaults merged,
/// volumes resolved to host paths, /etc/hosts etc. generated); the runtime applies
/// Docker's *defaults* (default capabilities, seccomp profile, masked paths, default
/// mounts and devices) on top of this.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// The container ID (64 hex).
    pub id: String,
    /// The container's root filesystem, already mounted by the daemon.
    pub rootfs: PathBuf,
    /// Mount the rootfs read-only (`--read-only`).
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// The process to run.
    pub process: ProcessSpec,
    /// `--hostname`.
    pub hostname: String,
    /// `--domainname`.
    #[serde(default)]
    pub domainname: String,
    /// Mounts on top of the runtime's defaults, in order: binds, volumes, tmpfs, and
    /// the daemon-generated /etc/hosts, /etc/hostname, /etc/resolv.conf.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `--privileged`: all capabilities, all devices, no masked/read-only paths, no
    /// seccomp, /sys read-write.
    #[serde(default)]
    pub privileged: bool,
    /// `--cap-add`, Docker's spelling (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `--cap-drop`, likewise.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=...`.
    #[serde(default)]
    pub seccomp: Seccomp,
    /// `--device`.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// Namespace choices.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// Cgroup limits.
    #[serde(default)]
    pub resources: Resources,
    /// The cgroup path relative to each hierarchy's root (`/berth/<id>`), or under
    /// `--cgroup-parent`.
    pub cgroup_path: String,
    /// `--sysctl`.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// Size of /dev/shm in bytes (`--shm-size`, Docker's default 64 MiB).
    pub shm_size: u64,
    /// `--ulimit`.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj`.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `--init`: run a minimal init as PID 1 that forwards signals and reaps.
    #[serde(default)]
    pub init: bool,
    /// `HostConfig.MaskedPaths`: `None` for Docker's defaults ([`default_masked_paths`]),
    /// empty for none (`--security-opt systempaths=unconfined`). Ignored when privileged.
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    /// `HostConfig.ReadonlyPaths`, as `masked_paths` ([`READONLY_PATHS`] by default).
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    /// Where and how the shim writes the json-file log.
    pub log: LogSpec,
}

/// moby's default masked paths, before the per-CPU ones [`default_masked_paths`] adds.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// moby's default read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default masked paths on this host: [`MASKED_PATHS`] and each possible
/// CPU's `thermal_throttle` directory that exists (GHSA-6fw5-f8r9-fgfm). The daemon
/// records them at create, as Docker does, and the runtime falls back to them.
pub fn default_masked_paths() -> Vec<String> {
    let mut out: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    out.extend(thermal_throttle_paths());
    out
}

/// `/sys/devices/system/cpu/cpuN/thermal_throttle` for the CPUs the kernel lists as
/// possible, where it exists.
pub fn thermal_throttle_paths() -> Vec<String> {
    let Ok(possible) = std::fs::read_to_string("/sys/devices/system/cpu/possible") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for range in possible.trim().split(',') {
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
            None => {
                let n: u32 = range.parse().unwrap_or(0);
                (n, n)
            }
        };
        for cpu in lo..=hi {
            let path = format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle");
            if std::path::Path::new(&path).exists() {
                out.push(path);
            }
        }
    }
    out
}

/// The container's process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in the container's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory inside the container (absolute; created if missing, as Docker does).
    pub cwd: String,
    /// `--user` as Docker takes it: "", "uid", "uid:gid", "name", "name:group". The
    /// runtime resolves names with the container's /etc/passwd and /etc/group, read
    /// through the rootfs with in-root resolution, and adds the user's supplementary
    /// groups from /etc/group.
    #[serde(default)]
    pub user: String,
    /// `--group-add`.
    #[serde(default)]
    pub additional_groups: Vec<String>,
    /// Allocate a pseudo-terminal (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open (`-i`); without it the process gets /dev/null.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client's stdin ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// Initial terminal size (height, width) with a TTY.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

/// One mount, in OCI terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    /// `bind`, `tmpfs`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Host path for binds; the fs name for others.
    pub source: String,
    /// Mount options (`rbind`, `ro`, `rprivate`, `size=…`, `mode=…`).
    #[serde(default)]
    pub options: Vec<String>,
}

/// `--security-opt seccomp=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// A profile in Docker's JSON format.
    Custom(String),
}

/// `--device HOST[:CONTAINER[:PERMS]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Host device path.
    pub host_path: String,
    /// Path inside the container.
    pub container_path: String,
    /// `rwm` subset.
    pub permissions: String,
}

/// Which namespaces the container shares with the host (or another namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// The network namespace.
    #[serde(default)]
    pub network: NetworkNamespace,
    /// `--pid host`.
    #[serde(default)]
    pub pid_host: bool,
    /// `--ipc host`.
    #[serde(default)]
    pub ipc_host: bool,
    /// `--uts host`.
    #[serde(default)]
    pub uts_host: bool,
    /// `--cgroupns host` (Docker's default on cgroup v1 is host; private on v2).
    #[serde(default)]
    pub cgroupns_host: bool,
}

/// The network namespace choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkNamespace {
    /// A new namespace with only loopback (`--network none`).
    #[default]
    New,
    /// The host's (`--network host`).
    Host,
    /// Join an existing namespace (a bind-mounted nsfs path, for bridge networking).
    Path(PathBuf),
}

/// Cgroup limits, with Docker's meaning; `None` leaves the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `-m`, bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`, bytes of memory+swap; -1 unlimited.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpu-quota` (or from `--cpus`), microseconds per period.
    pub cpu_quota: Option<i64>,
    /// `--cpu-period`, microseconds.
    pub cpu_period: Option<u64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--oom-kill-disable`.
    #[serde(default)]
    pub oom_kill_disable: bool,
}

/// `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, …
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The json-file log (Docker's format: one `{"log","stream","time"}` object per line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpec {
    /// The log file (`<id>-json.log`).
    pub path: PathBuf,
    /// `--log-opt max-size`, bytes; rotation is off when `None`.
    pub max_size: Option<u64>,
    /// `--log-opt max-file` (default 1): rotated files are `path.1` … `path.N-1`.
    pub max_files: u32,
}

/// The shim's first and only line on its stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// The container exists and waits for [`Request::Start`].
    Created {
        /// The shim's own PID.
        shim_pid: u32,
        /// The container init's PID, in the host PID namespace.
        pid: u32,
    },
    /// The container could not be created.
    Failed(LaunchError),
}

/// Why a container could not be created or started, classified the way the docker
/// CLI maps errors to exit codes (127 not found, 126 cannot invoke, 125 otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchError {
    /// The class.
    pub kind: LaunchErrorKind,
    /// A message in Docker's words where it has them, e.g.
    /// `exec: "nope": executable file not found in $PATH`.
    pub message: String,
}

/// See [`LaunchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchErrorKind {
    /// The command does not exist (exit 127).
    CommandNotFound,
    /// The command exists but cannot be executed (exit 126).
    CommandNotExecutable,
    /// A bad argument in the spec (unknown capability, bad device, …).
    InvalidSpec,
    /// Anything else (exit 125).
    Other,
}

/// A request on `shim.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Let the created process exec its command. Answered with [`Reply::Started`] or
    /// [`Reply::Error`] (an exec failure is a [`LaunchError`] here).
    Start,
    /// Stream stdio (see the crate docs). Answered with [`Reply::Ok`], then the stream.
    Attach {
        /// Forward this client's bytes to the container's stdin.
        stdin: bool,
        /// Send stdout.
        stdout: bool,
        /// Send stderr.
        stderr: bool,
    },
    /// Answered with [`Reply::Exited`] once the process has exited (at once if it has).
    Wait,
    /// Send a signal to the container's init ([`Reply::Ok`]).
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// The current status ([`Reply::State`]).
    State,
    /// Close the container's stdin ([`Reply::Ok`]).
    CloseStdin,
    /// Resize the TTY ([`Reply::Ok`]).
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Start another process in the running container (`docker exec`). Answered with
    /// [`Reply::Started`] once it has exec'd (or [`Reply::Error`]: the container does
    /// not run, the command is missing, …). Unless `detach`, the connection then
    /// carries the process's stdio exactly as an [`Request::Attach`] stream does
    /// (frames without a TTY, raw bytes with one; the client's bytes are its stdin when
    /// `attach_stdin`, and a half-close closes that stdin), and the shim closes it once
    /// the process has exited and its output is drained. A detached process gets
    /// /dev/null as stdio. Its outcome is then [`Request::ExecState`]'s.
    Exec(ExecSpec),
    /// The state of an exec ([`Reply::ExecState`]).
    ExecState {
        /// [`ExecSpec::exec_id`].
        exec_id: String,
    },
    /// Resize an exec's TTY ([`Reply::Ok`]).
    ExecResize {
        /// [`ExecSpec::exec_id`].
        exec_id: String,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
}

/// A process to start in a running container. The daemon has merged Docker's
/// defaults (the container's env, user and working directory); the shim applies the
/// container's rules (capabilities, seccomp profile, no-new-privileges) as for its init.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The exec's ID (64 hex), to find it again.
    pub exec_id: String,
    /// argv, as [`ProcessSpec::args`].
    pub args: Vec<String>,
    /// `KEY=value` entries (the container's, then `-e`).
    pub env: Vec<String>,
    /// Working directory (absolute; "" is the container's root).
    #[serde(default)]
    pub cwd: String,
    /// As [`ProcessSpec::user`].
    #[serde(default)]
    pub user: String,
    /// `exec --privileged`: every capability (the container's seccomp profile stays).
    #[serde(default)]
    pub privileged: bool,
    /// Allocate a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
    /// Give the process a stdin fed from this connection.
    #[serde(default)]
    pub attach_stdin: bool,
    /// Start it and answer at once; no stream.
    #[serde(default)]
    pub detach: bool,
    /// Initial terminal size (height, width) with a TTY.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

/// What an exec is doing ([`Reply::ExecState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    /// Its PID in the host PID namespace.
    pub pid: u32,
    /// The exit code once it has exited (128 + signal when killed).
    pub exit_code: Option<i32>,
}

/// A reply on `shim.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// The process runs.
    Started {
        /// Its PID in the host PID namespace.
        pid: u32,
    },
    /// The process has exited.
    Exited(ExitStatus),
    /// Current status.
    State(Status),
    /// An exec's state ([`Request::ExecState`]).
    ExecState(ExecState),
    /// The request failed.
    Error(LaunchError),
}

/// What the container is doing, as the shim sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, not started.
    Created {
        /// Init's PID.
        pid: u32,
    },
    /// Running.
    Running {
        /// Init's PID.
        pid: u32,
    },
    /// Exited.
    Exited(ExitStatus),
}

/// How the process ended; also the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal number when a signal killed it.
    pub exit_code: i32,
    /// The memory cgroup OOM-killed a process of the container.
    pub oom_killed: bool,
    /// RFC 3339 time with nanoseconds.
    pub finished_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_line() {
        let r = serde_json::to_string(&Request::Attach {
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .unwrap();
        assert_eq!(
            r,
            r#"{"attach":{"stdin":true,"stdout":true,"stderr":false}}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Start).unwrap(),
            r#""start""#
        );
        let e = Reply::Exited(ExitStatus {
            exit_code: 137,
            oom_killed: true,
            finished_at: "t".into(),
        });
        let back: Reply = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        let exec = Request::Exec(ExecSpec {
            exec_id: "e".into(),
            args: vec!["true".into()],
            ..ExecSpec::default()
        });
        let line = serde_json::to_string(&exec).unwrap();
        assert!(
            line.starts_with(r#"{"exec":{"exec_id":"e","args":["true"]"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), exec);
        assert_eq!(back, e);
    }
}
