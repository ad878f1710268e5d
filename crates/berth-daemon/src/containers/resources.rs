//! What berthd does to a running container through its cgroups: `pause`/`unpause`
//! (the freezer), `top` (the cgroup's processes shown with the host's `ps`), `stats`
//! (counter samples) and `update` (new limits applied live and recorded).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use berth_cgroups::{Cgroup, Limits, Sample};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::model::{RestartPolicy, ZERO_TIME};
use super::{ContainerService, Entry, spec};
use crate::DaemonError;

/// `GET /containers/{id}/top`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopResult {
    /// `ps`'s column titles.
    pub titles: Vec<String>,
    /// One row per process of the container.
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/{id}/update`'s body (Docker's `UpdateConfig`). Zero means
/// "unchanged", as in Docker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    /// Bytes.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub memory: i64,
    /// Memory plus swap; -1 unlimited.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub memory_swap: i64,
    /// Soft limit.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub memory_reservation: i64,
    /// CPUs in billionths.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub nano_cpus: i64,
    /// Relative weight.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub cpu_shares: i64,
    /// CFS period, µs.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub cpu_period: i64,
    /// CFS quota, µs.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub cpu_quota: i64,
    /// CPUs allowed.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub cpuset_cpus: String,
    /// Memory nodes allowed.
    #[serde(deserialize_with = "super::model::null_as_default")]
    pub cpuset_mems: String,
    /// Maximum processes (`Some(0)` or less: unlimited).
    pub pids_limit: Option<i64>,
    /// A new restart policy.
    pub restart_policy: Option<RestartPolicy>,
}

/// One stats sample and when it was taken.
#[derive(Debug, Clone, Default)]
pub struct StatsSample {
    at: Option<DateTime<Utc>>,
    cgroup: Sample,
    system_cpu_ns: u64,
    networks: BTreeMap<String, Value>,
}

/// The samples of one container for one stats request or stream.
///
/// The cgroup is located once, when the stream starts, instead of reading
/// /proc/self/mountinfo for every sample: its directories are named after the container
/// ID, so they stay valid across a restart of the container, and mounts of the cgroup
/// hierarchies do not move under a running daemon.
pub struct StatsSampler {
    entry: Arc<Entry>,
    /// `None` when mountinfo could not be read: samples are then zero.
    cgroup: Option<Cgroup>,
    removed: watch::Receiver<bool>,
}

impl StatsSampler {
    /// One sample: the cgroup's counters, the host's CPU time and the network
    /// counters of the container's namespace. A container that is not running gives
    /// an empty sample without a time, as Docker's collector publishes one.
    pub fn sample(&self) -> StatsSample {
        let r = self.entry.record();
        if !r.state.running {
            return StatsSample::default();
        }
        StatsSample {
            at: Some(Utc::now()),
            cgroup: self.cgroup.as_ref().map(Cgroup::sample).unwrap_or_default(),
            system_cpu_ns: berth_cgroups::system_cpu_ns(),
            networks: network_counters(r.state.pid),
        }
    }

    /// Whether the container is running now.
    pub fn is_running(&self) -> bool {
        self.entry.record().state.running
    }

    /// Whether the container has been removed (Docker then ends its stats stream).
    pub fn is_removed(&self) -> bool {
        *self.removed.borrow() || self.removed.has_changed().is_err()
    }
}

fn not_running(id: &str) -> DaemonError {
    DaemonError::conflict(format!("Container {id} is not running"))
}

fn cgroup_err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::internal(e.to_string())
}

impl ContainerService {
    pub(super) fn cgroup_of(&self, entry: &Entry) -> Result<Cgroup, DaemonError> {
        let path = spec::cgroup_path(&entry.record(), &self.cgroup_parent);
        Cgroup::find(&path).map_err(cgroup_err)
    }

    /// `POST /containers/{id}/pause`: freezes every process.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when not running or already paused.
    pub async fn pause(&self, name: &str) -> Result<(), DaemonError> {
        self.set_paused(name, true).await
    }

    /// `POST /containers/{id}/unpause`.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when not paused.
    pub async fn unpause(&self, name: &str) -> Result<(), DaemonError> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<(), DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        let r = entry.record();
        if !r.state.running {
            return Err(not_running(&r.id));
        }
        match (paused, r.state.paused) {
            (true, true) => {
                return Err(DaemonError::conflict(format!(
                    "Container {} is already paused",
                    r.id
                )));
            }
            (false, false) => {
                return Err(DaemonError::conflict(format!(
                    "Container {} is not paused",
                    r.id
                )));
            }
            _ => {}
        }
        let cgroup = self.cgroup_of(&entry)?;
        tokio::task::spawn_blocking(move || cgroup.set_frozen(paused))
            .await
            .map_err(cgroup_err)?
            .map_err(cgroup_err)?;
        entry.edit(|r| {
            r.state.paused = paused;
            r.state.status = if paused { "paused" } else { "running" }.into();
        });
        self.pause_health_monitor(&entry, paused);
        self.persist(&entry)?;
        self.event(&r, if paused { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// Thaws a paused container after a signal was sent to it, so that the signal is
    /// delivered (a frozen process acts on nothing, not even SIGKILL, until thawed).
    pub(super) fn thaw_after_signal(&self, entry: &Entry) {
        if !entry.record().state.paused {
            return;
        }
        if let Ok(cgroup) = self.cgroup_of(entry)
            && let Err(e) = cgroup.set_frozen(false)
        {
            tracing::warn!(error = %e, "cannot thaw a paused container for a signal");
        }
        entry.edit(|r| {
            r.state.paused = false;
            if r.state.running {
                r.state.status = "running".into();
            }
        });
        let _ = self.persist(entry);
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` output restricted to the
    /// container's processes.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when not running; `Internal` when `ps` fails or prints
    /// no PID column.
    pub async fn top(&self, name: &str, ps_args: &str) -> Result<TopResult, DaemonError> {
        let entry = self.get(name)?;
        let r = entry.record();
        if !r.state.running {
            return Err(not_running(&r.id));
        }
        let cgroup = self.cgroup_of(&entry)?;
        let pids: HashSet<u32> = cgroup
            .pids()
            .map_err(|_| not_running(&r.id))?
            .into_iter()
            .collect();
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(str::to_string).collect()
        };
        let output = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| DaemonError::internal(format!("Error running ps: {e}")))?;
        if !output.status.success() {
            return Err(DaemonError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&output.stdout), &pids)
    }

    /// A sampler for one stats request or stream of `entry`.
    pub fn stats_sampler(&self, entry: &Arc<Entry>) -> StatsSampler {
        let path = spec::cgroup_path(&entry.record(), &self.cgroup_parent);
        StatsSampler {
            entry: entry.clone(),
            cgroup: Cgroup::find(&path).ok(),
            removed: entry.removed.subscribe(),
        }
    }

    /// Docker's stats JSON for `now`, with `previous` as `precpu_stats`.
    pub fn stats_json(&self, entry: &Entry, now: &StatsSample, previous: &StatsSample) -> Value {
        let r = entry.record();
        let cpu = |s: &StatsSample| {
            let c = &s.cgroup.cpu;
            let mut usage = json!({
                "total_usage": c.total_ns,
                "usage_in_kernelmode": c.kernel_ns,
                "usage_in_usermode": c.user_ns,
            });
            if !c.percpu_ns.is_empty() {
                usage["percpu_usage"] = json!(c.percpu_ns);
            }
            let mut v = json!({
                "cpu_usage": usage,
                "throttling_data": {
                    "periods": c.periods,
                    "throttled_periods": c.throttled_periods,
                    "throttled_time": c.throttled_ns,
                },
            });
            if s.system_cpu_ns > 0 {
                v["system_cpu_usage"] = json!(s.system_cpu_ns);
                v["online_cpus"] = json!(berth_cgroups::online_cpus());
            }
            v
        };
        let m = &now.cgroup.memory;
        // Without a limit the kernel reports a huge number; Docker shows the host's
        // memory instead.
        let host = host_memory();
        let limit = if host > 0 && (m.limit == 0 || m.limit > host) {
            host
        } else {
            m.limit
        };
        let mut memory = json!({});
        if r.state.running {
            memory = json!({"usage": m.usage, "stats": m.stats, "limit": limit});
            if m.max_usage > 0 {
                memory["max_usage"] = json!(m.max_usage);
            }
        }
        let blkio: Vec<Value> = now
            .cgroup
            .blkio
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect();
        let mut pids = json!({});
        if r.state.running {
            pids["current"] = json!(now.cgroup.pids_current);
            if now.cgroup.pids_limit > 0 {
                pids["limit"] = json!(now.cgroup.pids_limit);
            }
        }
        let time = |s: &StatsSample| {
            s.at.map_or_else(|| ZERO_TIME.to_string(), crate::images::go_time)
        };
        let mut v = json!({
            "read": time(now),
            "preread": time(previous),
            "pids_stats": pids,
            "blkio_stats": {
                "io_service_bytes_recursive": if blkio.is_empty() { Value::Null } else { json!(blkio) },
                "io_serviced_recursive": null,
                "io_queue_recursive": null,
                "io_service_time_recursive": null,
                "io_wait_time_recursive": null,
                "io_merged_recursive": null,
                "io_time_recursive": null,
                "sectors_recursive": null,
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu(now),
            "precpu_stats": cpu(previous),
            "memory_stats": memory,
            "name": r.name,
            "id": r.id,
        });
        if !now.networks.is_empty() {
            v["networks"] = json!(now.networks);
        }
        v
    }

    /// `POST /containers/{id}/update`: records new limits and, when running, applies
    /// them to its cgroup. Returns Docker's warnings (none).
    ///
    /// # Errors
    /// `NotFound`; `InvalidArgument` for conflicting or impossible values, in Docker's
    /// words; `Internal` when the kernel refuses a value.
    pub async fn update(&self, name: &str, req: UpdateRequest) -> Result<Vec<String>, DaemonError> {
        let entry = self.get(name)?;
        let _op = entry.op.lock().await;
        let r = entry.record();
        let fail =
            |msg: &str| DaemonError::invalid(format!("Cannot update container {}: {msg}", r.id));
        if req.nano_cpus != 0 && (req.cpu_period != 0 || req.cpu_quota != 0) {
            return Err(fail(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
            ));
        }
        if req.nano_cpus < 0 || req.cpu_shares < 0 || req.cpu_period < 0 {
            return Err(fail("invalid negative value"));
        }
        spec::check_cfs(req.cpu_period, req.cpu_quota).map_err(|e| fail(e.message()))?;
        spec::check_cpuset(&req.cpuset_cpus, &req.cpuset_mems).map_err(|e| fail(e.message()))?;
        if req.memory != 0 && req.memory < 6 * 1024 * 1024 {
            return Err(fail("Minimum memory limit allowed is 6MB"));
        }
        let hc = &r.host_config;
        let memory = if req.memory != 0 {
            req.memory
        } else {
            hc.memory
        };
        let swap = if req.memory_swap != 0 {
            req.memory_swap
        } else {
            hc.memory_swap
        };
        if req.memory != 0
            && req.memory_swap == 0
            && hc.memory_swap > 0
            && req.memory > hc.memory_swap
        {
            return Err(fail(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        if swap > 0 && memory > 0 && swap < memory {
            return Err(fail(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        if let Some(policy) = &req.restart_policy {
            if hc.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
                return Err(fail(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            spec::validate_restart_policy(policy).map_err(|e| fail(e.message()))?;
        }
        if r.state.running {
            let (cpu_quota, cpu_period) =
                spec::cfs_quota_period(req.nano_cpus, req.cpu_quota, req.cpu_period);
            let limits = Limits {
                memory: (req.memory != 0).then_some(req.memory),
                memory_swap: (req.memory_swap != 0).then_some(req.memory_swap),
                memory_reservation: (req.memory_reservation != 0).then_some(req.memory_reservation),
                cpu_shares: (req.cpu_shares != 0).then_some(req.cpu_shares as u64),
                cpu_period,
                cpu_quota,
                cpuset_cpus: (!req.cpuset_cpus.is_empty()).then(|| req.cpuset_cpus.clone()),
                cpuset_mems: (!req.cpuset_mems.is_empty()).then(|| req.cpuset_mems.clone()),
                pids_limit: req.pids_limit,
            };
            let cgroup = self.cgroup_of(&entry)?;
            tokio::task::spawn_blocking(move || cgroup.update(&limits))
                .await
                .map_err(cgroup_err)?
                .map_err(|e| {
                    DaemonError::internal(format!("Cannot update container {}: {e}", r.id))
                })?;
        }
        entry.edit(|r| {
            let hc = &mut r.host_config;
            if req.memory != 0 {
                hc.memory = req.memory;
            }
            if req.memory_swap != 0 {
                hc.memory_swap = req.memory_swap;
            }
            if req.memory_reservation != 0 {
                hc.memory_reservation = req.memory_reservation;
            }
            if req.nano_cpus != 0 {
                hc.nano_cpus = req.nano_cpus;
                hc.cpu_quota = 0;
                hc.cpu_period = 0;
            }
            if req.cpu_shares != 0 {
                hc.cpu_shares = req.cpu_shares;
            }
            if req.cpu_period != 0 {
                hc.cpu_period = req.cpu_period;
            }
            if req.cpu_quota != 0 {
                hc.cpu_quota = req.cpu_quota;
            }
            if !req.cpuset_cpus.is_empty() {
                hc.cpuset_cpus = req.cpuset_cpus.clone();
            }
            if !req.cpuset_mems.is_empty() {
                hc.cpuset_mems = req.cpuset_mems.clone();
            }
            if let Some(p) = req.pids_limit {
                hc.pids_limit = Some(p);
            }
            if let Some(policy) = req.restart_policy.clone() {
                hc.restart_policy = policy;
            }
        });
        self.persist(&entry)?;
        self.event(&entry.record(), "update", &[]);
        Ok(Vec::new())
    }
}

/// `ps` output restricted to `pids`: titles from the header, each row split on
/// whitespace with the last column keeping the rest of the line (the command).
fn parse_ps(output: &str, pids: &HashSet<u32>) -> Result<TopResult, DaemonError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| DaemonError::internal("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut row: Vec<String> = Vec::with_capacity(titles.len());
        let mut rest = line.trim_start();
        while row.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            row.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        row.push(rest.to_string());
        let pid: Option<u32> = row.get(pid_col).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            processes.push(row);
        }
    }
    Ok(TopResult { titles, processes })
}

/// The counters of every interface but `lo` in the network namespace of `pid`.
fn network_counters(pid: u32) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if n.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    out
}

/// The host's memory in bytes (MemTotal).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_takes_null_as_unchanged() {
        let r: UpdateRequest = serde_json::from_value(serde_json::json!({
            "Memory": null, "CpusetCpus": null, "CpuShares": null, "PidsLimit": null
        }))
        .unwrap();
        assert_eq!((r.memory, r.cpu_shares, r.pids_limit), (0, 0, None));
        assert!(r.cpuset_cpus.is_empty());
    }

    #[test]
    fn ps_rows_keep_the_command_whole_and_only_the_containers_pids() {
        let out = "UID        PID  PPID  C STIME TTY          TIME CMD\n\
                   root         1     0  0 10:00 ?        00:00:01 /sbin/init\n\
                   root       42     1  0 10:01 ?        00:00:00 sleep 100 --flag\n";
        let top = parse_ps(out, &HashSet::from([42])).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][1], "42");
        assert_eq!(top.processes[0][7], "sleep 100 --flag");
        assert!(parse_ps("USER COMMAND\nroot x\n", &HashSet::new()).is_err());
    }

    #[test]
    fn host_memory_is_known() {
        assert!(host_memory() > 0);
    }
}
