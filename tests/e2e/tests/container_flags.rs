//! The remaining `run`/`create`/`ps`/`logs` flags of Foundation II through the
//! official docker CLI: --init, --device, --cgroupns, --stop-timeout, the
//! unless-stopped policy, logs --since/--until, ps -s/-l/-n/--no-trunc and the
//! ancestor/before/since filters, --mount, --memory-swap, --cpu-period/--cpu-quota.
//! Needs root.

use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt, eventually, exit_code as code};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

#[test]
fn init_runs_docker_init_as_pid_1_and_reaps_for_the_command() {
    let d = daemon();
    let out = d
        .docker([
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline",
        ])
        .assert_success();
    assert_eq!(
        out,
        "docker-init\n/sbin/docker-init -- sh -c cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline "
    );
    let init = d
        .docker(["create", "--init", "busybox", "true"])
        .assert_success();
    let flag = d
        .docker(["inspect", "-f", "{{.HostConfig.Init}}", init.trim()])
        .assert_success();
    assert_eq!(flag, "true\n");
    // Without --init the command itself is PID 1.
    let out = d
        .docker(["run", "--rm", "busybox", "cat", "/proc/1/comm"])
        .assert_success();
    assert_eq!(out, "cat\n");
}

#[test]
fn device_flag_adds_the_node_with_its_permissions() {
    let d = daemon();
    let out = d
        .docker([
            "run",
            "--rm",
            "--device",
            "/dev/null:/dev/mynull",
            "busybox",
            "sh",
            "-c",
            "stat -c '%F %t,%T' /dev/mynull && echo x > /dev/mynull && echo written",
        ])
        .assert_success();
    assert_eq!(out, "character special file 1,3\nwritten\n");
    // `r` only: opening for reading works, for writing the device cgroup refuses.
    // (loop-control is outside Docker's default device rules, unlike null or zero;
    // opening it does nothing.)
    let out = d.docker([
        "run",
        "--rm",
        "--device",
        "/dev/loop-control:/dev/lc:r",
        "busybox",
        "sh",
        "-c",
        ": < /dev/lc && echo readable; : > /dev/lc",
    ]);
    assert_ne!(code(&out), 0);
    assert_eq!(out.stdout_text(), "readable\n");
    assert!(
        out.stderr_text().contains("Operation not permitted"),
        "{}",
        out.stderr_text()
    );
    // Without --device the node does not exist.
    let out = d.docker(["run", "--rm", "busybox", "ls", "/dev/mynull"]);
    assert_eq!(code(&out), 1);
    // A host path that is not a device fails the start; `--rm` still removes it.
    let out = d.docker([
        "run",
        "--rm",
        "--device",
        "/etc/hostname",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        out.stderr_text().contains("/etc/hostname"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
    // So does a missing command (127), and the container is gone too.
    let out = d.docker(["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", out.stderr_text());
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
}

#[test]
fn cgroupns_private_shows_the_container_its_own_root() {
    let d = daemon();
    let private = d
        .docker([
            "run",
            "--rm",
            "--cgroupns",
            "private",
            "busybox",
            "grep",
            ":memory:",
            "/proc/self/cgroup",
        ])
        .assert_success();
    assert!(private.trim().ends_with(":memory:/"), "{private}");
    let host = d
        .docker(["run", "-d", "--cgroupns", "host", "busybox", "sleep", "100"])
        .assert_success();
    let id = host.trim();
    let pid = d
        .docker(["inspect", "-f", "{{.State.Pid}}", id])
        .assert_success();
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let memory = cgroup
        .lines()
        .find(|l| l.contains(":memory:"))
        .expect("a memory line");
    assert!(
        memory.contains(&d.cgroup_parent()) && memory.contains(id),
        "{memory}"
    );
    let mode = d
        .docker(["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", id])
        .assert_success();
    assert_eq!(mode, "host\n");
    d.docker(["rm", "-f", id]).assert_success();
    let out = d.docker(["run", "--rm", "--cgroupns", "shared", "busybox", "true"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn stop_timeout_sets_the_grace_period_before_sigkill() {
    let d = daemon();
    // sh as PID 1 ignores SIGTERM: only the SIGKILL after the grace period ends it.
    d.docker([
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ])
    .assert_success();
    let timeout = d
        .docker(["inspect", "-f", "{{.Config.StopTimeout}}", "stubborn"])
        .assert_success();
    assert_eq!(timeout, "1\n");
    let start = Instant::now();
    d.docker(["stop", "stubborn"]).assert_success();
    let took = start.elapsed();
    // The default grace period is 10 s; --stop-timeout 1 makes it one.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let state = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "stubborn",
        ])
        .assert_success();
    assert_eq!(state, "exited 137\n");
}

#[test]
fn unless_stopped_restarts_on_exit_but_not_after_a_user_stop() {
    let mut d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "bouncer",
        "--restart",
        "unless-stopped",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    ])
    .assert_success();
    assert!(
        eventually(Duration::from_secs(20), || {
            d.docker(["inspect", "-f", "{{.RestartCount}}", "bouncer"])
                .stdout_text()
                .trim()
                .parse::<u32>()
                .is_ok_and(|n| n >= 2)
        }),
        "unless-stopped did not restart the container"
    );
    d.docker(["stop", "-t", "1", "bouncer"]).assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "keeper",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ])
    .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ])
    .assert_success();
    d.docker(["stop", "-t", "1", "stopped"]).assert_success();
    d.docker(["stop", "-t", "1", "keeper"]).assert_success();
    d.docker(["start", "keeper"]).assert_success();
    // A daemon restart brings back what was running, never what a user stopped.
    d.restart();
    let status = |name: &str| {
        d.docker(["inspect", "-f", "{{.State.Status}}", name])
            .assert_success()
            .trim()
            .to_string()
    };
    assert_eq!(status("keeper"), "running");
    assert_eq!(status("stopped"), "exited");
    assert_eq!(status("bouncer"), "exited");
    d.docker(["rm", "-f", "keeper"]).assert_success();
}

