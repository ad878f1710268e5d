//! The network service: Docker's default `bridge` network on a bridge device of
//! berth's own, plus the built-in `host` and `none` networks.
//!
//! Each container on `bridge` gets a network namespace bound under
//! `<exec-root>/netns/<id>`, a veth pair with `eth0` inside, an address from the
//! network's IPAM, the gateway as default route, and its published ports (DNAT in
//! berth's nftables table plus a userland proxy that also holds the host port). The
//! runtime joins the namespace by path. Everything is undone by [`NetworkService::detach`]
//! when the container stops or is removed, and by [`NetworkService::restore`] at daemon
//! start for containers that died meanwhile.
//!
//! Layout (drawn once):
//! ```text
//! <data-root>/network/bridge.json   BridgeState: ID, IPAM (subnet, allocations), endpoints
//! <exec-root>/netns/<container id>  the container's network namespace (an nsfs bind mount)
//! ```
//! The state file is written atomically on every change, so after a crash the
//! allocations, the namespaces and the firewall table can all be rebuilt from it.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_net::ipam::{self, Ipam, Subnet};
use berth_net::link::{self, VethConfig};
use berth_net::nft::{self, BridgeRules, Ruleset};
use berth_net::ports::{self, PortMapping};
use berth_net::proxy::{self, PortProxy};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::DaemonError;
use crate::containers::ContainerRecord;

/// The bridge device's default name (dockerd's is `docker0`; berth keeps its own so
/// that a real Docker can run beside it).
pub const DEFAULT_BRIDGE: &str = "berth0";

/// The default network's settings, from the daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The bridge device berth creates and owns (`--bridge`, at most 15 bytes).
    pub bridge: String,
    /// The bridge's address and subnet (`--bip`, e.g. `172.18.0.1/16`); absent: the
    /// first free default pool, 172.17.0.0/16 if the host does not use it.
    pub bip: Option<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: DEFAULT_BRIDGE.into(),
            bip: None,
        }
    }
}

/// A container's attachment to the default bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Random 64-hex, like Docker's.
    pub endpoint_id: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default route.
    pub gateway: Ipv4Addr,
    /// `02:42:…`.
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The namespace file.
    pub netns: PathBuf,
    /// Published ports as bound.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

/// What `bridge.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BridgeState {
    id: String,
    created: String,
    /// Chosen on first use and kept, so addresses stay consistent across restarts.
    ipam: Option<Ipam>,
    /// Container ID → endpoint.
    endpoints: BTreeMap<String, Endpoint>,
}

/// The network service.
pub struct NetworkService {
    config: NetworkConfig,
    state_path: PathBuf,
    netns_dir: PathBuf,
    state: Mutex<BridgeState>,
    /// Container ID → its running port proxies.
    proxies: Mutex<BTreeMap<String, Vec<PortProxy>>>,
    /// Serializes attach, detach and restore: each reads the state, changes the
    /// host, then writes the state and the firewall table.
    op: tokio::sync::Mutex<()>,
}

fn internal(what: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::internal(format!("{what}: {e}"))
}

