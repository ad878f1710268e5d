//! Legacy container links (`--link NAME[:ALIAS]`) on the default bridge, as Docker
//! keeps them: the link is checked at create, the linked container must run at start,
//! and the linking container gets the linked one's address in its `/etc/hosts` and
//! Docker's `ALIAS_PORT_…`/`ALIAS_ENV_…` variables in its environment. The links live
//! in `HostConfig.Links` as the client sent them; inspect shows them in Docker's
//! `/child:/parent/alias` form and `DELETE /containers/{parent}/{alias}?link=1`
//! removes one. On user-defined networks a link is only a DNS alias, which the
//! network service handles through the endpoint's `Links`.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::{ContainerRecord, ContainerService};
use crate::DaemonError;

/// `NAME[:ALIAS]` → (name, alias) without leading slashes, as Docker's `ParseLink`.
///
/// # Errors
/// `InvalidArgument` for an empty name or alias.
pub(super) fn parse_link(link: &str) -> Result<(String, String), DaemonError> {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    // A link read back from inspect names the alias as `/parent/alias`.
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if name.is_empty() || alias.is_empty() {
        return Err(DaemonError::invalid(format!("invalid link format: {link}")));
    }
    Ok((name.to_string(), alias.to_string()))
}

/// The links of a container, as its `HostConfig.Links` holds them.
pub(super) fn links_of(record: &ContainerRecord) -> Vec<String> {
    record
        .host_config
        .extra
        .get("Links")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's environment for one link: `ALIAS_PORT*` for each exposed port (TCP
/// first, then by number), `ALIAS_NAME`, and `ALIAS_ENV_*` for the linked
/// container's own variables but `HOME` and `PATH`.
pub(super) fn link_env(
    alias: &str,
    link_name: &str,
    child_ip: Ipv4Addr,
    child_env: &[String],
    exposed: &[(u16, String)],
) -> Vec<String> {
    let alias = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports = exposed.to_vec();
    ports.sort_by(|(pa, a), (pb, b)| {
        let tcp = |p: &str| p != "tcp";
        (tcp(a), a.as_str(), *pa).cmp(&(tcp(b), b.as_str(), *pb))
    });
    let mut env = Vec::new();
    let mut range_start: Option<(u16, &str)> = None;
    let mut range_end: Option<(u16, &str)> = None;
    for (i, (port, proto)) in ports.iter().enumerate() {
        if i == 0 {
            env.push(format!("{alias}_PORT={proto}://{child_ip}:{port}"));
        }
        let prefix = format!("{alias}_PORT_{port}_{}", proto.to_ascii_uppercase());
        env.push(format!("{prefix}={proto}://{child_ip}:{port}"));
        env.push(format!("{prefix}_ADDR={child_ip}"));
        env.push(format!("{prefix}_PORT={port}"));
        env.push(format!("{prefix}_PROTO={proto}"));
        // Consecutive ports of one protocol also get `_START`/`_END` variables.
        match (range_start, range_end) {
            (Some((_, sp)), Some((ep, _))) if *port == ep + 1 && sp == proto => {
                range_end = Some((*port, proto));
                if i < ports.len() - 1 {
                    continue;
                }
            }
            _ => {}
        }
        if let (Some((sp, sproto)), Some((ep, eproto))) = (range_start, range_end)
            && sp != ep
        {
            let prefix = format!("{alias}_PORT_{sp}_{}", sproto.to_ascii_uppercase());
            env.push(format!("{prefix}_START={sproto}://{child_ip}:{sp}"));
            env.push(format!("{prefix}_PORT_START={sp}"));
            env.push(format!("{prefix}_END={eproto}://{child_ip}:{ep}"));
            env.push(format!("{prefix}_PORT_END={ep}"));
        }
        range_start = Some((*port, proto));
        range_end = Some((*port, proto));
    }
    env.push(format!("{alias}_NAME={link_name}"));
    for v in child_env {
        let Some((name, value)) = v.split_once('=') else {
            continue;
        };
        if name != "HOME" && name != "PATH" {
            env.push(format!("{alias}_ENV_{name}={value}"));
        }
    }
    env
}

/// `ExposedPorts` keys (`80/tcp`) as (port, protocol).
fn exposed_ports(record: &ContainerRecord) -> Vec<(u16, String)> {
    record
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|(k, _)| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        })
        .collect()
}

