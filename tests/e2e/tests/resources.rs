//! pause/unpause, top, stats and update through the official docker CLI and berth.
//! Needs root.

use berth_e2e::{Berthd, OutputExt};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

#[test]
fn pause_freezes_the_cgroup_and_unpause_thaws_it() {
    let d = daemon();
    let id = d
        .docker([
            "run",
            "-d",
            "--name",
            "p1",
            "busybox",
            "sh",
            "-c",
            "while true; do sleep 0.05; done",
        ])
        .assert_success();
    let id = id.trim();
    let freezer = format!(
        "/sys/fs/cgroup/freezer/{}/{id}/freezer.state",
        d.cgroup_parent()
    );
    assert_eq!(d.docker(["pause", "p1"]).assert_success(), "p1\n");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    let state = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "p1",
        ])
        .assert_success();
    assert_eq!(state, "paused true true\n");
    let ps = d.docker(["ps", "--format", "{{.Status}}"]).assert_success();
    assert!(ps.trim().ends_with("(Paused)"), "{ps}");
    let exec = d.docker(["exec", "p1", "true"]);
    assert!(
        exec.stderr_text()
            .contains("is paused, unpause the container before exec"),
        "{}",
        exec.stderr_text()
    );
    let again = d.docker(["pause", "p1"]);
    assert!(
        again.stderr_text().contains("is already paused"),
        "{}",
        again.stderr_text()
    );
    assert_eq!(d.berth(["unpause", "p1"]).assert_success(), "p1\n");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    let not = d.docker(["unpause", "p1"]);
    assert!(
        not.stderr_text().contains("is not paused"),
        "{}",
        not.stderr_text()
    );
    // A paused container can still be stopped: the signal is followed by a thaw.
    d.docker(["pause", "p1"]).assert_success();
    d.docker(["stop", "-t", "1", "p1"]).assert_success();
    let state = d
        .docker(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "p1"])
        .assert_success();
    assert_eq!(state, "exited false\n");
    let out = d.docker(["pause", "p1"]);
    assert!(
        out.stderr_text().contains("is not running"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn top_lists_only_the_containers_processes_in_ps_format() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "t1",
        "busybox",
        "sh",
        "-c",
        "sleep 1001 & sleep 1002",
    ])
    .assert_success();
    let top = d.docker(["top", "t1"]).assert_success();
    let mut lines = top.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let cmds: Vec<&str> = lines
        .map(|l| l.split("   ").last().unwrap().trim())
        .collect();
    // sh execs its last command: two processes.
    assert_eq!(cmds.len(), 2, "{top}");
    assert!(
        cmds.contains(&"sleep 1001") && cmds.contains(&"sleep 1002"),
        "{top}"
    );
    let custom = d.docker(["top", "t1", "-o", "pid,comm"]).assert_success();
    assert!(custom.starts_with("PID"), "{custom}");
    assert_eq!(custom.lines().count(), 3);
    assert_eq!(d.berth(["top", "t1"]).assert_success().lines().count(), 3);
    d.docker(["rm", "-f", "t1"]).assert_success();
}

#[test]
fn stats_reports_cpu_memory_and_pids_from_the_cgroup() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ])
    .assert_success();
    let format = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}";
    let out = d
        .docker(["stats", "--no-stream", "--format", format, "busy"])
        .assert_success();
    let cols: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(cols[0], "busy");
    let cpu: f64 = cols[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0, "a busy loop shows CPU use: {out}");
    assert!(cols[2].ends_with(" / 64MiB"), "{out}");
    assert_eq!(cols[3], "1");
    // The raw API answer in Docker's shape.
    let raw = d.request(
        "GET",
        "/containers/busy/stats?stream=false&one-shot=true",
        None,
    );
    let v = raw.json();
    assert_eq!(v["memory_stats"]["limit"], 64 << 20);
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert_eq!(v["name"], "/busy");
    let berth = d
        .berth(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"])
        .assert_success();
    assert_eq!(berth, "busy 1\n");
    d.docker(["rm", "-f", "busy"]).assert_success();
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let d = daemon();
    let id = d
        .docker([
            "run", "-d", "--name", "u1", "-m", "64m", "busybox", "sleep", "1000",
        ])
        .assert_success();
    let id = id.trim();
    assert_eq!(
        d.docker([
            "update",
            "-m",
            "128m",
            "--memory-swap",
            "256m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "u1"
        ])
        .assert_success(),
        "u1\n"
    );
    let cg = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/{ctl}/{}/{id}/{file}",
            d.cgroup_parent()
        ))
        .unwrap()
        .trim()
        .to_string()
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("pids", "pids.max"), "50");
    let hc = d
        .docker([
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
            "u1",
        ])
        .assert_success();
    assert_eq!(hc, format!("{} 500000000 50\n", 128u64 << 20));
    // Recorded limits apply again after a restart.
    d.docker(["restart", "-t", "0", "u1"]).assert_success();
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    d.docker(["update", "--restart", "on-failure:3", "u1"])
        .assert_success();
    let policy = d
        .docker([
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "u1",
        ])
        .assert_success();
    assert_eq!(policy, "on-failure:3\n");
    let out = d.docker(["update", "-m", "300m", "u1"]);
    assert!(
        out.stderr_text()
            .contains("Memory limit should be smaller than already set memoryswap limit"),
        "{}",
        out.stderr_text()
    );
    let out = d.docker(["update", "u1"]);
    assert!(!out.status.success());
    d.docker(["rm", "-f", "u1"]).assert_success();
}
