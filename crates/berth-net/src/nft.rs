//! berth's nftables table: masquerade for the networks' subnets and DNAT for published
//! ports.
//!
//! The table is written whole by [`apply`] from a [`Ruleset`] in one transaction
//! (`add table; delete table; table {…}`), which also works when the table is absent,
//! so the kernel's state always equals the daemon's and a crash leaves nothing to
//! deduplicate. Only this table is ever touched.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::ipam::Subnet;
use crate::ipam6::Subnet6;
use crate::link::{LinkError, run};
use crate::ports::{PortMapping, Protocol};

/// A network behind a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    /// The bridge device.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Subnet,
    /// `--internal`: no masquerade to the outside.
    pub internal: bool,
    /// Its IPv6 subnet, on an IPv6 network.
    pub subnet6: Option<Subnet6>,
}

/// Everything the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The networks.
    pub bridges: Vec<BridgeRules>,
    /// Published ports and the container address each leads to.
    pub published: Vec<(PortMapping, Ipv4Addr)>,
}

/// The `nft -f` script that replaces table `ip <table>` with `rules`.
pub fn script(table: &str, rules: &Ruleset) -> String {
    let mut s = format!("add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n");
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump publish\n  }\n");
    // Loopback destinations go to the userland proxy: packets from 127.0.0.0/8 would be
    // dropped as martians once DNAT sends them out of the host's loopback.
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    ip daddr != 127.0.0.0/8 fib daddr type local jump publish\n  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for b in rules.bridges.iter().filter(|b| !b.internal) {
        let _ = writeln!(
            s,
            "    ip saddr {} oifname != \"{}\" masquerade",
            b.subnet, b.bridge
        );
    }
    s.push_str("  }\n  chain publish {\n");
    for (m, target) in &rules.published {
        if m.proto == Protocol::Sctp && m.host_port == 0 {
            continue;
        }
        let daddr = if m.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", m.host_ip)
        };
        // Traffic from the containers' own bridges is left to the proxy (hairpin),
        // as Docker does with its userland proxy on.
        let from_bridges: Vec<String> = rules
            .bridges
            .iter()
            .map(|b| format!("\"{}\"", b.bridge))
            .collect();
        let iif = if from_bridges.is_empty() {
            String::new()
        } else {
            format!("iifname != {{ {} }} ", from_bridges.join(", "))
        };
        let _ = writeln!(
            s,
            "    {iif}{daddr}{proto} dport {hp} dnat to {target}:{cp}",
            proto = m.proto,
            hp = m.host_port,
            cp = m.container_port
        );
    }
    s.push_str("  }\n");
    // Isolation as Docker's: no traffic between two networks, none in or out of an
    // internal one; within one bridge everything flows.
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for b in &rules.bridges {
        if b.internal {
            let _ = writeln!(s, "    iifname \"{0}\" oifname != \"{0}\" drop", b.bridge);
            let _ = writeln!(s, "    oifname \"{0}\" iifname != \"{0}\" drop", b.bridge);
        }
        let others: Vec<String> = rules
            .bridges
            .iter()
            .filter(|o| o.bridge != b.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    iifname \"{}\" oifname {{ {} }} drop",
                b.bridge,
                others.join(", ")
            );
        }
    }
    s.push_str("  }\n}\n");
    s.push_str(&script6(table, rules));
    s
}

/// The IPv6 half of [`script`]: table `ip6 <table>` with masquerade and the same
/// isolation for the networks that have an IPv6 subnet, as Docker does with
/// ip6tables. Always replaced (created and deleted first) so that it disappears with
/// the last IPv6 network; published ports stay IPv4 only.
fn script6(table: &str, rules: &Ruleset) -> String {
    let mut s = format!("add table ip6 {table}\ndelete table ip6 {table}\n");
    let v6: Vec<&BridgeRules> = rules
        .bridges
        .iter()
        .filter(|b| b.subnet6.is_some())
        .collect();
    if v6.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip6 {table} {{");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for b in v6.iter().filter(|b| !b.internal) {
        if let Some(subnet) = b.subnet6 {
            let _ = writeln!(
                s,
                "    ip6 saddr {subnet} oifname != \"{}\" masquerade",
                b.bridge
            );
        }
    }
    s.push_str(
        "  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
    );
    for b in &v6 {
        if b.internal {
            let _ = writeln!(s, "    iifname \"{0}\" oifname != \"{0}\" drop", b.bridge);
            let _ = writeln!(s, "    oifname \"{0}\" iifname != \"{0}\" drop", b.bridge);
        }
        let others: Vec<String> = v6
            .iter()
            .filter(|o| o.bridge != b.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "    iifname \"{}\" oifname {{ {} }} drop",
                b.bridge,
                others.join(", ")
            );
        }
    }
    s.push_str("  }\n}\n");
    s
}

