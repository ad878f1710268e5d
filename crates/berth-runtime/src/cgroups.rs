//! Reading a container's cgroups after the fact: its OOM kills.
//!
//! libcontainer creates and removes the cgroups; the shim only needs one fact from
//! them while they exist, read through berth-cgroups (which finds the controller's
//! directory on v1, v2 and hybrid hosts) rather than a cgroup manager kept alive.

/// How many processes of the container the kernel's OOM killer killed. `None` when
/// the cgroup or the counter cannot be read.
pub fn oom_kill_count(cgroup_path: &str) -> Option<u64> {
    berth_cgroups::Cgroup::find(cgroup_path).ok()?.oom_kills()
}
