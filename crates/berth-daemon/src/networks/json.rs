//! The Docker API's JSON for networks and for a container's `NetworkSettings`.

use std::collections::BTreeMap;

use berth_net::ports;
use serde_json::{Value, json};

use super::{
    BUILTIN, Endpoint, EndpointConfig, Network, NetworkService, State, builtin_id, exposed,
};
use crate::DaemonError;
use crate::containers::ContainerRecord;

fn endpoint_json(net_id: &str, e: Option<&Endpoint>, cfg: Option<&EndpointConfig>) -> Value {
    let (ip, prefix, gw, mac, eid) = match e {
        Some(e) => (
            e.ip.to_string(),
            e.prefix,
            e.gateway.to_string(),
            e.mac.clone(),
            e.endpoint_id.clone(),
        ),
        None => Default::default(),
    };
    // What was asked for shows whether or not the container runs, as Docker's does.
    let ipam = cfg
        .filter(|c| c.ipv4.is_some() || c.ipv6.is_some() || !c.link_local_ips.is_empty())
        .map(|c| {
            let mut v = json!({});
            if let Some(ip) = c.ipv4 {
                v["IPv4Address"] = json!(ip.to_string());
            }
            if let Some(ip) = c.ipv6 {
                v["IPv6Address"] = json!(ip.to_string());
            }
            if !c.link_local_ips.is_empty() {
                v["LinkLocalIPs"] = json!(c.link_local_ips);
            }
            v
        });
    let mac = if mac.is_empty() {
        cfg.and_then(|c| c.mac.clone()).unwrap_or_default()
    } else {
        mac
    };
    json!({
        "IPAMConfig": ipam, "Links": cfg.map(|c| &c.links).filter(|l| !l.is_empty()),
        "Aliases": cfg.map(|c| &c.aliases).filter(|a| !a.is_empty()),
        "MacAddress": mac, "DriverOpts": cfg.and_then(|c| c.driver_opts.as_ref()),
        "NetworkID": net_id, "EndpointID": eid, "Gateway": gw, "IPAddress": ip, "IPPrefixLen": prefix,
        "IPv6Gateway": v6_gateway(e), "GlobalIPv6Address": v6_address(e),
        "GlobalIPv6PrefixLen": v6_prefix(e),
        "DNSNames": e.map(|e| &e.dns_names).filter(|n| !n.is_empty()),
    })
}

fn v6_address(e: Option<&Endpoint>) -> String {
    e.and_then(|e| e.ipv6)
        .map(|(a, _, _)| a.to_string())
        .unwrap_or_default()
}

fn v6_prefix(e: Option<&Endpoint>) -> u8 {
    e.and_then(|e| e.ipv6).map_or(0, |(_, p, _)| p)
}

fn v6_gateway(e: Option<&Endpoint>) -> String {
    e.and_then(|e| e.ipv6)
        .map(|(_, _, g)| g.to_string())
        .unwrap_or_default()
}

impl NetworkService {
    /// `NetworkSettings` of a container's inspect, Docker's shape.
    pub fn settings_json(&self, record: &ContainerRecord) -> Value {
        let ep = self.endpoint(&record.id);
        let (ip, prefix, gw, mac, eid) = match &ep {
            Some(e) => (
                e.ip.to_string(),
                e.prefix,
                e.gateway.to_string(),
                e.mac.clone(),
                e.endpoint_id.clone(),
            ),
            None => Default::default(),
        };
        let ports = ep.as_ref().map_or(&[][..], |e| &e.ports[..]);
        json!({
            "Bridge": "", "SandboxID": "",
            "SandboxKey": ep.as_ref().map(|_| self.netns_path(&record.id).display().to_string()).unwrap_or_default(),
            "Ports": ports::ports_json(&exposed(record), ports),
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": eid, "Gateway": gw, "GlobalIPv6Address": v6_address(ep.as_ref()),
            "GlobalIPv6PrefixLen": v6_prefix(ep.as_ref()),
            "IPAddress": ip, "IPPrefixLen": prefix, "IPv6Gateway": v6_gateway(ep.as_ref()), "MacAddress": mac,
            "Networks": self.networks_json(record),
        })
    }

