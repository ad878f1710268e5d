//! berth-shim: the per-container supervisor (see berth-shim-protocol for its contract).
//!
//! Usage: `berth-shim <state-dir>`. The shim reads `launch.json`, binds `shim.sock`,
//! creates the container through berth-runtime (libcontainer), prints one `Ready` line
//! on stdout, closes stdout, and then supervises: it serves requests on the socket,
//! owns the container's stdio (pipes, or a pty master), writes the json-file log, fans
//! output out to attached clients, starts execs in the running container (each with
//! its own pipes or pty and its own stream), reaps the init, the execs and, as a
//! subreaper, every orphan of the container, records `exit.json`, tears the container
//! down and exits.
//!
//! A TTY is never taken from the host's devpts: the runtime makes the pty inside the
//! container and sends its master to a console socket the shim listens on
//! (`berth_runtime::console`), for the container as for a `exec -t`.
//!
//! Design choices, and why:
//! - Single-threaded, no async runtime: libcontainer deadlocks inside a multi-threaded
//!   process, and one `poll(2)` loop over a handful of fds is all a container needs.
//!   Nothing sleeps or polls on a timer; the only timeout is the bound on flushing
//!   attach clients after the container is gone.
//! - It must outlive the daemon: own session (`setsid`), SIGHUP and SIGPIPE ignored,
//!   stdout closed after `Ready`, stderr to `shim.log` in the state directory.
//! - A slow attach client never holds up the container or the log: each client has a
//!   bounded buffer and loses whole frames beyond it.
//! - Small when idle: once the container runs and the shim is idle, what the create
//!   needed is given back (see `trim`), and the loop allocates per event only what it
//!   forwards.
#![allow(unsafe_code)] // libc calls (signals, signalfd, pty, poll), each with a SAFETY note.

mod jsonlog;
mod supervisor;
mod trim;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_runtime::console::ConsoleSocket;
use berth_runtime::container::{Container, Stdio};
use berth_shim_protocol::{
    LAUNCH_FILE, LaunchError, LaunchErrorKind, LaunchSpec, Ready, SHIM_LOG_FILE, SOCKET_FILE,
};

/// The console socket's name in the state directory (kept short: a unix socket path
/// holds 108 bytes).
const CONSOLE_SOCKET: &str = "console.sock";

fn main() {
    let Some(state_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: berth-shim <state-dir>");
        std::process::exit(2);
    };
    let state_dir = if state_dir.is_absolute() {
        state_dir
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&state_dir))
            .unwrap_or(state_dir)
    };
    std::process::exit(run(&state_dir));
}

/// Everything up to `Ready`, then the supervisor. Returns the exit code.
fn run(state_dir: &Path) -> i32 {
    if let Err(e) = detach(state_dir) {
        let _ = report_ready(&Ready::Failed(other(format!(
            "shim setup in {}: {e}",
            state_dir.display()
        ))));
        return 1;
    }
    let launch: LaunchSpec = match std::fs::read(LAUNCH_FILE)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(e) => return fail(other(format!("reading {LAUNCH_FILE}: {e}"))),
    };

    // A stale socket from an earlier shim of this directory would make bind fail.
    let _ = std::fs::remove_file(SOCKET_FILE);
    let listener = match UnixListener::bind(SOCKET_FILE) {
        Ok(l) => l,
        Err(e) => return fail(other(format!("binding {SOCKET_FILE}: {e}"))),
    };
    if let Err(e) = listener.set_nonblocking(true) {
        return fail(other(format!("{SOCKET_FILE}: {e}")));
    }

    let (stdio, pending) = match make_stdio(&launch) {
        Ok(s) => s,
        Err(e) => return fail(other(format!("creating the container's stdio: {e}"))),
    };
    let log = match jsonlog::JsonLog::open(&launch.log) {
        Ok(l) => l,
        Err(e) => return fail(other(e.to_string())),
    };

    let container = match Container::create(state_dir, &launch, stdio) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-shim: create failed: {e}");
            return fail(e.to_launch_error());
        }
    };
    let ends = match pending.finish(&launch) {
        Ok(ends) => ends,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            let _ = container.kill(libc::SIGKILL);
            let _ = container.delete();
            return fail(other(format!("creating the container's terminal: {e}")));
        }
    };
    if let Err(e) = report_ready(&Ready::Created {
        shim_pid: std::process::id(),
        pid: container.pid(),
    }) {
        // The daemon is gone before it heard of the container: nobody will start it.
        eprintln!("berth-shim: cannot report ready: {e}");
        let _ = container.kill(libc::SIGKILL);
    }
    supervisor::Supervisor::new(launch, container, listener, ends, log).run();
    let _ = std::fs::remove_file(SOCKET_FILE);
    0
}

fn other(message: String) -> LaunchError {
    LaunchError {
        kind: LaunchErrorKind::Other,
        message,
    }
}

