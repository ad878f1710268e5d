//! IPv4 subnets and address allocation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 network: its base address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    base: Ipv4Addr,
    prefix: u8,
}

/// Errors of parsing subnets and allocating addresses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    /// Not `a.b.c.d/n`.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// Every address of the subnet is taken.
    #[error("no available IPv4 addresses on this network's address pools: {subnet}")]
    Exhausted {
        /// The full subnet.
        subnet: Subnet,
    },
    /// A requested address is outside the subnet.
    #[error("no configured subnet contains IP address {ip}")]
    OutOfRange {
        /// The requested address.
        ip: Ipv4Addr,
    },
    /// A requested address is taken.
    #[error("Address already in use")]
    InUse {
        /// The requested address.
        ip: Ipv4Addr,
    },
    /// No private subnet is free on this host.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoFreePool,
}

impl Subnet {
    /// The network containing `addr` with `prefix` bits.
    ///
    /// # Errors
    /// `InvalidCidr` when `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        if prefix > 32 {
            return Err(IpamError::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Subnet {
            base: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// Parses `a.b.c.d/n` and also returns the address as written (dockerd's `--bip`
    /// names the gateway that way).
    ///
    /// # Errors
    /// `InvalidCidr`.
    pub fn parse_with_addr(s: &str) -> Result<(Self, Ipv4Addr), IpamError> {
        let bad = || IpamError::InvalidCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Ok((Subnet::new(addr, prefix).map_err(|_| bad())?, addr))
    }

    /// The network address.
    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.base) & mask(p) == u32::from(other.base) & mask(p)
    }

    /// The first host address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    fn broadcast(&self) -> u32 {
        u32::from(self.base) | !mask(self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subnet::parse_with_addr(s).map(|(n, _)| n)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's default local address pools, in its order: 172.17–31.0.0/16, then
/// 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let a = (17..=31).map(|b| Subnet {
        base: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let b = (0..16).map(|i| Subnet {
        base: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    a.chain(b)
}

/// The first default pool that overlaps none of `in_use` (the host's routes and
/// addresses), as Docker picks the default bridge's subnet.
///
/// # Errors
/// `NoFreePool`.
pub fn pick_free_pool(in_use: &[Subnet]) -> Result<Subnet, IpamError> {
    default_pools()
        .find(|p| !in_use.iter().any(|u| u.overlaps(p)))
        .ok_or(IpamError::NoFreePool)
}

/// The IPv4 subnets the host routes, from `/proc/net/route`'s text (destination and
/// mask in little-endian hex); the default route is left out.
pub fn routed_subnets(proc_net_route: &str) -> Vec<Subnet> {
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let m = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let prefix = m.count_ones() as u8;
            // The kernel prints the network-order bytes read as a native word.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            (prefix > 0)
                .then(|| Subnet::new(dest, prefix).ok())
                .flatten()
        })
        .collect()
}

/// The addresses handed out on one subnet. The gateway is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    /// The subnet addresses come from.
    pub subnet: Subnet,
    /// The gateway (the bridge's own address).
    pub gateway: Ipv4Addr,
    /// Restricts dynamic allocation (`--ip-range`); the whole subnet when absent.
    #[serde(default)]
    pub range: Option<Subnet>,
    /// Address → owner (a container ID).
    #[serde(default)]
    pub allocated: BTreeMap<Ipv4Addr, String>,
}

impl Ipam {
    /// An empty allocator.
    pub fn new(subnet: Subnet, gateway: Ipv4Addr) -> Self {
        Ipam {
            subnet,
            gateway,
            range: None,
            allocated: BTreeMap::new(),
        }
    }

    /// Allocates `requested`, or else the lowest free address, for `owner`. An owner
    /// that already holds an address gets it again.
    ///
    /// # Errors
    /// `OutOfRange`, `InUse` for a requested address; `Exhausted`.
    pub fn allocate(
        &mut self,
        owner: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some(ip) = requested {
            let s = &self.subnet;
            if !s.contains(ip) || ip == s.base || u32::from(ip) == s.broadcast() {
                return Err(IpamError::OutOfRange { ip });
            }
            match self.allocated.get(&ip) {
                Some(o) if o == owner => return Ok(ip),
                Some(_) => return Err(IpamError::InUse { ip }),
                None if ip == self.gateway => return Err(IpamError::InUse { ip }),
                None => {}
            }
            self.allocated.insert(ip, owner.to_string());
            return Ok(ip);
        }
        if let Some((ip, _)) = self.allocated.iter().find(|(_, o)| *o == owner) {
            return Ok(*ip);
        }
        let pool = self.range.unwrap_or(self.subnet);
        let first = u32::from(pool.base).max(u32::from(self.subnet.base) + 1);
        let last = pool.broadcast().min(self.subnet.broadcast() - 1);
        let ip = (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != self.gateway && !self.allocated.contains_key(ip))
            .ok_or(IpamError::Exhausted {
                subnet: self.subnet,
            })?;
        self.allocated.insert(ip, owner.to_string());
        Ok(ip)
    }

