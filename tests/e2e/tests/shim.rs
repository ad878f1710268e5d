//! berth-shim end to end: the real binary, hand-written launch specs, the socket
//! protocol spoken as raw JSON lines (so these tests also pin the wire format).
//!
//! Each test unpacks the busybox test image into its own temporary rootfs, uses a
//! cgroup path of its own (`/berth-e2e-shim-<random>/<name>`) and, in `Drop` (so also when
//! it fails), kills what it started by PID and removes its cgroup directories.
//! Needs root.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------- fixture

fn shim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("test executable has a directory");
    let profile = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let path = profile.join("berth-shim");
    assert!(
        path.is_file(),
        "berth-shim not found at {}: build it first (cargo build -p berth-shim; scripts/test does) or set BERTH_SHIM_BIN",
        path.display()
    );
    path
}

/// The busybox image's archive and the member that is its (only) layer.
fn busybox_layer() -> &'static (PathBuf, String) {
    static LAYER: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    LAYER.get_or_init(|| {
        let image = berth_e2e::test_image("busybox");
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(&image.archive)
            .arg("manifest.json")
            .output()
            .unwrap();
        assert!(out.status.success(), "reading {}", image.archive.display());
        let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "busybox has one layer");
        (image.archive, layers[0].as_str().unwrap().to_string())
    })
}

/// Unpacks the busybox layer into `rootfs` (each test gets its own copy to edit).
fn unpack_busybox(rootfs: &Path) {
    let (archive, layer) = busybox_layer();
    std::fs::create_dir_all(rootfs).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"tar -xOf "$0" "$1" | tar -xf - -C "$2""#)
        .arg(archive)
        .arg(layer)
        .arg(rootfs)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "unpacking busybox into {}",
        rootfs.display()
    );
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One test's world: a short temp dir (socket paths must stay under 108 bytes), a
/// rootfs, a cgroup prefix, and the processes to kill at the end.
struct Fixture {
    dir: tempfile::TempDir,
    cgroup_prefix: String,
    pids: std::cell::RefCell<Vec<i32>>,
}

