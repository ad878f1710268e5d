//! berthd's configuration: dockerd's flags and its `daemon.json`, merged by dockerd's
//! rules.
//!
//! A setting may come from a flag or from the file, never both: dockerd refuses that
//! ("specified both as a flag and in the configuration file") rather than pick a
//! winner, and so does berthd. Unknown keys in the file are refused as well, so a typo
//! never silently leaves a default in force. The default file may be absent; a file
//! named with `--config-file` must exist.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;

/// Where clients find berthd when neither `-H` nor `hosts` says otherwise.
pub(crate) const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
/// The socket group dockerd uses by default; berthd falls back to root without it.
pub(crate) const DEFAULT_GROUP: &str = "docker";

/// The command line, with dockerd's flag names.
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: serves the Docker Engine API on a unix socket."
)]
struct Flags {
    /// Daemon socket to listen on (unix:///path); repeatable.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Root directory of persistent state.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root directory of runtime state.
    #[arg(long, value_name = "DIR", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Daemon configuration file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
    /// Path of the PID file [default: <exec-root>/berthd.pid].
    #[arg(short = 'p', long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Enable debug mode.
    #[arg(short = 'D', long)]
    debug: bool,
    /// Logging level ("debug"|"info"|"warn"|"error"|"fatal").
    #[arg(short = 'l', long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
    /// Logging format ("text"|"json").
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: String,
    /// Group owning the unix socket.
    #[arg(short = 'G', long, value_name = "GROUP", default_value = DEFAULT_GROUP)]
    group: String,
    /// Parent cgroup of every container (each under `<parent>/<id>`).
    #[arg(long, value_name = "PATH", default_value = "berth")]
    cgroup_parent: String,
    /// Registry (host:port or CIDR) that may be spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// Mirror tried first for Docker Hub images (http(s)://host:port); repeatable.
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// Maximum concurrent layer downloads per pull.
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_concurrent_downloads: usize,
    /// Maximum concurrent layer uploads per push.
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_concurrent_uploads: usize,
    /// The bridge device of the default `bridge` network (created and owned by berthd).
    #[arg(short = 'b', long, value_name = "NAME", default_value = "berth0")]
    bridge: String,
    /// The bridge's IP address and subnet, e.g. 172.18.0.1/16 [default: the first
    /// free private pool, 172.17.0.0/16 unless the host uses it].
    #[arg(long, value_name = "CIDR")]
    bip: Option<String>,
}

/// The keys `daemon.json` may hold; each is the name of a flag (`hosts` for `-H`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileConfig {
    hosts: Option<Vec<String>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    debug: Option<bool>,
    log_level: Option<String>,
    log_format: Option<String>,
    group: Option<String>,
    cgroup_parent: Option<String>,
    insecure_registries: Option<Vec<String>>,
    registry_mirrors: Option<Vec<String>>,
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
    bridge: Option<String>,
    bip: Option<String>,
}

/// File keys and the flag (clap id) each corresponds to.
const FILE_KEYS: &[(&str, &str)] = &[
    ("hosts", "hosts"),
    ("data-root", "data_root"),
    ("exec-root", "exec_root"),
    ("pidfile", "pidfile"),
    ("debug", "debug"),
    ("log-level", "log_level"),
    ("log-format", "log_format"),
    ("group", "group"),
    ("cgroup-parent", "cgroup_parent"),
    ("insecure-registries", "insecure_registries"),
    ("registry-mirrors", "registry_mirrors"),
    ("max-concurrent-downloads", "max_concurrent_downloads"),
    ("max-concurrent-uploads", "max_concurrent_uploads"),
    ("bridge", "bridge"),
    ("bip", "bip"),
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The configuration berthd runs with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// Socket paths to listen on.
    pub(crate) sockets: Vec<PathBuf>,
    pub(crate) data_root: PathBuf,
    pub(crate) exec_root: PathBuf,
    pub(crate) pidfile: PathBuf,
    /// A `tracing` filter directive: `debug`, `info`, `warn` or `error`.
    pub(crate) log_level: &'static str,
    pub(crate) debug: bool,
    pub(crate) log_format: LogFormat,
    pub(crate) group: String,
    /// The group was named by the user, so its absence is an error rather than a
    /// fallback to root.
    pub(crate) group_explicit: bool,
    /// Parent cgroup of containers (relative to each hierarchy's root).
    pub(crate) cgroup_parent: String,
    /// Registries spoken to over plain HTTP besides loopback.
    pub(crate) insecure_registries: Vec<String>,
    /// Mirrors tried first for Docker Hub images.
    pub(crate) registry_mirrors: Vec<String>,
    /// Layers downloaded at once per pull.
    pub(crate) max_concurrent_downloads: usize,
    /// Layers uploaded at once per push.
    pub(crate) max_concurrent_uploads: usize,
    /// The default bridge's device name.
    pub(crate) bridge: String,
    /// The default bridge's address and subnet.
    pub(crate) bip: Option<String>,
}

