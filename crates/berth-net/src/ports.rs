//! Published ports: Docker's `HostConfig.PortBindings` (and `-P` over the image's
//! `ExposedPorts`) turned into requests, and the mappings that result.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (DNAT only; the proxy does not carry it).
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A bad port specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    /// Not `port[/proto]`.
    #[error("invalid port specification: \"{0}\"")]
    InvalidPort(String),
    /// Not an IPv4 address.
    #[error("invalid host IP address: {0}")]
    InvalidHostIp(String),
}

/// One port to publish, before a host port is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// The protocol.
    pub proto: Protocol,
    /// The container's port.
    pub container_port: u16,
    /// Where to listen (0.0.0.0: every address).
    pub host_ip: Ipv4Addr,
    /// Acceptable host ports, inclusive; `(0, 0)` for any.
    pub host_ports: (u16, u16),
}

/// A published port as it is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The protocol.
    pub proto: Protocol,
    /// The container's port.
    pub container_port: u16,
    /// The host address it listens on.
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
}

fn parse_port_proto(key: &str) -> Result<(u16, Protocol), PortError> {
    let bad = || PortError::InvalidPort(key.to_string());
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(bad()),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((port, proto))
}

fn parse_host_ports(s: &str) -> Result<(u16, u16), PortError> {
    let bad = || PortError::InvalidPort(s.to_string());
    if s.is_empty() {
        return Ok((0, 0));
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// The requests of `PortBindings` (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`)
/// plus, with `publish_all`, every exposed port without a binding on a random port.
/// IPv6 host addresses are skipped (berth's bridge is IPv4 only).
///
/// # Errors
/// A malformed key, host port or host address.
pub fn requests(
    bindings: Option<&serde_json::Value>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<PortRequest>, PortError> {
    let mut out = Vec::new();
    let mut bound = BTreeMap::new();
    if let Some(map) = bindings.and_then(|b| b.as_object()) {
        for (key, list) in map {
            let (container_port, proto) = parse_port_proto(key)?;
            bound.insert((container_port, proto), ());
            let entries = list.as_array().cloned().unwrap_or_default();
            let entries = if entries.is_empty() {
                vec![serde_json::json!({})]
            } else {
                entries
            };
            for e in entries {
                let ip = e["HostIp"].as_str().unwrap_or("");
                let host_ip = match ip {
                    "" => Ipv4Addr::UNSPECIFIED,
                    ip if ip.contains(':') => continue,
                    ip => ip
                        .parse()
                        .map_err(|_| PortError::InvalidHostIp(ip.to_string()))?,
                };
                out.push(PortRequest {
                    proto,
                    container_port,
                    host_ip,
                    host_ports: parse_host_ports(e["HostPort"].as_str().unwrap_or(""))?,
                });
            }
        }
    }
    if publish_all {
        for key in exposed {
            let (container_port, proto) = parse_port_proto(key)?;
            if bound.contains_key(&(container_port, proto)) {
                continue;
            }
            out.push(PortRequest {
                proto,
                container_port,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_ports: (0, 0),
            });
        }
    }
    out.sort_by_key(|r| (r.container_port, r.proto));
    Ok(out)
}

/// `NetworkSettings.Ports`: every exposed or published port, with its bindings (or
/// `null` when only exposed).
pub fn ports_json(exposed: &[String], mappings: &[PortMapping]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for key in exposed {
        if let Ok((port, proto)) = parse_port_proto(key) {
            map.insert(format!("{port}/{proto}"), serde_json::Value::Null);
        }
    }
    for m in mappings {
        let key = format!("{}/{}", m.container_port, m.proto);
        let entry = map
            .entry(key)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = serde_json::Value::Array(Vec::new());
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(serde_json::json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()}));
        }
    }
    serde_json::Value::Object(map)
}

/// `Ports` of `GET /containers/json`: one entry per mapping, and one per exposed port
/// that is not published.
pub fn ports_list_json(exposed: &[String], mappings: &[PortMapping]) -> serde_json::Value {
    let mut out = Vec::new();
    for m in mappings {
        out.push(serde_json::json!({
            "IP": m.host_ip.to_string(), "PrivatePort": m.container_port,
            "PublicPort": m.host_port, "Type": m.proto.to_string(),
        }));
    }
    for key in exposed {
        if let Ok((port, proto)) = parse_port_proto(key)
            && !mappings
                .iter()
                .any(|m| m.container_port == port && m.proto == proto)
        {
            out.push(serde_json::json!({"PrivatePort": port, "Type": proto.to_string()}));
        }
    }
    serde_json::Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_of_every_cli_form_become_requests() {
        let b = json!({
            "80/tcp": [{"HostIp": "", "HostPort": "8081"}, {"HostIp": "127.0.0.1", "HostPort": "8082"}],
            "53/udp": [{"HostIp": "", "HostPort": ""}],
            "90/tcp": [{"HostIp": "", "HostPort": "9000-9010"}],
            "91/tcp": [{"HostIp": "::", "HostPort": "9100"}],
        });
        let r = requests(Some(&b), &[], false).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[0],
            PortRequest {
                proto: Protocol::Udp,
                container_port: 53,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_ports: (0, 0)
            }
        );
        assert_eq!(r[1].host_ports, (8081, 8081));
        assert_eq!(r[2].host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(r[3].host_ports, (9000, 9010));
    }

    #[test]
    fn publish_all_adds_unbound_exposed_ports() {
        let b = json!({"80/tcp": [{"HostPort": "8081"}]});
        let exposed = vec!["80/tcp".to_string(), "443/tcp".to_string()];
        let r = requests(Some(&b), &exposed, true).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].container_port, r[1].host_ports), (443, (0, 0)));
        assert_eq!(requests(None, &exposed, false).unwrap(), vec![]);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(requests(Some(&json!({"x/tcp": []})), &[], false).is_err());
        assert!(requests(Some(&json!({"80/icmp": []})), &[], false).is_err());
        assert!(requests(Some(&json!({"80": [{"HostPort": "9-1"}]})), &[], false).is_err());
        assert!(requests(Some(&json!({"80": [{"HostIp": "nope"}]})), &[], false).is_err());
    }

    #[test]
    fn ports_json_has_docker_shape() {
        let m = [PortMapping {
            proto: Protocol::Tcp,
            container_port: 80,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 18080,
        }];
        let exposed = vec!["80/tcp".to_string(), "443/tcp".to_string()];
        assert_eq!(
            ports_json(&exposed, &m),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}], "443/tcp": null})
        );
        assert_eq!(
            ports_list_json(&exposed, &m),
            json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}])
        );
    }
}
