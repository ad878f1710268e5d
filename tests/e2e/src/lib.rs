//! End-to-end test harness: a real `berthd` on a private socket and data root,
//! driven by real clients (the official `docker` CLI, our `berth` CLI, raw HTTP).
//!
//! Main types: [`Berthd`] (one daemon per test, started by [`Berthd::start`] or
//! [`Berthd::builder`]), [`TestImage`] (the offline images that
//! `tests/images/make-images.py` writes), [`OutputExt`] (assertions on a
//! command's [`Output`] that print stdout and stderr when they fail) and
//! [`HttpResponse`] (from [`Berthd::request`]).
//!
//! Design choices, and why:
//! - Every daemon gets a fresh directory (under `$BERTH_E2E_TMP`, else `/tmp`)
//!   holding its socket, data root, exec root, pidfile, config, log and the
//!   docker CLI's config dir, so tests run in parallel without meeting each
//!   other's state, and `~/.docker` or a real `/var/lib/berth` never interferes.
//! - Cleanup is in `Drop`, so it also runs when a test panics: stop the daemon
//!   by PID (SIGTERM, then SIGKILL), kill what it left running (shims and
//!   containers, found by a marker in their environment, by parentage and in
//!   the daemon's private cgroup subtree, scanning again until nothing is left),
//!   lazily unmount everything under the directory, deepest first, then remove
//!   it. Nothing is found by process name: other daemons on the machine are
//!   not ours to stop.
//! - These tests need root (mounts, namespaces, cgroups). Without it they fail
//!   loudly through [`require_root`]; they never skip silently.
//! - Every external command has a timeout (`$BERTH_E2E_CMD_TIMEOUT` seconds,
//!   default 120), so a hung client fails the test instead of hanging CI.
//! - The binaries come from `$BERTHD_BIN` / `$BERTH_BIN`, else from the cargo
//!   target directory the test executable lives in (`target/<profile>/`).
//!   `cargo test -p berth-e2e` does not build them: `scripts/test` builds the
//!   workspace first.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Environment variable set on every berthd the harness starts; its value is
/// the daemon's temp directory. Processes that inherit it (shims) are found by
/// it at cleanup.
const MARKER_ENV: &str = "BERTH_E2E_ROOT";

/// The Engine API version berth implements (ENGINE-API.md).
pub const API_VERSION: &str = "1.51";

/// Panics unless the test runs as root, with the message every e2e test shows.
#[track_caller]
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        panic!(
            "end-to-end tests need root: run them with the README's test command \
             (sudo ./scripts/test)"
        );
    }
}

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists: this crate is inside it")
}

fn env_duration(name: &str, default_secs: u64) -> Duration {
    let secs = std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(default_secs as f64);
    Duration::from_secs_f64(secs)
}

fn command_timeout() -> Duration {
    env_duration("BERTH_E2E_CMD_TIMEOUT", 120)
}

// ------------------------------------------------------------------ binaries

/// Where a binary of this workspace is: `$<env_var>`, else next to the
/// directory holding the test executable (`target/<profile>/deps/<test>` →
/// `target/<profile>/<name>`).
fn find_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let path = binary_beside_test_exe(&exe, name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: build it first (cargo build -p {name}; scripts/test does) \
             or set {env_var}",
            path.display()
        );
    }
    path
}

fn binary_beside_test_exe(test_exe: &Path, name: &str) -> PathBuf {
    let dir = test_exe.parent().unwrap_or(Path::new("."));
    // Test executables live in target/<profile>/deps; binaries one level up.
    let profile_dir = if dir.file_name() == Some(OsStr::new("deps")) {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    profile_dir.join(name)
}

/// The `berthd` binary under test.
pub fn berthd_bin() -> PathBuf {
    find_binary("berthd", "BERTHD_BIN")
}

/// The `berth` CLI binary under test.
pub fn berth_bin() -> PathBuf {
    find_binary("berth", "BERTH_BIN")
}

/// The official docker CLI: `$DOCKER_BIN`, else `docker` from `PATH`.
pub fn docker_bin() -> PathBuf {
    std::env::var_os("DOCKER_BIN").map_or_else(|| PathBuf::from("docker"), PathBuf::from)
}

// ------------------------------------------------------------------ commands

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '"', '\'', '\n']) {
            let _ = write!(line, " {arg:?}");
        } else {
            let _ = write!(line, " {arg}");
        }
    }
    line
}

