//! Create, start, signal and delete one container with libcontainer.
//!
//! Layout under the shim's state directory (the daemon owns the directory; this module
//! owns what it writes there):
//!
//! ```text
//! <state-dir>/
//! ├── config.json          the OCI spec (the directory is the OCI bundle)
//! └── rt/                  libcontainer's root
//!     └── <id>/            its state.json, its copy of the config, notify.sock
//! ```
//!
//! Design choices:
//! - The container is created with the init process parked before `execve` (waiting on
//!   libcontainer's notify socket); [`Container::start`] only connects to that socket.
//!   It does not go through libcontainer's `Container::start`, which re-reads its state
//!   and config from disk: the start path is hot and the shim keeps no libcontainer
//!   objects in memory once the container exists.
//! - The command is looked up inside the container *before* the create finishes (by a
//!   custom executor, in the init process after `pivot_root`), so that "not found" and
//!   "not executable" come back as a create failure with Docker's message and the
//!   kinds the CLI maps to exit codes 127 and 126, as runc reports them.
//! - The executor also restores default signal dispositions and an empty signal mask
//!   before `execve`: the shim ignores SIGPIPE and SIGHUP, and ignored signals survive
//!   `execve`.
//! - Signals go to the init's PID directly: the shim is its parent (and subreaper), so
//!   the PID cannot be reused before the shim reaps it.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_shim_protocol::{LaunchError, LaunchErrorKind, LaunchSpec};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use crate::host::{self, DeviceError};
use crate::spec::{self, HostInfo, SpecError};
use crate::user::{self, UserError};

/// The bundle's spec file name.
pub const CONFIG_FILE: &str = "config.json";
/// libcontainer's root, inside the state directory.
pub const RUNTIME_DIR: &str = "rt";

/// A process's standard streams.
#[derive(Debug)]
pub enum Stdio {
    /// Pipes (or any fds) the caller made. `stdin: None` gives the process /dev/null
    /// (when the caller's own stdin is /dev/null, which berth-shim makes sure of).
    Pipes {
        /// The process's stdin.
        stdin: Option<OwnedFd>,
        /// The process's stdout.
        stdout: OwnedFd,
        /// The process's stderr.
        stderr: OwnedFd,
    },
    /// A pseudo-terminal made by the runtime *inside* the container, from the
    /// container's own devpts (as runc does with `terminal: true`): the process gets its
    /// peer as stdio and controlling terminal, and the master is sent with
    /// `SCM_RIGHTS` over a connection to the unix socket listening at this path. The
    /// caller binds the socket before and accepts the connection after the call
    /// ([`crate::console::ConsoleSocket`]).
    Console(PathBuf),
}