impl Fixture {
    fn new() -> Self {
        berth_e2e::require_root();
        let dir = tempfile::Builder::new()
            .prefix("bsh-")
            .tempdir_in("/tmp")
            .unwrap();
        unpack_busybox(&dir.path().join("rootfs"));
        Fixture {
            dir,
            cgroup_prefix: format!("/berth-e2e-shim-{}", random_suffix()),
            pids: Default::default(),
        }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// A launch spec for `args` with Docker's defaults; tests patch it as JSON.
    fn launch(&self, name: &str, args: &[&str]) -> Value {
        json!({
            "id": format!("{:0>64}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "")),
            "rootfs": self.rootfs(),
            "process": {
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
            },
            "hostname": "box",
            "cgroup_path": format!("{}/{name}", self.cgroup_prefix),
            "shm_size": 67108864,
            "log": {
                "path": self.dir.path().join(name).join("c-json.log"),
                "max_size": null,
                "max_files": 1,
            },
        })
    }

    /// Spawns `berth-shim` for `launch` and reads its `Ready` line.
    fn spawn(&self, launch: &Value) -> Shim {
        let name = launch["cgroup_path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let state = self.dir.path().join(&name);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("launch.json"), launch.to_string()).unwrap();
        let mut child = Command::new(shim_bin())
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("Ready line {line:?}: {e}; shim.log: {}", shim_log(&state)));
        self.pids.borrow_mut().push(child.id() as i32);
        if let Some(pid) = ready["created"]["pid"].as_i64() {
            self.pids.borrow_mut().push(pid as i32);
        }
        Shim {
            state,
            child: Some(child),
            ready,
        }
    }

    /// Runs a container to the end: attach stdout+stderr, start, collect, wait.
    fn run(&self, launch: &Value) -> Run {
        let shim = self.spawn(launch);
        assert!(
            shim.ready.get("created").is_some(),
            "create failed: {}",
            shim.ready
        );
        let attach = shim.attach(false, true, true);
        let wait = shim.wait_conn();
        assert!(shim.request(json!("start")).get("started").is_some());
        let (stdout, stderr) = read_frames(attach);
        let exit = read_reply(wait);
        let mut shim = shim;
        shim.wait_exit();
        Run {
            exit: exit["exited"].clone(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            state: shim.state.clone(),
        }
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let rel = self.cgroup_prefix.trim_start_matches('/');
        for entry in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = entry.path().join(rel);
            if dir.is_dir() {
                out.push(dir);
            }
        }
        out
    }

    /// Container cgroups left under this test's prefix.
    fn leftover_cgroups(&self) -> Vec<PathBuf> {
        self.cgroup_dirs()
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for pid in self.pids.borrow().iter() {
            // Only PIDs this test started (shims and their inits).
            signal(*pid, rustix::process::Signal::KILL);
        }
        // Give killed processes a moment to leave their cgroups.
        let deadline = Instant::now() + Duration::from_secs(5);
        for dir in self.cgroup_dirs() {
            for sub in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    while std::fs::remove_dir(sub.path()).is_err() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            // The prefix is this fixture's alone: removing it races no other test.
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

struct Shim {
    state: PathBuf,
    child: Option<Child>,
    ready: Value,
}

struct Run {
    exit: Value,
    stdout: String,
    stderr: String,
    state: PathBuf,
}

fn shim_log(state: &Path) -> String {
    std::fs::read_to_string(state.join("shim.log")).unwrap_or_default()
}

fn connect(state: &Path) -> UnixStream {
    let s = UnixStream::connect(state.join("shim.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn read_reply(mut stream: UnixStream) -> Value {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap() == 1 {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    serde_json::from_slice(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
}

impl Shim {
    fn request(&self, request: Value) -> Value {
        let mut s = connect(&self.state);
        writeln!(s, "{request}").unwrap();
        read_reply(s)
    }

    fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> UnixStream {
        let mut s = connect(&self.state);
        writeln!(
            s,
            "{}",
            json!({"attach": {"stdin": stdin, "stdout": stdout, "stderr": stderr}})
        )
        .unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while s.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        assert_eq!(line, b"\"ok\"");
        s
    }

    fn wait_conn(&self) -> UnixStream {
        let mut s = connect(&self.state);
        writeln!(s, "\"wait\"").unwrap();
        s
    }

    fn wait_exit(&mut self) {
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                assert!(Instant::now() < deadline, "shim did not exit");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Reads Docker's 8-byte-header frames until EOF: (stdout, stderr).
fn read_frames(mut s: UnixStream) -> (Vec<u8>, Vec<u8>) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < all.len() {
        assert!(i + 8 <= all.len(), "truncated frame header");
        let len = u32::from_be_bytes(all[i + 4..i + 8].try_into().unwrap()) as usize;
        assert_eq!(&all[i + 1..i + 4], &[0, 0, 0]);
        let body = &all[i + 8..i + 8 + len];
        match all[i] {
            1 => out.extend_from_slice(body),
            2 => err.extend_from_slice(body),
            other => panic!("unknown stream {other}"),
        }
        i += 8 + len;
    }
    (out, err)
}

fn signal(pid: i32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

// ------------------------------------------------------------------ tests

#[test]
fn echo_reaches_attach_frames_and_json_log_lines() {
    let fx = Fixture::new();
    let run = fx.run(&fx.launch("echo", &sh("echo out; echo err >&2; printf 'a\\tb<c>'")));
    assert_eq!(run.stdout, "out\na\tb<c>");
    assert_eq!(run.stderr, "err\n");
    assert_eq!(run.exit["exit_code"], 0);
    assert_eq!(run.exit["oom_killed"], false);

    let log = std::fs::read_to_string(run.state.join("c-json.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let entries: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["stream"].as_str().unwrap(), l["log"].as_str().unwrap()))
        .collect();
    assert!(entries.contains(&("stdout", "out\n")), "{log}");
    assert!(entries.contains(&("stderr", "err\n")), "{log}");
    assert!(entries.contains(&("stdout", "a\tb<c>")), "{log}");
    // Escaped as Go does, times in RFC 3339 UTC.
    assert!(log.contains(r#""log":"a\u0009b\u003cc\u003e""#), "{log}");
    for l in &lines {
        let t = l["time"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() >= 20, "{t}");
    }
    let exit: Value =
        serde_json::from_slice(&std::fs::read(run.state.join("exit.json")).unwrap()).unwrap();
    assert_eq!(exit, run.exit);
    assert!(!run.state.join("shim.sock").exists());
    assert!(
        fx.leftover_cgroups().is_empty(),
        "{:?}",
        fx.leftover_cgroups()
    );
}

#[test]
fn exit_code_is_the_process_exit_code() {
    let fx = Fixture::new();
    let run = fx.run(&fx.launch("exit3", &sh("exit 3")));
    assert_eq!(run.exit["exit_code"], 3);
}

#[test]
fn missing_command_fails_create_with_dockers_127_message() {
    let fx = Fixture::new();
    let shim = fx.spawn(&fx.launch("nocmd", &["nonexistent"]));
    assert_eq!(
        shim.ready,
        json!({"failed": {"kind": "command_not_found",
            "message": "exec: \"nonexistent\": executable file not found in $PATH"}})
    );
    let shim = fx.spawn(&fx.launch("noabs", &["/nope/x"]));
    assert_eq!(shim.ready["failed"]["kind"], "command_not_found");
    assert!(
        fx.leftover_cgroups().is_empty(),
        "{:?}",
        fx.leftover_cgroups()
    );
}

#[test]
fn non_executable_command_fails_create_with_126_kind() {
    let fx = Fixture::new();
    let shim = fx.spawn(&fx.launch("noexec", &["/etc/passwd"]));
    assert_eq!(
        shim.ready,
        json!({"failed": {"kind": "command_not_executable",
            "message": "exec: \"/etc/passwd\": permission denied"}})
    );
    let shim = fx.spawn(&fx.launch("isdir", &["/etc"]));
    assert_eq!(shim.ready["failed"]["kind"], "command_not_executable");
}

#[test]
fn kill_9_gives_exit_137_and_state_follows_the_lifecycle() {
    let fx = Fixture::new();
    let mut shim = fx.spawn(&fx.launch("kill9", &["sleep", "100"]));
    let pid = shim.ready["created"]["pid"].as_i64().unwrap();
    assert_eq!(
        shim.request(json!("state")),
        json!({"state": {"created": {"pid": pid}}})
    );
    let wait = shim.wait_conn();
    assert_eq!(
        shim.request(json!("start")),
        json!({"started": {"pid": pid}})
    );
    assert_eq!(
        shim.request(json!("state")),
        json!({"state": {"running": {"pid": pid}}})
    );
    assert_eq!(shim.request(json!({"kill": {"signal": 9}})), json!("ok"));
    let exit = read_reply(wait);
    assert_eq!(exit["exited"]["exit_code"], 137);
    shim.wait_exit();
}

#[test]
fn memory_limit_oom_kills_with_137_and_oom_killed() {
    let fx = Fixture::new();
    let mut launch = fx.launch(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    launch["resources"] = json!({"memory": 8 << 20, "memory_swap": 8 << 20});
    let run = fx.run(&launch);
    assert_eq!(run.exit["exit_code"], 137, "stderr: {}", run.stderr);
    assert_eq!(run.exit["oom_killed"], true);
}

#[test]
fn pids_limit_makes_fork_fail() {
    let fx = Fixture::new();
    let mut launch = fx.launch(
        "pids",
        &sh("i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done; echo spawned"),
    );
    launch["resources"] = json!({"pids_limit": 10});
    let run = fx.run(&launch);
    assert!(
        run.stderr.contains("can't fork")
            || run.stderr.contains("Resource temporarily unavailable"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        fx.leftover_cgroups().is_empty(),
        "{:?}",
        fx.leftover_cgroups()
    );
}

#[test]
fn cpu_quota_throttles() {
    let fx = Fixture::new();
    let mut launch = fx.launch("cpu", &sh("while :; do :; done"));
    launch["resources"] = json!({"cpu_quota": 20000, "cpu_period": 100000});
    let mut shim = fx.spawn(&launch);
    let wait = shim.wait_conn();
    shim.request(json!("start"));
    std::thread::sleep(Duration::from_millis(700));
    let rel = format!("{}/cpu", fx.cgroup_prefix);
    let stat = [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ]
    .iter()
    .map(|m| {
        Path::new(m)
            .join(rel.trim_start_matches('/'))
            .join("cpu.stat")
    })
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("cpu.stat of the container");
    shim.request(json!({"kill": {"signal": 9}}));
    read_reply(wait);
    shim.wait_exit();
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "cpu.stat:\n{stat}");
}

fn cap_eff(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff in {:?} / {:?}", run.stdout, run.stderr))
        .trim()
        .to_string()
}

#[test]
fn default_capabilities_are_dockers_mask() {
    let fx = Fixture::new();
    let run = fx.run(&fx.launch("caps", &["cat", "/proc/self/status"]));
    assert_eq!(cap_eff(&run), "00000000a80425fb");
}

#[test]
fn cap_drop_all_leaves_no_capabilities() {
    let fx = Fixture::new();
    let mut launch = fx.launch("capdrop", &["cat", "/proc/self/status"]);
    launch["cap_drop"] = json!(["ALL"]);
    assert_eq!(cap_eff(&fx.run(&launch)), "0000000000000000");
}

#[test]
fn privileged_gets_the_engines_capabilities_and_no_seccomp() {
    let fx = Fixture::new();
    let mut launch = fx.launch("priv", &["cat", "/proc/self/status"]);
    launch["privileged"] = json!(true);
    let run = fx.run(&launch);
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let our_eff = ours
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(cap_eff(&run), our_eff);
    assert!(run.stdout.contains("Seccomp:\t0"), "{}", run.stdout);
}

#[test]
fn default_seccomp_profile_is_loaded_and_blocks_unshare() {
    let fx = Fixture::new();
    let run = fx.run(&fx.launch(
        "seccomp",
        &sh("grep Seccomp: /proc/self/status; unshare -n true"),
    ));
    assert!(run.stdout.contains("Seccomp:\t2"), "{}", run.stdout);
    assert_ne!(run.exit["exit_code"], 0);
    assert!(
        run.stderr.contains("Operation not permitted"),
        "{}",
        run.stderr
    );
    // With SYS_ADMIN the profile allows it (its rules are capability-conditional).
    let mut launch = fx.launch("seccomp-admin", &["unshare", "-n", "true"]);
    launch["cap_add"] = json!(["SYS_ADMIN"]);
    assert_eq!(fx.run(&launch).exit["exit_code"], 0);
}

#[test]
fn readonly_rootfs_refuses_writes_but_dev_shm_works() {
    let fx = Fixture::new();
    let mut launch = fx.launch(
        "ro",
        &sh("touch /x; echo $?; touch /dev/shm/y && echo shm-ok"),
    );
    launch["readonly_rootfs"] = json!(true);
    let run = fx.run(&launch);
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("shm-ok"), "{}", run.stdout);
}

#[test]
fn kcore_is_masked_and_proc_sys_is_readonly() {
    let fx = Fixture::new();
    // Some kernels (this VM's) have no /proc/kcore; /proc/keys is masked the same way.
    let masked = ["/proc/kcore", "/proc/keys"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a masked /proc file exists on the host");
    let script = format!(
        "stat -c %t:%T {masked}; wc -c < {masked}; echo 1 > /proc/sys/kernel/domainname || echo ro-ok"
    );
    let run = fx.run(&fx.launch("mask", &sh(&script)));
    let lines: Vec<&str> = run.stdout.lines().map(str::trim).collect();
    // Bound to /dev/null: character device 1:3, empty.
    assert_eq!(lines, ["1:3", "0", "ro-ok"], "stderr: {}", run.stderr);
}

#[test]
fn hostname_is_set() {
    let fx = Fixture::new();
    assert_eq!(fx.run(&fx.launch("host", &["hostname"])).stdout, "box\n");
}

#[test]
fn numeric_user_and_named_user_resolve() {
    let fx = Fixture::new();
    let mut launch = fx.launch("uid", &["id"]);
    launch["process"]["user"] = json!("1000:1000");
    assert_eq!(fx.run(&launch).stdout, "uid=1000 gid=1000 groups=1000\n");

    // A user by name, with a supplementary group, from the container's own files.
    let etc = fx.rootfs().join("etc");
    let mut passwd = std::fs::read_to_string(etc.join("passwd")).unwrap();
    passwd.push_str("alice:x:1001:1001:Alice:/home/alice:/bin/sh\n");
    std::fs::write(etc.join("passwd"), passwd).unwrap();
    let mut group = std::fs::read_to_string(etc.join("group")).unwrap();
    group.push_str("alice:x:1001:\nfriends:x:2000:alice\n");
    std::fs::write(etc.join("group"), group).unwrap();
    let mut launch = fx.launch("alice", &sh("id; echo $HOME"));
    launch["process"]["user"] = json!("alice");
    let run = fx.run(&launch);
    assert_eq!(
        run.stdout,
        "uid=1001(alice) gid=1001(alice) groups=1001(alice),2000(friends)\n/home/alice\n"
    );

    let mut launch = fx.launch("nouser", &["id"]);
    launch["process"]["user"] = json!("nobody2");
    let shim = fx.spawn(&launch);
    assert_eq!(
        shim.ready["failed"]["message"],
        "unable to find user nobody2: no matching entries in passwd file"
    );
}

#[test]
fn no_fds_leak_into_the_container() {
    let fx = Fixture::new();
    let run = fx.run(&fx.launch("fds", &["ls", "/proc/self/fd"]));
    assert_eq!(run.stdout, "0\n1\n2\n3\n", "stderr: {}", run.stderr);
}

#[test]
fn stdin_is_forwarded_and_closed_with_stdin_once() {
    let fx = Fixture::new();
    let mut launch = fx.launch("stdin", &["cat"]);
    launch["process"]["open_stdin"] = json!(true);
    launch["process"]["stdin_once"] = json!(true);
    let mut shim = fx.spawn(&launch);
    let mut attach = shim.attach(true, true, true);
    let wait = shim.wait_conn();
    shim.request(json!("start"));
    attach.write_all(b"hello stdin\n").unwrap();
    attach.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, _) = read_frames(attach);
    assert_eq!(out, b"hello stdin\n");
    assert_eq!(read_reply(wait)["exited"]["exit_code"], 0);
    shim.wait_exit();
}

#[test]
fn shim_survives_being_orphaned_and_records_the_exit() {
    let fx = Fixture::new();
    let launch = fx.launch("orphan", &sh("sleep 1; echo bye"));
    let state = fx.dir.path().join("orphan");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("launch.json"), launch.to_string()).unwrap();
    // A parent that starts the shim in the background and exits at once.
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$1" > "$1/ready" < /dev/null 2>/dev/null & echo $! > "$1/pid""#)
        .arg(shim_bin())
        .arg(&state)
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let text = std::fs::read_to_string(state.join("ready")).unwrap_or_default();
        if text.ends_with('\n') {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
        assert!(Instant::now() < deadline, "no Ready line");
        std::thread::sleep(Duration::from_millis(5));
    };
    let shim_pid = ready["created"]["shim_pid"].as_i64().unwrap() as i32;
    fx.pids.borrow_mut().push(shim_pid);
    fx.pids
        .borrow_mut()
        .push(ready["created"]["pid"].as_i64().unwrap() as i32);
    let shim = Shim {
        state: state.clone(),
        child: None,
        ready,
    };
    // A hangup (as from a dying session) does not stop it.
    signal(shim_pid, rustix::process::Signal::HUP);
    assert!(shim.request(json!("start")).get("started").is_some());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("/proc/{shim_pid}")).exists() {
        assert!(Instant::now() < deadline, "shim did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    let exit: Value =
        serde_json::from_slice(&std::fs::read(state.join("exit.json")).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 0);
    let log = std::fs::read_to_string(state.join("c-json.log")).unwrap();
    assert!(log.contains(r#""log":"bye\n""#), "{log}");
    assert!(!state.join("shim.sock").exists());
    assert!(
        fx.leftover_cgroups().is_empty(),
        "{:?}",
        fx.leftover_cgroups()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(fx.dir.path().to_str().unwrap()),
        "{mounts}"
    );
}

/// Sends an exec request and reads its first reply line; the connection carries the
/// exec's stream after it.
fn exec(shim: &Shim, spec: Value) -> (Value, UnixStream) {
    let mut s = connect(&shim.state);
    writeln!(s, "{}", json!({ "exec": spec })).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let reply = serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (reply, s)
}

fn exec_state(shim: &Shim, id: &str) -> Value {
    shim.request(json!({ "exec_state": { "exec_id": id } }))
}

#[test]
fn exec_runs_in_the_container_with_its_rules_and_reports_the_exit_code() {
    let fx = Fixture::new();
    let mut launch = fx.launch("exec", &["sleep", "60"]);
    launch["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FROM_INIT=1"));
    let shim = fx.spawn(&launch);
    assert!(shim.request(json!("start")).get("started").is_some());
    let env = ["PATH=/bin", "FROM_EXEC=2"];
    let (reply, s) = exec(
        &shim,
        json!({
            "exec_id": "e1",
            "args": ["sh", "-c", "echo $FROM_EXEC $HOME; hostname; grep -E '^(Seccomp|CapBnd|CapEff):' /proc/self/status; echo oops >&2; exit 4"],
            "env": env,
            "cwd": "/tmp",
        }),
    );
    let pid = reply["started"]["pid"].as_i64().expect("started") as i32;
    fx.pids.borrow_mut().push(pid);
    let (out, err) = read_frames(s);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("2 /root\nbox\n"), "{out}");
    // The container's seccomp profile (mode 2) and Docker's default bounding set.
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    // The executor held CAP_SYS_ADMIN to load the seccomp filter; execve dropped it.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert_eq!(err, b"oops\n");
    let state = exec_state(&shim, "e1");
    assert_eq!(state["exec_state"]["exit_code"], 4, "{state}");
    // The exec's output is not the container's log.
    let log = std::fs::read_to_string(shim.state.join("c-json.log")).unwrap_or_default();
    assert!(!log.contains("oops"), "{log}");

    // Stdin, closed by a half-close.
    let (reply, mut s) = exec(
        &shim,
        json!({"exec_id": "e2", "args": ["cat"], "env": env, "attach_stdin": true}),
    );
    assert!(reply.get("started").is_some(), "{reply}");
    s.write_all(b"through stdin").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, _) = read_frames(s);
    assert_eq!(out, b"through stdin");
    assert_eq!(exec_state(&shim, "e2")["exec_state"]["exit_code"], 0);

    // A TTY: raw bytes, a terminal inside. The initial size is set once the runtime
    // hands over the master, which is after the process started (as with runc).
    let (reply, mut s) = exec(
        &shim,
        json!({"exec_id": "e3", "args": ["sh", "-c", "tty; sleep 0.5; stty size"], "env": env, "tty": true, "console_size": [7, 33]}),
    );
    assert!(reply.get("started").is_some(), "{reply}");
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("7 33"), "{text}");

    // Detached: answered at once, finishes on its own.
    let (reply, _) = exec(
        &shim,
        json!({"exec_id": "e4", "args": ["sh", "-c", "exit 6"], "env": env, "detach": true}),
    );
    assert!(reply.get("started").is_some(), "{reply}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while exec_state(&shim, "e4")["exec_state"]["exit_code"].is_null() {
        assert!(
            Instant::now() < deadline,
            "the detached exec did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(exec_state(&shim, "e4")["exec_state"]["exit_code"], 6);

    // A missing command: Docker's message and the 127 kind.
    let (reply, _) = exec(
        &shim,
        json!({"exec_id": "e5", "args": ["nope"], "env": env}),
    );
    assert_eq!(reply["error"]["kind"], "command_not_found", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{reply}"
    );
    assert!(exec_state(&shim, "nope").get("error").is_some());
    let mut shim = shim;
    assert_eq!(shim.request(json!({"kill": {"signal": 9}})), json!("ok"));
    shim.wait_exit();
}
