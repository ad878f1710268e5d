//! IPv6 subnets and address allocation for networks created with `--ipv6`.
//!
//! Kept apart from the IPv4 allocator ([`crate::ipam`]) because the arithmetic is on
//! 128-bit numbers and a subnet is far too large to scan: allocation walks up from the
//! start of the pool (or `--ip-range`) past what is taken, which with sequential
//! allocation and releases is a short walk.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv6 network: base address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet6 {
    base: Ipv6Addr,
    prefix: u8,
}

/// Errors of parsing IPv6 subnets and allocating addresses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ipam6Error {
    /// Not `addr/n`.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// No free address is left in the pool.
    #[error("no available IPv6 addresses on this network's address pools: {subnet}")]
    Exhausted {
        /// The full subnet.
        subnet: Subnet6,
    },
    /// A requested address is outside the subnet.
    #[error("no configured subnet contains IP address {ip}")]
    OutOfRange {
        /// The requested address.
        ip: Ipv6Addr,
    },
    /// A requested address is taken.
    #[error("Address already in use")]
    InUse {
        /// The requested address.
        ip: Ipv6Addr,
    },
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl Subnet6 {
    /// The network containing `addr` with `prefix` bits.
    ///
    /// # Errors
    /// `InvalidCidr` when `prefix > 128`.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Self, Ipam6Error> {
        if prefix > 128 {
            return Err(Ipam6Error::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Subnet6 {
            base: Ipv6Addr::from(u128::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The network's first address.
    pub fn base(&self) -> Ipv6Addr {
        self.base
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.base)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// The network's last address.
    fn last(&self) -> u128 {
        u128::from(self.base) | !mask(self.prefix)
    }

    /// The first address after the base: Docker's default gateway.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.base) + 1)
    }

    /// A unique local /64 (`fdXX:XXXX:XXXX:YYYY::/64`, RFC 4193) from `random`, for a
    /// network created with `--ipv6` and no IPv6 subnet, as Docker allocates one.
    pub fn random_ula(random: u128) -> Subnet6 {
        let global_and_subnet = (random & ((1u128 << 56) - 1)) << 64;
        Subnet6 {
            base: Ipv6Addr::from((0xfdu128 << 120) | global_and_subnet),
            prefix: 64,
        }
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = Ipam6Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Ipam6Error::InvalidCidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Subnet6::new(addr, prefix).map_err(|_| bad())
    }
}

impl Serialize for Subnet6 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet6 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The IPv6 addresses handed out on one network. The gateway is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam6 {
    /// The subnet addresses come from.
    pub subnet: Subnet6,
    /// The gateway (the bridge's own IPv6 address).
    pub gateway: Ipv6Addr,
    /// Restricts dynamic allocation (`--ip-range`); the whole subnet when absent.
    #[serde(default)]
    pub range: Option<Subnet6>,
    /// Address → owner (a container ID).
    #[serde(default)]
    pub allocated: BTreeMap<Ipv6Addr, String>,
}

impl Ipam6 {
    /// An empty allocator.
    pub fn new(subnet: Subnet6, gateway: Ipv6Addr) -> Self {
        Ipam6 {
            subnet,
            gateway,
            range: None,
            allocated: BTreeMap::new(),
        }
    }

    /// Allocates `requested`, or else the lowest free address of the pool, for
    /// `owner`. An owner that already holds an address gets it again.
    ///
    /// # Errors
    /// `OutOfRange`, `InUse` for a requested address; `Exhausted`.
    pub fn allocate(
        &mut self,
        owner: &str,
        requested: Option<Ipv6Addr>,
    ) -> Result<Ipv6Addr, Ipam6Error> {
        if let Some(ip) = requested {
            if !self.subnet.contains(ip) || ip == self.subnet.base {
                return Err(Ipam6Error::OutOfRange { ip });
            }
            match self.allocated.get(&ip) {
                Some(o) if o == owner => return Ok(ip),
                Some(_) => return Err(Ipam6Error::InUse { ip }),
                None if ip == self.gateway => return Err(Ipam6Error::InUse { ip }),
                None => {}
            }
            self.allocated.insert(ip, owner.to_string());
            return Ok(ip);
        }
        if let Some((ip, _)) = self.allocated.iter().find(|(_, o)| *o == owner) {
            return Ok(*ip);
        }
        let pool = self.range.unwrap_or(self.subnet);
        let first = u128::from(pool.base).max(u128::from(self.subnet.base) + 1);
        let last = pool.last().min(self.subnet.last());
        let mut candidate = first;
        // Taken addresses are few next to a /64: step over them in order.
        while candidate <= last {
            let ip = Ipv6Addr::from(candidate);
            if ip != self.gateway && !self.allocated.contains_key(&ip) {
                self.allocated.insert(ip, owner.to_string());
                return Ok(ip);
            }
            candidate += 1;
        }
        Err(Ipam6Error::Exhausted {
            subnet: self.subnet,
        })
    }

    /// Frees every address `owner` holds.
    pub fn release(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_mask_and_contain() {
        let s: Subnet6 = "2001:389::ffff/64".parse().unwrap();
        assert_eq!(s.to_string(), "2001:389::/64");
        assert!(s.contains("2001:389::f00d".parse().unwrap()));
        assert!(!s.contains("2001:38a::1".parse().unwrap()));
        assert_eq!(s.first_host(), "2001:389::1".parse::<Ipv6Addr>().unwrap());
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
        assert!("2001::/129".parse::<Subnet6>().is_err());
    }

    #[test]
    fn allocation_skips_the_gateway_and_taken_addresses_and_honours_requests() {
        let s: Subnet6 = "2001:389::/64".parse().unwrap();
        let mut ipam = Ipam6::new(s, s.first_host());
        assert_eq!(ipam.allocate("a", None).unwrap().to_string(), "2001:389::2");
        assert_eq!(
            ipam.allocate("b", Some("2001:389::f00d".parse().unwrap()))
                .unwrap()
                .to_string(),
            "2001:389::f00d"
        );
        assert_eq!(
            ipam.allocate("c", Some("2001:389::f00d".parse().unwrap())),
            Err(Ipam6Error::InUse {
                ip: "2001:389::f00d".parse().unwrap()
            })
        );
        assert!(matches!(
            ipam.allocate("c", Some("2001:1::1".parse().unwrap())),
            Err(Ipam6Error::OutOfRange { .. })
        ));
        assert_eq!(ipam.allocate("a", None).unwrap().to_string(), "2001:389::2");
        ipam.release("a");
        assert_eq!(ipam.allocate("d", None).unwrap().to_string(), "2001:389::2");
    }

    #[test]
    fn random_ulas_are_unique_local_64s() {
        let s = Subnet6::random_ula(0x00ab_cdef_0123_4567_89ab_cdef_0123_4567);
        assert_eq!(s.prefix(), 64);
        assert_eq!(s.base().segments()[0] >> 8, 0xfd);
        assert_eq!(s.base().segments()[4..], [0, 0, 0, 0]);
    }
}
