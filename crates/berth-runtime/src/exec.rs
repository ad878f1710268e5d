//! `docker exec`: another process in a running container, through libcontainer's
//! tenant builder, under the same rules as the container's init.
//!
//! The process is described to the runtime as a whole OCI `process` (written to a
//! file in the state directory, as `runc exec --process` takes it), built here with
//! the init's rules: the container's capability set (all of them with `--privileged`),
//! the user resolved from the container's own /etc/passwd and /etc/group, HOME from
//! there, no-new-privileges and `--ulimit`s as the container has them.
//!
//! Seccomp needs a workaround: libcontainer 0.7's tenant path rebuilds the spec's
//! `linux` section without the seccomp profile, so an exec'd process would run
//! unfiltered. The profile is read back from the container's bundle and loaded by our
//! executor right before `execve`. Without no-new-privileges, loading a filter needs
//! `CAP_SYS_ADMIN`: the process keeps it in its effective and permitted sets up to
//! the `execve` (and not in its bounding set), and the kernel drops it at `execve`
//! (permitted after exec is bounded by the bounding set for root, and empty for other
//! users without file capabilities). The filter is inherited through `execve`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_shim_protocol::{ExecSpec, LaunchErrorKind, LaunchSpec};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxSeccomp, PosixRlimit, Process, Spec, User,
};

use crate::caps::{self, CapSet};
use crate::container::{
    CONFIG_FILE, CommandExecutor, Container, CreateError, Stdio, error_chain, with_stdio,
};

use crate::spec::{DEFAULT_PATH_ENV, HostInfo, ResolvedUser, SpecError, oci_caps};
use crate::user;

/// Builds the OCI process for an exec.
///
/// # Errors
/// [`SpecError`]: no command, a capability that cannot be granted.
pub fn build_exec_process(
    launch: &LaunchSpec,
    exec: &ExecSpec,
    user: &ResolvedUser,
    available: CapSet,
    seccomp_in_executor: bool,
) -> Result<Process, SpecError> {
    if exec.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let capset = caps::resolve(
        &launch.cap_add,
        &launch.cap_drop,
        launch.privileged || exec.privileged,
        available,
    )?;
    let bounding = oci_caps(capset);
    let mut working = bounding.clone();
    if seccomp_in_executor && !launch.no_new_privileges {
        working.insert(Capability::SysAdmin);
    }
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(bounding));
    capabilities.set_effective(Some(working.clone()));
    capabilities.set_permitted(Some(working));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    let mut env = exec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH_ENV.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=") && e.len() > 5) {
        env.retain(|e| !e.starts_with("HOME="));
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    oci_user.set_additional_gids(Some(if user.additional_gids.is_empty() {
        vec![user.gid]
    } else {
        user.additional_gids.clone()
    }));

    let mut process = Process::default();
    process.set_terminal(Some(exec.tty));
    process.set_console_size(None);
    process.set_user(oci_user);
    process.set_args(Some(exec.args.clone()));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(if exec.cwd.is_empty() {
        "/"
    } else {
        &exec.cwd
    }));
    process.set_capabilities(Some(capabilities));
    process.set_rlimits(None);
    process.set_no_new_privileges(launch.no_new_privileges.then_some(true));
    process.set_oom_score_adj(None);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    Ok(process)
}

impl Container {
    /// Starts `exec` in this running container and returns its PID (host namespace)
    /// once it has exec'd. The caller must be single-threaded and, as the container's
    /// subreaper, reaps the process.
    ///
    /// # Errors
    /// [`CreateError`]: the user or command cannot be resolved (`Exec` carries Docker's
    /// message and the 126/127 kind), or the runtime failed (`Runtime`).
    pub fn exec(
        &self,
        state_dir: &Path,
        launch: &LaunchSpec,
        exec: &ExecSpec,
        stdio: Stdio,
    ) -> Result<u32, CreateError> {
        // The container's own view (its mounts, volumes included) when its init is
        // there to show it; the rootfs as the host sees it otherwise.
        let root = user::open_root(Path::new(&format!("/proc/{}/root", self.pid())))
            .or_else(|_| user::open_root(&launch.rootfs))
            .map_err(|source| CreateError::Rootfs {
                path: launch.rootfs.clone(),
                source,
            })?;
        let resolved = user::resolve(&root, &exec.user, &launch.process.additional_groups)?;
        drop(root);
        self.check_exec_cwd(&exec.cwd)?;
        let bundle_err = |source| CreateError::Bundle {
            path: state_dir.to_path_buf(),
            source,
        };
        let (seccomp, rlimits) = read_bundle(&state_dir.join(CONFIG_FILE)).map_err(bundle_err)?;
        let host = HostInfo::detect(false);
        let mut process = build_exec_process(
            launch,
            exec,
            &resolved,
            host.available_caps,
            seccomp.is_some(),
        )?;
        // The container's `--ulimit`s apply to its execs too.
        process.set_rlimits(rlimits);
        drop(host);
        self.mark_running()?;

        let process_file = state_dir.join(format!("exec-{}.json", exec.exec_id));
        let body = serde_json::to_vec(&process).map_err(|e| bundle_err(e.into()))?;
        std::fs::write(&process_file, body).map_err(bundle_err)?;
        let builder = ContainerBuilder::new(self.id().to_string(), SyscallType::default())
            .with_executor(CommandExecutor::with_seccomp(seccomp))
            .with_root_path(self.runtime_root())
            .map_err(|e| CreateError::Runtime(error_chain(&e)))?;
        let result = with_stdio(builder, stdio)
            .as_tenant()
            .with_process(Some(&process_file))
            .with_detach(true)
            .build();
        let _ = std::fs::remove_file(&process_file);
        match result {
            Ok(pid) => Ok(pid.as_raw() as u32),
            Err(e) => Err(crate::container::classify(&error_chain(&e))),
        }
    }