#[test]
fn logs_since_and_until_select_by_time_inclusively() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "clock",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 1.2; echo two; sleep 1.2; echo three",
    ])
    .assert_success();
    d.docker(["wait", "clock"]).assert_success();
    let stamped = d.docker(["logs", "-t", "clock"]).assert_success();
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split_once(' ').expect("timestamp and text").0)
        .collect();
    assert_eq!(times.len(), 3, "{stamped}");
    let logs = |args: &[&str]| {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        all.push("clock");
        d.docker(&all).assert_success()
    };
    assert_eq!(logs(&["--since", times[1]]), "two\nthree\n");
    assert_eq!(logs(&["--until", times[1]]), "one\ntwo\n");
    assert_eq!(logs(&["--since", times[1], "--until", times[1]]), "two\n");
    assert_eq!(logs(&["--since", "1h"]), "one\ntwo\nthree\n");
    assert_eq!(logs(&["--since", "2099-01-01T00:00:00Z"]), "");
    assert_eq!(
        logs(&["--since", times[2], "-t"]),
        format!("{} three\n", times[2])
    );
    let out = d.docker(["logs", "--since", "yesterday-ish", "clock"]);
    assert_ne!(code(&out), 0);
}

#[test]
fn ps_size_latest_last_no_trunc_and_the_image_and_order_filters() {
    let d = daemon();
    let first = d
        .docker([
            "run",
            "--name",
            "writer",
            "busybox",
            "sh",
            "-c",
            "head -c 1000 /dev/zero > /payload",
        ])
        .assert_success();
    assert_eq!(first, "");
    d.docker(["create", "--name", "middle", "busybox", "true"])
        .assert_success();
    d.docker(["create", "--name", "newest", "busybox", "true"])
        .assert_success();

    let size = d
        .docker([
            "ps",
            "-a",
            "-s",
            "-f",
            "name=writer",
            "--format",
            "{{.Size}}",
        ])
        .assert_success();
    assert!(size.starts_with("1kB (virtual "), "{size}");
    let table = d.docker(["ps", "-a", "-s"]).assert_success();
    assert!(table.lines().next().unwrap().contains("SIZE"), "{table}");
    assert_eq!(
        d.docker(["inspect", "-s", "-f", "{{.SizeRw}}", "writer"])
            .assert_success(),
        "1000\n"
    );

    let names = |args: &[&str]| {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        d.docker(&all).assert_success()
    };
    assert_eq!(names(&["-l"]), "newest\n");
    assert_eq!(names(&["-n", "2"]), "newest\nmiddle\n");
    assert_eq!(names(&["-a", "-f", "before=middle"]), "writer\n");
    assert_eq!(names(&["-a", "-f", "since=middle"]), "newest\n");
    assert_eq!(
        names(&["-a", "-f", "ancestor=busybox"]),
        "newest\nmiddle\nwriter\n"
    );
    assert_eq!(names(&["-a", "-f", "ancestor=hello-world"]), "");
    let id = d
        .docker(["inspect", "-f", "{{.Id}}", "newest"])
        .assert_success();
    let full = d
        .docker(["ps", "-l", "--no-trunc", "--format", "{{.ID}}"])
        .assert_success();
    assert_eq!(full, id);
    let short = d.docker(["ps", "-l", "-q"]).assert_success();
    assert_eq!(short.trim(), &id.trim()[..12]);
}

