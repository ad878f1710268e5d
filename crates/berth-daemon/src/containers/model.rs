// The fields mirror the Engine API's and carry its names; its spec documents them.
#![allow(missing_docs)]

//! The Engine API's container types (`Config`, `HostConfig`, `State`) and the record
//! berth persists per container. Fields berth acts on are typed; every other field a
//! client sends is kept in `extra`, so inspect answers with what was asked for.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Docker's `StrSlice`: a JSON array of strings, or one string (old clients).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    // Through `Value` rather than an untagged enum, whose error ("data did not match
    // any variant") tells the client nothing.
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let wrong = |v: &Value| {
        serde::de::Error::custom(format!(
            "invalid type: {}, expected a string or an array of strings",
            kind(v)
        ))
    };
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong(&other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(wrong(&other)),
    }
}

/// JSON `null` as the type's zero value, as Go's decoder leaves a field it is given
/// `null` for: clients send `"Memory": null` and Docker takes it as unset.
pub(super) fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `container.Config`: what runs, as the client asked (merged with the image's
/// defaults at create).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub maximum_retry_count: i64,
}

/// `LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type", default, deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// `--mount` entries (`HostConfig.Mounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRequest {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub target: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `HostConfig`: how it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub log_config: LogConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "null_as_default")]
    pub auto_remove: bool,
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    #[serde(default)]
    pub mounts: Option<Vec<MountRequest>>,
    #[serde(default)]
    pub cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroupns_mode: String,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ipc_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroup_parent: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub oom_score_adj: i32,
    #[serde(default, deserialize_with = "null_as_default")]
    pub pid_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub publish_all_ports: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default)]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode", default, deserialize_with = "null_as_default")]
    pub uts_mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub shm_size: i64,
    #[serde(default)]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub init: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub devices: Option<Vec<Value>>,
    #[serde(default)]
    pub ulimits: Option<Vec<Value>>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `State` in inspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: u32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Present only for a container with a healthcheck (Docker omits it otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `State.Health`: the healthcheck's verdict and its last results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    /// The last results, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub log: Vec<HealthcheckResult>,
}

/// One probe's outcome (`HealthcheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 the probe could not run or timed out.
    pub exit_code: i32,
    pub output: String,
}

/// Go's zero time, which Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for State {
    fn default() -> Self {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

/// A mount as inspect reports it (`Mounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
    /// An anonymous volume created for this container (removed by `rm -v`).
    #[serde(default, skip_serializing)]
    pub anonymous: bool,
    /// `nocopy` / `volume-nocopy`: the volume is not filled from the image at create
    /// (the only moment that matters, so it is not kept).
    #[serde(default, skip_serializing)]
    pub no_copy: bool,
    /// `VolumeOptions.Subpath` (API 1.45): the directory inside the volume that is
    /// mounted instead of the whole volume, resolved inside the volume at each start.
    /// Kept in the record, not shown by inspect (Docker's `MountPoint` has no such field).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// What berth stores for a container (`<data-root>/containers/<id>/config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// With Docker's leading slash.
    pub name: String,
    pub created: DateTime<Utc>,
    /// The resolved image ID.
    pub image: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: Config,
    pub host_config: HostConfig,
    pub state: State,
    #[serde(default)]
    pub restart_count: u64,
    /// Stopped by a user (`stop`/`kill`): `unless-stopped` and `always` do not restart it
    /// when the daemon restarts... and `unless-stopped` never.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub has_been_started: bool,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_zero_values_as_in_go() {
        let hc: HostConfig = serde_json::from_value(serde_json::json!({
            "Memory": null, "CpuShares": null, "Privileged": null, "AutoRemove": null,
            "RestartPolicy": null, "LogConfig": null, "OomScoreAdj": null, "PidsLimit": null
        }))
        .unwrap();
        assert_eq!(hc, HostConfig::default());
        let c: Config = serde_json::from_value(serde_json::json!({
            "Tty": null, "OpenStdin": null, "Cmd": null, "Entrypoint": null, "Image": null
        }))
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn a_command_of_the_wrong_type_says_what_was_expected() {
        let e = serde_json::from_value::<Config>(serde_json::json!({"Cmd": 5})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid type: a number, expected a string or an array of strings"
        );
        let e = serde_json::from_value::<Config>(serde_json::json!({"Cmd": ["a", 1]})).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        let c: Config = serde_json::from_value(serde_json::json!({"Cmd": "ls"})).unwrap();
        assert_eq!(c.cmd, Some(vec!["ls".to_string()]));
    }
}
