//! Interactive containers proven the way a person uses them: the official docker CLI
//! runs in a real terminal emulator (tmux), keys are typed into it with `send-keys`,
//! the screen is read back with `capture-pane`, and the window is resized with
//! `resize-window`. `interactive.rs` covers the same ground through python's pty; this
//! adds a full terminal between the user and the client, as issue 5 asks. Each flow
//! runs once with the docker CLI and once with berth's own.
//!
//! Each test has a tmux server of its own on a socket in its own temp directory
//! (`tmux -S`), never the user's server, and kills it when it ends, also on failure.
//! Needs root and `tmux` (scripts/install-deps).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt};

/// How long the screen may take to show what a step waits for.
const DEADLINE: Duration = Duration::from_secs(20);

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// A private tmux server whose windows run clients; killed on drop.
struct Tmux {
    socket: PathBuf,
    // Held for the socket's directory; removed after the server is killed.
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts a server whose windows inherit `client`'s environment (DOCKER_HOST and
    /// the rest the harness sets), with no config file, and dead panes kept so their
    /// screens (with the exit status, see [`Tmux::open`]) can still be read.
    fn start(client: &Command) -> Tmux {
        let dir = tempfile::tempdir().expect("temp dir");
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        let mut cmd = tmux.command();
        // A server with no sessions exits at once unless told to stay.
        cmd.args(["-f", "/dev/null", "start-server", ";"])
            .args(["set-option", "-s", "exit-empty", "off", ";"])
            .args(["set-option", "-g", "remain-on-exit", "on", ";"])
            .args(["set-option", "-g", "history-limit", "10000"]);
        // The server is forked by this first command and keeps its environment as the
        // global one, which every window's process gets.
        for (k, v) in client.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.env_remove("TMUX").env("TERM", "xterm");
        tmux.check(cmd.output(), "start-server");
        tmux
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    #[track_caller]
    fn check(&self, out: std::io::Result<Output>, what: &str) -> String {
        let out =
            out.unwrap_or_else(|e| panic!("tmux {what} cannot run (is tmux installed?): {e}"));
        if !out.status.success() {
            panic!("tmux {what} failed: {}", out.stderr_text());
        }
        out.stdout_text()
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        self.check(self.command().args(args).output(), &args.join(" "))
    }

    /// Opens a window `name` of `cols`x`rows` running `program args`. A shell around it
    /// prints its exit status on the screen when it ends: tmux 3.3a now and then marks a
    /// pane dead without ever reaping its process, so `#{pane_dead_status}` stays empty.
    fn open(&self, name: &str, cols: u16, rows: u16, program: &str, args: &[&str]) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let mut argv = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &cols,
            "-y",
            &rows,
            "--",
            "sh",
            "-c",
            r#""$@"; echo "<client exited: $?>""#,
            "sh",
            program,
        ];
        argv.extend_from_slice(args);
        self.run(&argv);
    }

    /// Types `text` literally, then Enter.
    fn type_line(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
        self.run(&["send-keys", "-t", name, "Enter"]);
    }

    /// Presses keys by tmux's names (`C-p`, `Enter`, ...).
    fn keys(&self, name: &str, keys: &[&str]) {
        let mut argv = vec!["send-keys", "-t", name];
        argv.extend_from_slice(keys);
        self.run(&argv);
    }

    fn resize(&self, name: &str, cols: u16, rows: u16) {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&["resize-window", "-t", name, "-x", &cols, "-y", &rows]);
    }

    /// The window's screen and scrollback, wrapped lines joined.
    fn screen(&self, name: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", name])
    }

    /// Polls the screen until it contains `text`; panics with the screen at the deadline.
    #[track_caller]
    fn wait_for(&self, name: &str, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if screen.contains(text) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("window {name} never showed {text:?}; its screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the window's client to exit and returns its exit status.
    #[track_caller]
    fn wait_exit(&self, name: &str) -> i32 {
        let screen = self.wait_for(name, "<client exited: ");
        let tail = &screen[screen.rfind("<client exited: ").unwrap_or(0)..];
        tail["<client exited: ".len()..]
            .split('>')
            .next()
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no exit status on the screen of {name}:\n{screen}"))
    }

    /// Asks the shell in `name` for its terminal size until it reports `rows cols`:
    /// the resize travels tmux → SIGWINCH → client → resize API → the container's pty
    /// asynchronously, so one early `stty size` may still see the old size.
    #[track_caller]
    fn wait_for_size(&self, name: &str, rows: u16, cols: u16) {
        // The marker is computed by the shell so the typed command never matches it.
        let want = format!("size-{rows}x{cols}");
        let start = Instant::now();
        loop {
            self.type_line(name, "echo size-$(stty size | tr ' ' x)");
            let poll = Instant::now();
            while poll.elapsed() < Duration::from_secs(1) {
                if self.screen(name).contains(&want) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "window {name} never reported {want}; its screen:\n{}",
                    self.screen(name)
                );
            }
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends this server and the clients in its windows; no other server is touched.
        let _ = self.command().arg("kill-server").output();
    }
}

fn program(client: &Command) -> String {
    client.get_program().to_string_lossy().into_owned()
}

fn inspect(d: &Berthd, format: &str, name: &str) -> String {
    d.docker(["inspect", "-f", format, name])
        .assert_success()
        .trim()
        .to_string()
}

/// `run -it`, typing, resizing, detaching, attaching twice and exiting, with `client`
/// (the docker CLI or berth's) in every window.
fn run_it_session(d: &Berthd, client: Command) {
    let docker = program(&client);
    let tmux = Tmux::start(&client);

    tmux.open(
        "run",
        80,
        24,
        &docker,
        &["run", "-it", "--name", "box", "busybox", "sh"],
    );
    tmux.wait_for("run", "/ # ");
    tmux.type_line("run", "tty");
    tmux.wait_for("run", "/dev/pts/0");
    tmux.wait_for_size("run", 24, 80);
    tmux.resize("run", 100, 30);
    tmux.wait_for_size("run", 30, 100);
    tmux.type_line("run", "echo kept-$((40+2)) > /tmp/mark");

    // Ctrl-P Ctrl-Q: the client leaves quietly with status 0 (`run` prints nothing on a
    // detach), the container keeps running.
    tmux.keys("run", &["C-p", "C-q"]);
    assert_eq!(tmux.wait_exit("run"), 0, "{}", tmux.screen("run"));
    assert_eq!(inspect(d, "{{.State.Running}}", "box"), "true");

    // Attach from a terminal of another size: the shell and its state are still there,
    // and the container's pty takes the new client's size.
    tmux.open("attach1", 90, 20, &docker, &["attach", "box"]);
    tmux.type_line("attach1", "cat /tmp/mark");
    tmux.wait_for("attach1", "kept-42");
    tmux.wait_for_size("attach1", 20, 90);
    // `attach` reports the detach on the terminal.
    tmux.keys("attach1", &["C-p", "C-q"]);
    tmux.wait_for("attach1", "read escape sequence");
    tmux.wait_exit("attach1");
    assert_eq!(inspect(d, "{{.State.Running}}", "box"), "true");

    // Attach again and end the shell: the client returns its exit code.
    tmux.open("attach2", 80, 24, &docker, &["attach", "box"]);
    tmux.type_line("attach2", "echo again-$((2+3))");
    tmux.wait_for("attach2", "again-5");
    tmux.type_line("attach2", "exit 7");
    assert_eq!(tmux.wait_exit("attach2"), 7, "{}", tmux.screen("attach2"));
    assert_eq!(inspect(d, "{{.State.Running}}", "box"), "false");
    assert_eq!(inspect(d, "{{.State.ExitCode}}", "box"), "7");
}

#[test]
fn run_it_in_tmux_resizes_detaches_reattaches_and_returns_the_exit_code() {
    let d = daemon();
    run_it_session(&d, d.docker_cmd());
}

#[test]
fn berth_run_it_in_tmux_resizes_detaches_reattaches_and_returns_the_exit_code() {
    let d = daemon();
    run_it_session(&d, d.berth_cmd());
}

/// `exec -it` into a running container with `client`: a terminal that follows resizes,
/// the container's processes, the exit code; the container keeps running.
fn exec_it_session(d: &Berthd, client: Command) {
    d.docker(["run", "-d", "--name", "svc", "busybox", "sleep", "1000"])
        .assert_success();
    let docker = program(&client);
    let tmux = Tmux::start(&client);

    tmux.open(
        "exec",
        80,
        24,
        &docker,
        &["exec", "-it", "-e", "GREETING=hi", "svc", "sh"],
    );
    tmux.wait_for("exec", "/ # ");
    tmux.type_line("exec", "tty; echo $GREETING-$((2+3))");
    tmux.wait_for("exec", "hi-5");
    assert!(tmux.screen("exec").contains("/dev/pts/"));
    tmux.wait_for_size("exec", 24, 80);
    tmux.resize("exec", 120, 40);
    tmux.wait_for_size("exec", 40, 120);
    // The exec's shell sees the container's processes: the main one is pid 1.
    tmux.type_line("exec", "echo main-$(cat /proc/1/cmdline | tr '\\0' _)");
    tmux.wait_for("exec", "main-sleep_1000_");
    tmux.type_line("exec", "exit 4");
    assert_eq!(tmux.wait_exit("exec"), 4, "{}", tmux.screen("exec"));
    // Ending the exec leaves the container running.
    assert_eq!(inspect(d, "{{.State.Running}}", "svc"), "true");
}

#[test]
fn exec_it_in_tmux_gives_a_resizable_shell_and_its_exit_code() {
    let d = daemon();
    exec_it_session(&d, d.docker_cmd());
}

#[test]
fn berth_exec_it_in_tmux_gives_a_resizable_shell_and_its_exit_code() {
    let d = daemon();
    exec_it_session(&d, d.berth_cmd());
}
