//! The shim's event loop: requests, output fan-out, stdin, reaping, exit.
//!
//! One `poll(2)` over: the listening socket, a signalfd for SIGCHLD, the container's
//! output fds, its stdin (when there is something to write), and every client
//! connection, plus each exec's outputs and pending stdin. Each connection carries one
//! request; `Wait` connections stay until the exit, `Attach` and `Exec` connections
//! become byte streams (an exec's stream closes once it is reaped and its output is
//! drained, and its exit code stays for `ExecState`).
//!
//! The exit sequence, in this order: the init is reaped (its raw wait status kept);
//! the output is drained to EOF (for a container in the host's PID namespace, what is
//! left in its cgroup is killed first, or a background process could hold the pipes
//! open forever); partial log lines are flushed; the OOM counter is read from the
//! memory cgroup; `exit.json` is written (temp file, fsync, rename, fsync of the
//! directory); the container is deleted (cgroups, runtime state); `Wait` clients get
//! their answer; attach streams are flushed (bounded by [`FLUSH_DEADLINE`]) and
//! closed. Then the caller removes the socket and the process exits.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_runtime::container::{Container, Stdio};
use berth_shim_protocol::{
    EXIT_FILE, ExecSpec, ExecState, ExitStatus, LaunchError, LaunchErrorKind, LaunchSpec, Reply,
    Request, Status,
};

use crate::StdioEnds;
use crate::jsonlog::{self, JsonLog};

/// Bytes an attach client may have queued before frames for it are dropped.
const MAX_ATTACH_BUFFER: usize = 1 << 20;
/// Bytes of stdin queued for the container before clients stop being read.
const MAX_STDIN_BUFFER: usize = 64 << 10;
/// The longest request line.
const MAX_REQUEST: usize = 64 << 10;
/// How long attach clients get to take the last output after the exit.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);
/// Idle time after the start before startup memory is given back.
const TRIM_AFTER_IDLE: Duration = Duration::from_millis(50);
/// Read size for the container's output.
const READ_CHUNK: usize = 32 * 1024;

/// Sets a pty's window size.
pub(crate) fn resize(pty: &OwnedFd, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct from a valid pointer.
    unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

enum Phase {
    Created,
    Running,
    Exited(ExitStatus),
}

/// Whose output an fd carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The container's init: to the log and attach streams.
    Init,
    /// An exec (by its key): to that exec's stream only.
    Exec(u64),
}

/// Bytes on their way to a process's stdin.
#[derive(Default)]
struct Input {
    fd: Option<OwnedFd>,
    buf: VecDeque<u8>,
    /// Close `fd` once `buf` is written.
    close_pending: bool,
}

impl Input {
    /// Writes what the fd takes now.
    fn write(&mut self) {
        let Some(fd) = &self.fd else {
            self.buf.clear();
            return;
        };
        while !self.buf.is_empty() {
            let (front, _) = self.buf.as_slices();
            match write_fd(fd, front) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    // The process closed its stdin: nothing more can go in.
                    self.fd = None;
                    self.buf.clear();
                    return;
                }
            }
        }
    }

    fn settle(&mut self) {
        if self.close_pending && self.buf.is_empty() {
            self.fd = None;
            self.close_pending = false;
        }
    }
}

/// A process started with [`Request::Exec`].
struct ExecProc {
    key: u64,
    exec_id: String,
    pid: u32,
    tty: bool,
    input: Input,
    pty: Option<OwnedFd>,
    /// The raw wait status, once reaped.
    status: Option<i32>,
    /// Set once reaped and its output drained.
    exit_code: Option<i32>,
}

/// Finished execs remembered for [`Request::ExecState`].
const MAX_FINISHED_EXECS: usize = 128;

fn exit_code(raw: i32) -> i32 {
    if libc::WIFSIGNALED(raw) {
        128 + libc::WTERMSIG(raw)
    } else {
        libc::WEXITSTATUS(raw)
    }
}

#[derive(PartialEq, Eq)]
enum Role {
    /// Reading the request line.
    Request,
    /// Answer once the container has exited.
    Wait,
    /// A stream of output (and maybe input).
    Attach {
        stdout: bool,
        stderr: bool,
        /// Still reading this client's bytes for the container's stdin.
        stdin: bool,
    },
    /// An exec's stdio (see [`Request::Exec`]).
    Exec {
        key: u64,
        /// Still reading this client's bytes for the exec's stdin.
        stdin: bool,
    },
}

