//! Containers through the official docker CLI: run, exit codes, logs, stop, kill,
//! rm, rename, wait, ps filters, limits that bite, restart policy, live restore.
//! Needs root.

use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually, exit_code as code};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

#[test]
fn run_prints_output_and_returns_the_exit_code() {
    let d = daemon();
    let out = d.docker(["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_eq!(out.assert_success(), "hello from berth\n");
    let out = d.docker([
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3);
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    // --rm removed the first container; the second is kept.
    let names = d.docker(["ps", "-a", "-q"]).assert_success();
    assert_eq!(names.lines().count(), 1);
}

#[test]
fn run_exit_codes_follow_docker_for_missing_and_unrunnable_commands() {
    let d = daemon();
    let out = d.docker(["run", "busybox", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("executable file not found"),
        "{}",
        out.stderr_text()
    );
    let out = d.docker(["run", "busybox", "/etc/passwd"]);
    assert_eq!(code(&out), 126, "{}", out.stderr_text());
    let out = d.docker(["run", "no-such-image-here"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn stdin_is_piped_with_dash_i() {
    let d = daemon();
    let out = d.docker_with_stdin(
        ["run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z"],
        b"piped input\n",
    );
    assert_eq!(out.assert_success(), "PIPED INPUT\n");
}

#[test]
fn detached_container_logs_stop_and_remove() {
    let d = daemon();
    let id = d
        .docker([
            "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
            "echo started; echo to-stderr >&2; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done",
        ])
        .assert_success();
    assert_eq!(id.trim().len(), 64);
    assert!(eventually(Duration::from_secs(10), || d
        .docker(["logs", "ticker"])
        .stdout_text()
        .contains("started")));
    let logs = d.docker(["logs", "ticker"]);
    assert_eq!(logs.stdout_text(), "started\n");
    assert_eq!(logs.stderr_text(), "to-stderr\n");
    let ps = d
        .docker(["ps", "--format", "{{.Names}} {{.State}}"])
        .assert_success();
    assert_eq!(ps, "ticker running\n");
    let out = d.docker(["rm", "ticker"]);
    assert!(
        out.stderr_text().contains("container is running"),
        "{}",
        out.stderr_text()
    );
    d.docker(["stop", "ticker"]).assert_success();
    let state = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
            "ticker",
        ])
        .assert_success();
    assert_eq!(state, "exited 7 false\n");
    assert!(
        d.docker(["logs", "--tail", "1", "ticker"])
            .stdout_text()
            .contains("bye")
    );
    let ts = d.docker(["logs", "-t", "ticker"]).stdout_text();
    assert!(ts.starts_with("20") && ts.contains("Z started"), "{ts}");
    // --details: the driver's attributes before each line, a bare space without any.
    let details = d.docker(["logs", "--details", "ticker"]).stdout_text();
    assert!(details.starts_with(" started\n"), "{details:?}");
    d.docker(["rm", "ticker"]).assert_success();
    d.docker([
        "run",
        "--name",
        "tagged",
        "-l",
        "team=a b",
        "-e",
        "STAGE=dev",
        "--log-opt",
        "labels=team",
        "--log-opt",
        "env=STAGE,MISSING",
        "--log-opt",
        "tag={{.Name}}",
        "busybox",
        "echo",
        "hi",
    ])
    .assert_success();
    let details = d.docker(["logs", "--details", "tagged"]).assert_success();
    assert_eq!(details, "STAGE=dev,tag=tagged,team=a+b hi\n");
    d.docker(["rm", "tagged"]).assert_success();
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
}

#[test]
fn kill_wait_rename_and_name_conflicts() {
    let d = daemon();
    d.docker(["run", "-d", "--name", "k1", "busybox", "sleep", "100"])
        .assert_success();
    let out = d.docker(["run", "-d", "--name", "k1", "busybox", "true"]);
    assert!(
        out.stderr_text().contains("is already in use"),
        "{}",
        out.stderr_text()
    );
    d.docker(["rename", "k1", "k2"]).assert_success();
    d.docker(["kill", "-s", "KILL", "k2"]).assert_success();
    assert_eq!(d.docker(["wait", "k2"]).assert_success(), "137\n");
    let out = d.docker(["kill", "k2"]);
    assert!(
        out.stderr_text().contains("is not running"),
        "{}",
        out.stderr_text()
    );
    // Names with a non-hex letter: a name that is also a prefix of a container's or
    // network's random ID resolves to it, as in Docker (`a1` failed 1 run in 256).
    let out = d.docker(["inspect", "--type", "container", "k1"]);
    assert_ne!(code(&out), 0);
}

#[test]
fn ps_filters_select_containers() {
    let d = daemon();
    d.docker(["run", "--name", "ok", "-l", "tier=web", "busybox", "true"])
        .assert_success();
    d.docker(["run", "--name", "bad", "busybox", "sh", "-c", "exit 2"]);
    d.docker(["create", "--name", "new", "busybox"])
        .assert_success();
    let q = |f: &str| {
        d.docker(["ps", "-a", "--filter", f, "--format", "{{.Names}}"])
            .assert_success()
    };
    assert_eq!(q("exited=2"), "bad\n");
    assert_eq!(q("status=created"), "new\n");
    assert_eq!(q("label=tier=web"), "ok\n");
    assert_eq!(q("name=ba"), "bad\n");
    // publish matches the host port, expose the container's, ranges included.
    d.docker([
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "127.0.0.1::8080",
        "--expose",
        "9090/udp",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    let host_port = d.docker(["port", "pub", "8080"]).assert_success();
    let host_port = host_port.trim().rsplit(':').next().unwrap().to_string();
    assert_eq!(q(&format!("publish={host_port}")), "pub\n");
    assert_eq!(q(&format!("publish={host_port}/udp")), "");
    assert_eq!(q("publish=8080"), "");
    assert_eq!(q("expose=8080"), "pub\n");
    assert_eq!(q("expose=9000-9100/udp"), "pub\n");
    assert_eq!(q("expose=9090"), "");
    assert_eq!(q("is-task=true"), "");
    assert!(q("is-task=false").contains("pub"));
    let out = d.docker(["ps", "--filter", "publish=127.0.0.1:80"]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("filter for 'publish' should not contain ':'");
    d.docker(["rm", "-f", "pub"]).assert_success();
    assert_eq!(d.docker(["ps", "-q"]).assert_success(), "");
    assert_eq!(
        d.docker(["ps", "-a", "-n", "1", "--format", "{{.Names}}"])
            .assert_success(),
        "new\n"
    );
    let pruned = d.docker(["container", "prune", "-f"]).assert_success();
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
}

#[test]
fn memory_limit_oom_kills_with_137() {
    let d = daemon();
    let out = d.docker([
        "run",
        "--name",
        "hog",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert_eq!(code(&out), 137, "{}", out.stderr_text());
    let state = d
        .docker([
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "hog",
        ])
        .assert_success();
    assert_eq!(state, "true 137\n");
}

#[test]
fn pids_limit_stops_fork_bombs() {
    let d = daemon();
    let out = d.docker([
        "run",
        "--rm",
        "--pids-limit",
        "8",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait; echo done",
    ]);
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{text}"
    );
}

#[test]
fn restart_policy_on_failure_retries_then_stops() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ])
    .assert_success();
    assert!(
        eventually(Duration::from_secs(20), || {
            d.docker([
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Running}} {{.State.Restarting}}",
                "flaky",
            ])
            .stdout_text()
                == "2 false false\n"
        }),
        "{}",
        d.docker([
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky"
        ])
        .stdout_text()
    );
}

#[test]
fn containers_survive_kill_9_of_the_daemon() {
    let mut d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "keeps",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ])
    .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "ends",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ])
    .assert_success();
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.start_again();
    assert_eq!(
        d.docker(["ps", "--format", "{{.Names}}"]).assert_success(),
        "keeps\n"
    );
    assert_eq!(
        d.docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ends"
        ])
        .assert_success(),
        "exited 5\n"
    );
    let before = d.docker(["logs", "keeps"]).stdout_text().lines().count();
    assert!(eventually(Duration::from_secs(5), || d
        .docker(["logs", "keeps"])
        .stdout_text()
        .lines()
        .count()
        > before));
    d.docker(["stop", "-t", "1", "keeps"]).assert_success();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}}", "keeps"])
            .assert_success(),
        "exited\n"
    );
    d.docker(["rm", "keeps", "ends"]).assert_success();
}

