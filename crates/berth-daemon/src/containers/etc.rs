//! The files Docker generates for each container: /etc/hostname, /etc/hosts,
//! /etc/resolv.conf, bind-mounted over the image's.

use std::net::Ipv4Addr;
use std::path::Path;

use super::model::ContainerRecord;
use crate::DaemonError;

/// What the network service tells these files.
#[derive(Debug, Default)]
pub(super) struct NetworkView {
    /// The container's address: `hosts` maps the hostname to it, as Docker's does.
    pub(super) address: Option<Ipv4Addr>,
    /// Its IPv6 address on an IPv6 network, mapped to the hostname too.
    pub(super) address6: Option<std::net::Ipv6Addr>,
    /// On a user-defined network the only nameserver is the embedded 127.0.0.11.
    pub(super) embedded_dns: bool,
    /// What `--add-host NAME:host-gateway` means: the default bridge's gateway.
    pub(super) host_gateway: Option<Ipv4Addr>,
    /// `--link` entries: address and the names it answers to.
    pub(super) links: Vec<(Ipv4Addr, String)>,
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container's directory.
///
/// # Errors
/// Writing the files.
pub(super) fn write_files(
    dir: &Path,
    record: &ContainerRecord,
    net: &NetworkView,
) -> Result<(), DaemonError> {
    let address = net.address;
    let c = &record.config;
    let host_net = record.host_config.network_mode == "host";
    let hostname = if host_net {
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        c.hostname.clone()
    };
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let fqdn = if c.domainname.is_empty() {
            String::new()
        } else {
            format!("{}.{} ", c.hostname, c.domainname)
        };
        let own = address.map_or_else(|| "127.0.1.1".to_string(), |a| a.to_string());
        let mut hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{own}\t{fqdn}{}\n",
            c.hostname
        );
        if let Some(v6) = net.address6 {
            hosts.push_str(&format!("{v6}\t{fqdn}{}\n", c.hostname));
        }
        hosts
    };
    for (ip, names) in &net.links {
        hosts.push_str(&format!("{ip}\t{names}\n"));
    }
    for extra in record.host_config.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = extra.split_once([':', '=']) {
            let ip = match (ip, net.host_gateway) {
                ("host-gateway", Some(gw)) => gw.to_string(),
                _ => ip.to_string(),
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let resolv = resolv_conf(record, net.embedded_dns);
    let w = |name: &str, data: &str| {
        std::fs::write(dir.join(name), data)
            .map_err(|e| DaemonError::internal(format!("cannot write {name}: {e}")))
    };
    w("hostname", &format!("{hostname}\n"))?;
    w("hosts", &hosts)?;
    w("resolv.conf", &resolv)
}

/// The host's resolv.conf without loopback nameservers (unreachable from a container's
/// own network namespace), or Docker's fallback servers when none remain; `--dns`,
/// `--dns-search` and `--dns-option` replace the respective lines.
fn resolv_conf(record: &ContainerRecord, embedded_dns: bool) -> String {
    let hc = &record.host_config;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if hc.network_mode == "host"
        && hc.dns.is_none()
        && hc.dns_search.is_none()
        && hc.dns_options.is_none()
    {
        return host;
    }
    let mut nameservers: Vec<String> = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver").map(|s| s.trim().to_string()))
        .filter(|ns| !ns.starts_with("127.") && ns != "::1")
        .collect();
    let mut search: Vec<String> = host
        .lines()
        .filter_map(|l| l.strip_prefix("search").map(|s| s.trim().to_string()))
        .collect();
    let mut options: Vec<String> = host
        .lines()
        .filter_map(|l| l.strip_prefix("options").map(|s| s.trim().to_string()))
        .collect();
    if let Some(dns) = hc.dns.as_ref().filter(|d| !d.is_empty()) {
        nameservers = dns.clone();
    }
    if embedded_dns {
        // The embedded server forwards to the --dns servers or the host's resolvers.
        nameservers = vec!["127.0.0.11".into()];
        options.push("ndots:0".into());
    }
    if nameservers.is_empty() {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if let Some(s) = hc.dns_search.as_ref().filter(|d| !d.is_empty()) {
        search = vec![s.join(" ")];
    }
    if let Some(o) = hc.dns_options.as_ref().filter(|d| !d.is_empty()) {
        options = vec![o.join(" ")];
    }
    let mut out = String::new();
    for s in search.iter().filter(|s| !s.is_empty()) {
        out.push_str(&format!("search {s}\n"));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    for o in options.iter().filter(|s| !s.is_empty()) {
        out.push_str(&format!("options {o}\n"));
    }
    out
}