/// A finished command's exit status; -1 when a signal ended it.
pub fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Polls `f` every 50 ms until it is true or `limit` passes; whether it became true.
pub fn eventually(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Polls `f` every 100 ms until it gives a value or `limit` passes.
pub fn poll<T>(limit: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// A free TCP port on loopback: tests run in parallel, so never a fixed one.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The host's own address on its default route (`ip route get`; no packet is sent):
/// the non-loopback address a user would reach a published port on.
pub fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", "192.0.2.1"])
        .output()
        .expect("run ip route get");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == "src")
        .and_then(|_| words.next())
        .unwrap_or_else(|| panic!("this host has no route with a source address: {text}"))
        .to_string()
}

/// Runs `cmd` to completion with `stdin` as its input (empty if `None`),
/// capturing stdout and stderr. Panics if it cannot start or outlives
/// `$BERTH_E2E_CMD_TIMEOUT` (it is killed first).
///
/// The command line is printed to stderr first; the test runner shows it
/// when the test fails.
pub fn run_command(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let line = describe(cmd);
    eprintln!("$ {line}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{line}`: {e}"));

    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let input = input.to_vec();
        // A separate thread, so a child that writes before it reads cannot deadlock us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let stdout = read_in_background(child.stdout.take().expect("stdout was piped"));
    let stderr = read_in_background(child.stderr.take().expect("stderr was piped"));

    let deadline = Instant::now() + command_timeout();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let out = Output {
                    status: child.wait().expect("a killed child can be reaped"),
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                };
                panic!(
                    "`{line}` did not finish within {:?} (BERTH_E2E_CMD_TIMEOUT) and was killed\n{}",
                    command_timeout(),
                    format_output(&out)
                );
            }
            Err(e) => panic!("cannot wait for `{line}`: {e}"),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn format_output(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Assertions on a finished command that show its stdout and stderr when they fail.
pub trait OutputExt {
    /// stdout as text (lossy UTF-8).
    fn stdout_text(&self) -> String;
    /// stderr as text (lossy UTF-8).
    fn stderr_text(&self) -> String;
    /// Panics unless the command exited 0; returns its stdout.
    fn assert_success(&self) -> String;
    /// Panics if the command exited 0; returns its stderr.
    fn assert_failure(&self) -> String;
    /// Panics unless stdout contains `needle`; returns stdout.
    fn assert_stdout_contains(&self, needle: &str) -> String;
    /// Panics unless stderr contains `needle`; returns stderr.
    fn assert_stderr_contains(&self, needle: &str) -> String;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    #[track_caller]
    fn assert_success(&self) -> String {
        if !self.status.success() {
            panic!("command failed\n{}", format_output(self));
        }
        self.stdout_text()
    }

    #[track_caller]
    fn assert_failure(&self) -> String {
        if self.status.success() {
            panic!(
                "command succeeded but was expected to fail\n{}",
                format_output(self)
            );
        }
        self.stderr_text()
    }

    #[track_caller]
    fn assert_stdout_contains(&self, needle: &str) -> String {
        let text = self.stdout_text();
        if !text.contains(needle) {
            panic!("stdout lacks {needle:?}\n{}", format_output(self));
        }
        text
    }

    #[track_caller]
    fn assert_stderr_contains(&self, needle: &str) -> String {
        let text = self.stderr_text();
        if !text.contains(needle) {
            panic!("stderr lacks {needle:?}\n{}", format_output(self));
        }
        text
    }
}

// -------------------------------------------------------------------- images

/// One of the offline test images (see `tests/images/README.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestImage {
    /// The reference it is tagged with, e.g. `busybox:latest`.
    pub reference: String,
    /// Image ID: `sha256:` + hex of the config.
    pub id: String,
    /// Digest of its OCI manifest.
    pub manifest: String,
    /// The config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// Layer digests as stored in the archive (compressed for the gzip/zstd variants).
    pub layer_digests: Vec<String>,
    /// The archive, a `docker save` (25+) style tarball.
    pub archive: PathBuf,
}

fn images_dir() -> PathBuf {
    repo_root().join("tests/images")
}