#[test]
fn isolation_defaults_match_docker() {
    let d = daemon();
    let out = d.docker(["run", "--rm", "--hostname", "boxy", "busybox", "sh", "-c",
        "hostname; grep CapEff /proc/self/status; cat /proc/kcore 2>&1 | head -c 0; ls /proc/self/fd | wc -l; id -u"]);
    let text = out.assert_success();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "boxy");
    assert_eq!(
        lines[1].split_whitespace().nth(1),
        Some("00000000a80425fb"),
        "{text}"
    );
    assert_eq!(lines[3], "0");
    let out = d.docker(["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(code(&out), 0);
    let out = d.docker(["run", "--rm", "-u", "1000:1000", "busybox", "id"]);
    assert_eq!(out.assert_success(), "uid=1000 gid=1000 groups=1000\n");
    let out = d.docker([
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd)",
    ]);
    assert_eq!(out.assert_success(), "1 /tmp\n");
}

#[test]
fn bind_mounts_and_named_volumes_keep_data() {
    let d = daemon();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let bind = format!("{}:/data", host.path().display());
    let out = d.docker([
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo back > /data/out.txt",
    ]);
    assert_eq!(out.assert_success(), "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.path().display());
    assert_ne!(
        code(&d.docker(["run", "--rm", "-v", &ro, "busybox", "touch", "/data/x"])),
        0
    );
    d.docker([
        "run",
        "--rm",
        "-v",
        "vol1:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ])
    .assert_success();
    assert_eq!(
        d.docker(["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/f"])
            .assert_success(),
        "kept\n"
    );
}

#[test]
fn volume_api_creates_lists_protects_and_prunes() {
    let d = daemon();
    d.docker(["volume", "create", "--label", "team=a", "named1"])
        .assert_success();
    let anon = d.docker(["volume", "create"]).assert_success();
    assert_eq!(anon.trim().len(), 64);
    let ls = d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(ls.contains("named1") && ls.contains(anon.trim()), "{ls}");
    assert_eq!(
        d.docker(["volume", "ls", "-q", "-f", "label=team=a"])
            .assert_success(),
        "named1\n"
    );
    let mp = d
        .docker([
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}} {{.Driver}}",
            "named1",
        ])
        .assert_success();
    assert!(mp.ends_with("/volumes/named1/_data local\n"), "{mp}");
    d.docker([
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "named1:/d",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    let err = d.docker(["volume", "rm", "named1"]).assert_failure();
    assert!(err.contains("volume is in use"), "{err}");
    d.docker(["rm", "-f", "holder"]).assert_success();
    // Prune takes unused anonymous volumes only, unless --all.
    let pruned = d.docker(["volume", "prune", "-f"]).assert_success();
    assert!(
        pruned.contains(anon.trim()) && !pruned.contains("named1"),
        "{pruned}"
    );
    d.docker(["volume", "rm", "named1"]).assert_success();
    let err = d.docker(["volume", "inspect", "named1"]).assert_failure();
    assert!(err.contains("no such volume"), "{err}");
}

/// Whether a mount point at `path` is in berthd's (the host's) mount table.
fn mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
fn volumes_created_with_a_filesystem_are_mounted_while_in_use() {
    let d = daemon();
    // tmpfs with options: mounted when a container starts, gone when the last stops.
    d.docker([
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=4m,uid=1234",
        "scratch",
    ])
    .assert_success();
    let data = d
        .docker(["volume", "inspect", "-f", "{{.Mountpoint}}", "scratch"])
        .assert_success()
        .trim()
        .to_string();
    let out = d
        .docker([
            "run",
            "--rm",
            "-v",
            "scratch:/s",
            "busybox",
            "sh",
            "-c",
            "stat -c %u /s; df -k /s | tail -1",
        ])
        .assert_success();
    assert!(out.starts_with("1234\ntmpfs"), "{out}");
    assert!(out.contains(" 4096 "), "{out}");
    assert!(!mounted(&data), "still mounted after the container stopped");
    d.docker([
        "run",
        "-d",
        "--name",
        "keeper",
        "-v",
        "scratch:/s",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    d.docker(["exec", "keeper", "touch", "/s/shared"])
        .assert_success();
    // A second container sees the same filesystem, and its exit leaves it mounted.
    d.docker([
        "run",
        "--rm",
        "-v",
        "scratch:/s",
        "busybox",
        "ls",
        "/s/shared",
    ])
    .assert_success();
    assert!(mounted(&data));
    d.docker(["rm", "-f", "keeper"]).assert_success();
    assert!(!mounted(&data));

    // A bind of a host directory: writes land there, and `volume rm` unmounts before it
    // deletes, so the host's files survive.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "hi\n").unwrap();
    let device = format!("device={}", host.path().display());
    d.docker([
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        "hostdir",
    ])
    .assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "-v",
            "hostdir:/h",
            "busybox",
            "sh",
            "-c",
            "cat /h/from-host; echo x > /h/from-box",
        ])
        .assert_success();
    assert_eq!(out, "hi\n");
    assert!(host.path().join("from-box").exists());
    d.docker(["volume", "rm", "hostdir", "scratch"])
        .assert_success();
    assert!(host.path().join("from-host").exists() && host.path().join("from-box").exists());

    // Options Docker's local driver refuses, and a mount that fails at start.
    for (opt, needle) in [
        ("foo=1", r#"invalid option: "foo""#),
        ("type=tmpfs", r#"missing required option: "device""#),
        ("size=1g", "quota size requested but no quota support"),
    ] {
        let out = d.docker(["volume", "create", "--opt", opt, "refused"]);
        assert_eq!(code(&out), 1);
        out.assert_stderr_contains(needle);
    }
    d.docker([
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/no/such/dir",
        "broken",
    ])
    .assert_success();
    let out = d.docker(["run", "--rm", "-v", "broken:/b", "busybox", "true"]);
    // The CLI's own rule: a start error mentioning "no such file or directory" is 127.
    assert_eq!(code(&out), 127);
    out.assert_stderr_contains("failed to mount local volume: mount /no/such/dir:");
    out.assert_stderr_contains("no such file or directory");
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    let d = daemon();
    d.docker([
        "create",
        "--name",
        "store",
        "-v",
        "shared:/data",
        "-v",
        "/anon",
        "busybox",
    ])
    .assert_success();
    d.docker([
        "run",
        "--rm",
        "--volumes-from",
        "store",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f; echo yo > /anon/g",
    ])
    .assert_success();
    let out = d.docker([
        "run",
        "--rm",
        "--volumes-from",
        "store:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f /anon/g; touch /data/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out.assert_success(), "hi\nyo\nread-only\n");
}

#[test]
fn info_counts_containers_by_state() {
    let d = daemon();
    d.docker(["run", "-d", "busybox", "sleep", "100"])
        .assert_success();
    d.docker(["run", "busybox", "true"]).assert_success();
    d.docker(["create", "busybox"]).assert_success();
    let counts = d
        .docker([
            "info",
            "-f",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}",
        ])
        .assert_success();
    assert_eq!(counts, "3 1 2 1\n");
}

#[test]
fn security_flags_change_capabilities_and_privileges() {
    let d = daemon();
    let caps = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["busybox", "grep", "CapEff", "/proc/self/status"]);
        d.docker(all)
            .assert_success()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(caps(&["--cap-drop", "ALL"]), "0000000000000000");
    // NET_ADMIN is bit 12.
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        "0000000000001000"
    );
    assert_ne!(caps(&["--privileged"]), "00000000a80425fb");
    let nnp = d
        .docker([
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges",
            "busybox",
            "grep",
            "NoNewPrivs",
            "/proc/self/status",
        ])
        .assert_success();
    assert!(nnp.trim_end().ends_with('1'), "{nnp}");
}

#[test]
fn tmpfs_mounts_and_stop_signal() {
    let d = daemon();
    let out = d
        .docker([
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            "echo ok > /scratch/f && cat /scratch/f && grep /scratch /proc/mounts | cut -d' ' -f3",
        ])
        .assert_success();
    assert_eq!(out, "ok\ntmpfs\n");
    d.docker([
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ])
    .assert_success();
    assert!(eventually(Duration::from_secs(5), || d
        .docker(["ps", "-q", "-f", "name=usr1"])
        .stdout_text()
        .len()
        > 1));
    std::thread::sleep(Duration::from_millis(300));
    d.docker(["stop", "usr1"]).assert_success();
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.ExitCode}}", "usr1"])
            .assert_success(),
        "42\n"
    );
}

#[test]
fn logs_follow_streams_until_exit() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.3; done",
    ])
    .assert_success();
    let out = d.docker(["logs", "-f", "counter"]).assert_success();
    assert_eq!(out, "line 1\nline 2\nline 3\n");
}

