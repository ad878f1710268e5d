//! Interactive containers through the official docker CLI driven by a real pty:
//! `run -it`, `run -t`, `create -it` + `start -ai`, resizing, signals, exit codes;
//! `attach` (detach keys, several clients); `exec`. Needs root and python3 (its `pty`
//! module runs the client on a terminal; see `pty_driver.py`).

use std::process::Command;

use berth_e2e::{Berthd, OutputExt};
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
