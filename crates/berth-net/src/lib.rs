//! Container networking for berth: what Docker's `bridge` driver does, built from the
//! kernel's own pieces.
//!
//! - [`ipam`]: IPv4 subnets ([`Subnet`]), picking a free private subnet like Docker,
//!   and handing out addresses ([`Ipam`]); plain data, persisted by the daemon.
//! - [`link`]: the bridge device, a network namespace per container bound to a file
//!   (so it outlives the daemon and can be handed to the runtime by path), and the
//!   veth pair whose inner end becomes the container's `eth0`.
//! - [`nft`]: the NAT rules (masquerade, DNAT of published ports) in an nftables table
//!   of berth's own, always written whole from the daemon's state in one transaction.
//! - [`ports`]: Docker's `PortBindings` turned into concrete mappings.
//! - [`dns`]: the embedded DNS server at 127.0.0.11 inside containers on user-defined
//!   networks.
//! - [`proxy`]: the userland proxy that serves published ports on the host's loopback
//!   addresses, where DNAT cannot help (the kernel drops packets from 127.0.0.0/8 that
//!   leave the host's loopback).
//!
//! Design choices. Links and addresses are configured with iproute2's `ip` (batched)
//! and rules with `nft -f`: both are atomic per batch, already on every host, and keep
//! this crate free of a netlink dependency; the commands are built by pure functions
//! that the unit tests check without root. The firewall table is regenerated whole on
//! every change (`table; delete table; table {…}` in one `nft` transaction), so a crash
//! between two changes can never leave duplicate or stale rules: the next write repairs
//! it. Other tables (a real Docker's, the host's) are never touched.
#![warn(missing_docs)]

pub mod dns;
pub mod ipam;
pub mod link;
pub mod nft;
pub mod ports;
pub mod proxy;

pub use ipam::{Ipam, IpamError, Subnet};
pub use link::{LinkError, VethConfig};
pub use ports::{PortMapping, Protocol};