    /// `NetworkSettings.Networks` (also in `GET /containers/json`): by network name.
    pub fn networks_json(&self, record: &ContainerRecord) -> Value {
        let mode = record.host_config.network_mode.as_str();
        let st = self.lock();
        let mut out = serde_json::Map::new();
        if matches!(mode, "host" | "none") {
            out.insert(mode.into(), endpoint_json(&builtin_id(mode), None, None));
            return Value::Object(out);
        }
        let eps = st.endpoints.get(&record.id);
        let configs = st.configs.get(&record.id);
        let mut ids: Vec<String> = configs
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        // The `NetworkMode` network first; it is listed only while connected (a
        // container recorded without configs is on it).
        if let Some(p) = st.find(mode)
            && (configs.is_none() || ids.contains(&p.id))
        {
            ids.retain(|i| *i != p.id);
            ids.insert(0, p.id.clone());
        }
        for id in ids {
            let Some(n) = st.networks.get(&id) else {
                continue;
            };
            out.insert(
                n.name.clone(),
                endpoint_json(
                    &id,
                    eps.and_then(|e| e.get(&id)),
                    configs.and_then(|c| c.get(&id)),
                ),
            );
        }
        if out.is_empty()
            && configs.is_none()
            && !mode.is_empty()
            && !mode.starts_with("container:")
        {
            out.insert(mode.into(), endpoint_json("", None, None));
        }
        Value::Object(out)
    }

    /// `Ports` of `GET /containers/json`.
    pub fn ports_list_json(&self, record: &ContainerRecord) -> Value {
        let ep = self.endpoint(&record.id);
        ports::ports_list_json(
            &exposed(record),
            ep.as_ref().map_or(&[][..], |e| &e.ports[..]),
        )
    }

    /// `GET /networks`: every network, `containers` (ID → name) naming the
    /// endpoints.
    pub fn list(&self, names: &BTreeMap<String, String>) -> Vec<Value> {
        let st = self.lock();
        let mut out: Vec<Value> = st
            .networks
            .values()
            .map(|n| network_json(&st, n, names))
            .collect();
        for b in ["host", "none"] {
            out.push(builtin_json(b));
        }
        out
    }

    /// `GET /networks/{id}`: by name, full ID or unique ID prefix.
    ///
    /// # Errors
    /// `NotFound` with Docker's message.
    pub fn inspect(
        &self,
        name_or_id: &str,
        names: &BTreeMap<String, String>,
    ) -> Result<Value, DaemonError> {
        let st = self.lock();
        if let Some(n) = st.find(name_or_id) {
            return Ok(network_json(&st, n, names));
        }
        BUILTIN[1..]
            .iter()
            .find(|b| {
                **b == name_or_id
                    || (!name_or_id.is_empty() && builtin_id(b).starts_with(name_or_id))
            })
            .map(|b| builtin_json(b))
            .ok_or_else(|| DaemonError::not_found(format!("network {name_or_id} not found")))
    }
}

fn builtin_json(name: &str) -> Value {
    json!({
        "Name": name, "Id": builtin_id(name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {},
    })
}

fn network_json(st: &State, n: &Network, names: &BTreeMap<String, String>) -> Value {
    let mut v = json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": "bridge",
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": n.ipam_options, "Config": []},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": {}, "Options": n.options, "Labels": n.labels,
    });
    if let Some(ipam) = &n.ipam {
        let mut c = json!({"Subnet": ipam.subnet.to_string(), "Gateway": ipam.gateway.to_string()});
        if let Some(r) = ipam.range {
            c["IPRange"] = json!(r.to_string());
        }
        if !n.aux_addresses.is_empty() {
            c["AuxiliaryAddresses"] = json!(n.aux_addresses);
        }
        v["IPAM"]["Config"] = json!([c]);
    }
    if let Some(i6) = &n.ipam6 {
        v["EnableIPv6"] = json!(true);
        let mut c = json!({"Subnet": i6.subnet.to_string(), "Gateway": i6.gateway.to_string()});
        if let Some(r) = i6.range {
            c["IPRange"] = json!(r.to_string());
        }
        if let Some(list) = v["IPAM"]["Config"].as_array_mut() {
            list.push(c);
        }
    }
    if n.default {
        v["Options"] = json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": n.bridge,
            "com.docker.network.driver.mtu": "1500",
        });
    }
    let mut containers = serde_json::Map::new();
    for (cid, eps) in &st.endpoints {
        if let Some(e) = eps.get(&n.id) {
            containers.insert(
                cid.clone(),
                json!({
                    "Name": names.get(cid).map(|n| n.trim_start_matches('/')).unwrap_or(""),
                    "EndpointID": e.endpoint_id, "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": e.ipv6.map(|(a, p, _)| format!("{a}/{p}")).unwrap_or_default(),
                }),
            );
        }
    }
    v["Containers"] = Value::Object(containers);
    v
}
