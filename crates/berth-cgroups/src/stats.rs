//! One sample of a cgroup's counters, for `docker stats`.
//!
//! Values are raw counters; turning two samples into percentages is the client's job
//! (the docker CLI computes CPU % from the deltas of `total_ns` and the host's
//! `system_cpu_ns` between the previous and the current sample).

use std::collections::BTreeMap;

use crate::Cgroup;

/// CPU counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    /// Total CPU time, ns.
    pub total_ns: u64,
    /// Per CPU, ns (v1 only; empty on v2, as Docker).
    pub percpu_ns: Vec<u64>,
    /// Kernel mode, ns.
    pub kernel_ns: u64,
    /// User mode, ns.
    pub user_ns: u64,
    /// CFS periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time throttled, ns.
    pub throttled_ns: u64,
}

/// Memory counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    /// Current usage, bytes (page cache included).
    pub usage: u64,
    /// Peak usage, bytes (v1 only).
    pub max_usage: u64,
    /// The limit, bytes; `u64::MAX`-like values mean none.
    pub limit: u64,
    /// `memory.stat`, as the kernel names the fields.
    pub stats: BTreeMap<String, u64>,
}

/// Bytes or operations on one device (`io_service_bytes_recursive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `read` or `write` (v2) / `Read`, `Write`... (v1), as Docker reports them.
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// Everything `stats` reports from the cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU.
    pub cpu: CpuSample,
    /// Memory.
    pub memory: MemorySample,
    /// Processes now.
    pub pids_current: u64,
    /// The pids limit; 0 for none.
    pub pids_limit: u64,
    /// Block I/O bytes per device and direction.
    pub blkio: Vec<BlkioEntry>,
}

fn num(text: Option<String>) -> u64 {
    text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

fn fields(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Clock ticks per second for cpuacct.stat and /proc/stat (USER_HZ is 100 on Linux).
const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

impl Cgroup {
    /// Reads every counter once. Missing files read as zero: a container that just
    /// exited, or a controller the host lacks, gives an empty sample, not an error.
    pub fn sample(&self) -> Sample {
        let mut s = Sample::default();
        if let Some((dir, v2)) = self.dir("cpu").or_else(|| self.dir("cpuacct")) {
            if v2 {
                let stat =
                    fields(&std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default());
                let us = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
                s.cpu.total_ns = us("usage_usec");
                s.cpu.user_ns = us("user_usec");
                s.cpu.kernel_ns = us("system_usec");
                s.cpu.throttled_ns = us("throttled_usec");
                s.cpu.periods = stat.get("nr_periods").copied().unwrap_or(0);
                s.cpu.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            } else {
                let stat =
                    fields(&std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default());
                s.cpu.periods = stat.get("nr_periods").copied().unwrap_or(0);
                s.cpu.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
                s.cpu.throttled_ns = stat.get("throttled_time").copied().unwrap_or(0);
            }
        }
        if let Some((dir, false)) = self.dir("cpuacct") {
            s.cpu.total_ns = num(std::fs::read_to_string(dir.join("cpuacct.usage")).ok());
            s.cpu.percpu_ns = std::fs::read_to_string(dir.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            let stat =
                fields(&std::fs::read_to_string(dir.join("cpuacct.stat")).unwrap_or_default());
            s.cpu.user_ns = stat.get("user").copied().unwrap_or(0) * NS_PER_TICK;
            s.cpu.kernel_ns = stat.get("system").copied().unwrap_or(0) * NS_PER_TICK;
        }
        if let Some((dir, v2)) = self.dir("memory") {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            if v2 {
                s.memory.usage = num(read("memory.current"));
                s.memory.limit = match read("memory.max") {
                    Some(m) if m.trim() != "max" => num(Some(m)),
                    _ => u64::MAX,
                };
            } else {
                s.memory.usage = num(read("memory.usage_in_bytes"));
                s.memory.max_usage = num(read("memory.max_usage_in_bytes"));
                s.memory.limit = num(read("memory.limit_in_bytes"));
            }
            s.memory.stats = fields(&read("memory.stat").unwrap_or_default());
        }
        if let Some((dir, _)) = self.dir("pids") {
            s.pids_current = num(std::fs::read_to_string(dir.join("pids.current")).ok());
            s.pids_limit = num(std::fs::read_to_string(dir.join("pids.max")).ok());
        }
        if let Some((dir, v2)) = self.dir(if self.is_v2() { "io" } else { "blkio" }) {
            s.blkio = if v2 {
                io_stat(&std::fs::read_to_string(dir.join("io.stat")).unwrap_or_default())
            } else {
                let text =
                    std::fs::read_to_string(dir.join("blkio.throttle.io_service_bytes_recursive"))
                        .or_else(|_| {
                            std::fs::read_to_string(dir.join("blkio.throttle.io_service_bytes"))
                        })
                        .unwrap_or_default();
                blkio_v1(&text)
            };
        }
        s
    }
}

/// `8:0 Read 4096` lines (the `Total` lines are left out, as Docker does).
fn blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (dev, op, value) = (w.next()?, w.next()?, w.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// `8:0 rbytes=1 wbytes=2 rios=3 ...` lines, as `read`/`write` byte entries.
fn io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let Some((major, minor)) = w.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in w {
            let (op, value) = match kv.split_once('=') {
                Some(("rbytes", v)) => ("read", v),
                Some(("wbytes", v)) => ("write", v),
                _ => continue,
            };
            if let Ok(value) = value.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    out
}

/// The host's total CPU time in ns, from /proc/stat's `cpu` line (what Docker reports
/// as `system_cpu_usage`).
pub fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>()
                * NS_PER_TICK
        })
        .unwrap_or(0)
}

/// The number of CPUs online.
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_parse_without_totals() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n";
        let e = blkio_v1(v1);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        let v2 = "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n";
        let e = io_stat(v2);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].op, "read");
        assert_eq!(e[1].value, 20);
    }

    #[test]
    fn the_host_cpu_counter_moves() {
        assert!(system_cpu_ns() > 0);
        assert!(online_cpus() >= 1);
    }
}