struct Conn {
    stream: UnixStream,
    role: Role,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    close_when_flushed: bool,
    dead: bool,
    dropped: u64,
}

impl Conn {
    fn send(&mut self, reply: &Reply) {
        if let Ok(mut line) = serde_json::to_vec(reply) {
            line.push(b'\n');
            self.out.extend(line);
        }
    }
}

/// The supervisor of one created container.
pub(crate) struct Supervisor {
    launch: LaunchSpec,
    container: Container,
    listener: UnixListener,
    sigfd: OwnedFd,
    /// Output sources: (stream number, fd, whose); removed at EOF.
    outputs: Vec<(u8, OwnedFd, Owner)>,
    execs: Vec<ExecProc>,
    next_exec_key: u64,
    stdin: Option<OwnedFd>,
    stdin_buf: VecDeque<u8>,
    /// Close the container's stdin once `stdin_buf` is written.
    stdin_close_pending: bool,
    pty: Option<OwnedFd>,
    log: JsonLog,
    conns: Vec<Conn>,
    phase: Phase,
    /// The init's raw wait status, once reaped.
    init_status: Option<i32>,
    killed_leftovers: bool,
    deadline: Option<Instant>,
    /// Startup memory is still to be given back (after the start, when idle).
    trim_pending: bool,
}

fn signalfd_for_sigchld() -> OwnedFd {
    // SAFETY: sigset calls on a zeroed set we own; signalfd returns a new fd or -1.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        // Blocked only now, after the create: the container's init (already cloned)
        // must not inherit a blocked SIGCHLD.
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            // Without a signalfd the shim cannot learn of the exit; nothing sane is left.
            eprintln!("berth-shim: signalfd: {}", std::io::Error::last_os_error());
            std::process::abort();
        }
        OwnedFd::from_raw_fd(fd)
    }
}

fn pollfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: read into a buffer we own, of its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write_fd(fd: &OwnedFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: write from a buffer we own, of its length.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes `exit.json` so that it is whole or absent, even across a crash.
fn write_exit_file(status: &ExitStatus) -> std::io::Result<()> {
    let tmp = format!("{EXIT_FILE}.tmp");
    let body = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, EXIT_FILE)?;
    std::fs::File::open(".")?.sync_all()
}

fn error_reply(kind: LaunchErrorKind, message: String) -> Reply {
    Reply::Error(LaunchError { kind, message })
}

impl Supervisor {
    pub(crate) fn new(
        launch: LaunchSpec,
        container: Container,
        listener: UnixListener,
        ends: StdioEnds,
        log: JsonLog,
    ) -> Self {
        let mut outputs = vec![(1u8, ends.stdout, Owner::Init)];
        if let Some(err) = ends.stderr {
            outputs.push((2, err, Owner::Init));
        }
        Supervisor {
            launch,
            container,
            listener,
            sigfd: signalfd_for_sigchld(),
            outputs,
            execs: Vec::new(),
            next_exec_key: 0,
            stdin: ends.stdin,
            stdin_buf: VecDeque::new(),
            stdin_close_pending: false,
            pty: ends.pty,
            log,
            conns: Vec::new(),
            phase: Phase::Created,
            init_status: None,
            killed_leftovers: false,
            deadline: None,
            trim_pending: false,
        }
    }

    fn exited(&self) -> bool {
        matches!(self.phase, Phase::Exited(_))
    }