/// A container with `--restart always` that died while berthd was down is started
/// again when berthd comes back; one stopped by the user stays stopped.
#[test]
fn restart_always_restarts_containers_that_died_while_the_daemon_was_down() {
    let mut d = daemon();
    let run = |name: &str| {
        d.docker([
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            "always",
            "busybox",
            "sleep",
            "1000",
        ])
        .assert_success();
    };
    run("svc");
    run("stopped");
    d.docker(["stop", "-t", "1", "stopped"]).assert_success();
    let pid = d
        .docker(["inspect", "-f", "{{.State.Pid}}", "svc"])
        .assert_success();
    d.kill9();
    // The container's init, which this test's daemon started: as if it crashed.
    std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.start_again();
    // Started again at boot (a boot-time start is not counted as a policy restart,
    // as in Docker), with a new init process.
    let state = || {
        d.docker(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "svc"])
            .stdout_text()
    };
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = state();
            s.starts_with("true ") && s.trim() != format!("true {}", pid.trim())
        }),
        "{}",
        state()
    );
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Status}}", "stopped"])
            .assert_success(),
        "exited\n"
    );
}

#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let d = daemon();
    let out = d
        .docker([
            "run", "--rm", "--cpus", "0.1", "busybox", "sh", "-c",
            "timeout 1 sh -c 'while true; do :; done'; grep nr_throttled /sys/fs/cgroup/cpu/cpu.stat 2>/dev/null || grep nr_throttled /sys/fs/cgroup/cpu.stat",
        ])
        .assert_success();
    let throttled: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "{out}");
}

