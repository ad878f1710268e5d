//! Reading a container's cgroups after the fact: its OOM kills and its processes.
//!
//! libcontainer creates and removes the cgroups; the shim only needs two facts from
//! them while they exist, and reads the files itself rather than keeping a cgroup
//! manager alive. Both layouts are handled: cgroup v1 (one hierarchy per controller,
//! possibly with a cgroup2 mount beside them, as on this host family) and v2.

use std::path::{Path, PathBuf};

/// The memory controller's directory for `cgroup_path`, and whether it is cgroup v2.
fn memory_dir(mountinfo: &str, cgroup_path: &str) -> Option<(PathBuf, bool)> {
    let rel = cgroup_path.trim_start_matches('/');
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut l = left.split(' ');
        let (Some(root), Some(mount_point)) = (l.nth(3), l.next()) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), _, Some(super_opts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        if root != "/" {
            continue;
        }
        if fstype == "cgroup" && super_opts.split(',').any(|o| o == "memory") {
            return Some((Path::new(mount_point).join(rel), false));
        }
        if fstype == "cgroup2" && v2.is_none() {
            v2 = Some((Path::new(mount_point).join(rel), true));
        }
    }
    v2
}

fn oom_kill_field(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// How many processes of the container the kernel's OOM killer killed: `oom_kill` in
/// `memory.oom_control` (v1) or `memory.events` (v2). `None` when the cgroup or the
/// counter cannot be read.
pub fn oom_kill_count(cgroup_path: &str) -> Option<u64> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (dir, v2) = memory_dir(&mountinfo, cgroup_path)?;
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    oom_kill_field(&std::fs::read_to_string(dir.join(file)).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
33 30 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
36 30 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_read_oom_kills_from_the_v1_memory_hierarchy() {
        let (dir, v2) = memory_dir(HYBRID, "/berth/abc").unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/berth/abc"));
        assert!(!v2);
    }

    #[test]
    fn unified_hosts_read_memory_events() {
        let info = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let (dir, v2) = memory_dir(info, "/berth/abc").unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/berth/abc"));
        assert!(v2);
    }

    #[test]
    fn oom_kill_counter_is_parsed_from_either_file() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(oom_kill_field(v1), Some(2));
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(oom_kill_field(v2), Some(1));
    }
}