    /// Frees every address `owner` holds.
    pub fn release(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
    }
}

/// Docker's MAC address for an IPv4 address: `02:42` and the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_parses_and_masks_host_bits() {
        let (n, a) = Subnet::parse_with_addr("172.18.0.1/16").unwrap();
        assert_eq!(n.to_string(), "172.18.0.0/16");
        assert_eq!(a, Ipv4Addr::new(172, 18, 0, 1));
        assert!(n.contains(Ipv4Addr::new(172, 18, 255, 3)));
        assert!(!n.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(Subnet::from_str("10.0.0.0/33").is_err());
        assert!(Subnet::from_str("10.0.0.0").is_err());
    }

    #[test]
    fn default_pool_skips_subnets_in_use() {
        assert_eq!(pick_free_pool(&[]).unwrap(), net("172.17.0.0/16"));
        let used = [net("172.17.5.0/24"), net("172.16.0.0/12")];
        assert_eq!(pick_free_pool(&used[..1]).unwrap(), net("172.18.0.0/16"));
        assert_eq!(pick_free_pool(&used).unwrap(), net("192.168.0.0/20"));
    }

    #[test]
    fn proc_net_route_is_read_without_default_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            routed_subnets(text),
            vec![net("192.0.2.0/24"), net("172.17.0.0/16")]
        );
    }

    #[test]
    fn allocation_skips_gateway_and_reuses_owner_address() {
        let mut ipam = Ipam::new(net("10.9.0.0/29"), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(
            ipam.allocate("a", None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 2)
        );
        assert_eq!(
            ipam.allocate("b", None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 3)
        );
        assert_eq!(
            ipam.allocate("a", None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 2)
        );
        ipam.release("a");
        assert_eq!(
            ipam.allocate("c", None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 2)
        );
        for o in ["d", "e", "f"] {
            ipam.allocate(o, None).unwrap();
        }
        assert!(matches!(
            ipam.allocate("g", None),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn requested_address_must_be_free_and_inside() {
        let mut ipam = Ipam::new(net("10.9.0.0/24"), Ipv4Addr::new(10, 9, 0, 1));
        let ip = Ipv4Addr::new(10, 9, 0, 50);
        assert_eq!(ipam.allocate("a", Some(ip)).unwrap(), ip);
        assert_eq!(ipam.allocate("b", Some(ip)), Err(IpamError::InUse { ip }));
        let gw = Ipv4Addr::new(10, 9, 0, 1);
        assert_eq!(
            ipam.allocate("b", Some(gw)),
            Err(IpamError::InUse { ip: gw })
        );
        let out = Ipv4Addr::new(10, 8, 0, 5);
        assert_eq!(
            ipam.allocate("b", Some(out)),
            Err(IpamError::OutOfRange { ip: out })
        );
    }

    #[test]
    fn ip_range_limits_dynamic_allocation() {
        let mut ipam = Ipam::new(net("10.9.0.0/16"), Ipv4Addr::new(10, 9, 0, 1));
        ipam.range = Some(net("10.9.5.0/24"));
        assert_eq!(
            ipam.allocate("a", None).unwrap(),
            Ipv4Addr::new(10, 9, 5, 0)
        );
    }

    #[test]
    fn mac_follows_docker_scheme() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }

    #[test]
    fn ipam_round_trips_through_json() {
        let mut ipam = Ipam::new(net("10.9.0.0/24"), Ipv4Addr::new(10, 9, 0, 1));
        ipam.allocate("a", None).unwrap();
        let back: Ipam = serde_json::from_str(&serde_json::to_string(&ipam).unwrap()).unwrap();
        assert_eq!(back, ipam);
    }
}