/// Why a container could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The spec cannot be built (capabilities, seccomp, ulimits, …).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// `--user` or `--group-add` cannot be resolved.
    #[error(transparent)]
    User(#[from] UserError),
    /// A `--device` cannot be given.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The rootfs cannot be opened.
    #[error("cannot open the container's root filesystem {path}")]
    Rootfs {
        /// The rootfs path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The working directory cannot be created.
    #[error("cannot create the working directory {path:?} in the container")]
    Workdir {
        /// The path inside the container.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle's config.json cannot be written.
    #[error("cannot write the OCI bundle in {path}")]
    Bundle {
        /// The state directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The command cannot be run: `exec: "x": executable file not found in $PATH`.
    #[error("{message}")]
    Exec {
        /// 127 (not found) or 126 (not executable).
        kind: LaunchErrorKind,
        /// Docker's message.
        message: String,
    },
    /// libcontainer failed; the message carries its whole error chain.
    #[error("OCI runtime create failed: {0}")]
    Runtime(String),
}

impl CreateError {
    /// The protocol's form, classified for the CLI's exit codes.
    pub fn to_launch_error(&self) -> LaunchError {
        let kind = match self {
            CreateError::Exec { kind, .. } => *kind,
            CreateError::Spec(_) | CreateError::User(_) | CreateError::Device(_) => {
                LaunchErrorKind::InvalidSpec
            }
            CreateError::Rootfs { .. }
            | CreateError::Workdir { .. }
            | CreateError::Bundle { .. }
            | CreateError::Runtime(_) => LaunchErrorKind::Other,
        };
        LaunchError {
            kind,
            message: error_chain(self),
        }
    }
}

/// Why a created container could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start container {id}: the init process is not waiting")]
pub struct StartError {
    /// The container.
    pub id: String,
    /// Why.
    #[source]
    pub source: libcontainer::notify_socket::NotifyListenerError,
}

/// Why a container's resources could not be removed.
#[derive(Debug, thiserror::Error)]
#[error("cannot delete container {id}: {message}")]
pub struct DeleteError {
    /// The container.
    pub id: String,
    /// libcontainer's error chain.
    pub message: String,
}

/// `error: source: source…` in one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A created container: what the shim needs to start, signal and delete it. Holds no
/// libcontainer state in memory.
#[derive(Debug, Clone)]
pub struct Container {
    id: String,
    runtime_root: PathBuf,
    pid: i32,
}

impl Container {
    /// Builds the spec for `launch`, writes the bundle into `state_dir` and creates the
    /// container: namespaces, cgroups, mounts, and the init process waiting to exec.
    /// The caller must be single-threaded (libcontainer forks) and becomes the init's
    /// parent.
    ///
    /// # Errors
    /// [`CreateError`]; [`CreateError::to_launch_error`] classifies it.
    pub fn create(
        state_dir: &Path,
        launch: &LaunchSpec,
        stdio: Stdio,
    ) -> Result<Self, CreateError> {
        let root = user::open_root(&launch.rootfs).map_err(|source| CreateError::Rootfs {
            path: launch.rootfs.clone(),
            source,
        })?;
        let resolved_user = user::resolve(
            &root,
            &launch.process.user,
            &launch.process.additional_groups,
        )?;
        let cwd = if launch.process.cwd.is_empty() {
            "/"
        } else {
            launch.process.cwd.as_str()
        };
        if cwd != "/" {
            user::ensure_dir(&root, cwd).map_err(|source| CreateError::Workdir {
                path: cwd.to_string(),
                source,
            })?;
        }
        drop(root);
        let devices = host::resolve_devices(&launch.devices)?;
        let host = HostInfo::detect(launch.privileged);
        let spec = spec::build_spec(launch, &resolved_user, &devices, &host)?;
        drop(host);
        Self::create_from_spec(state_dir, &launch.id, &spec, stdio)
    }

    /// Creates a container from an OCI spec already built.
    ///
    /// # Errors
    /// [`CreateError::Bundle`], [`CreateError::Exec`], [`CreateError::Runtime`].
    pub fn create_from_spec(
        state_dir: &Path,
        id: &str,
        spec: &Spec,
        stdio: Stdio,
    ) -> Result<Self, CreateError> {
        let bundle_err = |source| CreateError::Bundle {
            path: state_dir.to_path_buf(),
            source,
        };
        let config = serde_json::to_vec(spec).map_err(|e| bundle_err(e.into()))?;
        std::fs::write(state_dir.join(CONFIG_FILE), config).map_err(bundle_err)?;
        let runtime_root = state_dir.join(RUNTIME_DIR);
        std::fs::create_dir_all(&runtime_root).map_err(bundle_err)?;

        let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(CommandExecutor::default())
            .with_root_path(&runtime_root)
            .map_err(|e| CreateError::Runtime(error_chain(&e)))?;
        let builder = with_stdio(builder, stdio);
        let created = builder
            .as_init(state_dir)
            .with_systemd(false)
            .with_detach(true)
            .build();
        let container = match created {
            Ok(c) => c,
            Err(e) => return Err(classify(&error_chain(&e))),
        };
        let pid = container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| CreateError::Runtime("the runtime reported no init PID".into()))?;
        Ok(Container {
            id: id.to_string(),
            runtime_root,
            pid,
        })
    }

    /// The init's PID in the host's PID namespace.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// The container ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// libcontainer's root directory for this container.
    pub(crate) fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    /// Lets the init exec the command.
    ///
    /// # Errors
    /// [`StartError`] when the init no longer waits (it died, or was started).
    pub fn start(&self) -> Result<(), StartError> {
        let socket = self
            .runtime_root
            .join(&self.id)
            .join(libcontainer::notify_socket::NOTIFY_FILE);
        libcontainer::notify_socket::NotifySocket::new(socket)
            .notify_container_start()
            .map_err(|source| StartError {
                id: self.id.clone(),
                source,
            })
    }

    /// Sends `signal` to the init.
    ///
    /// # Errors
    /// The kernel's (ESRCH once reaped, EINVAL for a bad signal).
    pub fn kill(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: kill(2) takes plain integers; the PID is our own unreaped child, so
        // it cannot name another process.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.pid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Sends `signal` to every process in the container's cgroup (for a container in
    /// the host's PID namespace, whose processes outlive its init).
    ///
    /// # Errors
    /// [`DeleteError`] with libcontainer's error chain.
    pub fn kill_all(&self, signal: i32) -> Result<(), DeleteError> {
        let err = |e: &dyn std::error::Error| DeleteError {
            id: self.id.clone(),
            message: error_chain(e),
        };
        let signal = libcontainer::signal::Signal::try_from(signal).map_err(|e| err(&e))?;
        let mut container =
            libcontainer::container::Container::load(self.runtime_root.join(&self.id))
                .map_err(|e| err(&e))?;
        container.kill(signal, true).map_err(|e| err(&e))
    }

    /// Removes the container: kills what is left in its cgroup, removes the cgroups
    /// and libcontainer's state directory.
    ///
    /// # Errors
    /// [`DeleteError`] with libcontainer's error chain.
    pub fn delete(&self) -> Result<(), DeleteError> {
        let err = |e: &dyn std::error::Error| DeleteError {
            id: self.id.clone(),
            message: error_chain(e),
        };
        let mut container =
            libcontainer::container::Container::load(self.runtime_root.join(&self.id))
                .map_err(|e| err(&e))?;
        container.delete(true).map_err(|e| err(&e))?;
        let _ = std::fs::remove_dir(&self.runtime_root);
        Ok(())
    }
}

/// Hands the process's stdio to the builder: fds, or a console socket.
pub(crate) fn with_stdio(builder: ContainerBuilder, stdio: Stdio) -> ContainerBuilder {
    match stdio {
        Stdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let builder = builder.with_stdout(stdout).with_stderr(stderr);
            match stdin {
                Some(stdin) => builder.with_stdin(stdin),
                None => builder,
            }
        }
        Stdio::Console(socket) => builder.with_console_socket(Some(socket)),
    }
}

/// Marks an exec failure inside libcontainer's error text, which is all that crosses
/// from the init process back to the shim.
const EXEC_MARK: &str = "berth-exec[";
const EXEC_MARK_END: &str = "]berth-exec";

pub(crate) fn classify(chain: &str) -> CreateError {
    if let Some(start) = chain.find(EXEC_MARK) {
        let rest = &chain[start + EXEC_MARK.len()..];
        if let Some(end) = rest.find(EXEC_MARK_END) {
            let body = &rest[..end];
            if let Some((code, message)) = body.split_once('|') {
                let kind = if code == "126" {
                    LaunchErrorKind::CommandNotExecutable
                } else {
                    LaunchErrorKind::CommandNotFound
                };
                return CreateError::Exec {
                    kind,
                    message: message.to_string(),
                };
            }
        }
    }
    CreateError::Runtime(chain.to_string())
}

/// How a command lookup failed, with Go's `exec.LookPath` messages (what runc shows).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LookupError {
    not_executable: bool,
    message: String,
}

/// Go's `exec.LookPath` as runc runs it inside the container: a name with a slash is
/// checked as is, others are searched in `path_env`. Only called in the container's
/// init, after `pivot_root`, so paths resolve inside the container.
fn look_path(name: &str, path_env: &str) -> Result<PathBuf, LookupError> {
    fn check(path: &Path) -> Result<(), std::io::Error> {
        let meta = std::fs::metadata(path)?;
        if meta.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
        }
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: faccessat reads a NUL-terminated path we own.
        #[allow(unsafe_code)]
        let rc =
            unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    let describe = |e: &std::io::Error| -> String {
        // Go prints errno texts in lower case, e.g. "permission denied".
        let text = std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0)).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
            None => text,
        }
    };
    if name.contains('/') {
        return match check(Path::new(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(LookupError {
                not_executable: false,
                message: format!("exec: {name:?}: stat {name}: {}", describe(&e)),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(LookupError {
                not_executable: false,
                message: format!("exec: {name:?}: stat {name}: {}", describe(&e)),
            }),
            Err(e) => Err(LookupError {
                not_executable: true,
                message: format!("exec: {name:?}: {}", describe(&e)),
            }),
        };
    }
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(LookupError {
        not_executable: false,
        message: format!("exec: {name:?}: executable file not found in $PATH"),
    })
}

fn path_env(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("")
}

/// The executor the container's init runs: looks the command up before the create
/// completes, and execs it with clean signal state.
#[derive(Clone, Default)]
pub(crate) struct CommandExecutor {
    /// A seccomp profile to load right before `execve` (execs; see `crate::exec`).
    seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

impl CommandExecutor {
    /// An executor that loads `seccomp` itself before `execve`.
    pub(crate) fn with_seccomp(seccomp: Option<oci_spec::runtime::LinuxSeccomp>) -> Self {
        CommandExecutor { seccomp }
    }

    fn lookup(spec: &Spec) -> Result<(PathBuf, Vec<String>), LookupError> {
        let process = spec.process().as_ref();
        let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
        let env = process.and_then(|p| p.env().clone()).unwrap_or_default();
        let name = args.first().cloned().unwrap_or_default();
        let path = look_path(&name, path_env(&env))?;
        Ok((path, args))
    }
}

impl Executor for CommandExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        Self::lookup(spec).map(|_| ()).map_err(|e| {
            let code = if e.not_executable { 126 } else { 127 };
            ExecutorValidationError::ArgValidationError(format!(
                "{EXEC_MARK}{code}|{}{EXEC_MARK_END}",
                e.message
            ))
        })
    }

    fn setup_envs(
        &self,
        envs: HashMap<String, String>,
    ) -> Result<(), libcontainer::workload::ExecutorSetEnvsError> {
        // Replace the environment wholesale; the init is single-threaded here.
        for (key, _) in std::env::vars_os() {
            // SAFETY: the container's init process is single-threaded at this point.
            #[allow(unsafe_code)]
            unsafe {
                std::env::remove_var(key)
            };
        }
        for (key, value) in envs {
            // SAFETY: as above.
            #[allow(unsafe_code)]
            unsafe {
                std::env::set_var(key, value)
            };
        }
        Ok(())
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        restore_signals();
        let (path, args) = match Self::lookup(spec) {
            Ok(found) => found,
            Err(e) => exit_with(&e.message, if e.not_executable { 126 } else { 127 }),
        };
        let to_c = |s: &[u8]| CString::new(s).unwrap_or_default();
        let c_path = to_c(path.as_os_str().as_bytes());
        let c_args: Vec<CString> = args.iter().map(|a| to_c(a.as_bytes())).collect();
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let c_env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                to_c(&kv)
            })
            .collect();
        let mut envp: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        // Last, so that the filter constrains as little of our own setup as possible.
        if let Some(seccomp) = &self.seccomp {
            if let Err(e) = libcontainer::seccomp::initialize_seccomp(seccomp) {
                exit_with(&format!("cannot load the seccomp profile: {e}"), 126);
            }
        }
        // SAFETY: all pointers are to NUL-terminated strings that outlive the call;
        // argv and envp are NULL-terminated arrays.
        #[allow(unsafe_code)]
        unsafe {
            libc::execve(c_path.as_ptr(), argv.as_ptr(), envp.as_ptr())
        };
        let err = std::io::Error::last_os_error();
        let code = if err.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        };
        let text = err.to_string();
        let text = text
            .split(" (os error")
            .next()
            .unwrap_or(&text)
            .to_lowercase();
        exit_with(&format!("exec: {:?}: {text}", args[0]), code)
    }
}