impl ContainerService {
    /// At create: every linked container must exist and not use the host's network.
    /// Links on a user-defined network are endpoint aliases, checked by the network
    /// service.
    pub(super) fn check_links(&self, record: &ContainerRecord) -> Result<(), DaemonError> {
        if !is_default_bridge(record) {
            return Ok(());
        }
        for link in links_of(record) {
            let (name, _) = parse_link(&link)?;
            let child = self.get(&name).map_err(|e| {
                DaemonError::invalid(format!(
                    "could not get container for {name}: {}",
                    e.message()
                ))
            })?;
            if child.record().host_config.network_mode == "host" {
                return Err(DaemonError::invalid(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
        }
        Ok(())
    }

    /// At start: the environment the links give, checking each linked container runs.
    pub(super) fn link_env(&self, record: &ContainerRecord) -> Result<Vec<String>, DaemonError> {
        if !is_default_bridge(record) {
            return Ok(Vec::new());
        }
        let mut env = Vec::new();
        for link in links_of(record) {
            let (name, alias) = parse_link(&link)?;
            let link_name = format!("{}/{alias}", record.name);
            let child = self.get(&name).map_err(|e| {
                DaemonError::invalid(format!(
                    "could not get container for {name}: {}",
                    e.message()
                ))
            })?;
            let child = child.record();
            if !child.state.running {
                return Err(DaemonError::invalid(format!(
                    "Cannot link to a non running container: {} AS {link_name}",
                    child.name
                )));
            }
            let Some(ep) = self.networks.endpoint(&child.id) else {
                return Err(DaemonError::invalid(format!(
                    "container {} not attached to default bridge network",
                    child.id
                )));
            };
            env.extend(link_env(
                &alias,
                &link_name,
                ep.ip,
                child.config.env.as_deref().unwrap_or_default(),
                &exposed_ports(&child),
            ));
        }
        Ok(env)
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: removes the link `alias` of
    /// container `parent`.
    ///
    /// # Errors
    /// `NotFound` for an unknown parent or link.
    pub fn remove_link(&self, parent: &str, alias: &str) -> Result<(), DaemonError> {
        let entry = self.get(parent)?;
        let record = entry.record();
        let links = links_of(&record);
        let kept: Vec<String> = links
            .iter()
            .filter(|l| parse_link(l).is_ok_and(|(_, a)| a != alias))
            .cloned()
            .collect();
        if kept.len() == links.len() {
            return Err(DaemonError::not_found(format!(
                "Could not find entity for {}/{alias}",
                record.name
            )));
        }
        entry.edit(|r| {
            r.host_config
                .extra
                .insert("Links".into(), Value::from(kept.clone()));
        });
        self.persist(&entry)
    }

    /// Every link name (`/parent/alias`) by the name or ID its holder gave for the
    /// linked container; Docker lists them among that container's `Names`. Built
    /// once per listing, not once per listed container.
    pub(super) fn link_names(records: &[ContainerRecord]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in records {
            for link in links_of(r) {
                if let Ok((name, alias)) = parse_link(&link) {
                    out.push((name, format!("{}/{alias}", r.name)));
                }
            }
        }
        out
    }
}

/// Inspect's `HostConfig.Links`: `/child:/parent/alias`, as Docker shows them.
pub(super) fn links_for_inspect(record: &ContainerRecord) -> Option<Vec<String>> {
    let links = links_of(record);
    if links.is_empty() {
        return None;
    }
    Some(
        links
            .iter()
            .filter_map(|l| parse_link(l).ok())
            .map(|(name, alias)| format!("/{name}:{}/{alias}", record.name))
            .collect(),
    )
}

fn is_default_bridge(record: &ContainerRecord) -> bool {
    matches!(
        record.host_config.network_mode.as_str(),
        "bridge" | "default" | ""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_like_dockers() {
        assert_eq!(parse_link("db:data").unwrap(), ("db".into(), "data".into()));
        assert_eq!(parse_link("/db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(
            parse_link("/db:/web/data").unwrap(),
            ("db".into(), "data".into())
        );
        assert!(parse_link(":x").is_err());
    }

    #[test]
    fn link_env_names_ports_ranges_and_the_childs_variables() {
        let ip = Ipv4Addr::new(172, 17, 0, 2);
        let env = link_env(
            "my-db",
            "/web/my-db",
            ip,
            &["PATH=/bin".into(), "FOO=1".into(), "HOME=/root".into()],
            &[
                (6380, "tcp".into()),
                (53, "udp".into()),
                (6379, "tcp".into()),
            ],
        );
        let has = |v: &str| env.iter().any(|e| e == v);
        assert_eq!(env[0], "MY_DB_PORT=tcp://172.17.0.2:6379");
        assert!(has("MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379"));
        assert!(has("MY_DB_PORT_6379_TCP_ADDR=172.17.0.2"));
        assert!(has("MY_DB_PORT_6380_TCP_PORT=6380"));
        assert!(has("MY_DB_PORT_53_UDP_PROTO=udp"));
        assert!(has("MY_DB_PORT_6379_TCP_START=tcp://172.17.0.2:6379"));
        assert!(has("MY_DB_PORT_6379_TCP_PORT_END=6380"));
        assert!(has("MY_DB_NAME=/web/my-db"));
        assert!(has("MY_DB_ENV_FOO=1"));
        assert!(
            !env.iter()
                .any(|e| e.contains("_ENV_PATH") || e.contains("_ENV_HOME"))
        );
    }
}