impl Config {
    /// Reads the command line and the configuration file.
    ///
    /// # Errors
    /// An explicitly named config file that cannot be read, malformed JSON, unknown
    /// keys, a setting given both ways, or an invalid value.
    pub(crate) fn load() -> anyhow::Result<Self> {
        let matches = Flags::command().get_matches();
        Self::from_matches(&matches)
    }

    fn from_matches(matches: &ArgMatches) -> anyhow::Result<Self> {
        let flags = Flags::from_arg_matches(matches)?;
        let from_command_line =
            |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let file = match std::fs::read_to_string(&flags.config_file) {
            Ok(text) => Some(text),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && !from_command_line("config_file") =>
            {
                None
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot read configuration file {}",
                        flags.config_file.display()
                    )
                });
            }
        };
        merge(flags, &from_command_line, file.as_deref())
    }
}

/// Merges `flags` with the text of the config file, if any. `from_command_line` says
/// whether a flag (by clap id) was given on the command line.
fn merge(
    flags: Flags,
    from_command_line: &dyn Fn(&str) -> bool,
    file: Option<&str>,
) -> anyhow::Result<Config> {
    let config_file = flags.config_file.clone();
    let file = match file {
        Some(text) => parse_file(text, &flags, from_command_line).with_context(|| {
            format!(
                "unable to configure the berth daemon with file {}",
                config_file.display()
            )
        })?,
        None => FileConfig::default(),
    };

    let hosts = file.hosts.unwrap_or(flags.hosts);
    let hosts = if hosts.is_empty() {
        vec![DEFAULT_HOST.to_owned()]
    } else {
        hosts
    };
    let sockets = hosts
        .iter()
        .map(|h| socket_path(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let exec_root = file.exec_root.unwrap_or(flags.exec_root);
    let pidfile = file
        .pidfile
        .or(flags.pidfile)
        .unwrap_or_else(|| exec_root.join("berthd.pid"));
    let debug = file.debug.unwrap_or(flags.debug);
    let log_level = file.log_level.unwrap_or(flags.log_level);
    let log_level = match log_level.to_ascii_lowercase().as_str() {
        _ if debug => "debug",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        // tracing has no fatal level; fatal messages are logged as errors.
        "error" | "fatal" | "panic" => "error",
        _ => bail!("invalid logging level: {log_level}"),
    };
    let log_format = match file.log_format.unwrap_or(flags.log_format).as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => bail!("invalid log format: {other}"),
    };
    let group_explicit = file.group.is_some() || from_command_line("group");
    Ok(Config {
        sockets,
        data_root: file.data_root.unwrap_or(flags.data_root),
        exec_root,
        pidfile,
        log_level,
        debug,
        log_format,
        group: file.group.unwrap_or(flags.group),
        group_explicit,
        cgroup_parent: file.cgroup_parent.unwrap_or(flags.cgroup_parent),
        insecure_registries: file
            .insecure_registries
            .unwrap_or(flags.insecure_registries),
        registry_mirrors: file.registry_mirrors.unwrap_or(flags.registry_mirrors),
        max_concurrent_downloads: file
            .max_concurrent_downloads
            .unwrap_or(flags.max_concurrent_downloads)
            .max(1),
        max_concurrent_uploads: file
            .max_concurrent_uploads
            .unwrap_or(flags.max_concurrent_uploads)
            .max(1),
        bridge: file.bridge.unwrap_or(flags.bridge),
        bip: file.bip.or(flags.bip),
    })
}

/// Checks the file's keys against the flags, then decodes it.
fn parse_file(
    text: &str,
    flags: &Flags,
    from_command_line: &dyn Fn(&str) -> bool,
) -> anyhow::Result<FileConfig> {
    // dockerd accepts a UTF-8 byte order mark (Windows editors write one).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)?;

    let mut unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !FILE_KEYS.iter().any(|(key, _)| key == k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        bail!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        );
    }

    let mut conflicts = Vec::new();
    for (key, id) in FILE_KEYS {
        if let Some(file_value) = map.get(*key) {
            if from_command_line(id) {
                conflicts.push(format!(
                    "{key}: (from flag: {}, from file: {})",
                    flag_value(flags, id),
                    go_style(file_value)
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        bail!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            conflicts.join(", ")
        );
    }

    Ok(serde_json::from_value(serde_json::Value::Object(map))?)
}

/// A flag's value as dockerd prints it in a conflict (lists as `[a b]`).
fn flag_value(flags: &Flags, id: &str) -> String {
    match id {
        "hosts" => format!("[{}]", flags.hosts.join(" ")),
        "data_root" => flags.data_root.display().to_string(),
        "exec_root" => flags.exec_root.display().to_string(),
        "pidfile" => flags
            .pidfile
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "debug" => flags.debug.to_string(),
        "log_level" => flags.log_level.clone(),
        "log_format" => flags.log_format.clone(),
        "group" => flags.group.clone(),
        "cgroup_parent" => flags.cgroup_parent.clone(),
        "insecure_registries" => format!("[{}]", flags.insecure_registries.join(" ")),
        "registry_mirrors" => format!("[{}]", flags.registry_mirrors.join(" ")),
        "max_concurrent_downloads" => flags.max_concurrent_downloads.to_string(),
        "max_concurrent_uploads" => flags.max_concurrent_uploads.to_string(),
        "bridge" => flags.bridge.clone(),
        "bip" => flags.bip.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// A JSON value as Go's `%v` prints a decoded one: strings bare, arrays `[a b]`.
fn go_style(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_style).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// The socket path of a `-H` address. berthd listens only on unix sockets: the API
/// grants root on the host, and a TCP listener without TLS would hand that to the
/// network.
///
/// # Errors
/// Any scheme but `unix://`, or a relative path.
pub(crate) fn socket_path(host: &str) -> anyhow::Result<PathBuf> {
    let Some(path) = host.strip_prefix("unix://") else {
        bail!("invalid host {host:?}: berthd listens only on unix sockets (unix:///path)");
    };
    let path = if path.is_empty() {
        DEFAULT_HOST.trim_start_matches("unix://")
    } else {
        path
    };
    if !Path::new(path).is_absolute() {
        bail!("invalid host {host:?}: the socket path must be absolute");
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], file: Option<&str>) -> anyhow::Result<Config> {
        let matches = Flags::command()
            .try_get_matches_from(std::iter::once("berthd").chain(args.iter().copied()))?;
        let flags = Flags::from_arg_matches(&matches)?;
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        merge(flags, &given, file)
    }

    #[test]
    fn defaults_match_dockerd_layout() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.sockets, vec![PathBuf::from("/run/berth/berth.sock")]);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.pidfile, PathBuf::from("/run/berth/berthd.pid"));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.group, "docker");
        assert!(!c.group_explicit);
    }

    #[test]
    fn pidfile_defaults_under_exec_root_and_hosts_repeat() {
        let c = load(
            &[
                "--exec-root",
                "/tmp/x",
                "-H",
                "unix:///tmp/a.sock",
                "-H",
                "unix:///tmp/b.sock",
                "-D",
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.pidfile, PathBuf::from("/tmp/x/berthd.pid"));
        assert_eq!(
            c.sockets,
            vec![PathBuf::from("/tmp/a.sock"), PathBuf::from("/tmp/b.sock")]
        );
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn file_values_apply_when_no_flag_conflicts() {
        let c = load(
            &["-D"],
            Some(r#"{"hosts":["unix:///tmp/f.sock"],"data-root":"/tmp/d","group":"staff"}"#),
        )
        .unwrap();
        assert_eq!(c.sockets, vec![PathBuf::from("/tmp/f.sock")]);
        assert_eq!(c.data_root, PathBuf::from("/tmp/d"));
        assert!(c.group_explicit);
    }

    #[test]
    fn setting_in_flag_and_file_is_refused_like_dockerd() {
        let err = load(
            &["-H", "unix:///tmp/a.sock", "--data-root", "/x"],
            Some(r#"{"hosts":["unix:///tmp/b.sock"],"data-root":"/y"}"#),
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///tmp/a.sock], from file: [unix:///tmp/b.sock]), data-root: (from flag: /x, from file: /y)"),
            "{msg}"
        );
    }

    #[test]
    fn bridge_and_bip_come_from_flags_or_file() {
        let c = load(&[], None).unwrap();
        assert_eq!((c.bridge.as_str(), c.bip.as_deref()), ("berth0", None));
        let c = load(&["-b", "br1", "--bip", "10.1.0.1/24"], None).unwrap();
        assert_eq!(
            (c.bridge.as_str(), c.bip.as_deref()),
            ("br1", Some("10.1.0.1/24"))
        );
        let c = load(&[], Some(r#"{"bridge":"br2","bip":"10.2.0.1/24"}"#)).unwrap();
        assert_eq!(
            (c.bridge.as_str(), c.bip.as_deref()),
            ("br2", Some("10.2.0.1/24"))
        );
    }

    #[test]
    fn unknown_file_keys_are_refused_like_dockerd() {
        let err = load(
            &[],
            Some(r#"{"data-root":"/y","storage-drvier":"x","fixed-cidr":"1"}"#),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains(
                "the following directives don't match any configuration option: fixed-cidr, storage-drvier"
            ),
            "{err:#}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(load(&["-l", "loud"], None).is_err());
        assert!(load(&["-H", "tcp://0.0.0.0:2375"], None).is_err());
        assert!(load(&[], Some(r#"{"debug":"yes"}"#)).is_err());
        assert!(load(&[], Some("{not json")).is_err());
    }
}