#[test]
fn mount_flag_binds_volumes_and_tmpfs() {
    let d = daemon();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "hello\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/h,readonly",
        host.path().display()
    );
    let out = d.docker([
        "run",
        "--rm",
        "--mount",
        &bind,
        "--mount",
        "type=volume,source=mnt-vol,target=/v",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox",
        "sh",
        "-c",
        "cat /h/from-host; echo kept > /v/file; grep ' /t ' /proc/mounts | cut -d' ' -f3,4; stat -c %a /t; touch /h/x",
    ]);
    assert_ne!(code(&out), 0, "the bind is read-only");
    assert_eq!(
        out.stdout_text(),
        "hello\ntmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770\n1770\n"
    );
    assert!(
        out.stderr_text().contains("Read-only file system"),
        "{}",
        out.stderr_text()
    );
    let out = d
        .docker([
            "run",
            "--rm",
            "--mount",
            "source=mnt-vol,target=/again",
            "busybox",
            "cat",
            "/again/file",
        ])
        .assert_success();
    assert_eq!(out, "kept\n");
    let out = d.docker([
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        out.stderr_text()
            .contains("bind source path does not exist"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn volume_subpath_mounts_a_directory_of_the_volume_resolved_inside_it() {
    let d = daemon();
    d.docker([
        "run",
        "--rm",
        "-v",
        "sub-vol:/v",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /v/sub && echo inside > /v/sub/f && ln -s / /v/to-root && ln -s /etc /v/to-etc",
    ])
    .assert_success();
    let cat = |subpath: &str, path: &str| {
        d.docker([
            "run",
            "--rm",
            "--mount",
            &format!("type=volume,src=sub-vol,dst=/m,volume-subpath={subpath}"),
            "busybox",
            "ls",
            path,
        ])
    };
    assert_eq!(cat("sub", "/m").assert_success(), "f\n");
    // A symlink left in the volume resolves inside the volume, never on the host.
    assert_eq!(
        cat("to-root", "/m").assert_success(),
        "sub\nto-etc\nto-root\n"
    );
    let out = cat("to-etc", "/m");
    // The docker CLI exits 127 for a start error that says "no such file or directory".
    assert_eq!(code(&out), 127, "{}", out.stderr_text());
    assert!(
        out.stderr_text()
            .contains("error while mounting volume 'sub-vol': cannot access path")
            && out.stderr_text().contains("no such file or directory"),
        "{}",
        out.stderr_text()
    );
    let out = cat("../up", "/m");
    assert_eq!(code(&out), 125);
    assert!(
        out.stderr_text().contains(
            "invalid mount config for type \"volume\": subpath must be a relative path within the volume"
        ),
        "{}",
        out.stderr_text()
    );
    let out = d.docker([
        "run",
        "--rm",
        "--mount",
        "type=volume,dst=/m,volume-subpath=x",
        "busybox",
        "true",
    ]);
    assert!(
        out.stderr_text()
            .contains("must not set Subpath when using anonymous volumes"),
        "{}",
        out.stderr_text()
    );
    // Inspect shows the mount as Docker does, without a Subpath field.
    let id = d
        .docker([
            "create",
            "--mount",
            "type=volume,src=sub-vol,dst=/m,volume-subpath=sub",
            "busybox",
        ])
        .assert_success();
    let mounts = d
        .docker(["inspect", "-f", "{{json .Mounts}}", id.trim()])
        .assert_success();
    assert!(mounts.contains("\"Name\":\"sub-vol\""), "{mounts}");
    assert!(!mounts.contains("Subpath"), "{mounts}");
}

#[test]
fn memory_swap_and_cpu_period_quota_reach_the_cgroup() {
    let d = daemon();
    let out = d
        .docker([
            "run",
            "--rm",
            "-m",
            "64m",
            "--memory-swap",
            "96m",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        ])
        .assert_success();
    assert_eq!(out, format!("{}\n50000\n25000\n", 64 << 20));
    let hc = d
        .docker(["create", "-m", "64m", "--memory-swap", "96m", "busybox"])
        .assert_success();
    let limits = d
        .docker([
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
            hc.trim(),
        ])
        .assert_success();
    assert_eq!(limits, format!("{} {}\n", 64 << 20, 96 << 20));
    // A swap limit below the memory limit is Docker's error.
    let out = d.docker([
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "32m",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        out.stderr_text()
            .contains("Minimum memoryswap limit should be larger than memory limit"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn new_volumes_are_filled_from_the_image_unless_nocopy() {
    let d = daemon();
    let ls = |volume: &str| {
        d.docker([
            "run",
            "--rm",
            "-v",
            &format!("{volume}:/x"),
            "busybox",
            "ls",
            "/x",
        ])
        .assert_success()
    };
    // A new named volume at a path the image fills gets the image's files at create.
    d.docker(["create", "-v", "filled:/etc", "busybox", "true"])
        .assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "-v",
            "filled:/x",
            "busybox",
            "cat",
            "/x/passwd",
        ])
        .assert_success();
    assert!(out.starts_with("root:"), "{out}");
    // A volume that has content already is left as it is.
    d.docker([
        "run",
        "--rm",
        "-v",
        "filled:/x",
        "busybox",
        "sh",
        "-c",
        "rm -rf /x/* && echo mine > /x/only",
    ])
    .assert_success();
    d.docker(["create", "-v", "filled:/etc", "busybox", "true"])
        .assert_success();
    assert_eq!(ls("filled"), "only\n");
    // nocopy, in both syntaxes, keeps a new volume empty.
    d.docker(["create", "-v", "bare:/etc:nocopy", "busybox", "true"])
        .assert_success();
    assert_eq!(ls("bare"), "");
    d.docker([
        "create",
        "--mount",
        "type=volume,source=bare2,target=/etc,volume-nocopy",
        "busybox",
        "true",
    ])
    .assert_success();
    assert_eq!(ls("bare2"), "");
    // Anonymous volumes are filled too; a path the image lacks gives an empty one.
    let id = d
        .docker([
            "create",
            "-v",
            "/etc",
            "-v",
            "/nothing/here",
            "busybox",
            "true",
        ])
        .assert_success();
    let sources = d
        .docker([
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Destination}}={{.Source}} {{end}}",
            id.trim(),
        ])
        .assert_success();
    for pair in sources.split_whitespace() {
        let (dest, source) = pair.split_once('=').unwrap();
        let names: Vec<String> = std::fs::read_dir(source)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        match dest {
            "/etc" => assert!(names.contains(&"passwd".to_string()), "{names:?}"),
            "/nothing/here" => assert!(names.is_empty(), "{names:?}"),
            other => panic!("unexpected mount {other}"),
        }
    }
}

#[test]
fn user_by_name_resolves_in_the_images_passwd_and_group() {
    let d = daemon();
    let out = d
        .docker(["run", "--rm", "-u", "www-data", "busybox", "id"])
        .assert_success();
    assert_eq!(
        out,
        "uid=33(www-data) gid=33(www-data) groups=33(www-data)\n"
    );
    let out = d
        .docker([
            "run",
            "--rm",
            "--user",
            "nobody:nogroup",
            "busybox",
            "id",
            "-u",
        ])
        .assert_success();
    assert_eq!(out, "65534\n");
    let out = d.docker(["run", "--rm", "-u", "no-such-user", "busybox", "id"]);
    assert_ne!(code(&out), 0);
    assert!(
        out.stderr_text().contains("no-such-user"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn a_container_whose_shim_dies_is_stopped_not_orphaned() {
    let d = daemon();
    let id = d
        .docker(["run", "-d", "busybox", "sleep", "1000"])
        .assert_success();
    let id = id.trim();
    // The shim is the process whose command line names this container's state dir.
    let state_dir = format!("{}/c/{}", d.exec_root().display(), &id[..12]);
    let shim = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.len() >= 2
                    && args[0].ends_with(b"berth-shim")
                    && args[1] == state_dir.as_bytes()
            })
        })
        .expect("the container's shim");
    let procs = format!(
        "/sys/fs/cgroup/pids/{}/{id}/cgroup.procs",
        d.cgroup_parent()
    );
    assert!(std::path::Path::new(&procs).exists());
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(shim).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            d.docker(["inspect", "-f", "{{.State.Running}}", id])
                .assert_success()
                .trim()
                == "false"
        }),
        "the container still reads as running"
    );
    // Its processes died with it: nothing is left unmanaged in its cgroup.
    assert!(
        eventually(Duration::from_secs(5), || !std::path::Path::new(&procs)
            .exists()),
        "processes outlived the container: {:?}",
        std::fs::read_to_string(&procs)
    );
}

