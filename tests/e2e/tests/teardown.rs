//! What a daemon leaves on the host: the shim stays out of its container's cgroups
//! (its memory must not count against the container's limit, and it must not keep
//! the cgroup alive), and the harness's teardown ends every process and removes
//! every cgroup of the daemon, also when it stops the daemon while containers are
//! still being created. Needs root.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt};

/// The processes whose command line or environment names `root` (the shims and
/// the not yet exec'd inits they fork carry it in both), as `(pid, comm)`.
fn processes_naming(root: &Path) -> Vec<(i32, String)> {
    let needle = root.as_os_str().as_encoded_bytes();
    let own = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if pid == own {
            continue;
        }
        let names_root = ["cmdline", "environ"].iter().any(|f| {
            std::fs::read(format!("/proc/{pid}/{f}"))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        });
        if names_root {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// The directories of the cgroup subtree `parent` that still exist.
fn cgroup_dirs(parent: &str) -> Vec<String> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(parent))
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn the_shim_stays_outside_its_containers_cgroups_after_an_exec() {
    berth_e2e::require_root();
    let d = Berthd::start();
    d.load_image("busybox");
    let id = d
        .docker(["run", "-d", "busybox", "sleep", "1000"])
        .assert_success()
        .trim()
        .to_string();
    let out = d.docker(["exec", &id, "echo", "in"]).assert_success();
    assert_eq!(out.trim(), "in");
    d.docker(["exec", "-d", &id, "sleep", "1000"])
        .assert_success();
    let shims: Vec<i32> = processes_naming(d.root())
        .into_iter()
        .filter(|(_, comm)| comm == "berth-shim")
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(shims.len(), 1, "one shim for one container: {shims:?}");
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", shims[0])).unwrap();
    assert!(
        !cgroup.contains(&id),
        "the shim {} is in its container's cgroup:\n{cgroup}",
        shims[0]
    );
    let init = d
        .docker(["inspect", "-f", "{{.State.Pid}}", &id])
        .assert_success();
    let init_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", init.trim())).unwrap();
    assert!(init_cgroup.contains(&id), "{init_cgroup}");
    d.docker(["rm", "-f", &id]).assert_success();
}

#[test]
fn teardown_ends_every_process_and_cgroup_of_the_daemon_even_mid_create() {
    berth_e2e::require_root();
    // Stopping the daemon at different moments after `run -d` catches shims at
    // different stages of creating their containers.
    for delay_ms in [0, 50, 100, 200, 400] {
        let d = Berthd::start();
        d.load_image("busybox");
        let clients: Vec<Child> = (0..3)
            .map(|_| {
                d.docker_cmd()
                    .args(["run", "-d", "busybox", "sleep", "1000"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // The clients only wait for answers; the creates go on without them.
        for mut c in clients {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert_teardown_leaves_nothing(d, &[], &format!("{delay_ms} ms after run -d"));
    }
}

/// Drops `d` and asserts that nothing of it is left: no process naming its root or
/// in its cgroups, no cgroup. What is found is killed first (it is this test's).
fn assert_teardown_leaves_nothing(d: Berthd, container_pids: &[i32], what: &str) {
    let root = d.root().to_path_buf();
    let parent = d.cgroup_parent();
    drop(d);
    let mut left: Vec<(i32, String)> = processes_naming(&root);
    for pid in container_pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = state
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X");
        if alive {
            left.push((*pid, "container process".into()));
        }
    }
    let dirs = cgroup_dirs(&parent);
    for (pid, _) in &left {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(*pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    // A paused container's processes act on SIGKILL only once thawed.
    let freezer = Path::new("/sys/fs/cgroup/freezer").join(&parent);
    for dir in std::fs::read_dir(&freezer).into_iter().flatten().flatten() {
        let _ = std::fs::write(dir.path().join("freezer.state"), "THAWED");
    }
    if !left.is_empty() {
        std::thread::sleep(Duration::from_millis(300));
    }
    for dir in &dirs {
        let mut sub: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        sub.push(dir.into());
        for p in sub {
            let _ = std::fs::remove_dir(p);
        }
    }
    assert!(left.is_empty(), "{what}: processes remain: {left:?}");
    assert!(dirs.is_empty(), "{what}: cgroups remain: {dirs:?}");
}

#[test]
fn teardown_ends_a_container_whose_shim_was_killed() {
    berth_e2e::require_root();
    let d = Berthd::start();
    d.load_image("busybox");
    let id = d
        .docker(["run", "-d", "busybox", "sleep", "1000"])
        .assert_success()
        .trim()
        .to_string();
    let pid: i32 = d
        .docker(["inspect", "-f", "{{.State.Pid}}", &id])
        .assert_success()
        .trim()
        .parse()
        .unwrap();
    // The container's process no longer carries the daemon's marker (it exec'd with
    // its own environment) and, without its shim, has no marked parent either.
    for (shim, comm) in processes_naming(d.root()) {
        if comm == "berth-shim" {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(shim).unwrap(),
                rustix::process::Signal::KILL,
            );
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_teardown_leaves_nothing(d, &[pid], "container of a killed shim");
}

#[test]
fn teardown_ends_a_paused_container() {
    berth_e2e::require_root();
    let d = Berthd::start();
    d.load_image("busybox");
    let id = d
        .docker(["run", "-d", "busybox", "sleep", "1000"])
        .assert_success()
        .trim()
        .to_string();
    let pid: i32 = d
        .docker(["inspect", "-f", "{{.State.Pid}}", &id])
        .assert_success()
        .trim()
        .parse()
        .unwrap();
    d.docker(["pause", &id]).assert_success();
    assert_teardown_leaves_nothing(d, &[pid], "paused container");
}