#[test]
fn restart_rm_v_entrypoint_env_file_cpu_flags_and_log_rotation() {
    let d = daemon();
    // restart: a new process, same container.
    d.docker(["run", "-d", "--name", "rs", "busybox", "sleep", "100"])
        .assert_success();
    let pid = d
        .docker(["inspect", "-f", "{{.State.Pid}}", "rs"])
        .assert_success();
    d.docker(["restart", "-t", "1", "rs"]).assert_success();
    let after = d
        .docker(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "rs"])
        .assert_success();
    assert!(
        after.starts_with("true ") && !after.ends_with(&format!(" {pid}")),
        "{after} vs {pid}"
    );
    // rm -v removes anonymous volumes only.
    d.docker([
        "create",
        "--name",
        "vols",
        "-v",
        "/anon",
        "-v",
        "keepme:/k",
        "busybox",
    ])
    .assert_success();
    let anon = d
        .docker([
            "inspect",
            "-f",
            "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
            "vols",
        ])
        .assert_success();
    d.docker(["rm", "-v", "vols"]).assert_success();
    let left = d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(
        left.contains("keepme") && !left.contains(anon.trim()),
        "{left}"
    );
    // --entrypoint, --env-file.
    let env_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(env_file.path(), "# comment\nFROM_FILE=yes\n").unwrap();
    let out = d.docker([
        "run",
        "--rm",
        "--env-file",
        env_file.path().to_str().unwrap(),
        "--entrypoint",
        "/bin/sh",
        "busybox",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(out.assert_success(), "yes\n");
    // --cpuset-cpus and --cpu-shares reach the cgroup.
    let out = d
        .docker([
            "run",
            "--rm",
            "--cpuset-cpus",
            "0",
            "--cpu-shares",
            "512",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpu/cpu.shares",
        ])
        .assert_success();
    assert_eq!(out, "0\n512\n");
    // --log-opt max-size/max-file rotate the json-file log; docker logs reads across files.
    d.docker([
        "run", "--name", "chatty", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 60 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ])
    .assert_success();
    let log = d
        .docker(["inspect", "-f", "{{.LogPath}}", "chatty"])
        .assert_success();
    let log = log.trim();
    assert!(
        std::path::Path::new(&format!("{log}.1")).exists(),
        "no rotated file beside {log}"
    );
    assert!(
        !std::path::Path::new(&format!("{log}.3")).exists(),
        "max-file=3 keeps .1 and .2 only"
    );
    let tail = d.docker(["logs", "--tail", "1", "chatty"]).assert_success();
    assert!(tail.starts_with("line-59-"), "{tail}");
}