#[test]
fn create_records_dockers_defaults_and_systempaths_unconfined_unmasks() {
    let d = daemon();
    // What Docker's create fills in, as inspect shows it, for a client (docker-py, say)
    // that sends only the fields it sets.
    let r = d.request(
        "POST",
        "/containers/create?name=plain",
        Some((
            "application/json",
            br#"{"Image":"busybox","HostConfig":{"Memory":67108864}}"#,
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let hc = d
        .docker(["inspect", "-f", "{{json .HostConfig}}", "plain"])
        .assert_success();
    let hc: serde_json::Value = serde_json::from_str(&hc).unwrap();
    assert_eq!(hc["ShmSize"], 64 << 20);
    assert_eq!(hc["IpcMode"], "private");
    assert_eq!(hc["OomKillDisable"], false);
    assert!(matches!(
        hc["CgroupnsMode"].as_str(),
        Some("host" | "private")
    ));
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(hc["MemorySwap"], 128 << 20);
    }
    let masked = hc["MaskedPaths"].as_array().unwrap();
    assert!(masked.iter().any(|p| p == "/proc/kcore"), "{masked:?}");
    assert_eq!(hc["ReadonlyPaths"].as_array().unwrap().len(), 5);
    // Masked paths are what the container gets; `systempaths=unconfined` (an empty
    // list from the CLI) takes them and the read-only ones away.
    let probe = "wc -c < /proc/timer_list; grep -c ' /proc/sys ' /proc/mounts || true";
    let out = d
        .docker(["run", "--rm", "busybox", "sh", "-c", probe])
        .assert_success();
    assert_eq!(out, "0\n1\n");
    let out = d
        .docker([
            "run",
            "--rm",
            "--security-opt",
            "systempaths=unconfined",
            "busybox",
            "sh",
            "-c",
            probe,
        ])
        .assert_success();
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("0"), "{out}");
    assert_eq!(lines.next(), Some("0"), "{out}");
    let privileged = d
        .docker(["create", "--privileged", "busybox"])
        .assert_success();
    let paths = d
        .docker([
            "inspect",
            "-f",
            "{{json .HostConfig.MaskedPaths}}",
            privileged.trim(),
        ])
        .assert_success();
    assert_eq!(paths, "null\n");
}

#[test]
fn exec_resolves_users_through_the_containers_own_mounts() {
    let d = daemon();
    // A passwd file bind-mounted over the image's: only the container's view has it.
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh\nmounted:x:4321:4321::/:/bin/sh\n",
    )
    .unwrap();
    d.docker([
        "run",
        "-d",
        "--name",
        "withpasswd",
        "-v",
        &format!("{}:/etc/passwd:ro", passwd.display()),
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    let out = d.docker(["exec", "-u", "mounted", "withpasswd", "id", "-u"]);
    assert_eq!(out.assert_success(), "4321\n");
}
