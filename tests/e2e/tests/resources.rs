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
    let counts = d
        .docker([
            "info",
            "-f",
            "{{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}",
        ])
        .assert_success();
    assert_eq!(counts, "0 1 0\n");
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

/// Our own child process, killed and reaped however the test ends; its stdout is
/// collected by a thread.
struct Watched {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Watched {
    fn spawn(mut cmd: std::process::Command) -> Watched {
        use std::io::Read;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("command starts");
        let mut stdout = child.stdout.take().unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Watched { child, out }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// The exit status if the process ends within `limit`.
    fn wait_for(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw streamed `GET` of `path` on the daemon's socket for `secs` seconds.
fn stream_for(d: &Berthd, path: &str, secs: u64) -> Watched {
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sN", "--max-time", &secs.to_string(), "--unix-socket"])
        .arg(d.socket())
        .arg(format!("http://x/v1.44{path}"));
    Watched::spawn(curl)
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn streamed_stats_send_a_sample_per_second_with_the_previous_as_baseline() {
    let d = daemon();
    d.docker(["run", "-d", "--name", "s1", "busybox", "sleep", "1000"])
        .assert_success();
    d.docker(["create", "--name", "s0", "busybox", "true"])
        .assert_success();
    let mut running = stream_for(&d, "/containers/s1/stats", 4);
    let mut stopped = stream_for(&d, "/containers/s0/stats", 4);
    running.wait_for(std::time::Duration::from_secs(10));
    stopped.wait_for(std::time::Duration::from_secs(10));
    let samples = json_lines(&running.text());
    assert!(samples.len() >= 3, "{}", running.text());
    for pair in samples.windows(2) {
        assert_ne!(pair[0]["read"], pair[1]["read"]);
        assert_eq!(pair[1]["preread"], pair[0]["read"]);
        assert_eq!(
            pair[1]["precpu_stats"]["cpu_usage"],
            pair[0]["cpu_stats"]["cpu_usage"]
        );
        assert_eq!(pair[1]["pids_stats"]["current"], 1);
    }
    // A stopped container streams empty samples, as Docker's collector publishes them.
    let empty = json_lines(&stopped.text());
    assert!(empty.len() >= 3, "{}", stopped.text());
    assert_eq!(empty[1]["name"], "/s0");
    assert_eq!(empty[1]["read"], "0001-01-01T00:00:00Z");
    assert_eq!(empty[1]["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    // Without streaming, a stopped container answers at once.
    let t0 = std::time::Instant::now();
    let one = d.request("GET", "/containers/s0/stats?stream=false", None);
    assert!(t0.elapsed() < std::time::Duration::from_millis(400));
    assert_eq!(one.json()["id"].as_str().unwrap().len(), 64);
    let both = d.request(
        "GET",
        "/containers/s1/stats?stream=true&one-shot=true",
        None,
    );
    assert_eq!(both.status, 400, "{}", both.text());
    // Removing the container ends its stream, as in Docker.
    let mut watch = stream_for(&d, "/containers/s1/stats", 60);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.docker(["rm", "-f", "s1"]).assert_success();
    let status = watch.wait_for(std::time::Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", watch.text());
}

#[test]
fn docker_stats_streams_refreshed_tables_until_interrupted() {
    use rustix::process::Signal;
    use std::time::Duration;
    let d = daemon();
    d.docker(["run", "-d", "--name", "w1", "busybox", "sleep", "1000"])
        .assert_success();
    d.docker(["create", "--name", "w0", "busybox", "true"])
        .assert_success();
    let format = "{{.Name}}|{{.PIDs}}";
    // Named containers, one running and one stopped.
    let mut cmd = d.docker_cmd();
    cmd.args(["stats", "--format", format, "w1", "w0"]);
    let mut named = Watched::spawn(cmd);
    assert!(
        berth_e2e::eventually(Duration::from_secs(15), || named
            .text()
            .matches("\x1b[H")
            .count()
            >= 4),
        "{}",
        named.text()
    );
    let text = named.text();
    let last = text.rsplit("\x1b[H").next().unwrap();
    assert!(last.contains("w1|1"), "{text:?}");
    assert!(last.contains("w0|0"), "{text:?}");
    // The CLI (28.x) does not watch its interrupt for named containers
    // (docker/cli#6090, the same against dockerd): its third SIGINT ends it.
    for _ in 0..3 {
        named.signal(Signal::INT);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(named.wait_for(Duration::from_secs(10)).is_some());
    // All running containers: the first SIGINT ends the event watch and the command.
    let mut cmd = d.docker_cmd();
    cmd.args(["stats", "--format", format]);
    let mut all = Watched::spawn(cmd);
    assert!(
        berth_e2e::eventually(Duration::from_secs(15), || all
            .text()
            .matches("w1|1")
            .count()
            >= 3),
        "{}",
        all.text()
    );
    assert!(!all.text().contains("w0|"), "{}", all.text());
    all.signal(Signal::INT);
    let status = all.wait_for(Duration::from_secs(10)).expect("stats ends");
    assert_eq!(status.code(), Some(130));
    // berth's own CLI streams too and ends on SIGINT.
    let mut cmd = d.berth_cmd();
    cmd.args(["stats", "--format", format, "w1"]);
    let mut berth = Watched::spawn(cmd);
    assert!(
        berth_e2e::eventually(Duration::from_secs(15), || berth
            .text()
            .matches("w1|1")
            .count()
            >= 2),
        "{}",
        berth.text()
    );
    berth.signal(Signal::INT);
    assert!(berth.wait_for(Duration::from_secs(10)).is_some());
    d.docker(["rm", "-f", "w1", "w0"]).assert_success();
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