/// Default dispositions for the signals the shim ignores, and an empty mask: both are
/// inherited through `execve`.
fn restore_signals() {
    // SAFETY: plain libc calls on a zeroed sigset we own; SIG_DFL is always valid.
    #[allow(unsafe_code)]
    unsafe {
        for sig in [libc::SIGPIPE, libc::SIGHUP, libc::SIGCHLD] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// An exec failure after start: the message goes to the container's stderr (where the
/// user looks), and the exit code is the shell's convention.
fn exit_with(message: &str, code: i32) -> ! {
    let line = format!("{message}\n");
    // SAFETY: write(2) of a buffer we own to fd 2, then _exit, which never returns.
    #[allow(unsafe_code)]
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_errors_use_gos_messages() {
        let e = look_path("nonexistent", "/usr/bin:/bin").unwrap_err();
        assert!(!e.not_executable);
        assert_eq!(
            e.message,
            r#"exec: "nonexistent": executable file not found in $PATH"#
        );
        let e = look_path("/nonexistent", "").unwrap_err();
        assert_eq!(
            e.message,
            r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#
        );
        let e = look_path("/etc/passwd", "").unwrap_err();
        assert!(e.not_executable);
        assert_eq!(e.message, r#"exec: "/etc/passwd": permission denied"#);
        let e = look_path("/etc", "").unwrap_err();
        assert!(e.not_executable);
        assert_eq!(e.message, r#"exec: "/etc": is a directory"#);
        assert_eq!(look_path("sh", "/nope:/bin").unwrap(), Path::new("/bin/sh"));
    }

    #[test]
    fn exec_failures_are_recovered_from_the_runtimes_error_text() {
        let chain = format!(
            "failed to create container: error in executing process : {EXEC_MARK}127|exec: \"x\": executable file not found in $PATH{EXEC_MARK_END}"
        );
        let err = classify(&chain).to_launch_error();
        assert_eq!(err.kind, LaunchErrorKind::CommandNotFound);
        assert_eq!(
            err.message,
            r#"exec: "x": executable file not found in $PATH"#
        );
        let err = classify(&format!(
            "{EXEC_MARK}126|exec: \"/etc\": is a directory{EXEC_MARK_END}"
        ))
        .to_launch_error();
        assert_eq!(err.kind, LaunchErrorKind::CommandNotExecutable);
        assert_eq!(
            classify("boom").to_launch_error().kind,
            LaunchErrorKind::Other
        );
    }

    #[test]
    fn path_env_takes_the_last_path_entry() {
        let env = vec!["PATH=/a".to_string(), "X=1".into(), "PATH=/b".into()];
        assert_eq!(path_env(&env), "/b");
    }
}
