//! Interactive containers through the official docker CLI driven by a real pty:
//! `run -it`, `run -t`, `create -it` + `start -ai`, resizing, signals, exit codes;
//! `attach` (detach keys, several clients); `exec`. Needs root and python3 (its `pty`
//! module runs the client on a terminal; see `pty_driver.py`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually, exit_code as code};
use serde_json::{Value, json};

const DRIVER: &str = include_str!("pty_driver.py");

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// One step of a terminal session (see pty_driver.py).
fn expect(text: &str) -> Value {
    json!({ "expect": text })
}
fn send(text: &str) -> Value {
    json!({ "send": text })
}
fn resize(rows: u16, cols: u16) -> Value {
    json!({ "resize": [rows, cols] })
}
fn pause(seconds: f64) -> Value {
    json!({ "sleep": seconds })
}

/// What a terminal session showed and how the client exited.
struct Session {
    output: String,
    code: Option<i32>,
}

/// Runs `client args` (a `Command` from the harness, for its environment) on a pty
/// of 24x80 through the steps; panics with the transcript when a step times out.
#[track_caller]
fn on_terminal(client: Command, args: &[&str], steps: Vec<Value>) -> Session {
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = dir.path().join("pty_driver.py");
    std::fs::write(&driver, DRIVER).expect("write the driver");
    let mut argv = vec![client.get_program().to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let spec = json!({ "argv": argv, "rows": 24, "cols": 80, "timeout": 30, "steps": steps });
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write the spec");
    let mut cmd = Command::new("python3");
    cmd.arg(&driver).arg(&spec_path);
    for (k, v) in client.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = berth_e2e::run_command(&mut cmd, None);
    let text = out.assert_success();
    let result: Value = serde_json::from_str(text.trim()).expect("the driver prints JSON");
    let session = Session {
        output: result["output"].as_str().unwrap_or_default().to_string(),
        code: result["code"].as_i64().map(|c| c as i32),
    };
    assert!(
        result["failed"].is_null(),
        "step {} timed out; the terminal showed:\n{}",
        result["failed"],
        session.output
    );
    session
}

#[test]
fn run_it_gives_a_terminal_inside_the_container_that_follows_resizes() {
    let d = daemon();
    let s = on_terminal(
        d.docker_cmd(),
        &["run", "-it", "--rm", "busybox", "sh"],
        vec![
            expect("/ # "),
            send("tty; stty size\r"),
            expect("24 80"),
            resize(30, 100),
            pause(0.5),
            send("stty size\r"),
            expect("30 100"),
            send("exit 3\r"),
        ],
    );
    assert!(s.output.contains("/dev/pts/0"), "{}", s.output);
    assert_eq!(s.code, Some(3), "{}", s.output);
}

#[test]
fn ctrl_c_interrupts_the_foreground_process_not_the_session() {
    let d = daemon();
    let s = on_terminal(
        d.docker_cmd(),
        &["run", "-it", "--rm", "busybox", "sh"],
        vec![
            expect("/ # "),
            send("sleep 100\r"),
            pause(0.5),
            send("\u{3}"),
            expect("/ # "),
            send("echo still-$((20+1))\r"),
            expect("still-21"),
            send("exit\r"),
        ],
    );
    assert_eq!(s.code, Some(0), "{}", s.output);
}

#[test]
fn run_t_without_i_has_a_tty_and_raw_output() {
    let d = daemon();
    let s = on_terminal(
        d.docker_cmd(),
        &["run", "-t", "--rm", "busybox", "sh", "-c", "tty; exit 4"],
        vec![expect("/dev/pts/0")],
    );
    assert_eq!(s.code, Some(4), "{}", s.output);
    // Through a pipe the stream is raw: the container's pty turns \n into \r\n and no
    // 8-byte frame headers appear.
    let out = d.docker(["run", "-t", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(out.stdout, b"hi\r\n");
}

#[test]
fn create_it_then_start_ai_attaches_the_terminal() {
    let d = daemon();
    d.docker(["create", "-it", "--name", "box", "busybox", "sh"])
        .assert_success();
    let s = on_terminal(
        d.docker_cmd(),
        &["start", "-ai", "box"],
        vec![
            expect("/ # "),
            send("echo started-$((1+1))\r"),
            expect("started-2"),
            send("exit 6\r"),
        ],
    );
    assert_eq!(s.code, Some(6), "{}", s.output);
    let state = d.docker(["inspect", "-f", "{{.State.ExitCode}}", "box"]);
    assert_eq!(state.assert_success().trim(), "6");
}

#[test]
fn resize_endpoint_refuses_a_stopped_container_and_checks_its_numbers() {
    let d = daemon();
    d.docker(["create", "-t", "--name", "idle", "busybox", "sh"])
        .assert_success();
    let r = d.request("POST", "/containers/idle/resize?h=10&w=20", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("is not running"), "{}", r.text());
    let r = d.request("POST", "/containers/idle/resize?h=x&w=20", None);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.request("POST", "/containers/nope/resize?h=1&w=1", None);
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn sig_proxy_forwards_the_clients_signals_without_a_tty() {
    let d = daemon();
    let mut cmd = d.docker_cmd();
    cmd.args([
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("docker runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "docker run ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(rest.contains("got-term"), "{rest}");
    assert_eq!(status.code(), Some(7));
}

fn running(d: &Berthd, name: &str) -> bool {
    d.docker(["inspect", "-f", "{{.State.Running}}", name])
        .stdout_text()
        .trim()
        == "true"
}

/// A background client whose stdout is read on a thread.
struct Background {
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Background {
    fn spawn(mut cmd: Command) -> Background {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the client starts");
        let mut out = child.stdout.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Background { child, seen }
    }

    fn text(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, signal);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn attach_detach_with_ctrl_p_ctrl_q_leaves_it_running_and_attach_again_works() {
    let d = daemon();
    d.docker(["run", "-dit", "--name", "shell", "busybox", "sh"])
        .assert_success();
    for round in 1..=2 {
        let s = on_terminal(
            d.docker_cmd(),
            &["attach", "shell"],
            vec![
                pause(0.3),
                send(&format!("echo round-$((10+{round}))\r")),
                expect(&format!("round-{}", 10 + round)),
                send("\u{10}\u{11}"),
                expect("read escape sequence"),
            ],
        );
        assert_ne!(s.code, None, "{}", s.output);
        assert!(running(&d, "shell"), "detaching stopped the container");
    }
    // Custom keys through --detach-keys.
    let s = on_terminal(
        d.docker_cmd(),
        &["attach", "--detach-keys", "ctrl-a,x", "shell"],
        vec![
            pause(0.3),
            send("echo custom-$((2*21))\r"),
            expect("custom-42"),
            send("\u{1}x"),
            expect("read escape sequence"),
        ],
    );
    assert_ne!(s.code, None, "{}", s.output);
    assert!(running(&d, "shell"));
    // And exiting through an attach gives the exit code.
    let s = on_terminal(
        d.docker_cmd(),
        &["attach", "shell"],
        vec![pause(0.3), send("exit 9\r")],
    );
    assert_eq!(s.code, Some(9), "{}", s.output);
}

#[test]
fn several_clients_attach_at_once_and_see_new_output() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 5' TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
    ])
    .assert_success();
    let attach = |extra: &[&str]| {
        let mut cmd = d.docker_cmd();
        cmd.arg("attach").args(extra).arg("ticker");
        Background::spawn(cmd)
    };
    let a = attach(&["--no-stdin"]);
    let b = attach(&["--no-stdin", "--sig-proxy=false"]);
    assert!(
        eventually(Duration::from_secs(10), || a.text().contains("tick-")
            && b.text().contains("tick-")),
        "a: {:?} b: {:?}",
        a.text(),
        b.text()
    );
    // Output after the attach only: an attach is not a log replay.
    assert!(!a.text().contains("tick-1\n"), "{}", a.text());
    // Without the proxy, a signal ends only that client.
    b.signal(rustix::process::Signal::INT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(&d, "ticker"));
    // With it, the signal reaches the container, which exits with its code.
    a.signal(rustix::process::Signal::TERM);
    assert!(
        eventually(Duration::from_secs(10), || !running(&d, "ticker")),
        "SIGTERM was not proxied"
    );
    assert!(
        eventually(Duration::from_secs(5), || a.text().contains("bye")),
        "{}",
        a.text()
    );
    let code = d.docker(["inspect", "-f", "{{.State.ExitCode}}", "ticker"]);
    assert_eq!(code.assert_success().trim(), "5");
}

/// Opens a hijacked attach over the raw socket and returns the connection after the
/// response headers.
fn hijack(d: &Berthd, path: &str) -> (String, UnixStream) {
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

#[test]
fn the_daemon_detaches_a_non_tty_client_on_its_detach_keys() {
    let d = daemon();
    d.docker(["run", "-di", "--name", "cat", "busybox", "cat"])
        .assert_success();
    let (head, mut s) = hijack(
        &d,
        "/containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    s.write_all(b"echo\n").unwrap();
    let mut frame = [0u8; 13];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x01\x00\x00\x00\x00\x00\x00\x05echo\n");
    s.write_all(b"\x01x").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(running(&d, "cat"), "detaching closed the container's stdin");
    let r = d.request(
        "POST",
        "/containers/cat/attach?stream=1&stdin=1&detachKeys=ctrl-1",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn exec_runs_commands_with_env_user_workdir_and_exit_codes() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FOO=bar",
        "--ulimit",
        "nofile=1234:2345",
        "busybox",
        "sleep",
        "600",
    ])
    .assert_success();
    // The container's --ulimit applies to its execs.
    let out = d.docker(["exec", "box", "sh", "-c", "ulimit -n"]);
    assert_eq!(out.assert_success(), "1234\n");
    let out = d.docker(["exec", "box", "sh", "-c", "echo $FOO; echo err >&2; exit 3"]);
    assert_eq!(code(&out), 3);
    assert_eq!(out.stdout_text(), "bar\n");
    assert_eq!(out.stderr_text(), "err\n");
    let out = d.docker([
        "exec",
        "-e",
        "X=1",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $FOO $X; id -u; pwd",
    ]);
    assert_eq!(out.assert_success(), "bar 1\n1000\n/tmp\n");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "FROM_FILE=yes\n").unwrap();
    let out = d.docker([
        "exec",
        "--env-file",
        env_file.to_str().unwrap(),
        "box",
        "sh",
        "-c",
        "echo $FROM_FILE",
    ]);
    assert_eq!(out.assert_success(), "yes\n");
    // Stdin, ended by EOF.
    let out = d.docker_with_stdin(["exec", "-i", "box", "cat"], b"piped in");
    assert_eq!(out.assert_success(), "piped in");
    // A missing command: Docker's message and 127.
    let out = d.docker(["exec", "box", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", out.stderr_text());
    assert!(
        out.stdout_text().contains("executable file not found"),
        "{}",
        out.stdout_text()
    );
    // A working directory that is not there: runc's message and 126, not a syscall
    // failure without a path; one inside a volume of the container is found.
    let out = d.docker(["exec", "-w", "/no/such/dir", "box", "pwd"]);
    assert_eq!(code(&out), 126, "{}", out.stderr_text());
    assert!(
        out.stdout_text().contains(
            r#"chdir to cwd ("/no/such/dir") set in config.json failed: no such file or directory"#
        ),
        "{}",
        out.stdout_text()
    );
    let out = d.docker(["exec", "-w", "/dev/shm", "box", "pwd"]);
    assert_eq!(out.assert_success(), "/dev/shm\n");
    // The default capability set, and all of them with --privileged.
    let caps = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["box", "grep", "CapEff", "/proc/self/status"]);
        d.docker(args).assert_success()
    };
    assert!(caps(&[]).contains("00000000a80425fb"), "{}", caps(&[]));
    assert!(!caps(&["--privileged"]).contains("00000000a80425fb"));
    // Detached: returns at once, the process runs on.
    d.docker([
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.3; echo done > /tmp/d",
    ])
    .assert_success();
    assert!(eventually(Duration::from_secs(10), || {
        d.docker(["exec", "box", "cat", "/tmp/d"]).stdout_text() == "done\n"
    }));
    // A stopped container refuses, as Docker does.
    d.docker(["stop", "-t", "0", "box"]).assert_success();
    let out = d.docker(["exec", "box", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        out.stderr_text().contains("is not running"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn exec_it_gives_a_terminal_that_follows_resizes() {
    let d = daemon();
    d.docker(["run", "-d", "--name", "box", "busybox", "sleep", "600"])
        .assert_success();
    let s = on_terminal(
        d.docker_cmd(),
        &["exec", "-it", "box", "sh"],
        vec![
            expect("/ # "),
            send("tty; echo $TERM\r"),
            expect("xterm"),
            resize(33, 99),
            pause(0.5),
            send("stty size\r"),
            expect("33 99"),
            send("exit 7\r"),
        ],
    );
    assert!(s.output.contains("/dev/pts/"), "{}", s.output);
    assert_eq!(s.code, Some(7), "{}", s.output);
    assert!(running(&d, "box"));
}

#[test]
fn exec_api_create_start_detached_and_inspect() {
    let d = daemon();
    d.docker(["run", "-d", "--name", "box", "busybox", "sleep", "600"])
        .assert_success();
    let r = d.request(
        "POST",
        "/containers/box/exec",
        Some((
            "application/json",
            br#"{"Cmd":["sh","-c","sleep 0.5; exit 4"],"Tty":false,"User":"1"}"#,
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d.request("GET", &format!("/exec/{id}/json"), None);
    let v = r.json();
    assert_eq!(v["Running"], false);
    assert_eq!(v["ExitCode"], Value::Null);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(v["ProcessConfig"]["user"], "1");
    let r = d.request(
        "POST",
        &format!("/exec/{id}/start"),
        Some(("application/json", br#"{"Detach":true}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = d.request("GET", &format!("/exec/{id}/json"), None).json();
    assert_eq!(v["Running"], true, "{v}");
    assert!(v["Pid"].as_u64().unwrap() > 0);
    let ids = d.docker(["inspect", "-f", "{{json .ExecIDs}}", "box"]);
    assert!(ids.assert_success().contains(&id), "{}", ids.stdout_text());
    assert!(eventually(Duration::from_secs(10), || {
        d.request("GET", &format!("/exec/{id}/json"), None).json()["ExitCode"] == 4
    }));
    // Started once only.
    let r = d.request(
        "POST",
        &format!("/exec/{id}/start"),
        Some(("application/json", br#"{"Detach":true}"#)),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    d.docker(["rm", "-f", "box"]).assert_success();
    let r = d.request("GET", &format!("/exec/{id}/json"), None);
    assert_eq!(r.status, 404, "a removed container's execs are forgotten");
    d.docker(["run", "-d", "--name", "box", "busybox", "sleep", "600"])
        .assert_success();
    let r = d.request("GET", "/exec/nope/json", None);
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("No such exec instance: nope"),
        "{}",
        r.text()
    );
    let r = d.request(
        "POST",
        "/containers/box/exec",
        Some(("application/json", br#"{"Cmd":[]}"#)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn berth_cli_exec_attach_and_run_it_detach() {
    let d = daemon();
    d.berth(["run", "-dit", "--name", "shell", "busybox", "sh"])
        .assert_success();
    let out = d.berth([
        "exec",
        "-e",
        "X=1",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "shell",
        "sh",
        "-c",
        "echo $X; id -u; pwd; exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "1\n1000\n/tmp\n");
    let out = d.berth_with_stdin(["exec", "-i", "shell", "cat"], b"in");
    assert_eq!(out.assert_success(), "in");
    let out = d.berth(["exec", "shell", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", out.stderr_text());
    d.berth(["exec", "-d", "shell", "true"]).assert_success();
    let s = on_terminal(
        d.berth_cmd(),
        &["exec", "-it", "shell", "sh"],
        vec![
            expect("# "),
            send("stty size\r"),
            expect("24 80"),
            resize(31, 101),
            pause(0.5),
            send("stty size\r"),
            expect("31 101"),
            send("exit 4\r"),
        ],
    );
    assert_eq!(s.code, Some(4), "{}", s.output);
    let s = on_terminal(
        d.berth_cmd(),
        &["attach", "shell"],
        vec![
            pause(0.3),
            send("echo berth-$((40+2))\r"),
            expect("berth-42"),
            send("\u{10}\u{11}"),
            expect("read escape sequence"),
        ],
    );
    assert_eq!(s.code, Some(1), "{}", s.output);
    assert!(running(&d, "shell"));
    let s = on_terminal(
        d.berth_cmd(),
        &["run", "-it", "--name", "second", "busybox", "sh"],
        vec![
            expect("/ # "),
            send("echo r-$((1+1))\r"),
            expect("r-2"),
            send("\u{10}\u{11}"),
        ],
    );
    assert_eq!(s.code, Some(0), "{}", s.output);
    assert!(running(&d, "second"), "detaching stopped the container");
    let out = d.berth(["attach", "--no-stdin", "nope"]);
    assert_ne!(code(&out), 0);
}

/// Reads one unmasked server frame: (opcode, payload).
fn read_ws_frame(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// A masked client frame.
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[test]
fn websocket_attach_carries_stdin_and_unframed_output() {
    let d = daemon();
    d.docker(["run", "-di", "--name", "cat", "busybox", "cat"])
        .assert_success();
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /v1.44/containers/cat/attach/ws?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: berth\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    s.write_all(&ws_frame(2, b"over a websocket\n")).unwrap();
    let (opcode, payload) = read_ws_frame(&mut s);
    assert_eq!(opcode, 2, "binary frames from API 1.42");
    assert_eq!(payload, b"over a websocket\n");
    s.write_all(&ws_frame(8, b"")).unwrap();
    let (opcode, _) = read_ws_frame(&mut s);
    assert_eq!(opcode, 8, "the close is answered");
    assert!(running(&d, "cat"));
}

#[test]
fn attach_with_logs_replays_the_output_so_far() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "echo before; echo oops >&2; sleep 600",
    ])
    .assert_success();
    assert!(eventually(Duration::from_secs(10), || {
        d.docker(["logs", "chatty"]).stdout_text() == "before\n"
    }));
    // logs without stream: the log, then the end.
    let (head, mut s) = hijack(
        &d,
        "/containers/chatty/attach?logs=1&stream=0&stdout=1&stderr=1",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert_eq!(
        all,
        b"\x01\x00\x00\x00\x00\x00\x00\x07before\n\x02\x00\x00\x00\x00\x00\x00\x05oops\n"
    );
    // Only the streams asked for.
    let (_, mut s) = hijack(&d, "/containers/chatty/attach?logs=1&stream=0&stderr=1");
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"\x02\x00\x00\x00\x00\x00\x00\x05oops\n");
}