    /// Runs until the container has exited and its clients are served.
    pub(crate) fn run(mut self) {
        // SIGCHLD was not blocked while the container was created: reap what already
        // exited (an init killed before the signalfd existed).
        self.reap();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            self.progress();
            if self.exited() && self.conns.is_empty() {
                return;
            }
            if let Some(deadline) = self.deadline {
                if Instant::now() >= deadline {
                    return;
                }
            }
            self.poll_once(&mut buf);
        }
    }

    /// Moves the exit sequence on when its conditions hold.
    fn progress(&mut self) {
        self.progress_execs();
        if self.exited() || self.init_status.is_none() {
            return;
        }
        if !self.outputs.is_empty() {
            if self.launch.namespaces.pid_host && !self.killed_leftovers {
                self.killed_leftovers = true;
                if let Err(e) = self.container.kill_all(libc::SIGKILL) {
                    eprintln!("berth-shim: killing leftover processes: {e}");
                }
            }
            return;
        }
        self.finish();
    }

    /// An exec is over once reaped and its output drained: its stream closes.
    fn progress_execs(&mut self) {
        for exec in &mut self.execs {
            let Some(raw) = exec.status else { continue };
            if exec.exit_code.is_some()
                || self
                    .outputs
                    .iter()
                    .any(|(_, _, o)| *o == Owner::Exec(exec.key))
            {
                continue;
            }
            exec.exit_code = Some(exit_code(raw));
            exec.input = Input::default();
            exec.pty = None;
            for conn in &mut self.conns {
                if matches!(conn.role, Role::Exec { key, .. } if key == exec.key) {
                    conn.close_when_flushed = true;
                }
            }
        }
        // Close now what is flushed: the next poll may wait for a long time.
        self.conns
            .retain(|c| !(c.dead || (c.close_when_flushed && c.out.is_empty())));
        let finished = self.execs.iter().filter(|e| e.exit_code.is_some()).count();
        if finished > MAX_FINISHED_EXECS {
            let mut extra = finished - MAX_FINISHED_EXECS;
            self.execs.retain(|e| {
                if extra > 0 && e.exit_code.is_some() {
                    extra -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn finish(&mut self) {
        let exit_code = exit_code(self.init_status.unwrap_or(0));
        let oom_killed =
            berth_runtime::cgroups::oom_kill_count(&self.launch.cgroup_path).unwrap_or(0) > 0;
        let status = ExitStatus {
            exit_code,
            oom_killed,
            finished_at: jsonlog::rfc3339_nano(jsonlog::now_nanos()),
        };
        if let Err(e) = write_exit_file(&status) {
            eprintln!("berth-shim: writing {EXIT_FILE}: {e}");
        }
        if let Err(e) = self.container.delete() {
            eprintln!("berth-shim: {e}");
        }
        self.stdin = None;
        self.stdin_buf.clear();
        for conn in &mut self.conns {
            match conn.role {
                Role::Wait => {
                    conn.send(&Reply::Exited(status.clone()));
                    conn.close_when_flushed = true;
                }
                Role::Attach { .. } | Role::Exec { .. } => conn.close_when_flushed = true,
                Role::Request => {}
            }
        }
        self.phase = Phase::Exited(status);
        self.deadline = Some(Instant::now() + FLUSH_DEADLINE);
    }

    fn poll_once(&mut self, buf: &mut [u8]) {
        // Fixed slots first: listener, signalfd, outputs, stdin; then connections.
        let mut fds = Vec::with_capacity(4 + self.outputs.len() + self.conns.len());
        fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        fds.push(pollfd(self.sigfd.as_raw_fd(), libc::POLLIN));
        for (_, fd, _) in &self.outputs {
            fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
        }
        // Exec stdins with bytes waiting, by exec index.
        let exec_base = fds.len();
        let mut exec_slots = Vec::new();
        for (i, exec) in self.execs.iter().enumerate() {
            if let Some(fd) = &exec.input.fd {
                if !exec.input.buf.is_empty() {
                    fds.push(pollfd(fd.as_raw_fd(), libc::POLLOUT));
                    exec_slots.push(i);
                }
            }
        }
        let stdin_slot = match &self.stdin {
            Some(fd) if !self.stdin_buf.is_empty() => {
                fds.push(pollfd(fd.as_raw_fd(), libc::POLLOUT));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let conn_base = fds.len();
        let stdin_room = self.stdin_buf.len() < MAX_STDIN_BUFFER;
        for conn in &self.conns {
            let mut events = 0;
            let reading = match conn.role {
                Role::Request => true,
                Role::Attach { stdin, .. } => stdin && stdin_room,
                Role::Exec { key, stdin } => {
                    stdin
                        && self
                            .execs
                            .iter()
                            .any(|e| e.key == key && e.input.buf.len() < MAX_STDIN_BUFFER)
                }
                Role::Wait => false,
            };
            if reading {
                events |= libc::POLLIN;
            }
            if !conn.out.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(conn.stream.as_raw_fd(), events));
        }
        let timeout = match self.deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
            None if self.trim_pending => TRIM_AFTER_IDLE.as_millis() as i32,
            None => -1,
        };
        // SAFETY: poll over a slice of pollfd structs we own, with its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                eprintln!("berth-shim: poll: {e}");
            }
            return;
        }
        if n == 0 && self.trim_pending && self.deadline.is_none() {
            self.trim_pending = false;
            crate::trim::release_startup_memory();
            return;
        }
        let ready = |i: usize| fds[i].revents != 0;

        if ready(1) {
            self.drain_signalfd();
            self.reap();
        }
        // Outputs in order (stdout before stderr: what a process wrote first usually
        // arrives first); those that ended are removed afterwards, from the back, so
        // that removal keeps the other slots valid.
        let mut ended = Vec::new();
        for i in 0..self.outputs.len() {
            if ready(2 + i) && self.read_output(i, buf) {
                ended.push(i);
            }
        }
        for i in ended.into_iter().rev() {
            self.close_output(i);
        }
        if let Some(slot) = stdin_slot {
            if ready(slot) {
                self.write_stdin();
            }
        }
        for (n, &i) in exec_slots.iter().enumerate() {
            if ready(exec_base + n) {
                self.execs[i].input.write();
            }
        }
        for (i, pfd) in fds[conn_base..].iter().enumerate() {
            let revents = pfd.revents;
            if revents == 0 {
                continue;
            }
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_conn(i);
            }
            if revents & libc::POLLOUT != 0 || (revents & libc::POLLERR != 0) {
                self.flush_conn(i);
            }
        }
        if ready(0) {
            self.accept();
        }
        self.conns
            .retain(|c| !(c.dead || (c.close_when_flushed && c.out.is_empty())));
        if self.stdin_close_pending && self.stdin_buf.is_empty() {
            self.stdin = None;
            self.stdin_close_pending = false;
        }
        for exec in &mut self.execs {
            exec.input.settle();
        }
    }

    fn drain_signalfd(&mut self) {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        while matches!(read_fd(&self.sigfd, &mut info), Ok(n) if n > 0) {}
    }

    /// Reaps every exited child: the init, and orphans of the container that the
    /// subreaper inherited.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes one int through a valid pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid as u32 == self.container.pid() && self.init_status.is_none() {
                self.init_status = Some(status);
            } else if let Some(exec) = self
                .execs
                .iter_mut()
                .find(|e| e.pid == pid as u32 && e.status.is_none())
            {
                exec.status = Some(status);
            }
        }
    }

    /// Forwards what an output has; returns whether it ended (EOF, or EIO from a
    /// pty master once the last peer fd is closed).
    fn read_output(&mut self, index: usize, buf: &mut [u8]) -> bool {
        let (stream, _, owner) = self.outputs[index];
        // Read until the pipe is empty so a burst does not cost a poll per chunk, but
        // bounded so that one busy stream cannot starve the rest of the loop.
        for _ in 0..16 {
            match read_fd(&self.outputs[index].1, buf) {
                Ok(0) => return true,
                Ok(n) => match owner {
                    Owner::Init => self.forward(stream, n, buf),
                    Owner::Exec(key) => self.forward_exec(key, stream, &buf[..n]),
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
        false
    }

    fn close_output(&mut self, index: usize) {
        let (stream, _, owner) = self.outputs.remove(index);
        if owner != Owner::Init {
            return;
        }
        if let Err(e) = self.log.finish_stream(stream, jsonlog::now_nanos()) {
            eprintln!("berth-shim: {e}");
        }
    }

    fn forward(&mut self, stream: u8, n: usize, buf: &[u8]) {
        let data = &buf[..n];
        if let Err(e) = self.log.write(stream, data, jsonlog::now_nanos()) {
            eprintln!("berth-shim: {e}");
        }
        let tty = self.pty.is_some();
        for conn in &mut self.conns {
            let Role::Attach { stdout, stderr, .. } = conn.role else {
                continue;
            };
            if !((stream == 1 && stdout) || (stream == 2 && stderr)) {
                continue;
            }
            let frame_len = if tty { n } else { n + 8 };
            if conn.out.len() + frame_len > MAX_ATTACH_BUFFER {
                conn.dropped += n as u64;
                continue;
            }
            if !tty {
                let len = (n as u32).to_be_bytes();
                conn.out
                    .extend([stream, 0, 0, 0, len[0], len[1], len[2], len[3]]);
            }
            conn.out.extend(data);
            // Try at once: most clients keep up, and this saves a poll round trip.
            flush(conn);
        }
    }

    /// An exec's output goes to its own stream only (Docker logs no exec output).
    fn forward_exec(&mut self, key: u64, stream: u8, data: &[u8]) {
        let tty = self.execs.iter().any(|e| e.key == key && e.tty);
        for conn in &mut self.conns {
            if !matches!(conn.role, Role::Exec { key: k, .. } if k == key) {
                continue;
            }
            let frame_len = if tty { data.len() } else { data.len() + 8 };
            if conn.out.len() + frame_len > MAX_ATTACH_BUFFER {
                conn.dropped += data.len() as u64;
                continue;
            }
            if !tty {
                let len = (data.len() as u32).to_be_bytes();
                conn.out
                    .extend([stream, 0, 0, 0, len[0], len[1], len[2], len[3]]);
            }
            conn.out.extend(data);
            flush(conn);
        }
    }

    fn write_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            let (front, _) = self.stdin_buf.as_slices();
            match write_fd(fd, front) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    // The container closed its stdin: nothing more can go in.
                    self.stdin = None;
                    self.stdin_buf.clear();
                    return;
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        role: Role::Request,
                        inbuf: Vec::new(),
                        out: VecDeque::new(),
                        close_when_flushed: false,
                        dead: false,
                        dropped: 0,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn read_conn(&mut self, i: usize) {
        let mut chunk = [0u8; 4096];
        loop {
            let conn = &mut self.conns[i];
            let attach_stdin = matches!(conn.role, Role::Attach { stdin: true, .. });
            let exec_stdin = match conn.role {
                Role::Exec { key, stdin: true } => Some(key),
                _ => None,
            };
            let reading = conn.role == Role::Request || attach_stdin || exec_stdin.is_some();
            if !reading {
                // Only hangups matter here: a client that left.
                let mut probe = [0u8; 1];
                // SAFETY: recv into a one-byte buffer we own.
                let n = unsafe {
                    libc::recv(
                        conn.stream.as_raw_fd(),
                        probe.as_mut_ptr().cast(),
                        1,
                        libc::MSG_PEEK | libc::MSG_DONTWAIT,
                    )
                };
                if n == 0 {
                    conn.dead = conn.out.is_empty() || conn.role == Role::Wait;
                } else if n < 0 && std::io::Error::last_os_error().kind() != ErrorKind::WouldBlock {
                    conn.dead = true;
                }
                return;
            }
            if attach_stdin && self.stdin_buf.len() >= MAX_STDIN_BUFFER {
                return;
            }
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    if conn.role == Role::Request {
                        conn.dead = true;
                    } else if let Some(key) = exec_stdin {
                        self.exec_stdin_eof(i, key);
                    } else {
                        self.stdin_eof(i);
                    }
                    return;
                }
                Ok(n) => {
                    if conn.role == Role::Request {
                        conn.inbuf.extend_from_slice(&chunk[..n]);
                        if let Some(pos) = conn.inbuf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = conn.inbuf.drain(..=pos).collect();
                            self.handle_request(i, &line);
                            continue;
                        }
                        if conn.inbuf.len() > MAX_REQUEST {
                            conn.dead = true;
                            return;
                        }
                    } else if let Some(key) = exec_stdin {
                        if let Some(exec) = self.execs.iter_mut().find(|e| e.key == key) {
                            if exec.input.fd.is_some() {
                                exec.input.buf.extend(&chunk[..n]);
                                exec.input.write();
                            }
                            if exec.input.buf.len() >= MAX_STDIN_BUFFER {
                                return;
                            }
                        }
                    } else if self.stdin.is_some() {
                        self.stdin_buf.extend(&chunk[..n]);
                        self.write_stdin();
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    conn.dead = true;
                    return;
                }
            }
        }
    }

    /// A client's stdin ended. As Docker: without a TTY and with `stdin_once` the
    /// container's stdin closes and the client keeps receiving output until the exit;
    /// otherwise (a TTY, or stdin kept open for others) only this client's session
    /// ends: a detached or departed terminal must not end the container's input.
    fn stdin_eof(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Role::Attach { stdin, .. } = &mut conn.role {
            *stdin = false;
        }
        if self.launch.process.stdin_once && self.pty.is_none() {
            self.stdin_close_pending = true;
        } else {
            conn.close_when_flushed = true;
        }
    }

    /// An exec client's stdin ended: as for the init with `stdin_once`, the exec's
    /// stdin closes without a TTY; with one only the client's session ends.
    fn exec_stdin_eof(&mut self, i: usize, key: u64) {
        let conn = &mut self.conns[i];
        if let Role::Exec { stdin, .. } = &mut conn.role {
            *stdin = false;
        }
        let Some(exec) = self.execs.iter_mut().find(|e| e.key == key) else {
            return;
        };
        if exec.tty {
            conn.close_when_flushed = true;
        } else {
            exec.input.close_pending = true;
        }
    }

    fn flush_conn(&mut self, i: usize) {
        flush(&mut self.conns[i]);
    }

    fn status(&self) -> Status {
        match &self.phase {
            Phase::Created => Status::Created {
                pid: self.container.pid(),
            },
            Phase::Running => Status::Running {
                pid: self.container.pid(),
            },
            Phase::Exited(s) => Status::Exited(s.clone()),
        }
    }

    fn handle_request(&mut self, i: usize, line: &[u8]) {
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                let conn = &mut self.conns[i];
                conn.send(&error_reply(
                    LaunchErrorKind::InvalidSpec,
                    format!("bad request: {e}"),
                ));
                conn.close_when_flushed = true;
                return;
            }
        };
        let id = self.container.id().to_string();
        let not_running = || {
            error_reply(
                LaunchErrorKind::Other,
                format!("container {id} is not running"),
            )
        };
        let reply = match request {
            Request::Start => match self.phase {
                Phase::Created if self.init_status.is_none() => match self.container.start() {
                    Ok(()) => {
                        self.phase = Phase::Running;
                        self.trim_pending = true;
                        Reply::Started {
                            pid: self.container.pid(),
                        }
                    }
                    Err(e) => error_reply(LaunchErrorKind::Other, e.to_string()),
                },
                Phase::Running => error_reply(
                    LaunchErrorKind::Other,
                    format!("container {id} is already running"),
                ),
                _ => not_running(),
            },
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let conn = &mut self.conns[i];
                conn.send(&Reply::Ok);
                conn.role = Role::Attach {
                    stdout,
                    stderr,
                    stdin: stdin && self.stdin.is_some(),
                };
                if matches!(self.phase, Phase::Exited(_)) {
                    conn.close_when_flushed = true;
                }
                flush(conn);
                return;
            }
            Request::Wait => {
                let conn = &mut self.conns[i];
                conn.role = Role::Wait;
                if let Phase::Exited(s) = &self.phase {
                    conn.send(&Reply::Exited(s.clone()));
                    conn.close_when_flushed = true;
                    flush(conn);
                }
                return;
            }
            Request::Kill { signal } => {
                if self.exited() || self.init_status.is_some() {
                    not_running()
                } else {
                    match self.container.kill(signal) {
                        Ok(()) => Reply::Ok,
                        Err(e) => error_reply(
                            LaunchErrorKind::InvalidSpec,
                            format!("cannot send signal {signal} to container {id}: {e}"),
                        ),
                    }
                }
            }
            Request::State => Reply::State(self.status()),
            Request::CloseStdin => {
                self.stdin_close_pending = true;
                Reply::Ok
            }
            Request::Resize { height, width } => {
                if let Some(pty) = &self.pty {
                    resize(pty, height, width);
                }
                Reply::Ok
            }
            Request::Exec(spec) => {
                if !matches!(self.phase, Phase::Running) || self.init_status.is_some() {
                    not_running()
                } else {
                    match self.exec(spec) {
                        Ok((key, pid, stream)) => {
                            let conn = &mut self.conns[i];
                            conn.send(&Reply::Started { pid });
                            match stream {
                                Some(stdin) => conn.role = Role::Exec { key, stdin },
                                None => conn.close_when_flushed = true,
                            }
                            flush(conn);
                            return;
                        }
                        Err(e) => Reply::Error(e),
                    }
                }
            }
            Request::ExecState { exec_id } => {
                match self.execs.iter().find(|e| e.exec_id == exec_id) {
                    Some(e) => Reply::ExecState(ExecState {
                        pid: e.pid,
                        exit_code: e.exit_code,
                    }),
                    None => error_reply(
                        LaunchErrorKind::InvalidSpec,
                        format!("No such exec instance: {exec_id}"),
                    ),
                }
            }
            Request::ExecResize {
                exec_id,
                height,
                width,
            } => {
                if let Some(pty) = self
                    .execs
                    .iter()
                    .find(|e| e.exec_id == exec_id)
                    .and_then(|e| e.pty.as_ref())
                {
                    resize(pty, height, width);
                }
                Reply::Ok
            }
        };
        let conn = &mut self.conns[i];
        conn.send(&reply);
        conn.close_when_flushed = true;
        flush(conn);
    }
}