/// Replaces berth's table with `rules`.
///
/// # Errors
/// `nft` fails (the kernel keeps the previous table: the transaction is atomic).
pub fn apply(table: &str, rules: &Ruleset) -> Result<(), LinkError> {
    run("nft", &["-f", "-"], Some(&script(table, rules)))
}

/// Deletes berth's table, if present.
///
/// # Errors
/// `nft` fails.
pub fn delete(table: &str) -> Result<(), LinkError> {
    run(
        "nft",
        &["-f", "-"],
        Some(&format!(
            "add table ip {table}\ndelete table ip {table}\nadd table ip6 {table}\ndelete table ip6 {table}\n"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replaces_table_and_dnats_published_ports() {
        let rules = Ruleset {
            bridges: vec![BridgeRules {
                bridge: "berth0".into(),
                subnet: "172.17.0.0/16".parse().unwrap(),
                internal: false,
                subnet6: None,
            }],
            published: vec![(
                PortMapping {
                    proto: Protocol::Tcp,
                    container_port: 80,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 18080,
                },
                Ipv4Addr::new(172, 17, 0, 2),
            )],
        };
        let s = script("berth", &rules);
        assert!(s.starts_with("add table ip berth\ndelete table ip berth\ntable ip berth {\n"));
        assert!(s.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade\n"));
        assert!(s.contains("iifname != { \"berth0\" } tcp dport 18080 dnat to 172.17.0.2:80\n"));
        assert!(s.contains("ip daddr != 127.0.0.0/8 fib daddr type local jump publish"));
        assert!(!s.contains(" drop"), "one bridge, nothing to isolate");
    }

    #[test]
    fn networks_are_isolated_from_each_other() {
        let b = |n: &str, net: &str| BridgeRules {
            bridge: n.into(),
            subnet: net.parse().unwrap(),
            internal: false,
            subnet6: None,
        };
        let rules = Ruleset {
            bridges: vec![b("b1", "10.1.0.0/24"), b("b2", "10.2.0.0/24")],
            published: vec![],
        };
        let s = script("t", &rules);
        assert!(s.contains("iifname \"b1\" oifname { \"b2\" } drop"));
        assert!(s.contains("iifname \"b2\" oifname { \"b1\" } drop"));
    }

    #[test]
    fn internal_network_gets_no_masquerade_and_host_ip_is_matched() {
        let rules = Ruleset {
            bridges: vec![BridgeRules {
                bridge: "b1".into(),
                subnet: "10.1.0.0/24".parse().unwrap(),
                internal: true,
                subnet6: None,
            }],
            published: vec![(
                PortMapping {
                    proto: Protocol::Udp,
                    container_port: 53,
                    host_ip: Ipv4Addr::new(192, 0, 2, 2),
                    host_port: 5353,
                },
                Ipv4Addr::new(10, 1, 0, 2),
            )],
        };
        let s = script("t", &rules);
        assert!(!s.contains("masquerade"));
        assert!(s.contains("iifname \"b1\" oifname != \"b1\" drop"));
        assert!(s.contains("ip daddr 192.0.2.2 udp dport 5353 dnat to 10.1.0.2:53"));
    }

    #[test]
    fn ipv6_networks_get_an_ip6_table_that_goes_with_the_last_of_them() {
        let b = |n: &str, net: &str, v6: Option<&str>| BridgeRules {
            bridge: n.into(),
            subnet: net.parse().unwrap(),
            internal: false,
            subnet6: v6.map(|s| s.parse().unwrap()),
        };
        let rules = Ruleset {
            bridges: vec![
                b("b1", "10.1.0.0/24", Some("fd00:1::/64")),
                b("b2", "10.2.0.0/24", Some("fd00:2::/64")),
                b("b3", "10.3.0.0/24", None),
            ],
            published: vec![],
        };
        let s = script("t", &rules);
        assert!(s.contains("add table ip6 t\ndelete table ip6 t\ntable ip6 t {\n"));
        assert!(s.contains("ip6 saddr fd00:1::/64 oifname != \"b1\" masquerade\n"));
        assert!(s.contains("iifname \"b1\" oifname { \"b2\" } drop"));
        let none = script(
            "t",
            &Ruleset {
                bridges: vec![b("b3", "10.3.0.0/24", None)],
                published: vec![],
            },
        );
        assert!(
            none.ends_with("add table ip6 t\ndelete table ip6 t\n"),
            "{none}"
        );
    }
}