/// Makes the test images unless they are up to date; once per process.
fn ensure_images() -> &'static serde_json::Value {
    static SUMMARY: OnceLock<serde_json::Value> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        let script = images_dir().join("make-images.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        // The skopeo check belongs to scripts/test; here only the archives matter.
        cmd.arg("--no-verify");
        let out = run_command(&mut cmd, None);
        if !out.status.success() {
            panic!("making the test images failed\n{}", format_output(&out));
        }
        let path = images_dir().join("out/images.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    })
}

/// Looks up a test image by reference (`busybox:latest`), by name without tag
/// (`busybox`, `berth-test/layers`) or by archive stem (`berth-test-layers`),
/// making the images first if needed. Panics on an unknown name.
pub fn test_image(name: &str) -> TestImage {
    let summary = ensure_images();
    let images = summary["images"]
        .as_object()
        .expect("images.json has an images object");
    let with_tag = if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    let (reference, entry) = images
        .iter()
        .find(|(reference, entry)| {
            **reference == with_tag || entry["archive"].as_str() == Some(&format!("{name}.tar"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no test image {name:?}; known: {:?} (see tests/images/README.md)",
                images.keys().collect::<Vec<_>>()
            )
        });
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    TestImage {
        reference: reference.clone(),
        id: entry["id"].as_str().unwrap_or_default().to_owned(),
        manifest: entry["manifest"].as_str().unwrap_or_default().to_owned(),
        diff_ids: strings(&entry["diff_ids"]),
        layer_digests: entry["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["digest"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        archive: images_dir()
            .join("out")
            .join(entry["archive"].as_str().unwrap_or_default()),
    }
}

// ---------------------------------------------------------------------- http

/// A response read from the daemon's socket by [`Berthd::request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Headers in the order received; names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// Parses a complete HTTP/1.1 response (the connection was closed after it).
fn parse_http_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn http_request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
    if let Some((content_type, bytes)) = body {
        let _ = write!(
            request,
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        );
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    if let Some((_, bytes)) = body {
        stream.write_all(bytes)?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_http_response(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

// ------------------------------------------------------------------- cleanup

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(digits)) = (bytes[i], octal) {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            let value = u8::try_from(value).unwrap_or(b'?');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `root` in mountinfo `text`, deepest first.
fn mounts_under(text: &str, root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| mount_point.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmounts everything at or below `root`; a few passes, since a
/// mount can be stacked on another at the same point.
/// Removes the cgroup subtree `parent` (relative to each hierarchy's root) in every
/// mounted hierarchy, deepest first. Shims remove their own containers' cgroups when
/// they exit normally; this catches those a killed shim left behind.
fn remove_cgroups(parent: &str) {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for root in roots {
        let top = root.join(parent);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(entries) = std::fs::read_dir(&dirs[i]) {
                dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            i += 1;
        }
        for dir in dirs.iter().rev() {
            // A process killed a moment ago pins its cgroup until it is reaped (by
            // init, not by us): EBUSY is worth a few retries.
            let mut tries = 0;
            while let Err(e) = std::fs::remove_dir(dir) {
                tries += 1;
                if e.raw_os_error() != Some(libc::EBUSY) || tries == 40 {
                    eprintln!("berth-e2e: cannot remove cgroup {}: {e}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn unmount_all_under(root: &Path) {
    for _ in 0..8 {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = mounts_under(&text, root);
        if mounts.is_empty() {
            return;
        }
        for mount_point in mounts {
            if let Err(e) =
                rustix::mount::unmount(&mount_point, rustix::mount::UnmountFlags::DETACH)
            {
                eprintln!("berth-e2e: cannot unmount {}: {e}", mount_point.display());
            }
        }
    }
}

/// PIDs of every process whose environment has `MARKER_ENV=<root>`, plus all
/// their descendants (container processes do not inherit the marker).
fn processes_of(root: &Path) -> Vec<i32> {
    let marker = {
        let mut m = OsString::from(MARKER_ENV);
        m.push("=");
        m.push(root.as_os_str());
        m.into_encoded_bytes()
    };
    let own = std::process::id() as i32;
    let mut parents: HashMap<i32, i32> = HashMap::new();
    let mut marked = HashSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The fields after the command name, which is in parentheses and may hold anything.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
            {
                parents.insert(pid, ppid);
            }
        }
        if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
            if environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_slice())
            {
                marked.insert(pid);
            }
        }
    }
    let mut result: HashSet<i32> = marked.clone();
    // Descendants: repeat until no new process joins (the tree is shallow).
    loop {
        let before = result.len();
        for (pid, ppid) in &parents {
            if result.contains(ppid) {
                result.insert(*pid);
            }
        }
        if result.len() == before {
            break;
        }
    }
    let mut pids: Vec<i32> = result.into_iter().collect();
    pids.sort_unstable();
    pids
}

/// PIDs of the live (not zombie) processes in the cgroup subtree `parent` of every
/// mounted hierarchy: the daemon's containers, whatever their environment and
/// parent (an exec'd container process carries no marker, and one whose shim
/// was killed has init as its parent).
fn cgroup_processes(parent: &str) -> Vec<i32> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut pids = HashSet::new();
    for root in roots {
        let mut dirs = vec![root.join(parent)];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    let mut pids: Vec<i32> = pids.into_iter().filter(|p| !is_zombie(*p)).collect();
    pids.sort_unstable();
    pids
}

/// Whether `pid` has exited and waits to be reaped (or is gone): killing it again
/// achieves nothing, and its parent, not we, must reap it.
fn is_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// Thaws every v1 freezer cgroup in the subtree `parent`: a task in a frozen v1
/// cgroup (a paused container) does not act on SIGKILL until it is thawed.
fn thaw_cgroups(parent: &str) {
    let mut dirs = vec![Path::new("/sys/fs/cgroup/freezer").join(parent)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    }
}

/// Kills, by PID, everything the daemon rooted at `root` left running: processes
/// with its marker and their descendants, and every process in its cgroup subtree
/// `cgroup_parent`. The scan is repeated until it finds nothing (up to 5 s),
/// because one scan races with a shim caught creating a container: the init it
/// forks after the scan (comm `youki:[2:INIT]`, cmdline still berth-shim's)
/// survives the shim, orphaned, waiting forever for a start that never comes,
/// and pins the container's cgroups.
fn kill_leftovers(root: &Path, cgroup_parent: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = Vec::new();
    thaw_cgroups(cgroup_parent);
    loop {
        let mut pids = processes_of(root);
        pids.retain(|p| !is_zombie(*p));
        pids.extend(cgroup_processes(cgroup_parent));
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("berth-e2e: processes still alive after SIGKILL: {pids:?}");
            break;
        }
        for pid in &pids {
            send_signal(*pid as u32, Signal::KILL);
        }
        killed.extend(pids);
        std::thread::sleep(Duration::from_millis(50));
    }
    if !killed.is_empty() {
        killed.sort_unstable();
        killed.dedup();
        eprintln!("berth-e2e: killed leftover processes {killed:?}");
    }
}

fn send_signal(pid: u32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

// -------------------------------------------------------------------- daemon

/// Options for a daemon before it starts: extra flags and `daemon.json` content.
#[derive(Debug, Default)]
pub struct BerthdBuilder {
    args: Vec<String>,
    config: Option<serde_json::Value>,
}

impl BerthdBuilder {
    /// Adds a command-line flag after the harness's own.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets the content of `daemon.json` (default `{}`).
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = Some(config);
        self
    }

    /// Creates the daemon's directory and starts it; panics (after cleaning
    /// up) if it does not answer `/_ping` within `$BERTH_E2E_START_TIMEOUT`
    /// seconds (default 10).
    #[track_caller]
    pub fn start(self) -> Berthd {
        require_root();
        let base =
            std::env::var_os("BERTH_E2E_TMP").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        std::fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
        let root = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("cannot make a temp dir in {}: {e}", base.display()))
            .keep();
        let mut args = self.args;
        // Daemons run in parallel: each gets a bridge, subnet and nft table of its own.
        if !args.iter().any(|a| a == "--bridge" || a == "-b") {
            let suffix = root
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .trim_start_matches("berth-e2e-")
                        .to_string()
                })
                .unwrap_or_default();
            args.push("--bridge".into());
            args.push(format!("be-{}", &suffix[..suffix.len().min(10)]));
        }
        if !args.iter().any(|a| a == "--bip") {
            args.push("--bip".into());
            args.push(free_test_subnet());
        }
        // From here on, Drop cleans up whatever happens.
        let mut daemon = Berthd {
            root,
            args,
            child: None,
            keep: std::env::var_os("BERTH_E2E_KEEP").is_some_and(|v| v == "1"),
        };
        // sun_path holds 108 bytes including the NUL.
        let socket_len = daemon.socket().as_os_str().len();
        assert!(
            socket_len < 108,
            "socket path {} is {socket_len} bytes, too long for a unix socket: shorten BERTH_E2E_TMP",
            daemon.socket().display()
        );
        let config = self.config.unwrap_or_else(|| serde_json::json!({}));
        std::fs::write(daemon.config_file(), config.to_string()).expect("write daemon.json");
        std::fs::create_dir_all(daemon.docker_config_dir()).expect("create docker config dir");
        std::fs::write(daemon.docker_config_dir().join("config.json"), "{}\n")
            .expect("write docker config.json");
        daemon.launch();
        daemon
    }
}

/// A running `berthd` with its own socket and roots in a temp directory.
///
/// Layout of the directory (`root()`):
/// ```text
/// <root>/berth.sock      API socket (host() = unix://<root>/berth.sock)
/// <root>/data/           --data-root
/// <root>/exec/           --exec-root
/// <root>/berthd.pid      --pidfile
/// <root>/daemon.json     --config-file
/// <root>/berthd.log      the daemon's stdout and stderr, appended across restarts
/// <root>/docker-config/  DOCKER_CONFIG for the CLIs the harness runs
/// ```
#[derive(Debug)]
pub struct Berthd {
    root: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    keep: bool,
}

impl Berthd {
    /// Starts a daemon with default options: `Berthd::builder().start()`.
    #[track_caller]
    pub fn start() -> Berthd {
        Self::builder().start()
    }

    /// Options for a daemon before it starts.
    pub fn builder() -> BerthdBuilder {
        BerthdBuilder::default()
    }

    /// The daemon's private directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.root.join("berth.sock")
    }

    /// `unix://<socket>`, for `DOCKER_HOST` or `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// `--data-root`.
    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `--cgroup-parent`. The cgroup this daemon creates its containers' cgroups under: private to it, so
    /// that cleanup can remove the whole subtree without touching other daemons.
    pub fn cgroup_parent(&self) -> String {
        let dir = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("berth-e2e-{dir}")
    }

    /// `--exec-root`.
    pub fn exec_root(&self) -> PathBuf {
        self.root.join("exec")
    }

    /// `--pidfile`.
    pub fn pidfile(&self) -> PathBuf {
        self.root.join("berthd.pid")
    }

    /// `--config-file` (`daemon.json`).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("daemon.json")
    }

    /// Where the daemon's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("berthd.log")
    }

    /// `DOCKER_CONFIG` for the CLIs run by [`Berthd::docker`] and [`Berthd::berth`].
    pub fn docker_config_dir(&self) -> PathBuf {
        self.root.join("docker-config")
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The daemon's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    #[track_caller]
    fn launch(&mut self) {
        assert!(self.child.is_none(), "berthd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open berthd.log");
        let mut cmd = Command::new(berthd_bin());
        cmd.arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.pidfile())
            .arg("--config-file")
            .arg(self.config_file())
            .arg("--cgroup-parent")
            .arg(self.cgroup_parent())
            .args(&self.args)
            .env(MARKER_ENV, &self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        eprintln!("$ {}", describe(&cmd));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", describe(&cmd)));
        self.child = Some(child);
        self.wait_until_ready();
    }

    #[track_caller]
    fn wait_until_ready(&mut self) {
        let timeout = env_duration("BERTH_E2E_START_TIMEOUT", 10);
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("socket not created yet");
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "berthd exited with {status} before answering /_ping\n--- berthd.log ---\n{}",
                    self.log()
                );
            }
            if self.socket().exists() {
                match http_request(
                    &self.socket(),
                    "GET",
                    "/_ping",
                    None,
                    Duration::from_secs(2),
                ) {
                    Ok(response) if response.status == 200 && response.body == b"OK" => return,
                    Ok(response) => {
                        last_error =
                            format!("/_ping answered {}: {}", response.status, response.text());
                    }
                    Err(e) => last_error = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "berthd did not answer /_ping on {} within {timeout:?} ({last_error})\n--- berthd.log ---\n{}",
                    self.socket().display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon: SIGTERM, up to 10 s to exit, then SIGKILL. Returns
    /// its exit status (`None` if it was not running or had to be killed).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        send_signal(child.id(), Signal::TERM);
        if let Some(status) = wait_with_deadline(&mut child, Duration::from_secs(10)) {
            return Some(status);
        }
        eprintln!(
            "berth-e2e: berthd {} ignored SIGTERM for 10 s; killing it",
            child.id()
        );
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops the daemon gracefully and starts it again on the same roots,
    /// socket and flags: what it stored must still be there.
    #[track_caller]
    pub fn restart(&mut self) {
        let status = self.stop();
        eprintln!("berth-e2e: berthd stopped with {status:?}; starting it again");
        self.launch();
    }

    /// Kills the daemon with SIGKILL (no chance to clean up) and reaps it. It
    /// stays down until [`Berthd::start_again`]; the processes it started are
    /// left alone (live restore).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same roots after [`Berthd::stop`] or
    /// [`Berthd::kill9`]. The stale socket and pidfile are left for berthd to
    /// deal with, as after a crash.
    #[track_caller]
    pub fn start_again(&mut self) {
        self.launch();
    }

    fn client(&self, program: PathBuf) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config_dir());
        // Anything that could point the client elsewhere or pin its API version.
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
            "DOCKER_DEFAULT_PLATFORM",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// A `docker` command aimed at this daemon, for tests that need more
    /// control than [`Berthd::docker`] (extra env, a different stdin).
    /// Run it with [`run_command`] to keep the timeout.
    pub fn docker_cmd(&self) -> Command {
        self.client(docker_bin())
    }

    /// A `berth` CLI command aimed at this daemon (see [`Berthd::docker_cmd`]).
    pub fn berth_cmd(&self) -> Command {
        self.client(berth_bin())
    }

    /// Runs the official docker CLI against this daemon and waits for it.
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.docker_cmd().args(args), None)
    }

    /// Like [`Berthd::docker`], feeding `stdin` to the command.
    pub fn docker_with_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.docker_cmd().args(args), Some(stdin))
    }

    /// Runs our `berth` CLI against this daemon and waits for it.
    pub fn berth<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.berth_cmd().args(args), None)
    }

    /// Like [`Berthd::berth`], feeding `stdin` to the command.
    pub fn berth_with_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.berth_cmd().args(args), Some(stdin))
    }

    /// Loads a test image (see [`test_image`] for names) with `docker load -i`
    /// and checks the CLI reported it. Panics with the output on failure.
    #[track_caller]
    pub fn load_image(&self, name: &str) -> TestImage {
        let image = test_image(name);
        let out = self.docker([
            OsStr::new("load"),
            OsStr::new("-i"),
            image.archive.as_os_str(),
        ]);
        out.assert_stdout_contains(&format!("Loaded image: {}", image.reference));
        image
    }

    /// `<container name> <action>` of every start and health_status event so far, in
    /// order: what ordering tests (healthcheck before dependants) read.
    pub fn start_and_health_events(&self) -> Vec<String> {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        self.docker([
            "events",
            "--since",
            "0",
            "--until",
            &until.to_string(),
            "--filter",
            "event=health_status",
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}} {{.Action}}",
        ])
        .assert_success()
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Sends one HTTP/1.1 request over the socket (`Connection: close`) and
    /// reads the whole response. `body` is `(content type, bytes)`. Panics if
    /// the daemon cannot be reached or answers something that is not HTTP.
    #[track_caller]
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> HttpResponse {
        http_request(&self.socket(), method, path, body, command_timeout())
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.socket().display()))
    }

    fn cleanup(&mut self) {
        let status = self.stop();
        if std::thread::panicking() {
            // The test failed: the daemon's side of the story belongs in its output.
            eprintln!(
                "--- berthd.log ({}; exit {status:?}) ---\n{}\n--- end of berthd.log ---",
                self.log_path().display(),
                self.log()
            );
        }
        // Shims and containers the daemon left running (live restore) hold
        // mounts and cgroups: end them, by PID, before unmounting.
        kill_leftovers(&self.root, &self.cgroup_parent());
        remove_cgroups(&self.cgroup_parent());
        unmount_all_under(&self.root);
        self.remove_network();
        if self.keep {
            eprintln!(
                "berth-e2e: keeping {} (BERTH_E2E_KEEP=1)",
                self.root.display()
            );
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            // Never panic in Drop: it may run during a panic, which would abort.
            eprintln!("berth-e2e: cannot remove {}: {e}", self.root.display());
        }
    }
}