    /// An exec's working directory must exist, as runc requires (Docker creates only the
    /// container's own). Checked here because libcontainer's tenant fails the `chdir`
    /// with an error that names neither the path nor the reason. Resolved through the
    /// init's `/proc/PID/root`, so volumes mounted in the container count.
    fn check_exec_cwd(&self, cwd: &str) -> Result<(), CreateError> {
        if cwd.is_empty() || cwd == "/" {
            return Ok(());
        }
        let Ok(root) = user::open_root(Path::new(&format!("/proc/{}/root", self.pid()))) else {
            // The init is gone: libcontainer reports that better.
            return Ok(());
        };
        match user::dir_in_root(&root, cwd) {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = e.to_string();
                let reason = reason.split(" (os error").next().unwrap_or(&reason);
                Err(CreateError::Exec {
                    kind: LaunchErrorKind::CommandNotExecutable,
                    message: format!(
                        "chdir to cwd ({cwd:?}) set in config.json failed: {}",
                        reason.to_lowercase()
                    ),
                })
            }
        }
    }

    /// The tenant builder joins only a container whose recorded status is running;
    /// the shim starts the init without libcontainer's start, which would record it.
    fn mark_running(&self) -> Result<(), CreateError> {
        use libcontainer::container::ContainerStatus;
        let mut state =
            libcontainer::container::Container::load(self.runtime_root().join(self.id()))
                .map_err(|e| CreateError::Runtime(error_chain(&e)))?;
        if state.status() == ContainerStatus::Created {
            state
                .set_status(ContainerStatus::Running)
                .save()
                .map_err(|e| CreateError::Runtime(error_chain(&e)))?;
        }
        Ok(())
    }
}

/// The container's seccomp profile (`None`: unconfined/privileged) and rlimits, from
/// its bundle.
type BundleRules = (Option<LinuxSeccomp>, Option<Vec<PosixRlimit>>);

fn read_bundle(config: &Path) -> std::io::Result<BundleRules> {
    let spec = Spec::load(config).map_err(std::io::Error::other)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let rlimits = spec.process().as_ref().and_then(|p| p.rlimits().clone());
    Ok((seccomp, rlimits))
}

/// Stdio for a detached exec: /dev/null everywhere, as Docker gives it.
///
/// # Errors
/// /dev/null cannot be opened.
pub fn null_stdio() -> std::io::Result<Stdio> {
    let open = || -> std::io::Result<OwnedFd> {
        Ok(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into())
    };
    Ok(Stdio::Pipes {
        stdin: Some(open()?),
        stdout: open()?,
        stderr: open()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> ResolvedUser {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![0, 10],
            home: "/root".into(),
        }
    }

    #[test]
    fn exec_gets_the_containers_capabilities_and_sys_admin_only_until_execve() {
        let launch = LaunchSpec::default();
        let exec = ExecSpec {
            args: vec!["sh".into()],
            env: vec!["A=1".into()],
            ..ExecSpec::default()
        };
        let p = build_exec_process(&launch, &exec, &user(), CapSet::ALL_KNOWN, true).unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        let bounding = caps.bounding().as_ref().unwrap();
        assert_eq!(bounding.len(), caps::DOCKER_DEFAULT.len());
        assert!(!bounding.contains(&Capability::SysAdmin));
        assert!(
            caps.effective()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );
        let env = p.env().as_ref().unwrap();
        assert!(env.contains(&"A=1".to_string()));
        assert!(env.contains(&"HOME=/root".to_string()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(p.cwd(), Path::new("/"));
        // No seccomp to load: no extra capability.
        let p = build_exec_process(&launch, &exec, &user(), CapSet::ALL_KNOWN, false).unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        assert!(
            !caps
                .effective()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );
    }

    #[test]
    fn privileged_exec_gets_every_capability() {
        let exec = ExecSpec {
            args: vec!["sh".into()],
            privileged: true,
            tty: true,
            ..ExecSpec::default()
        };
        let p = build_exec_process(
            &LaunchSpec::default(),
            &exec,
            &user(),
            CapSet::ALL_KNOWN,
            false,
        )
        .unwrap();
        let bounding = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert!(bounding.contains(&Capability::SysAdmin));
        assert_eq!(p.terminal(), Some(true));
    }

    #[test]
    fn exec_without_a_command_is_refused() {
        let r = build_exec_process(
            &LaunchSpec::default(),
            &ExecSpec::default(),
            &user(),
            CapSet::ALL_KNOWN,
            false,
        );
        assert!(matches!(r, Err(SpecError::NoCommand)));
    }
}