impl Supervisor {
    /// Starts an exec; returns its key, PID, and whether a stream follows (with the
    /// client's stdin read or not).
    fn exec(&mut self, mut spec: ExecSpec) -> Result<(u64, u32, Option<bool>), LaunchError> {
        let other = |message: String| LaunchError {
            kind: LaunchErrorKind::Other,
            message,
        };
        let state_dir = std::env::current_dir()
            .map_err(|e| other(format!("the shim's state directory: {e}")))?;
        let key = self.next_exec_key;
        self.next_exec_key += 1;
        if spec.detach {
            // Nobody reads a detached exec's terminal: plain /dev/null, as Docker does.
            spec.tty = false;
            spec.attach_stdin = false;
        }
        let mut console = None;
        let mut ends = None;
        let stdio = if spec.detach {
            berth_runtime::exec::null_stdio().map_err(|e| other(format!("/dev/null: {e}")))?
        } else if spec.tty {
            let path = state_dir.join(format!("exec{key}.sock"));
            let socket = berth_runtime::console::ConsoleSocket::bind(&path)
                .map_err(|e| other(berth_runtime::container::error_chain(&e)))?;
            console = Some(socket);
            Stdio::Console(path)
        } else {
            let (stdio, pipes) = crate::exec_pipes(spec.attach_stdin)
                .map_err(|e| other(format!("creating the exec's stdio: {e}")))?;
            ends = Some(pipes);
            stdio
        };
        let pid = self
            .container
            .exec(&state_dir, &self.launch, &spec, stdio)
            .map_err(|e| e.to_launch_error())?;
        if let Some(console) = console {
            let master = console
                .receive_master()
                .map_err(|e| other(berth_runtime::container::error_chain(&e)));
            match master.and_then(|m| {
                crate::pty_ends(m, spec.console_size, spec.attach_stdin)
                    .map_err(|e| other(format!("the exec's pty: {e}")))
            }) {
                Ok(e) => ends = Some(e),
                Err(e) => {
                    // SAFETY: kill(2) of our own unreaped child.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    return Err(e);
                }
            }
        }
        let mut exec = ExecProc {
            key,
            exec_id: spec.exec_id.clone(),
            pid,
            tty: spec.tty,
            input: Input::default(),
            pty: None,
            status: None,
            exit_code: None,
        };
        if let Some(ends) = ends {
            self.outputs.push((1, ends.stdout, Owner::Exec(key)));
            if let Some(err) = ends.stderr {
                self.outputs.push((2, err, Owner::Exec(key)));
            }
            exec.input.fd = ends.stdin;
            exec.pty = ends.pty;
        }
        self.execs.push(exec);
        // The tenant create touched as much memory as the container's create did:
        // give it back at the next idle moment, as after the start.
        self.trim_pending = true;
        Ok((key, pid, (!spec.detach).then_some(spec.attach_stdin)))
    }
}

/// Writes what the socket takes now.
fn flush(conn: &mut Conn) {
    while !conn.out.is_empty() {
        let (front, _) = conn.out.as_slices();
        match conn.stream.write(front) {
            Ok(0) => {
                conn.dead = true;
                return;
            }
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                conn.dead = true;
                return;
            }
        }
    }
    if conn.out.capacity() > 64 * 1024 {
        conn.out.shrink_to(4096);
    }
    if conn.dropped > 0 {
        eprintln!(
            "berth-shim: a slow attach client lost {} bytes of output",
            conn.dropped
        );
        conn.dropped = 0;
    }
}