impl Berthd {
    /// The daemon's bridge device (`--bridge`).
    pub fn bridge(&self) -> String {
        self.args
            .iter()
            .position(|a| a == "--bridge" || a == "-b")
            .and_then(|i| self.args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| "berth0".into())
    }

    /// The daemon's nftables table (berthd names it after the bridge).
    pub fn nft_table(&self) -> String {
        match self.bridge().as_str() {
            "berth0" => "berth".into(),
            b => format!("berth-{b}"),
        }
    }

    /// Removes the bridge and the nft table the daemon made (the namespaces are
    /// mounts under the root, gone already, and their veths with them).
    fn remove_network(&self) {
        // The default bridge, and those of networks the test created (berthd records
        // each network's bridge in its state file).
        let mut bridges = vec![self.bridge()];
        let state =
            std::fs::read(self.data_root().join("network/networks.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&state) {
            let nets = v["networks"].as_object().cloned().unwrap_or_default();
            bridges.extend(
                nets.values()
                    .filter_map(|n| n["bridge"].as_str().map(str::to_string)),
            );
        }
        for bridge in bridges {
            if Path::new("/sys/class/net").join(&bridge).exists() {
                let _ = Command::new("ip").args(["link", "del", &bridge]).status();
            }
        }
        let table = self.nft_table();
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &table])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A /24 under 10.200.0.0/13 that no route on the host covers, different for each
/// daemon of this process (and, by the PID, likely of others).
fn free_test_subnet() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let start = std::process::id().wrapping_mul(97);
    loop {
        let n = (start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))) % 2048;
        let (b, c) = (200 + n / 256, n % 256);
        // /proc/net/route prints the destination's network-order bytes as a native word.
        let dest = u32::from_ne_bytes([10, b as u8, c as u8, 0]);
        if !routes.contains(&format!("\t{dest:08X}\t")) {
            return format!("10.{b}.{c}.1/24");
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_found_in_profile_dir_above_deps() {
        let exe = Path::new("/w/target/debug/deps/smoke-0123abcd");
        assert_eq!(
            binary_beside_test_exe(exe, "berthd"),
            Path::new("/w/target/debug/berthd")
        );
        let exe = Path::new("/w/target/release/smoke");
        assert_eq!(
            binary_beside_test_exe(exe, "berth"),
            Path::new("/w/target/release/berth")
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            unescape_mountinfo(r"/tmp/a\040b\011c\134d"),
            "/tmp/a b\tc\\d"
        );
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn mounts_under_root_come_deepest_first_and_others_are_ignored() {
        let text = "\
22 1 0:21 / /tmp/berth-e2e-x/data/overlay rw - overlay overlay rw
23 22 0:22 / /tmp/berth-e2e-x/data/overlay/c/merged/proc rw - proc proc rw
24 1 0:23 / /tmp/berth-e2e-xy rw - tmpfs tmpfs rw
25 1 0:24 / /tmp/berth-e2e-x/exec\\040dir rw - tmpfs tmpfs rw
26 1 0:25 / /proc rw - proc proc rw
";
        let mounts = mounts_under(text, Path::new("/tmp/berth-e2e-x"));
        assert_eq!(
            mounts,
            vec![
                PathBuf::from("/tmp/berth-e2e-x/data/overlay/c/merged/proc"),
                PathBuf::from("/tmp/berth-e2e-x/data/overlay"),
                PathBuf::from("/tmp/berth-e2e-x/exec dir"),
            ]
        );
    }

    #[test]
    fn http_response_with_content_length_is_parsed() {
        let raw = b"HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Length: 2\r\n\r\nOK";
        let response = parse_http_response(raw).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("api-version"), Some("1.44"));
        assert_eq!(response.body, b"OK");
    }

    #[test]
    fn chunked_http_response_is_dechunked() {
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"mes\r\nd;ext=1\r\nsage\":\"gone\"}\r\n0\r\n\r\n";
        let response = parse_http_response(raw).unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.json()["message"], "gone");
    }

    #[test]
    fn truncated_chunk_is_an_error() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
        assert!(parse_http_response(raw).is_err());
    }

    #[test]
    fn failed_command_output_shows_both_streams() {
        let out = run_command(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
        );
        let message = std::panic::catch_unwind(|| out.assert_success())
            .unwrap_err()
            .downcast::<String>()
            .unwrap();
        assert!(
            message.contains("out") && message.contains("err"),
            "{message}"
        );
        assert!(message.contains("3"), "{message}");
    }

    #[test]
    fn command_stdin_is_fed_and_stdout_captured() {
        let out = run_command(&mut Command::new("cat"), Some(b"piped"));
        assert_eq!(out.assert_success(), "piped");
    }
}
