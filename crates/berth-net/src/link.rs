//! The bridge, per-container network namespaces and veth pairs.
//!
//! A container's network namespace is created by a short-lived std thread that
//! unshares `CLONE_NEWNET` (a per-thread attribute, so the rest of the daemon is
//! untouched) and bind-mounts its `/proc/thread-self/ns/net` onto a file. The file
//! keeps the namespace alive without any process in it: the daemon configures it
//! before the container starts, the runtime joins it by path, and it survives a daemon
//! restart. Unmounting the file (and the last process leaving) destroys the namespace
//! and with it the veth pair.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ipam::Subnet;

/// Errors of configuring links and namespaces.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A command could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A command failed.
    #[error("{command} failed: {stderr}")]
    Command {
        /// The command line (with the batch, if any).
        command: String,
        /// What it said.
        stderr: String,
    },
    /// The namespace file could not be made or bound.
    #[error("cannot create network namespace at {path}")]
    Netns {
        /// The bind-mount target.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `program args` with `stdin` piped in; fails with its stderr when it fails.
///
/// # Errors
/// `Spawn`, `Command`.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), LinkError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LinkError::Spawn {
        program: program.to_string(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A failed write shows up as the command's own failure below.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| LinkError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut command = format!("{program} {}", args.join(" "));
    if let Some(input) = stdin {
        command.push_str(&format!(" <<< {:?}", input.trim()));
    }
    Err(LinkError::Command {
        command,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Whether a link of that name exists in the daemon's namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The `ip -batch` lines that create (if absent) and configure a bridge.
pub fn bridge_batch(name: &str, gateway: Ipv4Addr, subnet: Subnet, exists: bool) -> String {
    let mut b = String::new();
    if !exists {
        b.push_str(&format!("link add name {name} type bridge\n"));
    }
    b.push_str(&format!(
        "addr replace {gateway}/{} dev {name}\nlink set {name} up\n",
        subnet.prefix()
    ));
    b
}

/// Creates the bridge if needed, gives it the gateway address, brings it up and turns
/// on IPv4 forwarding (needed for NAT; Docker does the same).
///
/// # Errors
/// The `ip` batch fails.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, subnet: Subnet) -> Result<(), LinkError> {
    run(
        "ip",
        &["-batch", "-"],
        Some(&bridge_batch(name, gateway, subnet, link_exists(name))),
    )?;
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() != "1")
        && let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
    {
        tracing::warn!(error = %e, "cannot enable IPv4 forwarding; containers may not reach outside");
    }
    Ok(())
}

/// Deletes a link, if present.
///
/// # Errors
/// `ip link del` fails for a link that exists.
pub fn delete_link(name: &str) -> Result<(), LinkError> {
    if !link_exists(name) {
        return Ok(());
    }
    run("ip", &["link", "del", name], None)
}

/// Creates a network namespace bound to `path` (its parent directory must exist).
///
/// # Errors
/// `Netns`.
pub fn create_netns(path: &Path) -> Result<(), LinkError> {
    let err = |source| LinkError::Netns {
        path: path.to_path_buf(),
        source,
    };
    std::fs::File::create(path).map_err(err)?;
    let target = path.to_path_buf();
    let joined = std::thread::spawn(move || -> std::io::Result<()> {
        #[allow(unsafe_code)]
        // SAFETY: only NEWNET is unshared, and only on this thread, which exists for
        // this purpose and ends right after; no fd table is unshared.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?;
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")));
    if let Err(e) = joined {
        let _ = std::fs::remove_file(path);
        return Err(err(e));
    }
    Ok(())
}

/// Unbinds and removes a namespace file made by [`create_netns`]; absent is fine.
///
/// # Errors
/// `Netns` when it stays mounted.
pub fn delete_netns(path: &Path) -> Result<(), LinkError> {
    if !path.exists() {
        return Ok(());
    }
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => {
            return Err(LinkError::Netns {
                path: path.to_path_buf(),
                source: e.into(),
            });
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// One container's interface on a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethConfig {
    /// The host end (on the bridge).
    pub host_name: String,
    /// The container's namespace file.
    pub netns: PathBuf,
    /// The name inside (`eth0`, `eth1`, …).
    pub inner_name: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// The subnet (for the prefix length).
    pub subnet: Subnet,
    /// The default route, unless another interface has it (`None`).
    pub gateway: Option<Ipv4Addr>,
    /// `02:42:…`.
    pub mac: String,
    /// The bridge the host end joins.
    pub bridge: String,
}

/// The host end's name for a container's `n`th interface: `vb` and hex from the ID,
/// within the kernel's 15 bytes.
pub fn host_veth_name(container_id: &str, n: usize) -> String {
    let id: String = container_id.chars().take(10).collect();
    if n == 0 {
        format!("vb{id}")
    } else {
        // The `n` (not a hex digit) keeps these apart from every first interface's name.
        format!("vb{}n{n:x}", &id[..id.len().min(8)])
    }
}

/// `ip -batch` lines run in the daemon's namespace.
pub fn veth_host_batch(c: &VethConfig) -> String {
    format!(
        "link add {h} type veth peer name {i} address {mac} netns {ns}\nlink set {h} master {br} up\n",
        h = c.host_name,
        i = c.inner_name,
        mac = c.mac,
        ns = c.netns.display(),
        br = c.bridge,
    )
}

/// `ip -batch` lines run inside the container's namespace.
pub fn veth_inner_batch(c: &VethConfig) -> String {
    let mut b = format!(
        "link set lo up\naddr add {a}/{p} dev {i}\nlink set {i} up\n",
        a = c.address,
        p = c.subnet.prefix(),
        i = c.inner_name,
    );
    if let Some(gw) = c.gateway {
        b.push_str(&format!(
            "route add default via {gw} dev {}\n",
            c.inner_name
        ));
    }
    b
}

/// Creates the veth pair, moves its inner end into the namespace and configures both.
/// A leftover host end of the same name (a crash) is replaced.
///
/// # Errors
/// An `ip` batch fails; the half-made pair is removed.
pub fn setup_veth(c: &VethConfig) -> Result<(), LinkError> {
    let _ = delete_link(&c.host_name);
    run("ip", &["-batch", "-"], Some(&veth_host_batch(c)))?;
    let ns = format!("--net={}", c.netns.display());
    if let Err(e) = run(
        "nsenter",
        &[&ns, "ip", "-batch", "-"],
        Some(&veth_inner_batch(c)),
    ) {
        let _ = delete_link(&c.host_name);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VethConfig {
        VethConfig {
            host_name: host_veth_name("0123456789abcdef", 0),
            netns: "/run/berth/netns/0123".into(),
            inner_name: "eth0".into(),
            address: Ipv4Addr::new(172, 17, 0, 2),
            subnet: "172.17.0.0/16".parse().unwrap(),
            gateway: Some(Ipv4Addr::new(172, 17, 0, 1)),
            mac: "02:42:ac:11:00:02".into(),
            bridge: "berth0".into(),
        }
    }

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        assert_eq!(host_veth_name("0123456789abcdef", 0), "vb0123456789");
        assert_eq!(host_veth_name("0123456789abcdef", 3), "vb01234567n3");
        assert_ne!(
            host_veth_name("0123456719", 0),
            host_veth_name("0123456719", 1)
        );
        assert!(host_veth_name("0123456789abcdef", 255).len() <= 15);
    }

    #[test]
    fn veth_batches_create_pair_in_namespace_and_route_via_gateway() {
        let c = cfg();
        assert_eq!(
            veth_host_batch(&c),
            "link add vb0123456789 type veth peer name eth0 address 02:42:ac:11:00:02 netns /run/berth/netns/0123\nlink set vb0123456789 master berth0 up\n"
        );
        assert_eq!(
            veth_inner_batch(&c),
            "link set lo up\naddr add 172.17.0.2/16 dev eth0\nlink set eth0 up\nroute add default via 172.17.0.1 dev eth0\n"
        );
    }

    #[test]
    fn bridge_batch_creates_only_when_absent() {
        let s: Subnet = "10.1.0.0/24".parse().unwrap();
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert!(bridge_batch("b", gw, s, false).starts_with("link add name b type bridge\n"));
        assert_eq!(
            bridge_batch("b", gw, s, true),
            "addr replace 10.1.0.1/24 dev b\nlink set b up\n"
        );
    }
}