fn link_err(e: berth_net::LinkError) -> DaemonError {
    DaemonError::internal(format!("failed to set up container networking: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, berth_net::LinkError> + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::internal(format!("network task failed: {e}")))?
        .map_err(link_err)
}

/// The exposed ports of a container (`Config.ExposedPorts` keys).
fn exposed(record: &ContainerRecord) -> Vec<String> {
    record
        .config
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl NetworkService {
    /// Opens the service's state. Nothing on the host is touched until a container
    /// attaches (or [`NetworkService::restore`] runs).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad `--bip` or bridge name; the state cannot be read.
    pub fn open(
        data_root: &Path,
        exec_root: &Path,
        config: NetworkConfig,
    ) -> Result<Self, DaemonError> {
        if config.bridge.is_empty()
            || config.bridge.len() > 15
            || config.bridge.contains(['/', ' '])
        {
            return Err(DaemonError::invalid(format!(
                "invalid bridge name {:?}",
                config.bridge
            )));
        }
        if let Some(bip) = &config.bip {
            Subnet::parse_with_addr(bip).map_err(|e| DaemonError::invalid(e.to_string()))?;
        }
        let dir = data_root.join("network");
        std::fs::create_dir_all(&dir).map_err(internal("cannot create network dir"))?;
        let state_path = dir.join("bridge.json");
        let mut state: BridgeState = match std::fs::read(&state_path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| {
                DaemonError::internal(format!("corrupt {}: {e}", state_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BridgeState::default(),
            Err(e) => return Err(internal("cannot read network state")(e)),
        };
        if state.id.is_empty() {
            state.id = crate::containers::new_volume_name();
            state.created = crate::filters::go_time(chrono::Utc::now());
        }
        Ok(NetworkService {
            config,
            state_path,
            netns_dir: exec_root.join("netns"),
            state: Mutex::new(state),
            proxies: Mutex::new(BTreeMap::new()),
            op: tokio::sync::Mutex::new(()),
        })
    }

    /// The nftables table of this daemon: `berth` for the default bridge, else
    /// suffixed with the bridge's name so that daemons on one host never share one.
    pub fn table(&self) -> String {
        if self.config.bridge == DEFAULT_BRIDGE {
            "berth".into()
        } else {
            format!("berth-{}", self.config.bridge)
        }
    }

    /// The bridge device's name.
    pub fn bridge(&self) -> &str {
        &self.config.bridge
    }

    fn persist(&self) -> Result<(), DaemonError> {
        let data = serde_json::to_vec_pretty(&*self.state.lock().expect("network state lock"))
            .expect("network state serializes");
        berth_store::durable::write_atomic(&self.state_path, &data)
            .map_err(internal("cannot write network state"))
    }

    /// The IPAM, chosen on first use: `--bip`, else the first free default pool.
    fn ensure_ipam(&self) -> Result<Ipam, DaemonError> {
        let mut st = self.state.lock().expect("network state lock");
        if let Some(ipam) = &st.ipam {
            return Ok(ipam.clone());
        }
        let (subnet, gateway) = match &self.config.bip {
            Some(bip) => {
                Subnet::parse_with_addr(bip).map_err(|e| DaemonError::invalid(e.to_string()))?
            }
            None => {
                let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
                let pool = ipam::pick_free_pool(&ipam::routed_subnets(&routes))
                    .map_err(|e| DaemonError::internal(e.to_string()))?;
                (pool, pool.first_host())
            }
        };
        let ipam = Ipam::new(subnet, gateway);
        st.ipam = Some(ipam.clone());
        Ok(ipam)
    }

    fn ruleset(&self) -> Ruleset {
        let st = self.state.lock().expect("network state lock");
        let Some(ipam) = &st.ipam else {
            return Ruleset::default();
        };
        Ruleset {
            bridges: vec![BridgeRules {
                bridge: self.config.bridge.clone(),
                subnet: ipam.subnet,
                internal: false,
            }],
            published: st
                .endpoints
                .values()
                .flat_map(|e| e.ports.iter().map(move |p| (*p, e.ip)))
                .collect(),
        }
    }

    async fn write_table(&self) -> Result<(), DaemonError> {
        let (table, rules) = (self.table(), self.ruleset());
        blocking(move || nft::apply(&table, &rules)).await
    }

    /// Connects a container about to start to its network. Returns the namespace the
    /// runtime must join and the container's address, or `None` for networks without
    /// a namespace of berth's making (`host`, `none`, `container:`).
    ///
    /// # Errors
    /// `Internal` when the host refuses (with Docker's message for a taken host port),
    /// `InvalidArgument` for bad port specifications.
    pub async fn attach(
        &self,
        record: &ContainerRecord,
    ) -> Result<Option<(PathBuf, Ipv4Addr)>, DaemonError> {
        if record.host_config.network_mode != "bridge" {
            return Ok(None);
        }
        let id = record.id.clone();
        let _op = self.op.lock().await;
        // A leftover from a start that failed half-way.
        self.detach_locked(&id).await;
        let mut ipam = self.ensure_ipam()?;
        let (bridge, gw, subnet) = (self.config.bridge.clone(), ipam.gateway, ipam.subnet);
        blocking(move || link::ensure_bridge(&bridge, gw, subnet)).await?;
        let ip = ipam
            .allocate(&id, None)
            .map_err(|e| DaemonError::internal(e.to_string()))?;
        let endpoint_id = crate::containers::new_volume_name();
        let requests = ports::requests(
            record.host_config.port_bindings.as_ref(),
            &exposed(record),
            record.host_config.publish_all_ports,
        )
        .map_err(|e| DaemonError::invalid(e.to_string()))?;
        let mut bound = Vec::new();
        for r in &requests {
            match proxy::bind(r) {
                Ok(b) => bound.push(b),
                Err(e) => {
                    return Err(DaemonError::internal(format!(
                        "failed to set up container networking: driver failed programming external connectivity on endpoint {} ({endpoint_id}): {e}",
                        record.name.trim_start_matches('/')
                    )));
                }
            }
        }
        std::fs::create_dir_all(&self.netns_dir).map_err(internal("cannot create netns dir"))?;
        let netns = self.netns_dir.join(&id);
        let veth = VethConfig {
            host_name: link::host_veth_name(&id, 0),
            netns: netns.clone(),
            inner_name: "eth0".into(),
            address: ip,
            subnet,
            gateway: Some(gw),
            mac: ipam::mac_for(ip),
            bridge: self.config.bridge.clone(),
        };
        let v = veth.clone();
        blocking(move || {
            link::delete_netns(&v.netns)?;
            link::create_netns(&v.netns)?;
            if let Err(e) = link::setup_veth(&v) {
                let _ = link::delete_netns(&v.netns);
                return Err(e);
            }
            Ok(())
        })
        .await?;
        let mut proxies = Vec::new();
        let mut mappings = Vec::new();
        for (b, m) in bound {
            let target = SocketAddr::V4(SocketAddrV4::new(ip, m.container_port));
            match proxy::spawn(b, target) {
                Ok(p) => proxies.push(p),
                Err(e) => tracing::warn!(container = %id, error = %e, "cannot start port proxy"),
            }
            mappings.push(m);
        }
        {
            let mut st = self.state.lock().expect("network state lock");
            st.ipam = Some(ipam);
            st.endpoints.insert(
                id.clone(),
                Endpoint {
                    endpoint_id,
                    ip,
                    prefix: subnet.prefix(),
                    gateway: gw,
                    mac: veth.mac.clone(),
                    veth: veth.host_name.clone(),
                    netns: netns.clone(),
                    ports: mappings,
                },
            );
        }
        self.proxies
            .lock()
            .expect("proxies lock")
            .insert(id.clone(), proxies);
        let written = self.persist().and(self.write_table().await);
        if let Err(e) = written {
            self.detach_locked(&id).await;
            return Err(e);
        }
        tracing::info!(container = %id, %ip, "container attached to bridge");
        Ok(Some((netns, ip)))
    }

    /// Disconnects a container: closes its ports, removes its namespace (and with it
    /// the veth pair), frees its address. Nothing attached is fine.
    pub async fn detach(&self, id: &str) {
        let _op = self.op.lock().await;
        if self.detach_locked(id).await
            && let Err(e) = self.write_table().await
        {
            tracing::warn!(container = %id, error = %e, "cannot update firewall table");
        }
    }

    /// Returns whether there was something to undo. Leaves the table to the caller.
    async fn detach_locked(&self, id: &str) -> bool {
        self.proxies.lock().expect("proxies lock").remove(id);
        let endpoint = {
            let mut st = self.state.lock().expect("network state lock");
            if let Some(ipam) = st.ipam.as_mut() {
                ipam.release(id);
            }
            st.endpoints.remove(id)
        };
        let netns = self.netns_dir.join(id);
        let veth = endpoint
            .as_ref()
            .map_or_else(|| link::host_veth_name(id, 0), |e| e.veth.clone());
        let had_netns = netns.exists();
        if endpoint.is_none() && !had_netns {
            return false;
        }
        if let Err(e) = blocking(move || {
            link::delete_netns(&netns)?;
            link::delete_link(&veth)
        })
        .await
        {
            tracing::warn!(container = %id, error = %e, "cannot remove container network");
        }
        if let Err(e) = self.persist() {
            tracing::warn!(container = %id, error = %e, "cannot write network state");
        }
        tracing::info!(container = %id, "container detached from bridge");
        true
    }

    /// At daemon start: keeps the endpoints of containers still running (re-binding
    /// their port proxies), removes the others, and rewrites the firewall table.
    pub async fn restore(&self, running: &HashSet<String>) {
        let _op = self.op.lock().await;
        let endpoints: Vec<(String, Endpoint)> = self
            .state
            .lock()
            .expect("network state lock")
            .endpoints
            .clone()
            .into_iter()
            .collect();
        for (id, e) in endpoints {
            if !running.contains(&id) {
                self.detach_locked(&id).await;
                continue;
            }
            let mut proxies = Vec::new();
            for m in &e.ports {
                let req = ports::PortRequest {
                    proto: m.proto,
                    container_port: m.container_port,
                    host_ip: m.host_ip,
                    host_ports: (m.host_port, m.host_port),
                };
                let target = SocketAddr::V4(SocketAddrV4::new(e.ip, m.container_port));
                match proxy::bind(&req).and_then(|(b, _)| {
                    proxy::spawn(b, target).map_err(|source| proxy::ProxyError::Bind {
                        ip: m.host_ip,
                        port: m.host_port,
                        source,
                    })
                }) {
                    Ok(p) => proxies.push(p),
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "cannot re-establish port proxy")
                    }
                }
            }
            self.proxies
                .lock()
                .expect("proxies lock")
                .insert(id, proxies);
        }
        let ipam = self.state.lock().expect("network state lock").ipam.clone();
        if let Some(ipam) = ipam {
            let bridge = self.config.bridge.clone();
            if let Err(e) =
                blocking(move || link::ensure_bridge(&bridge, ipam.gateway, ipam.subnet)).await
            {
                tracing::warn!(error = %e, "cannot set up the bridge");
            }
            if let Err(e) = self.write_table().await {
                tracing::warn!(error = %e, "cannot restore firewall table");
            }
        }
    }

    /// A container's endpoint on the bridge, while it has one.
    pub fn endpoint(&self, id: &str) -> Option<Endpoint> {
        self.state
            .lock()
            .expect("network state lock")
            .endpoints
            .get(id)
            .cloned()
    }

    /// `NetworkSettings` of a container's inspect, Docker's shape.
    pub fn settings_json(&self, record: &ContainerRecord) -> Value {
        let ep = self.endpoint(&record.id);
        let exposed = exposed(record);
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
            "SandboxKey": ep.as_ref().map(|e| e.netns.display().to_string()).unwrap_or_default(),
            "Ports": ports::ports_json(&exposed, ports),
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": eid, "Gateway": gw, "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": ip, "IPPrefixLen": prefix, "IPv6Gateway": "", "MacAddress": mac,
            "Networks": self.networks_json(record),
        })
    }

    /// `NetworkSettings.Networks` (also in `GET /containers/json`).
    pub fn networks_json(&self, record: &ContainerRecord) -> Value {
        let mode = record.host_config.network_mode.clone();
        let ep = self.endpoint(&record.id);
        let net_id = match mode.as_str() {
            "bridge" => self.state.lock().expect("network state lock").id.clone(),
            "host" | "none" => builtin_id(&mode),
            _ => String::new(),
        };
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
        json!({ mode: {
            "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": mac, "DriverOpts": null,
            "NetworkID": net_id, "EndpointID": eid, "Gateway": gw, "IPAddress": ip, "IPPrefixLen": prefix,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
        }})
    }

    /// `Ports` of `GET /containers/json`.
    pub fn ports_list_json(&self, record: &ContainerRecord) -> Value {
        let ep = self.endpoint(&record.id);
        ports::ports_list_json(
            &exposed(record),
            ep.as_ref().map_or(&[][..], |e| &e.ports[..]),
        )
    }

    /// `GET /networks`: the built-in networks, with `containers` (ID → name) attached
    /// to the bridge.
    pub fn list(&self, names: &BTreeMap<String, String>) -> Vec<Value> {
        ["bridge", "host", "none"]
            .iter()
            .map(|n| self.network_json(n, names))
            .collect()
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
        let bridge_id = self.state.lock().expect("network state lock").id.clone();
        let found = ["bridge", "host", "none"].into_iter().find(|n| {
            let id = if *n == "bridge" {
                bridge_id.clone()
            } else {
                builtin_id(n)
            };
            *n == name_or_id || (!name_or_id.is_empty() && id.starts_with(name_or_id))
        });
        match found {
            Some(n) => Ok(self.network_json(n, names)),
            None => Err(DaemonError::not_found(format!(
                "network {name_or_id} not found"
            ))),
        }
    }

    fn network_json(&self, name: &str, names: &BTreeMap<String, String>) -> Value {
        let st = self.state.lock().expect("network state lock");
        let (id, driver) = match name {
            "bridge" => (st.id.clone(), "bridge"),
            other => (
                builtin_id(other),
                if other == "host" { "host" } else { "null" },
            ),
        };
        let mut v = json!({
            "Name": name, "Id": id, "Created": st.created, "Scope": "local", "Driver": driver,
            "EnableIPv4": true, "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": []},
            "Internal": false, "Attachable": false, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
            "Containers": {}, "Options": {}, "Labels": {},
        });
        if name == "bridge" {
            if let Some(ipam) = &st.ipam {
                v["IPAM"]["Config"] = json!([{"Subnet": ipam.subnet.to_string(), "Gateway": ipam.gateway.to_string()}]);
            }
            v["Options"] = json!({
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": self.config.bridge,
                "com.docker.network.driver.mtu": "1500",
            });
            let mut containers = serde_json::Map::new();
            for (cid, e) in &st.endpoints {
                containers.insert(
                    cid.clone(),
                    json!({
                        "Name": names.get(cid).map(|n| n.trim_start_matches('/')).unwrap_or(""),
                        "EndpointID": e.endpoint_id, "MacAddress": e.mac,
                        "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": "",
                    }),
                );
            }
            v["Containers"] = Value::Object(containers);
        }
        v
    }
}

/// The built-in networks' IDs: fixed per name, so that they stay the same across
/// restarts without being stored.
fn builtin_id(name: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!("berth-network-{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(dir: &Path, bip: Option<&str>) -> NetworkService {
        NetworkService::open(
            &dir.join("data"),
            &dir.join("exec"),
            NetworkConfig {
                bridge: "bt0".into(),
                bip: bip.map(str::to_string),
            },
        )
        .unwrap()
    }

    #[test]
    fn bad_bridge_name_or_bip_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let open = |bridge: &str, bip: Option<&str>| {
            NetworkService::open(
                d.path(),
                d.path(),
                NetworkConfig {
                    bridge: bridge.into(),
                    bip: bip.map(str::to_string),
                },
            )
        };
        assert!(open("a-very-long-bridge-name", None).is_err());
        assert!(open("ok0", Some("10.0.0.1")).is_err());
        assert!(open("ok0", Some("10.0.0.1/24")).is_ok());
    }

    #[test]
    fn bip_sets_subnet_and_gateway_and_network_id_persists() {
        let d = tempfile::tempdir().unwrap();
        let s = svc(d.path(), Some("10.77.0.1/24"));
        let ipam = s.ensure_ipam().unwrap();
        assert_eq!(ipam.subnet.to_string(), "10.77.0.0/24");
        assert_eq!(ipam.gateway, Ipv4Addr::new(10, 77, 0, 1));
        s.persist().unwrap();
        let id = s.state.lock().unwrap().id.clone();
        let again = svc(d.path(), None);
        assert_eq!(again.state.lock().unwrap().id, id);
        assert_eq!(again.ensure_ipam().unwrap(), ipam);
        assert_eq!(again.table(), "berth-bt0");
    }

    #[test]
    fn builtin_networks_are_listed_and_found_by_prefix() {
        let d = tempfile::tempdir().unwrap();
        let s = svc(d.path(), None);
        let names = BTreeMap::new();
        let list = s.list(&names);
        let got: Vec<&str> = list.iter().map(|n| n["Name"].as_str().unwrap()).collect();
        assert_eq!(got, ["bridge", "host", "none"]);
        let host_id = builtin_id("host");
        assert_eq!(s.inspect(&host_id[..12], &names).unwrap()["Name"], "host");
        assert_eq!(
            s.inspect("nope", &names).unwrap_err().message(),
            "network nope not found"
        );
    }
}
