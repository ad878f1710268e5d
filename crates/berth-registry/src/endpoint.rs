//! Where a repository lives and how to reach it.
//!
//! Docker Hub images are named `docker.io/...` but served by `registry-1.docker.io`;
//! every other domain is its own host. Plain HTTP is used only where Docker allows it
//! by default (loopback names and addresses) or where the daemon config lists the
//! registry as insecure; everything else is HTTPS.

use std::net::IpAddr;

use berth_oci::reference::{DEFAULT_DOMAIN, Reference};

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// How to speak to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (loopback and insecure registries only).
    Http,
    /// HTTPS.
    Https,
}

/// A registry host and the scheme to reach it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`, as it goes into the URL and the `Host` header.
    pub authority: String,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
}

impl Endpoint {
    /// The endpoint for a reference's domain. `insecure` lists registries (`host[:port]`
    /// or CIDRs such as `10.0.0.0/8`) that may be spoken to over plain HTTP.
    pub fn for_domain(domain: &str, insecure: &[String]) -> Endpoint {
        let authority = if domain == DEFAULT_DOMAIN || domain == "index.docker.io" {
            DOCKER_HUB_HOST.to_string()
        } else {
            domain.to_string()
        };
        let scheme = if allows_plain_http(&authority, insecure) {
            Scheme::Http
        } else {
            Scheme::Https
        };
        Endpoint { authority, scheme }
    }

    /// The endpoint for a reference.
    pub fn for_reference(reference: &Reference, insecure: &[String]) -> Endpoint {
        Self::for_domain(reference.domain(), insecure)
    }

    /// `http://host:port` or `https://host`.
    pub fn base_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority)
    }

    /// The host and port to connect to (the scheme's default port when none is given).
    pub fn host_port(&self) -> (String, u16) {
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        split_host_port(&self.authority, default)
    }
}

/// Splits `host[:port]`, with `[v6]:port` brackets removed.
pub(crate) fn split_host_port(authority: &str, default: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (host.to_string(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_string(), p),
            Err(_) => (authority.to_string(), default),
        },
        _ => (authority.to_string(), default),
    }
}

/// Docker's rule: loopback is always insecure-allowed; so is anything listed, by
/// exact `host[:port]` or by a CIDR containing the host's address.
fn allows_plain_http(authority: &str, insecure: &[String]) -> bool {
    let (host, _) = split_host_port(authority, 0);
    if host == "localhost" {
        return true;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure.iter().any(|entry| {
        if entry == authority || entry == &host {
            return true;
        }
        match (ip, entry.split_once('/')) {
            (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
            _ => false,
        }
    })
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_is_served_by_registry_1_over_https() {
        let r = Reference::parse_normalized("busybox").unwrap();
        let e = Endpoint::for_reference(&r, &[]);
        assert_eq!(e.authority, "registry-1.docker.io");
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(e.host_port(), ("registry-1.docker.io".to_string(), 443));
    }

    #[test]
    fn loopback_registries_use_plain_http() {
        for d in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert_eq!(Endpoint::for_domain(d, &[]).scheme, Scheme::Http, "{d}");
        }
        assert_eq!(
            Endpoint::for_domain("127.0.0.1:5000", &[]).host_port(),
            ("127.0.0.1".to_string(), 5000)
        );
    }

    #[test]
    fn other_registries_need_https_unless_listed_insecure() {
        assert_eq!(
            Endpoint::for_domain("registry.example:5000", &[]).scheme,
            Scheme::Https
        );
        let insecure = vec![
            "registry.example:5000".to_string(),
            "10.0.0.0/8".to_string(),
        ];
        assert_eq!(
            Endpoint::for_domain("registry.example:5000", &insecure).scheme,
            Scheme::Http
        );
        assert_eq!(
            Endpoint::for_domain("10.1.2.3:5000", &insecure).scheme,
            Scheme::Http
        );
        assert_eq!(
            Endpoint::for_domain("11.1.2.3:5000", &insecure).scheme,
            Scheme::Https
        );
    }
}
