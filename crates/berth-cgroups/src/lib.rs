//! A container's cgroups, after the runtime created them.
//!
//! The runtime (libcontainer, inside the shim) creates and removes a container's
//! cgroups. Everyone else only reads or adjusts files in them: the shim counts OOM
//! kills, the daemon lists processes (`top`), freezes (`pause`), samples statistics
//! (`stats`) and changes limits of a running container (`update`). That needs no
//! cgroup manager, only the directory of each controller, which this crate finds in
//! /proc/self/mountinfo for all three layouts: cgroup v1 (one hierarchy per
//! controller), v2 (one unified hierarchy), and hybrid hosts (v1 controllers with an
//! empty cgroup2 mount beside them, as on the machines berth is measured on), where
//! the v1 hierarchy of a controller wins.
//!
//! The daemon links this crate and not the runtime: reading a few files must not
//! pull libcontainer into berthd.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

mod stats;

pub use stats::{BlkioEntry, CpuSample, MemorySample, Sample, online_cpus, system_cpu_ns};

/// Errors while adjusting a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The controller is not mounted on this host.
    #[error("cgroup controller {0} is not available")]
    NoController(&'static str),
    /// The processes did not all stop within the freeze timeout.
    #[error("freezing the cgroup timed out")]
    Timeout,
    /// Reading or writing a cgroup file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// One container's cgroup: the directory of each controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// v1 controller name → that hierarchy's directory for this cgroup.
    v1: BTreeMap<String, PathBuf>,
    /// The unified hierarchy's directory for this cgroup, if cgroup2 is mounted.
    v2: Option<PathBuf>,
}

