//! Creating, removing and pruning networks, and connecting running containers to
//! them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::ipam::{self, Ipam, Subnet};
use berth_net::ipam6::{self, Ipam6, Subnet6};
use berth_net::link;

use super::{
    BUILTIN, CreateNetwork, EndpointConfig, Network, NetworkService, blocking, is_bridge_mode,
    new_id, valid_bridge_name,
};
use crate::DaemonError;
use crate::containers::ContainerRecord;

impl NetworkService {
    /// The IPv6 side of a network being created: `None` without `EnableIPv6` (an IPv6
    /// subnet alone turns it on, as the client plainly asked for one); with it, the
    /// given subnet, range and gateway, or a unique local /64 of its own when the
    /// client gave none, as Docker allocates one.
    fn ipam6_for(&self, req: &CreateNetwork) -> Result<Option<Ipam6>, DaemonError> {
        if !req.enable_ipv6 && req.subnet6.is_none() {
            return Ok(None);
        }
        let bad = |e: ipam6::Ipam6Error| DaemonError::invalid(e.to_string());
        let taken: Vec<Subnet6> = self
            .lock()
            .networks
            .values()
            .filter_map(|n| n.ipam6.as_ref().map(|i| i.subnet))
            .collect();
        let subnet = match &req.subnet6 {
            Some(s) => {
                let s: Subnet6 = s.parse().map_err(bad)?;
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(DaemonError::conflict(
                        "invalid pool request: Pool overlaps with other one on this address space",
                    ));
                }
                s
            }
            None => loop {
                let s = Subnet6::random_ula(rand::random());
                if !taken.iter().any(|t| t.overlaps(&s)) {
                    break s;
                }
            },
        };
        let gateway = match &req.gateway6 {
            Some(g) => {
                let g: std::net::Ipv6Addr = g
                    .parse()
                    .map_err(|_| DaemonError::invalid(format!("invalid gateway address {g}")))?;
                if !subnet.contains(g) {
                    return Err(DaemonError::invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                g
            }
            None => subnet.first_host(),
        };
        let mut ipam = Ipam6::new(subnet, gateway);
        if let Some(r) = &req.ip_range6 {
            let r: Subnet6 = r.parse().map_err(bad)?;
            if !subnet.overlaps(&r) || r.prefix() < subnet.prefix() {
                return Err(DaemonError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
            ipam.range = Some(r);
        }
        Ok(Some(ipam))
    }
}

impl NetworkService {
    /// `POST /networks/create`: the new network's ID.
    ///
    /// # Errors
    /// `Conflict` for a name in use, `NotFound` for a driver other than `bridge`,
    /// `InvalidArgument` for bad addresses or options.
    pub async fn create_network(&self, req: CreateNetwork) -> Result<String, DaemonError> {
        let _op = self.op.lock().await;
        if req.name.is_empty() {
            return Err(DaemonError::invalid("network name cannot be empty"));
        }
        if !matches!(req.driver.as_str(), "" | "bridge") {
            return Err(DaemonError::not_found(format!(
                "plugin \"{}\" not found",
                req.driver
            )));
        }
        if BUILTIN.contains(&req.name.as_str())
            || self.lock().networks.values().any(|n| n.name == req.name)
        {
            return Err(DaemonError::conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let bad = |e: ipam::IpamError| DaemonError::invalid(e.to_string());
        let subnet = match &req.subnet {
            Some(s) => {
                let s: Subnet = s.parse().map_err(bad)?;
                if self.used_subnets().iter().any(|u| u.overlaps(&s)) {
                    return Err(DaemonError::conflict(
                        "invalid pool request: Pool overlaps with other one on this address space",
                    ));
                }
                s
            }
            None => ipam::pick_free_pool(&self.used_subnets()).map_err(bad)?,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| DaemonError::invalid(format!("invalid gateway address {g}")))?;
                if !subnet.contains(g) {
                    return Err(DaemonError::invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                g
            }
            None => subnet.first_host(),
        };
        let mut aux_addresses = BTreeMap::new();
        for (name, a) in &req.aux_addresses {
            let ip: Ipv4Addr = a
                .parse()
                .map_err(|_| DaemonError::invalid(format!("invalid auxiliary address {a}")))?;
            if !subnet.contains(ip) {
                return Err(DaemonError::invalid(format!(
                    "no matching subnet for aux-address {ip}"
                )));
            }
            aux_addresses.insert(name.clone(), ip);
        }
        let mut ipam = Ipam::new(subnet, gateway);
        // Auxiliary addresses belong to devices outside berth: never hand them out.
        for (name, ip) in &aux_addresses {
            ipam.allocate(&format!("aux:{name}"), Some(*ip))
                .map_err(bad)?;
        }
        if let Some(r) = &req.ip_range {
            let r: Subnet = r.parse().map_err(bad)?;
            if !subnet.overlaps(&r) || r.prefix() < subnet.prefix() {
                return Err(DaemonError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
            ipam.range = Some(r);
        }
        check_bridge_options(&req.options)?;
        let ipam6 = self.ipam6_for(&req)?;
        let id = new_id();
        let bridge = req
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if !valid_bridge_name(&bridge) {
            return Err(DaemonError::invalid(format!(
                "invalid bridge name {bridge:?}"
            )));
        }
        if self.lock().networks.values().any(|n| n.bridge == bridge) {
            return Err(DaemonError::conflict(format!(
                "bridge name {bridge} is in use by another network"
            )));
        }
        self.lock().networks.insert(
            id.clone(),
            Network {
                id: id.clone(),
                name: req.name.clone(),
                created: crate::filters::go_time(chrono::Utc::now()),
                bridge,
                ipam: Some(ipam),
                internal: req.internal,
                attachable: req.attachable,
                labels: req.labels,
                options: req.options,
                default: false,
                ipam_options: req.ipam_options,
                aux_addresses,
                ipam6,
            },
        );
        let result = async {
            self.ensure_bridge(&id).await?;
            self.persist()?;
            self.write_table().await
        }
        .await;
        if let Err(e) = result {
            let n = self.lock().networks.remove(&id);
            if let Some(n) = n {
                let _ = blocking(move || link::delete_link(&n.bridge)).await;
            }
            let _ = self.persist();
            return Err(e);
        }
        let created = self.lock().networks.get(&id).cloned();
        if let Some(n) = created {
            self.event(&n, "create", None);
        }
        tracing::info!(network = %id, name = %req.name, "network created");
        Ok(id)
    }

    /// `DELETE /networks/{id}`.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` for a built-in network or one with active endpoints.
    pub async fn remove_network(&self, name_or_id: &str) -> Result<(), DaemonError> {
        let _op = self.op.lock().await;
        if matches!(name_or_id, "host" | "none") {
            return Err(DaemonError::conflict(format!(
                "{name_or_id} is a pre-defined network and cannot be removed"
            )));
        }
        let n = self
            .lock()
            .find(name_or_id)
            .cloned()
            .ok_or_else(|| DaemonError::not_found(format!("network {name_or_id} not found")))?;
        if n.default {
            return Err(DaemonError::conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if self.lock().users(&n.id) > 0 {
            return Err(DaemonError::conflict(format!(
                "error while removing network: network {} has active endpoints",
                n.name
            )));
        }
        {
            let mut st = self.lock();
            st.networks.remove(&n.id);
            for c in st.configs.values_mut() {
                c.remove(&n.id);
            }
        }
        self.persist()?;
        let bridge = n.bridge.clone();
        self.ready_bridges
            .lock()
            .expect("bridges lock")
            .remove(&bridge);
        blocking(move || link::delete_link(&bridge)).await?;
        self.write_table().await?;
        self.event(&n, "destroy", None);
        tracing::info!(network = %n.id, name = %n.name, "network removed");
        Ok(())
    }

    /// `POST /networks/prune`: removes user-defined networks without endpoints;
    /// returns their names.
    ///
    /// # Errors
    /// `InvalidArgument` for bad filters.
    pub async fn prune(
        &self,
        filters: &crate::filters::Filters,
    ) -> Result<Vec<String>, DaemonError> {
        filters.validate(&["until", "label", "label!"])?;
        let until = match filters.get("until").next() {
            Some(v) => Some(crate::filters::parse_time(v)?),
            None => None,
        };
        let candidates: Vec<Network> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| !n.default && st.users(&n.id) == 0)
                .filter(|n| {
                    let labels = Some(&n.labels);
                    (!filters.contains("label") || filters.match_labels("label", labels))
                        && (!filters.contains("label!") || !filters.match_labels("label!", labels))
                        && until.is_none_or(|u| {
                            chrono::DateTime::parse_from_rfc3339(&n.created).is_ok_and(|c| c < u)
                        })
                })
                .cloned()
                .collect()
        };
        let mut removed = Vec::new();
        for n in candidates {
            if self.remove_network(&n.id).await.is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// `POST /networks/{id}/connect`: joins now when the container runs, else when it
    /// starts.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when already connected or when the container's network
    /// mode cannot take more networks; `InvalidArgument` for bad addresses.
    pub async fn connect(
        &self,
        network: &str,
        record: &ContainerRecord,
        running: bool,
        cfg: EndpointConfig,
    ) -> Result<(), DaemonError> {
        let _op = self.op.lock().await;
        let n = self
            .lock()
            .find(network)
            .cloned()
            .ok_or_else(|| DaemonError::not_found(format!("network {network} not found")))?;
        let mode = record.host_config.network_mode.as_str();
        if !is_bridge_mode(mode) {
            return Err(DaemonError::conflict(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        if n.default && (!cfg.aliases.is_empty() || cfg.ipv4.is_some()) {
            return Err(DaemonError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        let already = {
            let st = self.lock();
            match st.configs.get(&record.id) {
                Some(c) => c.contains_key(&n.id),
                // Recorded before configs were kept for every container: the
                // `NetworkMode` network is the one it is on.
                None => st.find(mode).is_some_and(|p| p.id == n.id),
            }
        };
        if already {
            return Err(DaemonError::conflict(format!(
                "endpoint with name {} already exists in network {}",
                record.name.trim_start_matches('/'),
                n.name
            )));
        }
        self.lock()
            .configs
            .entry(record.id.clone())
            .or_default()
            .insert(n.id.clone(), cfg.clone());
        if running && self.netns_path(&record.id).exists() {
            let index = self.lock().endpoints.get(&record.id).map_or(0, |e| e.len());
            if let Err(e) = self.join_locked(record, &n.id, &cfg, index.max(1)).await {
                if let Some(c) = self.lock().configs.get_mut(&record.id) {
                    c.remove(&n.id);
                }
                return Err(e);
            }
            if let Err(e) = self.start_dns(record).await {
                tracing::warn!(container = %record.id, error = %e, "cannot start embedded DNS server");
            }
        }
        self.persist()?;
        self.write_table().await
    }

    /// `POST /networks/{id}/disconnect`.
    ///
    /// # Errors
    /// `NotFound` for the network; `Conflict` when the container is not connected.
    pub async fn disconnect(
        &self,
        network: &str,
        record: &ContainerRecord,
    ) -> Result<(), DaemonError> {
        let _op = self.op.lock().await;
        let n = self
            .lock()
            .find(network)
            .cloned()
            .ok_or_else(|| DaemonError::not_found(format!("network {network} not found")))?;
        let (configured, endpoint) = {
            let mut st = self.lock();
            let configured = st
                .configs
                .get_mut(&record.id)
                .and_then(|c| c.remove(&n.id))
                .is_some();
            let endpoint = st
                .endpoints
                .get_mut(&record.id)
                .and_then(|e| e.remove(&n.id));
            if let Some(i) = st.networks.get_mut(&n.id).and_then(|n| n.ipam.as_mut()) {
                i.release(&record.id);
            }
            (configured, endpoint)
        };
        if !configured && endpoint.is_none() {
            return Err(DaemonError::conflict(format!(
                "container {} is not connected to network {}",
                record.id, n.name
            )));
        }
        if let Some(e) = endpoint {
            if !e.ports.is_empty() {
                self.proxies
                    .lock()
                    .expect("proxies lock")
                    .remove(&record.id);
            }
            let veth = e.veth.clone();
            blocking(move || link::delete_link(&veth)).await?;
            self.event(&n, "disconnect", Some(&record.id));
        }
        self.persist()?;
        self.write_table().await
    }
}

/// Checks the bridge driver's options as Docker's bridge driver parses them, so that a
/// typo is refused at `network create` in Docker's words instead of being kept unused.
fn check_bridge_options(options: &BTreeMap<String, String>) -> Result<(), DaemonError> {
    let parse_err = |label: &str, value: &str, why: String| {
        DaemonError::invalid(format!("failed to parse {label} value: {value} ({why})"))
    };
    for (label, value) in options {
        match label.as_str() {
            "com.docker.network.driver.mtu" => {
                let mtu: i64 = value.parse().map_err(|_| {
                    parse_err(
                        label,
                        value,
                        format!("strconv.Atoi: parsing {value:?}: invalid syntax"),
                    )
                })?;
                if mtu < 0 {
                    return Err(DaemonError::invalid(format!("invalid MTU number: {mtu}")));
                }
            }
            "com.docker.network.bridge.enable_ip_masquerade"
            | "com.docker.network.bridge.enable_icc"
            | "com.docker.network.bridge.inhibit_ipv4"
            | "com.docker.network.bridge.default_bridge"
            | "com.docker.network.enable_ipv4"
            | "com.docker.network.enable_ipv6" => {
                // Go's strconv.ParseBool.
                let known = [
                    "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
                ];
                if !known.contains(&value.as_str()) {
                    return Err(parse_err(
                        label,
                        value,
                        format!("strconv.ParseBool: parsing {value:?}: invalid syntax"),
                    ));
                }
            }
            "com.docker.network.bridge.host_binding_ipv4"
                if value.parse::<std::net::IpAddr>().is_err() =>
            {
                return Err(parse_err(label, value, "nil ip".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_options_are_refused_in_dockers_words() {
        let check = |k: &str, v: &str| {
            check_bridge_options(&BTreeMap::from([(k.to_string(), v.to_string())]))
                .map_err(|e| e.message().to_string())
        };
        assert_eq!(
            check("com.docker.network.driver.mtu", "-5"),
            Err("invalid MTU number: -5".into())
        );
        assert_eq!(
            check("com.docker.network.driver.mtu", "x"),
            Err("failed to parse com.docker.network.driver.mtu value: x (strconv.Atoi: parsing \"x\": invalid syntax)".into())
        );
        assert!(check("com.docker.network.bridge.enable_icc", "maybe").is_err());
        assert!(check("com.docker.network.bridge.host_binding_ipv4", "1.2.3").is_err());
        for (k, v) in [
            ("com.docker.network.driver.mtu", "1400"),
            ("com.docker.network.bridge.enable_icc", "False"),
            ("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1"),
            ("com.example.anything", "goes"),
        ] {
            assert_eq!(check(k, v), Ok(()), "{k}={v}");
        }
    }
}
