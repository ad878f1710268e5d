//! Container networking for berth: what Docker's `bridge` driver does, built from the
//! kernel's own pieces.
//!
//! - [`ipam`]: IPv4 subnets ([`Subnet`]), picking a free private subnet like Docker,
//!   and handing out addresses ([`Ipam`]); plain data, persisted by the daemon.
//! - [`link`]: the bridge device, a network namespace per container bound to a file
//!   (so it outlives the daemon and can be handed to the runtime by path), and the
//!   veth pair whose inner end becomes the container's `eth0`.
//! - [`netlink`]: the few rtnetlink requests a container's interface needs, sent from
//!   the daemon (into the container's namespace from a thread that joins it).
//! - [`nft`]: the NAT rules (masquerade, DNAT of published ports) in an nftables table
//!   of berth's own, always written whole from the daemon's state in one transaction.
//! - [`ports`]: Docker's `PortBindings` turned into concrete mappings.
//! - [`dns`]: the embedded DNS server at 127.0.0.11 inside containers on user-defined
//!   networks.
//! - [`proxy`]: the userland proxy that serves published ports on the host's loopback
//!   addresses, where DNAT cannot help (the kernel drops packets from 127.0.0.0/8 that
//!   leave the host's loopback).
//!
//! Design choices. A container's links, addresses and routes are configured through
//! netlink from the daemon (a small client of our own: no process per start, no async
//! netlink stack); the bridge, once per daemon run, with iproute2's `ip -batch`; rules
//! with `nft -f`, atomic per batch and on every host. Messages and commands are built by
//! pure functions that the unit tests check without root. The firewall table is
//! regenerated whole on every change (`table; delete table; table {…}` in one `nft`
//! transaction), so a crash between two changes can never leave duplicate or stale
//! rules: the next write repairs it. Other tables (a real Docker's, the host's) are never touched.
#![warn(missing_docs)]

pub mod dns;
pub mod ipam;
pub mod ipam6;
pub mod link;
pub mod netlink;
pub mod nft;
pub mod ports;
pub mod proxy;

pub use ipam::{Ipam, IpamError, Subnet};
pub use link::{LinkError, VethConfig};
pub use ports::{PortMapping, Protocol};