impl Cgroup {
    /// The cgroup at `cgroup_path` (as given to the runtime, e.g. `/berth/<id>`),
    /// located through this process's mountinfo.
    ///
    /// # Errors
    /// /proc/self/mountinfo cannot be read.
    pub fn find(cgroup_path: &str) -> io::Result<Cgroup> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(Cgroup::from_mountinfo(&mountinfo, cgroup_path))
    }

    /// Like [`Cgroup::find`], from mountinfo text.
    pub fn from_mountinfo(mountinfo: &str, cgroup_path: &str) -> Cgroup {
        let rel = cgroup_path.trim_start_matches('/');
        let mut cgroup = Cgroup {
            v1: BTreeMap::new(),
            v2: None,
        };
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut l = left.split(' ');
            let (Some(root), Some(mount_point)) = (l.nth(3), l.next()) else {
                continue;
            };
            // A hierarchy mounted from below its root (inside a cgroup namespace or a
            // bind of a subtree) does not show the host's paths.
            if root != "/" {
                continue;
            }
            let mut r = right.split(' ');
            let (Some(fstype), _, Some(super_opts)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let dir = Path::new(mount_point).join(rel);
            match fstype {
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if KNOWN_V1.contains(&opt) {
                            cgroup.v1.entry(opt.to_string()).or_insert(dir.clone());
                        }
                    }
                }
                "cgroup2" if cgroup.v2.is_none() => cgroup.v2 = Some(dir),
                _ => {}
            }
        }
        cgroup
    }

    /// Whether this cgroup's controllers are v2 (nothing mounted as v1).
    pub fn is_v2(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// The directory holding `controller`'s files, and whether it is v2.
    fn dir(&self, controller: &str) -> Option<(&Path, bool)> {
        match self.v1.get(controller) {
            Some(d) => Some((d.as_path(), false)),
            None if self.v1.is_empty() => self.v2.as_deref().map(|d| (d, true)),
            None => None,
        }
    }

    fn read(&self, controller: &str, v1_file: &str, v2_file: &str) -> Option<String> {
        let (dir, v2) = self.dir(controller)?;
        std::fs::read_to_string(dir.join(if v2 { v2_file } else { v1_file })).ok()
    }

    /// The IDs of every process in the cgroup (from any controller's `cgroup.procs`).
    ///
    /// # Errors
    /// The cgroup does not exist (the container is not running).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let (dir, _) = ["pids", "memory", "freezer", "cpu"]
            .iter()
            .find_map(|c| self.dir(c))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup hierarchy"))?;
        let text = std::fs::read_to_string(dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// How many processes the kernel's OOM killer killed in this cgroup: `oom_kill` in
    /// `memory.oom_control` (v1) or `memory.events` (v2). `None` when unreadable.
    pub fn oom_kills(&self) -> Option<u64> {
        let text = self.read("memory", "memory.oom_control", "memory.events")?;
        oom_kill_field(&text)
    }

    /// Freezes (`true`) or thaws every process (`docker pause`/`unpause`, and around
    /// `commit`), and waits until the kernel reports the new state. A freeze that
    /// does not complete within `FREEZE_TIMEOUT` (tasks forking meanwhile) is undone
    /// and reported.
    ///
    /// # Errors
    /// No freezer, the files cannot be written, or the freeze timed out.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (dir, v2) = self
            .dir("freezer")
            .ok_or(CgroupError::NoController("freezer"))?;
        let (file, value, check, done) = match (v2, frozen) {
            (true, true) => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
            (true, false) => ("cgroup.freeze", "0", "cgroup.events", "frozen 0"),
            (false, true) => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED", "freezer.state", "THAWED"),
        };
        let (file, check) = (dir.join(file), dir.join(check));
        write(&file, value)?;
        let start = std::time::Instant::now();
        loop {
            match std::fs::read_to_string(&check) {
                Ok(text) if text.lines().any(|l| l.trim() == done) => return Ok(()),
                Ok(_) => {}
                Err(source) => {
                    return Err(CgroupError::Io {
                        path: check,
                        source,
                    });
                }
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                if frozen {
                    let _ = self.set_frozen(false);
                }
                return Err(CgroupError::Timeout);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            // v1 stays FREEZING while tasks fork; writing again nudges them (as runc).
            if !v2 {
                write(&file, value)?;
            }
        }
    }

    /// Kills every process still in the cgroup and removes its directories, for a
    /// container whose supervisor is gone: an init that never started, or processes
    /// outside the container's PID namespace (`--pid host`) that outlived its init.
    /// A frozen cgroup is thawed first, as frozen processes do not die. Returns how
    /// many processes were signalled.
    pub fn kill_and_remove(&self) -> usize {
        if self.is_frozen() {
            let _ = self.set_frozen(false);
        }
        let mut killed = 0;
        for _ in 0..KILL_ROUNDS {
            let pids = self.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
                    && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
                {
                    killed += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for dir in self.v1.values().chain(self.v2.iter()) {
            // Gone already (the runtime removed it) or still busy: nothing more to do.
            let _ = std::fs::remove_dir(dir);
        }
        killed
    }

    /// Whether the cgroup is frozen now.
    pub fn is_frozen(&self) -> bool {
        match self.dir("freezer") {
            Some((dir, false)) => std::fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN"),
            Some((dir, true)) => {
                std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            }
            None => false,
        }
    }

    /// Applies new limits to the running cgroup (`docker update`). Only the given
    /// fields change.
    ///
    /// # Errors
    /// A controller is missing or the kernel refuses a value.
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        if let Some(mem) = limits.memory {
            let (dir, v2) = self
                .dir("memory")
                .ok_or(CgroupError::NoController("memory"))?;
            if v2 {
                write(&dir.join("memory.max"), &max_or(mem))?;
                if let Some(swap) = limits.memory_swap {
                    let swap_only = if swap < 0 { -1 } else { (swap - mem).max(0) };
                    write(&dir.join("memory.swap.max"), &max_or(swap_only))?;
                }
            } else {
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                let swap = limits.memory_swap.filter(|_| memsw.exists());
                // The kernel refuses memory > memsw and memsw < memory: raise memsw
                // first when growing, lower memory first when shrinking.
                let current: i64 = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(i64::MAX);
                let growing = mem < 0 || mem > current;
                if growing && let Some(s) = swap {
                    write(&memsw, &s.to_string())?;
                }
                write(&dir.join("memory.limit_in_bytes"), &mem.to_string())?;
                if !growing && let Some(s) = swap {
                    write(&memsw, &s.to_string())?;
                }
            }
        }
        if let Some(reservation) = limits.memory_reservation {
            let (dir, v2) = self
                .dir("memory")
                .ok_or(CgroupError::NoController("memory"))?;
            if v2 {
                write(&dir.join("memory.low"), &reservation.to_string())?;
            } else {
                write(
                    &dir.join("memory.soft_limit_in_bytes"),
                    &reservation.to_string(),
                )?;
            }
        }
        if limits.cpu_shares.is_some() || limits.cpu_quota.is_some() || limits.cpu_period.is_some()
        {
            let (dir, v2) = self.dir("cpu").ok_or(CgroupError::NoController("cpu"))?;
            if v2 {
                if let Some(shares) = limits.cpu_shares {
                    // runc's conversion of shares (2..262144) to weight (1..10000).
                    let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                    write(&dir.join("cpu.weight"), &weight.to_string())?;
                }
                if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
                    let period = limits.cpu_period.unwrap_or(100_000);
                    let quota = match limits.cpu_quota {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".to_string(),
                    };
                    write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
                }
            } else {
                if let Some(shares) = limits.cpu_shares {
                    write(&dir.join("cpu.shares"), &shares.to_string())?;
                }
                if let Some(period) = limits.cpu_period {
                    write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                }
                if let Some(quota) = limits.cpu_quota {
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
            }
        }
        for (value, v1_file, v2_file) in [
            (&limits.cpuset_cpus, "cpuset.cpus", "cpuset.cpus"),
            (&limits.cpuset_mems, "cpuset.mems", "cpuset.mems"),
        ] {
            if let Some(v) = value {
                let (dir, v2) = self
                    .dir("cpuset")
                    .ok_or(CgroupError::NoController("cpuset"))?;
                write(&dir.join(if v2 { v2_file } else { v1_file }), v)?;
            }
        }
        if let Some(pids) = limits.pids_limit {
            let (dir, _) = self.dir("pids").ok_or(CgroupError::NoController("pids"))?;
            write(&dir.join("pids.max"), &max_or(pids))?;
        }
        Ok(())
    }
}

/// Limits for [`Cgroup::update`]; `None` leaves a limit as it is. Negative memory and
/// pids values mean unlimited, as in Docker's API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory plus swap, bytes (Docker's `MemorySwap`).
    pub memory_swap: Option<i64>,
    /// Soft limit, bytes.
    pub memory_reservation: Option<i64>,
    /// Relative weight (v1 shares).
    pub cpu_shares: Option<u64>,
    /// CFS period, µs.
    pub cpu_period: Option<u64>,
    /// CFS quota, µs; -1 for none.
    pub cpu_quota: Option<i64>,
    /// CPUs allowed, e.g. `0-1`.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    pub cpuset_mems: Option<String>,
    /// Maximum processes; 0 or negative for unlimited.
    pub pids_limit: Option<i64>,
}

/// How long a freeze may take before it is undone.
const FREEZE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Rounds of SIGKILL in [`Cgroup::kill_and_remove`] (a process may fork while the
/// first round runs); each waits 5 ms.
const KILL_ROUNDS: usize = 40;

/// The controllers berth reads or writes.
const KNOWN_V1: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices",
];

fn max_or(v: i64) -> String {
    if v <= 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn oom_kill_field(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_use_the_v1_hierarchy_of_each_controller() {
        let cg = Cgroup::from_mountinfo(HYBRID, "/berth/abc");
        assert!(!cg.is_v2());
        assert_eq!(
            cg.dir("memory"),
            Some((Path::new("/sys/fs/cgroup/memory/berth/abc"), false))
        );
        assert_eq!(
            cg.dir("freezer"),
            Some((Path::new("/sys/fs/cgroup/freezer/berth/abc"), false))
        );
        // A controller missing from v1 is not looked for in the empty cgroup2 mount.
        assert_eq!(cg.dir("pids"), None);
    }

    #[test]
    fn unified_hosts_use_one_directory() {
        let info = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = Cgroup::from_mountinfo(info, "/berth/abc");
        assert!(cg.is_v2());
        assert_eq!(
            cg.dir("memory"),
            Some((Path::new("/sys/fs/cgroup/berth/abc"), true))
        );
    }

    #[test]
    fn oom_kill_counter_is_parsed_from_either_file() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(oom_kill_field(v1), Some(2));
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(oom_kill_field(v2), Some(1));
    }
}