/// Reports a failed create and cleans up what the shim made.
fn fail(err: LaunchError) -> i32 {
    let _ = report_ready(&Ready::Failed(err));
    let _ = std::fs::remove_file(SOCKET_FILE);
    let _ = std::fs::remove_dir_all(berth_runtime::container::RUNTIME_DIR);
    1
}

/// Writes the one `Ready` line and closes stdout (fd 1 becomes /dev/null, so nothing
/// later can write into the daemon's pipe or take fd 1 by accident).
fn report_ready(ready: &Ready) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(ready).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let result = std::io::stdout().lock().write_all(&line);
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: dup2 onto fd 1 with a valid fd we own.
    unsafe { libc::dup2(null.as_raw_fd(), 1) };
    result
}

/// Leaves the daemon's session and signals behind: the shim must survive the daemon.
fn detach(state_dir: &Path) -> std::io::Result<()> {
    // SAFETY: signal/setsid/prctl/dup2 with constant arguments or fds we own.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::setsid();
    }
    std::env::set_current_dir(state_dir)?;
    // The container inherits the shim's stdin when it has none of its own, and
    // libcontainer reopens it inside the container only if it is /dev/null.
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(SHIM_LOG_FILE)?;
    // SAFETY: as above.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 2);
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The shim's ends of the container's stdio.
pub(crate) struct StdioEnds {
    /// Output: the stdout pipe (or the pty master).
    pub stdout: OwnedFd,
    /// The stderr pipe (none with a TTY).
    pub stderr: Option<OwnedFd>,
    /// Input: the stdin pipe (or the pty master), when the container keeps stdin open.
    pub stdin: Option<OwnedFd>,
    /// The pty master for resizes, with a TTY.
    pub pty: Option<OwnedFd>,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// The container's stdio before the create: pipes, or (with a TTY) a console socket
/// the runtime sends the pty master to.
enum Pending {
    Pipes(StdioEnds),
    Console(ConsoleSocket),
}

impl Pending {
    /// The shim's ends once the container exists.
    fn finish(self, launch: &LaunchSpec) -> Result<StdioEnds, String> {
        match self {
            Pending::Pipes(ends) => Ok(ends),
            Pending::Console(console) => {
                let master = console
                    .receive_master()
                    .map_err(|e| berth_runtime::container::error_chain(&e))?;
                pty_ends(
                    master,
                    launch.process.console_size,
                    launch.process.open_stdin,
                )
                .map_err(|e| format!("setting up the pty master: {e}"))
            }
        }
    }
}

/// The shim's ends of a pty whose master the runtime sent: output and (when stdin is
/// open) input both go through the master.
pub(crate) fn pty_ends(
    master: OwnedFd,
    size: Option<(u16, u16)>,
    open_stdin: bool,
) -> std::io::Result<StdioEnds> {
    if let Some((h, w)) = size.filter(|(h, w)| *h > 0 && *w > 0) {
        supervisor::resize(&master, h, w);
    }
    set_nonblocking(&master);
    Ok(StdioEnds {
        stdout: master.try_clone()?,
        stderr: None,
        stdin: if open_stdin {
            Some(master.try_clone()?)
        } else {
            None
        },
        pty: Some(master),
    })
}

/// Pipes for an exec without a TTY (stdin only when the client sends it).
pub(crate) fn exec_pipes(stdin: bool) -> std::io::Result<(Stdio, StdioEnds)> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblocking(&out_r);
    set_nonblocking(&err_r);
    let (stdin_child, stdin_ours) = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(&w);
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    Ok((
        Stdio::Pipes {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
        StdioEnds {
            stdout: out_r,
            stderr: Some(err_r),
            stdin: stdin_ours,
            pty: None,
        },
    ))
}

/// Pipes, or with a TTY a console socket in the state directory (see
/// `berth_runtime::console`: the pty is made inside the container, never taken from
/// the host's devpts).
fn make_stdio(launch: &LaunchSpec) -> std::io::Result<(Stdio, Pending)> {
    if launch.process.tty {
        let console = ConsoleSocket::bind(Path::new(CONSOLE_SOCKET))
            .map_err(|e| std::io::Error::other(berth_runtime::container::error_chain(&e)))?;
        let cwd = std::env::current_dir()?;
        return Ok((
            Stdio::Console(cwd.join(CONSOLE_SOCKET)),
            Pending::Console(console),
        ));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblocking(&out_r);
    set_nonblocking(&err_r);
    let (stdin_child, stdin_ours) = if launch.process.open_stdin {
        let (r, w) = pipe()?;
        set_nonblocking(&w);
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    Ok((
        Stdio::Pipes {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
        Pending::Pipes(StdioEnds {
            stdout: out_r,
            stderr: Some(err_r),
            stdin: stdin_ours,
            pty: None,
        }),
    ))
}
