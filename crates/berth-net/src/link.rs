//! The bridge, per-container network namespaces and veth pairs.
//!
//! A container's network namespace is created by a short-lived std thread that
//! unshares `CLONE_NEWNET` (a per-thread attribute, so the rest of the daemon is
//! untouched) and bind-mounts its `/proc/thread-self/ns/net` onto a file. The file
//! keeps the namespace alive without any process in it: the daemon configures it
//! before the container starts, the runtime joins it by path, and it survives a daemon
//! restart. Unmounting the file (and the last process leaving) destroys the namespace
//! and with it the veth pair.
//!
//! The per-container work (veth pair, addresses, routes, links up) goes through
//! [`crate::netlink`] from the calling thread, since spawning `ip` and `nsenter` cost
//! about 45 ms of every start; the bridge, made once per daemon run, is still set up with
//! one `ip -batch`.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::os::fd::AsFd;

use crate::ipam::Subnet;
use crate::netlink::{Netlink, parse_mac};

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
    /// A netlink request was refused.
    #[error("{operation}")]
    Netlink {
        /// What was asked, with the names involved.
        operation: String,
        /// The kernel's answer.
        source: std::io::Error,
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

/// The `ip -batch` lines that create (if absent) and configure a bridge, with `mtu`
/// when the network sets one.
pub fn bridge_batch(
    name: &str,
    gateway: Ipv4Addr,
    subnet: Subnet,
    mtu: Option<u32>,
    exists: bool,
) -> String {
    let mut b = String::new();
    if !exists {
        b.push_str(&format!("link add name {name} type bridge\n"));
    }
    if let Some(mtu) = mtu {
        b.push_str(&format!("link set {name} mtu {mtu}\n"));
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
pub fn ensure_bridge(
    name: &str,
    gateway: Ipv4Addr,
    subnet: Subnet,
    mtu: Option<u32>,
) -> Result<(), LinkError> {
    run(
        "ip",
        &["-batch", "-"],
        Some(&bridge_batch(name, gateway, subnet, mtu, link_exists(name))),
    )?;
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() != "1")
        && let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
    {
        tracing::warn!(error = %e, "cannot enable IPv4 forwarding; containers may not reach outside");
    }
    Ok(())
}

/// Deletes a link of the daemon's namespace, if present.
///
/// # Errors
/// `Netlink` when the kernel refuses to delete a link that exists.
pub fn delete_link(name: &str) -> Result<(), LinkError> {
    if !link_exists(name) {
        return Ok(());
    }
    let op = || format!("cannot delete link {name}");
    match Netlink::open().and_then(|mut nl| nl.delete_link(name)) {
        Ok(()) => Ok(()),
        // Gone meanwhile (its namespace went away).
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        Err(source) => Err(LinkError::Netlink {
            operation: op(),
            source,
        }),
    }
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
    /// Both ends' MTU (`com.docker.network.driver.mtu`); `None`: the kernel's 1500.
    pub mtu: Option<u32>,
    /// On an IPv6 network: the container's IPv6 address, prefix length and, unless
    /// another interface has the default route, the gateway.
    pub ipv6: Option<VethIpv6>,
}

/// A veth's IPv6 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethIpv6 {
    /// The container's address.
    pub address: Ipv6Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default route (`None`: another interface has it).
    pub gateway: Option<Ipv6Addr>,
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

/// Creates the veth pair, moves its inner end into the namespace and configures both,
/// through netlink (no process is spawned): the host end joins the bridge and comes up;
/// inside, `lo` and the inner end come up with the address and, if given, the default
/// route. A leftover host end of the same name (a crash) is replaced.
///
/// # Errors
/// `Netlink` naming the step the kernel refused; the half-made pair is removed.
pub fn setup_veth(c: &VethConfig) -> Result<(), LinkError> {
    let _ = delete_link(&c.host_name);
    let fail = |operation: String| move |source| LinkError::Netlink { operation, source };
    let mac = parse_mac(&c.mac).ok_or_else(|| LinkError::Netlink {
        operation: format!("bad MAC address {}", c.mac),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let ns = std::fs::File::open(&c.netns).map_err(|source| LinkError::Netns {
        path: c.netns.clone(),
        source,
    })?;
    let mut host = Netlink::open().map_err(fail("cannot open a netlink socket".into()))?;
    host.add_veth(&c.host_name, &c.inner_name, mac, ns.as_fd(), c.mtu)
        .map_err(fail(format!(
            "cannot create veth pair {} / {}",
            c.host_name, c.inner_name
        )))?;
    let configured = configure_veth(&mut host, c);
    if configured.is_err() {
        let _ = host.delete_link(&c.host_name);
    }
    configured
}

/// The steps of [`setup_veth`] after the pair exists.
fn configure_veth(host: &mut Netlink, c: &VethConfig) -> Result<(), LinkError> {
    let fail = |operation: String| move |source| LinkError::Netlink { operation, source };
    let bridge = host
        .link_index(&c.bridge)
        .map_err(fail(format!("cannot find bridge {}", c.bridge)))?;
    let index = host
        .link_index(&c.host_name)
        .map_err(fail(format!("cannot find link {}", c.host_name)))?;
    host.set_up(index, Some(bridge)).map_err(fail(format!(
        "cannot add {} to bridge {} and bring it up",
        c.host_name, c.bridge
    )))?;
    let inside = format!("in namespace {}", c.netns.display());
    let mut nl = Netlink::open_in(&c.netns)
        .map_err(fail(format!("cannot open a netlink socket {inside}")))?;
    let lo = nl
        .link_index("lo")
        .map_err(fail(format!("cannot find lo {inside}")))?;
    nl.set_up(lo, None)
        .map_err(fail(format!("cannot bring lo up {inside}")))?;
    let inner = nl
        .link_index(&c.inner_name)
        .map_err(fail(format!("cannot find {} {inside}", c.inner_name)))?;
    nl.add_address(inner, c.address, c.subnet.prefix())
        .map_err(fail(format!(
            "cannot add address {}/{} to {} {inside}",
            c.address,
            c.subnet.prefix(),
            c.inner_name
        )))?;
    nl.set_up(inner, None)
        .map_err(fail(format!("cannot bring {} up {inside}", c.inner_name)))?;
    if let Some(gw) = c.gateway {
        nl.add_default_route(gw, inner).map_err(fail(format!(
            "cannot add default route via {gw} on {} {inside}",
            c.inner_name
        )))?;
    }
    if let Some(v6) = &c.ipv6 {
        nl.add_address6(inner, v6.address, v6.prefix)
            .map_err(fail(format!(
                "cannot add address {}/{} to {} {inside}",
                v6.address, v6.prefix, c.inner_name
            )))?;
        if let Some(gw) = v6.gateway {
            nl.add_default_route6(gw, inner).map_err(fail(format!(
                "cannot add default route via {gw} on {} {inside}",
                c.inner_name
            )))?;
        }
    }
    Ok(())
}

/// Gives a bridge its IPv6 gateway address (usable at once) and turns on IPv6
/// forwarding, which routing beyond the bridge needs. Docker does the same for IPv6
/// networks; note that forwarding makes the kernel stop accepting router
/// advertisements on the host's interfaces unless their `accept_ra` is 2.
///
/// # Errors
/// The `ip` command fails.
pub fn ensure_bridge_ipv6(name: &str, gateway: Ipv6Addr, prefix: u8) -> Result<(), LinkError> {
    let disable = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    if std::fs::read_to_string(&disable).is_ok_and(|v| v.trim() == "1") {
        let _ = std::fs::write(&disable, "0");
    }
    run(
        "ip",
        &[
            "-6",
            "addr",
            "replace",
            &format!("{gateway}/{prefix}"),
            "dev",
            name,
            "nodad",
        ],
        None,
    )?;
    let forwarding = "/proc/sys/net/ipv6/conf/all/forwarding";
    if std::fs::read_to_string(forwarding).is_ok_and(|v| v.trim() != "1")
        && let Err(e) = std::fs::write(forwarding, "1")
    {
        tracing::warn!(error = %e, "cannot enable IPv6 forwarding; containers may not reach outside");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn bridge_batch_creates_only_when_absent() {
        let s: Subnet = "10.1.0.0/24".parse().unwrap();
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert!(bridge_batch("b", gw, s, None, false).starts_with("link add name b type bridge\n"));
        assert_eq!(
            bridge_batch("b", gw, s, None, true),
            "addr replace 10.1.0.1/24 dev b\nlink set b up\n"
        );
    }
}
