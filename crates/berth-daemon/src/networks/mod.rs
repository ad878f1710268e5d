//! The network service: Docker's default `bridge` network on a bridge device of
//! berth's own, user-defined bridge networks with an embedded DNS server, and the
//! built-in `host` and `none` networks.
//!
//! Each container on a bridge network gets one network namespace, bound under
//! `<exec-root>/netns/<id>`, and per network a veth pair (`eth0`, `eth1`, … inside),
//! an address from that network's IPAM, and on its first network the gateway as
//! default route and its published ports (DNAT in berth's nftables table plus a
//! userland proxy that also holds the host port). The runtime joins the namespace by
//! path. On user-defined networks a DNS server bound at 127.0.0.11:53 inside the
//! namespace answers for the names and aliases of the containers on the same
//! networks. Everything is undone by [`NetworkService::detach`] when the container
//! stops or is removed, and by [`NetworkService::restore`] at daemon start for
//! containers that died meanwhile.
//!
//! Layout (drawn once):
//! ```text
//! <data-root>/network/networks.json  State: networks (IPAM, allocations), the networks
//!                                    each container is configured for, live endpoints
//! <exec-root>/netns/<container id>   the container's network namespace (an nsfs bind mount)
//! ```
//! The state file is written atomically on every change, so after a crash the
//! allocations, the namespaces and the firewall table can all be rebuilt from it.

mod json;
mod manage;

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use berth_net::dns::{self, DnsServer};
use berth_net::ipam::{self, Ipam, Subnet};
use berth_net::ipam6::Ipam6;
use berth_net::link::{self, VethConfig, VethIpv6};
use berth_net::nft::{self, BridgeRules, Ruleset};
use berth_net::ports::{self, PortMapping};
use berth_net::proxy::{self, PortProxy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DaemonError;
use crate::containers::ContainerRecord;
use crate::events::{EventBus, Kind};

/// The bridge device's default name (dockerd's is `docker0`; berth keeps its own so
/// that a real Docker can run beside it).
pub const DEFAULT_BRIDGE: &str = "berth0";

/// The networks that exist without being created.
const BUILTIN: [&str; 3] = ["bridge", "host", "none"];

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

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Network {
    id: String,
    name: String,
    created: String,
    /// The bridge device.
    bridge: String,
    /// Chosen on first use for the default network, at creation for the others.
    ipam: Option<Ipam>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    attachable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    /// The default `bridge` network (no DNS, containers use the host's resolvers).
    #[serde(default)]
    default: bool,
    /// `IPAM.Options` as the client sent them (null when it sent none), echoed by
    /// inspect as Docker's does.
    #[serde(default)]
    ipam_options: Option<BTreeMap<String, String>>,
    /// `IPAM.Config[0].AuxiliaryAddresses`: kept out of allocation and shown.
    #[serde(default)]
    aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// `EnableIPv6` networks: their IPv6 subnet and addresses.
    #[serde(default)]
    ipam6: Option<Ipam6>,
}

impl Network {
    /// `-o com.docker.network.driver.mtu=N` (checked at create), for the bridge and
    /// every veth pair on it; 0 means the default, as with Docker.
    fn mtu(&self) -> Option<u32> {
        self.options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok())
            .filter(|m| *m > 0)
    }
}

/// How a container is to join a network (`NetworkingConfig`, `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// `--network-alias`/`--alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    #[serde(default)]
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// `--mac-address`; Docker's `02:42:<address>` when absent.
    #[serde(default)]
    pub mac: Option<String>,
    /// `IPAMConfig.LinkLocalIPs` (`--link-local-ip`): kept and shown.
    #[serde(default)]
    pub link_local_ips: Vec<String>,
    /// `Links` of the endpoint (`--link` on a user-defined network): kept and shown.
    #[serde(default)]
    pub links: Vec<String>,
    /// `DriverOpts`: kept and shown; the bridge driver reads none of them.
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// A container's live attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Random 64-hex, like Docker's.
    pub endpoint_id: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The network's gateway.
    pub gateway: Ipv4Addr,
    /// On an IPv6 network: the container's IPv6 address, prefix length and gateway.
    #[serde(default)]
    pub ipv6: Option<(std::net::Ipv6Addr, u8, std::net::Ipv6Addr)>,
    /// `02:42:…`.
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The interface inside (`eth0`, …).
    pub inner: String,
    /// Published ports as bound (on the container's first network only).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Aliases asked for on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Every name this endpoint answers to in DNS (name, aliases, short ID, hostname).
    #[serde(default)]
    pub dns_names: Vec<String>,
}

/// What `networks.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// By network ID.
    networks: BTreeMap<String, Network>,
    /// Container ID → network ID → how it joins (besides its `NetworkMode`'s own,
    /// whose configuration is kept here too).
    configs: BTreeMap<String, BTreeMap<String, EndpointConfig>>,
    /// Container ID → network ID → endpoint, while it runs.
    endpoints: BTreeMap<String, BTreeMap<String, Endpoint>>,
}

impl State {
    /// A network by name, full ID or unique ID prefix.
    fn find(&self, name_or_id: &str) -> Option<&Network> {
        if name_or_id.is_empty() {
            return None;
        }
        // The CLI names the default network `default` (NetworkMode, EndpointsConfig).
        let name_or_id = if name_or_id == "default" {
            "bridge"
        } else {
            name_or_id
        };
        self.networks
            .values()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
            .or_else(|| {
                let mut m = self
                    .networks
                    .values()
                    .filter(|n| n.id.starts_with(name_or_id));
                let first = m.next();
                if m.next().is_some() { None } else { first }
            })
    }

    fn default_id(&self) -> String {
        self.networks
            .values()
            .find(|n| n.default)
            .map(|n| n.id.clone())
            .unwrap_or_default()
    }

    fn users(&self, network_id: &str) -> usize {
        self.endpoints
            .values()
            .filter(|e| e.contains_key(network_id))
            .count()
    }
}

/// `POST /networks/create`'s request.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    /// `Name`.
    pub name: String,
    /// `Driver` (only `bridge`).
    pub driver: String,
    /// `Internal`.
    pub internal: bool,
    /// `Attachable`.
    pub attachable: bool,
    /// `IPAM.Config[0]`: subnet, IP range, gateway.
    pub subnet: Option<String>,
    /// `IPAM.Config[0].IPRange`.
    pub ip_range: Option<String>,
    /// `IPAM.Config[0].Gateway`.
    pub gateway: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Options` (`com.docker.network.bridge.name`, …).
    pub options: BTreeMap<String, String>,
    /// `IPAM.Options`, as sent.
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `IPAM.Config[0].AuxiliaryAddresses`.
    pub aux_addresses: BTreeMap<String, String>,
    /// `EnableIPv6`.
    pub enable_ipv6: bool,
    /// The IPv6 entry of `IPAM.Config`: subnet, IP range, gateway.
    pub subnet6: Option<String>,
    /// Its `IPRange`.
    pub ip_range6: Option<String>,
    /// Its `Gateway`.
    pub gateway6: Option<String>,
}

/// The network service.
pub struct NetworkService {
    config: NetworkConfig,
    state_path: PathBuf,
    netns_dir: PathBuf,
    state: Mutex<State>,
    /// Container ID → its running port proxies.
    proxies: Mutex<BTreeMap<String, Vec<PortProxy>>>,
    /// Container ID → its DNS server.
    dns: Mutex<BTreeMap<String, DnsServer>>,
    /// Bridges this daemon run has set up (created or checked, addressed, up).
    ready_bridges: Mutex<HashSet<String>>,
    /// Serializes changes: each reads the state, changes the host, then writes the
    /// state and the firewall table. Detach holds it only for its bookkeeping, not
    /// while the kernel tears a namespace down.
    op: tokio::sync::Mutex<()>,
    /// The firewall script last applied (`None` until the first write of this run).
    /// Writers take this lock, render the ruleset from the state as it is then, and
    /// skip `nft` when nothing changed: a container without published ports changes
    /// no rule, and of several detaches at once the first write covers the rest.
    applied_table: tokio::sync::Mutex<Option<String>>,
    /// Docker's network events: create, connect, disconnect, destroy.
    events: Arc<EventBus>,
    me: Weak<NetworkService>,
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

fn new_id() -> String {
    crate::containers::new_volume_name()
}

/// Whether `mode` is a `NetworkMode` that names a network of berth's making.
fn is_bridge_mode(mode: &str) -> bool {
    !matches!(mode, "host" | "none" | "") && !mode.starts_with("container:")
}

impl NetworkService {
    /// Opens the service's state. Nothing on the host is touched until a container
    /// attaches, a network is created, or [`NetworkService::restore`] runs.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad `--bip` or bridge name; the state cannot be read.
    pub fn open(
        data_root: &Path,
        exec_root: &Path,
        config: NetworkConfig,
        events: Arc<EventBus>,
    ) -> Result<Arc<Self>, DaemonError> {
        if !valid_bridge_name(&config.bridge) {
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
        let state_path = dir.join("networks.json");
        let mut state: State = match std::fs::read(&state_path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| {
                DaemonError::internal(format!("corrupt {}: {e}", state_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(internal("cannot read network state")(e)),
        };
        if !state.networks.values().any(|n| n.default) {
            let id = new_id();
            state.networks.insert(
                id.clone(),
                Network {
                    id,
                    name: "bridge".into(),
                    created: crate::filters::go_time(chrono::Utc::now()),
                    bridge: config.bridge.clone(),
                    ipam: None,
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    default: true,
                    ipam_options: None,
                    aux_addresses: BTreeMap::new(),
                    ipam6: None,
                },
            );
        }
        Ok(Arc::new_cyclic(|me| NetworkService {
            config,
            state_path,
            netns_dir: exec_root.join("netns"),
            state: Mutex::new(state),
            proxies: Mutex::new(BTreeMap::new()),
            dns: Mutex::new(BTreeMap::new()),
            ready_bridges: Mutex::new(HashSet::new()),
            op: tokio::sync::Mutex::new(()),
            applied_table: tokio::sync::Mutex::new(None),
            events,
            me: me.clone(),
        }))
    }

    /// Publishes a network event as Docker does: the actor is the network, with its
    /// name and driver type, and the container for connect and disconnect.
    fn event(&self, network: &Network, action: &str, container: Option<&str>) {
        let mut attributes = BTreeMap::from([
            ("name".to_string(), network.name.clone()),
            ("type".to_string(), "bridge".to_string()),
        ]);
        if let Some(c) = container {
            attributes.insert("container".into(), c.to_string());
        }
        self.events
            .publish(Kind::Network, action, &network.id, attributes);
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("network state lock")
    }

    fn persist(&self) -> Result<(), DaemonError> {
        let data = serde_json::to_vec_pretty(&*self.lock()).expect("network state serializes");
        berth_store::durable::write_atomic(&self.state_path, &data)
            .map_err(internal("cannot write network state"))
    }

    /// The subnets in use on the host or by berth's networks.
    fn used_subnets(&self) -> Vec<Subnet> {
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let mut used = ipam::routed_subnets(&routes);
        used.extend(
            self.lock()
                .networks
                .values()
                .filter_map(|n| n.ipam.as_ref().map(|i| i.subnet)),
        );
        used
    }

    /// The default network's IPAM, chosen on first use: `--bip`, else the first free
    /// default pool.
    fn ensure_default_ipam(&self) -> Result<(), DaemonError> {
        let id = self.lock().default_id();
        if self.lock().networks[&id].ipam.is_some() {
            return Ok(());
        }
        let (subnet, gateway) = match &self.config.bip {
            Some(bip) => {
                Subnet::parse_with_addr(bip).map_err(|e| DaemonError::invalid(e.to_string()))?
            }
            None => {
                let pool = ipam::pick_free_pool(&self.used_subnets())
                    .map_err(|e| DaemonError::internal(e.to_string()))?;
                (pool, pool.first_host())
            }
        };
        if let Some(n) = self.lock().networks.get_mut(&id) {
            n.ipam = Some(Ipam::new(subnet, gateway));
        }
        Ok(())
    }

    fn ruleset(&self) -> Ruleset {
        let st = self.lock();
        let mut published = Vec::new();
        for eps in st.endpoints.values() {
            for e in eps.values() {
                published.extend(e.ports.iter().map(|p| (*p, e.ip)));
            }
        }
        Ruleset {
            bridges: st
                .networks
                .values()
                .filter_map(|n| {
                    Some(BridgeRules {
                        bridge: n.bridge.clone(),
                        subnet: n.ipam.as_ref()?.subnet,
                        internal: n.internal,
                        subnet6: n.ipam6.as_ref().map(|i| i.subnet),
                    })
                })
                .collect(),
            published,
        }
    }

    async fn write_table(&self) -> Result<(), DaemonError> {
        let mut applied = self.applied_table.lock().await;
        let (table, rules) = (self.table(), self.ruleset());
        let script = nft::script(&table, &rules);
        if applied.as_deref() == Some(script.as_str()) {
            return Ok(());
        }
        let result = blocking(move || nft::apply(&table, &rules)).await;
        // After a failure the table is in an unknown state: the next writer rewrites it.
        *applied = result.is_ok().then_some(script);
        result
    }

    async fn ensure_bridge(&self, network_id: &str) -> Result<(), DaemonError> {
        let (bridge, ipam, mtu, ipam6) = {
            let st = self.lock();
            let n = &st.networks[network_id];
            (n.bridge.clone(), n.ipam.clone(), n.mtu(), n.ipam6.clone())
        };
        let Some(ipam) = ipam else { return Ok(()) };
        // Set up once per daemon run: a process spawn saved on every container start.
        if self
            .ready_bridges
            .lock()
            .expect("bridges lock")
            .contains(&bridge)
            && link::link_exists(&bridge)
        {
            return Ok(());
        }
        let b = bridge.clone();
        blocking(move || {
            link::ensure_bridge(&b, ipam.gateway, ipam.subnet, mtu)?;
            match ipam6 {
                Some(i6) => link::ensure_bridge_ipv6(&b, i6.gateway, i6.subnet.prefix()),
                None => Ok(()),
            }
        })
        .await?;
        self.ready_bridges
            .lock()
            .expect("bridges lock")
            .insert(bridge);
        Ok(())
    }

    // ------------------------------------------------------------ containers

    /// At container create: checks the network mode and keeps the endpoint
    /// configuration of `NetworkingConfig.EndpointsConfig`.
    ///
    /// # Errors
    /// `NotFound` for an unknown network, `InvalidArgument` for a bad `--ip`, aliases
    /// on the default bridge, or `--ip` on a network without a user-set subnet.
    pub fn register(
        &self,
        container_id: &str,
        mode: &str,
        networking_config: Option<&Value>,
        config_mac: Option<&str>,
        host_links: &[String],
    ) -> Result<(), DaemonError> {
        if !is_bridge_mode(mode) {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        {
            let st = self.lock();
            let primary = st
                .find(mode)
                .ok_or_else(|| DaemonError::not_found(format!("network {mode} not found")))?;
            let endpoints = networking_config
                .and_then(|n| n["EndpointsConfig"].as_object())
                .cloned()
                .unwrap_or_default();
            // `Config.MacAddress` (deprecated in API 1.44, still sent by docker-py)
            // is the primary network's MAC unless its endpoint names one.
            let mac = match config_mac.filter(|m| !m.is_empty()) {
                Some(m) => endpoint_config(&serde_json::json!({ "MacAddress": m }))?.mac,
                None => None,
            };
            // `--link` with a user-defined network mode is a DNS alias on it.
            let links = if primary.default {
                Vec::new()
            } else {
                host_links.to_vec()
            };
            configs.insert(
                primary.id.clone(),
                EndpointConfig {
                    mac: mac.clone(),
                    links: links.clone(),
                    ..EndpointConfig::default()
                },
            );
            for (name, cfg) in endpoints {
                let n = st
                    .find(&name)
                    .ok_or_else(|| DaemonError::not_found(format!("network {name} not found")))?;
                let mut c = endpoint_config(&cfg)?;
                if n.id == primary.id {
                    if c.mac.is_none() {
                        c.mac = mac.clone();
                    }
                    for l in &links {
                        if !c.links.contains(l) {
                            c.links.push(l.clone());
                        }
                    }
                }
                if n.default && (!c.aliases.is_empty() || c.ipv4.is_some()) {
                    return Err(DaemonError::invalid(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                configs.insert(n.id.clone(), c);
            }
        }
        self.lock()
            .configs
            .insert(container_id.to_string(), configs);
        self.persist()
    }

    /// At container removal: detaches and forgets its network configuration.
    pub async fn forget(&self, container_id: &str) {
        self.detach(container_id).await;
        if self.lock().configs.remove(container_id).is_some()
            && let Err(e) = self.persist()
        {
            tracing::warn!(container = %container_id, error = %e, "cannot write network state");
        }
    }

    /// The networks a container joins, its `NetworkMode`'s first.
    fn joins(&self, record: &ContainerRecord) -> Vec<(String, EndpointConfig)> {
        let st = self.lock();
        let mode = record.host_config.network_mode.as_str();
        let Some(primary) = st.find(mode).map(|n| n.id.clone()) else {
            return Vec::new();
        };
        // A container's configured networks are the ones it is connected to; its
        // `NetworkMode` network is among them unless it was disconnected from it.
        let Some(configs) = st.configs.get(&record.id).cloned() else {
            return vec![(primary, EndpointConfig::default())];
        };
        let mut out: Vec<(String, EndpointConfig)> = configs
            .get(&primary)
            .map(|c| (primary.clone(), c.clone()))
            .into_iter()
            .collect();
        out.extend(
            configs
                .into_iter()
                .filter(|(id, _)| *id != primary && st.networks.contains_key(id)),
        );
        out
    }

    /// The namespace file of a container with networks of berth's making.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir.join(container_id)
    }

    /// Whether the container's resolv.conf points at the embedded DNS server: it is on
    /// a user-defined network.
    pub fn uses_embedded_dns(&self, record: &ContainerRecord) -> bool {
        let st = self.lock();
        st.find(&record.host_config.network_mode)
            .is_some_and(|n| !n.default)
    }

    /// Connects a container about to start to its networks. Returns the namespace the
    /// runtime must join and the container's first address, or `None` for modes
    /// without a namespace of berth's making (`host`, `none`, `container:`).
    ///
    /// # Errors
    /// `Internal` when the host refuses (with Docker's message for a taken host port),
    /// `InvalidArgument` for bad port specifications or addresses.
    pub async fn attach(
        &self,
        record: &ContainerRecord,
    ) -> Result<Option<(PathBuf, Ipv4Addr)>, DaemonError> {
        if !is_bridge_mode(&record.host_config.network_mode) {
            return Ok(None);
        }
        let id = record.id.clone();
        let _op = self.op.lock().await;
        // A leftover from a start that failed half-way.
        self.detach_locked(&id).await;
        let joins = self.joins(record);
        if joins.is_empty() {
            return Err(DaemonError::not_found(format!(
                "network {} not found",
                record.host_config.network_mode
            )));
        }
        std::fs::create_dir_all(&self.netns_dir).map_err(internal("cannot create netns dir"))?;
        let netns = self.netns_path(&id);
        let ns = netns.clone();
        blocking(move || {
            link::delete_netns(&ns)?;
            link::create_netns(&ns)
        })
        .await?;
        let mut first_ip = None;
        for (i, (net_id, cfg)) in joins.iter().enumerate() {
            match self.join_locked(record, net_id, cfg, i).await {
                Ok(ip) => {
                    first_ip.get_or_insert(ip);
                }
                Err(e) => {
                    self.detach_locked(&id).await;
                    let _ = self.write_table().await;
                    return Err(e);
                }
            }
        }
        let written = self.persist().and(self.write_table().await);
        if let Err(e) = written {
            self.detach_locked(&id).await;
            return Err(e);
        }
        if let Err(e) = self.start_dns(record).await {
            tracing::warn!(container = %id, error = %e, "cannot start embedded DNS server");
        }
        let ip = first_ip.expect("at least one network joined");
        tracing::info!(container = %id, %ip, "container attached to its networks");
        Ok(Some((netns, ip)))
    }

    /// Adds one network's veth, address and (on `index` 0) ports to a container whose
    /// namespace exists. Leaves state persistence and the table to the caller.
    async fn join_locked(
        &self,
        record: &ContainerRecord,
        net_id: &str,
        cfg: &EndpointConfig,
        index: usize,
    ) -> Result<Ipv4Addr, DaemonError> {
        let id = record.id.clone();
        let is_default = self.lock().networks[net_id].default;
        if is_default {
            self.ensure_default_ipam()?;
        }
        self.ensure_bridge(net_id).await?;
        let (ip, subnet, gateway, bridge, internal, mtu) = {
            let mut st = self.lock();
            let n = st.networks.get_mut(net_id).expect("network exists");
            let ipam = n.ipam.as_mut().expect("ipam chosen");
            let ip = ipam
                .allocate(&id, cfg.ipv4)
                .map_err(|e| DaemonError::invalid(e.to_string()))?;
            (
                ip,
                ipam.subnet,
                ipam.gateway,
                n.bridge.clone(),
                n.internal,
                n.mtu(),
            )
        };
        let release = |svc: &Self| {
            let mut st = svc.lock();
            if let Some(n) = st.networks.get_mut(net_id) {
                if let Some(i) = n.ipam.as_mut() {
                    i.release(&id);
                }
                if let Some(i) = n.ipam6.as_mut() {
                    i.release(&id);
                }
            }
        };
        let ipv6 = {
            let mut st = self.lock();
            let n = st.networks.get_mut(net_id).expect("network exists");
            match n.ipam6.as_mut() {
                Some(i6) => match i6.allocate(&id, cfg.ipv6) {
                    Ok(a) => Some((a, i6.subnet.prefix(), i6.gateway)),
                    Err(e) => {
                        drop(st);
                        release(self);
                        return Err(DaemonError::invalid(e.to_string()));
                    }
                },
                None => None,
            }
        };
        let endpoint_id = new_id();
        let mut bound = Vec::new();
        if index == 0 {
            let requests = match ports::requests(
                record.host_config.port_bindings.as_ref(),
                &exposed(record),
                record.host_config.publish_all_ports,
            ) {
                Ok(r) => r,
                Err(e) => {
                    release(self);
                    return Err(DaemonError::invalid(e.to_string()));
                }
            };
            for r in &requests {
                match proxy::bind(r) {
                    Ok(b) => bound.push(b),
                    Err(e) => {
                        release(self);
                        return Err(DaemonError::internal(format!(
                            "failed to set up container networking: driver failed programming external connectivity on endpoint {} ({endpoint_id}): {e}",
                            record.name.trim_start_matches('/')
                        )));
                    }
                }
            }
        }
        let inner = self.free_inner_name(&id);
        let veth = VethConfig {
            host_name: link::host_veth_name(&id, inner_index(&inner)),
            netns: self.netns_path(&id),
            inner_name: inner.clone(),
            address: ip,
            subnet,
            gateway: (!internal && !self.has_default_route(&id)).then_some(gateway),
            mac: cfg.mac.clone().unwrap_or_else(|| ipam::mac_for(ip)),
            bridge,
            mtu,
            ipv6: ipv6.map(|(address, prefix, gw)| VethIpv6 {
                address,
                prefix,
                gateway: (!internal && !self.has_default_route(&id)).then_some(gw),
            }),
        };
        let v = veth.clone();
        if let Err(e) = blocking(move || link::setup_veth(&v)).await {
            release(self);
            return Err(e);
        }
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
        let name = record.name.trim_start_matches('/').to_string();
        let mut dns_names = vec![name, id[..12].to_string()];
        if !record.config.hostname.is_empty() {
            dns_names.push(record.config.hostname.clone());
        }
        dns_names.extend(cfg.aliases.iter().cloned());
        dns_names.iter_mut().for_each(|n| n.make_ascii_lowercase());
        dns_names.dedup();
        self.lock().endpoints.entry(id.clone()).or_default().insert(
            net_id.to_string(),
            Endpoint {
                endpoint_id,
                ip,
                prefix: subnet.prefix(),
                gateway,
                ipv6,
                mac: veth.mac.clone(),
                veth: veth.host_name.clone(),
                inner,
                ports: mappings,
                aliases: cfg.aliases.clone(),
                dns_names,
            },
        );
        if !proxies.is_empty() {
            self.proxies
                .lock()
                .expect("proxies lock")
                .entry(id.clone())
                .or_default()
                .extend(proxies);
        }
        let network = self.lock().networks.get(net_id).cloned();
        if let Some(n) = network {
            self.event(&n, "connect", Some(&id));
        }
        Ok(ip)
    }

    /// The first `ethN` a container does not use yet.
    fn free_inner_name(&self, id: &str) -> String {
        let st = self.lock();
        let used: HashSet<&str> = st
            .endpoints
            .get(id)
            .map(|e| e.values().map(|e| e.inner.as_str()).collect())
            .unwrap_or_default();
        (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(n.as_str()))
            .expect("an unused name")
    }

    fn has_default_route(&self, id: &str) -> bool {
        let st = self.lock();
        st.endpoints.get(id).is_some_and(|eps| {
            eps.iter()
                .any(|(nid, _)| st.networks.get(nid).is_some_and(|n| !n.internal))
        })
    }

    async fn start_dns(&self, record: &ContainerRecord) -> Result<(), DaemonError> {
        if !self.uses_embedded_dns(record)
            || self.dns.lock().expect("dns lock").contains_key(&record.id)
        {
            return Ok(());
        }
        let netns = self.netns_path(&record.id);
        let sockets = tokio::task::spawn_blocking(move || dns::bind_in_netns(&netns))
            .await
            .map_err(|e| DaemonError::internal(format!("dns task failed: {e}")))?
            .map_err(internal("cannot bind 127.0.0.11:53 in the container"))?;
        let upstream = match record.host_config.dns.as_ref().filter(|d| !d.is_empty()) {
            Some(servers) => servers
                .iter()
                .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect(),
            None => {
                dns::nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            }
        };
        let records = Arc::new(ContainerNames {
            svc: self.me.clone(),
            id: record.id.clone(),
        });
        let server = dns::serve(sockets, records, upstream)
            .map_err(internal("cannot serve embedded DNS"))?;
        self.dns
            .lock()
            .expect("dns lock")
            .insert(record.id.clone(), server);
        Ok(())
    }

    /// The addresses of `name` for a container: the containers on its user-defined
    /// networks that answer to it.
    fn lookup(&self, container_id: &str, name: &str) -> Option<Vec<std::net::IpAddr>> {
        let st = self.lock();
        let mine = st.endpoints.get(container_id)?;
        let mut out = Vec::new();
        for net_id in mine.keys() {
            if st.networks.get(net_id).is_none_or(|n| n.default) {
                continue;
            }
            let (bare, net_name) = (name, &st.networks[net_id].name);
            let bare = bare.strip_suffix(&format!(".{net_name}")).unwrap_or(bare);
            // A link on a user-defined network is a name only its holder resolves:
            // the alias answers with the linked container's address on that network.
            let links = st
                .configs
                .get(container_id)
                .and_then(|c| c.get(net_id))
                .map(|c| c.links.as_slice())
                .unwrap_or_default();
            for link in links {
                let (target, alias) = link.split_once(':').unwrap_or((link, link));
                if alias.rsplit('/').next() != Some(bare) {
                    continue;
                }
                let target = target.trim_start_matches('/');
                for eps in st.endpoints.values() {
                    if let Some(e) = eps.get(net_id)
                        && e.dns_names.iter().any(|n| n == target)
                    {
                        push_addresses(&mut out, e);
                    }
                }
            }
            for eps in st.endpoints.values() {
                if let Some(e) = eps.get(net_id)
                    && e.dns_names.iter().any(|n| n == bare)
                {
                    push_addresses(&mut out, e);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Disconnects a container from every network: closes its ports and DNS server,
    /// removes its namespace (and with it the veth pairs), frees its addresses.
    /// Nothing attached is fine.
    ///
    /// Containers exiting together (`compose down`, `rm -f` of several) detach
    /// concurrently: the global lock covers only the bookkeeping, the namespace and
    /// veth teardown runs outside it, and one firewall write serves them all. The
    /// addresses go back to IPAM only once the old namespace is gone, so a new
    /// container never shares the segment with a stale holder of its address. The
    /// state file is not rewritten here: restore drops endpoints of containers that
    /// are not running, and the next attach persists the release.
    pub async fn detach(&self, id: &str) {
        let taken = {
            let _op = self.op.lock().await;
            self.take_endpoints(id)
        };
        let Some(endpoints) = taken else { return };
        self.tear_down(id, &endpoints).await;
        self.release_addresses(id);
        if let Err(e) = self.write_table().await {
            tracing::warn!(container = %id, error = %e, "cannot update firewall table");
        }
        self.announce_detach(id, &endpoints);
    }

    /// [`NetworkService::detach`] for callers that hold the lock already; returns
    /// whether there was something to undo and leaves the table to the caller.
    async fn detach_locked(&self, id: &str) -> bool {
        let Some(endpoints) = self.take_endpoints(id) else {
            return false;
        };
        self.tear_down(id, &endpoints).await;
        self.release_addresses(id);
        if let Err(e) = self.persist() {
            tracing::warn!(container = %id, error = %e, "cannot write network state");
        }
        self.announce_detach(id, &endpoints);
        true
    }

    /// First step of a detach, under the lock: stops the container's port proxies and
    /// DNS server and takes its endpoints out of the state (so the next firewall write
    /// leaves its rules out). `None` when it has no network to undo.
    fn take_endpoints(&self, id: &str) -> Option<BTreeMap<String, Endpoint>> {
        self.proxies.lock().expect("proxies lock").remove(id);
        self.dns.lock().expect("dns lock").remove(id);
        let endpoints = self.lock().endpoints.remove(id).unwrap_or_default();
        (!endpoints.is_empty() || self.netns_path(id).exists()).then_some(endpoints)
    }

    /// Removes the container's namespace and its veth pairs.
    async fn tear_down(&self, id: &str, endpoints: &BTreeMap<String, Endpoint>) {
        let netns = self.netns_path(id);
        let veths: Vec<String> = endpoints.values().map(|e| e.veth.clone()).collect();
        if let Err(e) = blocking(move || {
            link::delete_netns(&netns)?;
            veths.iter().try_for_each(|v| link::delete_link(v))
        })
        .await
        {
            tracing::warn!(container = %id, error = %e, "cannot remove container network");
        }
    }

    fn release_addresses(&self, id: &str) {
        for n in self.lock().networks.values_mut() {
            if let Some(i) = n.ipam.as_mut() {
                i.release(id);
            }
            if let Some(i) = n.ipam6.as_mut() {
                i.release(id);
            }
        }
    }

    fn announce_detach(&self, id: &str, endpoints: &BTreeMap<String, Endpoint>) {
        let networks: Vec<Network> = {
            let st = self.lock();
            endpoints
                .keys()
                .filter_map(|n| st.networks.get(n).cloned())
                .collect()
        };
        for n in &networks {
            self.event(n, "disconnect", Some(id));
        }
        tracing::info!(container = %id, "container detached from its networks");
    }

    /// At daemon start: keeps the endpoints of containers still running (re-binding
    /// their port proxies and DNS servers), removes the others, recreates the bridges
    /// and rewrites the firewall table.
    pub async fn restore(&self, running: &[ContainerRecord]) {
        let _op = self.op.lock().await;
        let live: HashSet<&str> = running.iter().map(|r| r.id.as_str()).collect();
        let ids: Vec<String> = self.lock().endpoints.keys().cloned().collect();
        for id in ids {
            if !live.contains(id.as_str()) {
                self.detach_locked(&id).await;
            }
        }
        let net_ids: Vec<String> = self.lock().networks.keys().cloned().collect();
        for net_id in net_ids {
            if let Err(e) = self.ensure_bridge(&net_id).await {
                tracing::warn!(network = %net_id, error = %e, "cannot set up the bridge");
            }
        }
        for r in running {
            let eps = self
                .lock()
                .endpoints
                .get(&r.id)
                .cloned()
                .unwrap_or_default();
            let mut proxies = Vec::new();
            for e in eps.values() {
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
                            tracing::warn!(container = %r.id, error = %e, "cannot re-establish port proxy")
                        }
                    }
                }
            }
            self.proxies
                .lock()
                .expect("proxies lock")
                .insert(r.id.clone(), proxies);
            if !eps.is_empty()
                && let Err(e) = self.start_dns(r).await
            {
                tracing::warn!(container = %r.id, error = %e, "cannot restore embedded DNS server");
            }
        }
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, "cannot write network state");
        }
        // A daemon that never set up a network leaves nftables alone.
        if !self.ruleset().bridges.is_empty()
            && let Err(e) = self.write_table().await
        {
            tracing::warn!(error = %e, "cannot restore firewall table");
        }
    }

    /// A container was renamed: its DNS names follow.
    pub fn rename(&self, container_id: &str, old: &str, new: &str) {
        let (old, new) = (
            old.trim_start_matches('/').to_ascii_lowercase(),
            new.trim_start_matches('/').to_ascii_lowercase(),
        );
        if let Some(eps) = self.lock().endpoints.get_mut(container_id) {
            for e in eps.values_mut() {
                e.dns_names.retain(|n| *n != old);
                e.dns_names.insert(0, new.clone());
            }
        }
        if let Err(e) = self.persist() {
            tracing::warn!(container = %container_id, error = %e, "cannot write network state");
        }
    }

    /// The container's first IPv6 address, for its /etc/hosts.
    pub fn first_ipv6(&self, container_id: &str) -> Option<std::net::Ipv6Addr> {
        let st = self.lock();
        st.endpoints
            .get(container_id)?
            .values()
            .find_map(|e| e.ipv6.map(|(a, _, _)| a))
    }

    /// The address `--add-host NAME:host-gateway` stands for: the default bridge's
    /// gateway once it is set up, else the gateway of the container's own network.
    pub fn host_gateway(&self, container_id: &str) -> Option<Ipv4Addr> {
        let st = self.lock();
        let default = st.networks.get(&st.default_id())?;
        default
            .ipam
            .as_ref()
            .filter(|_| link::link_exists(&default.bridge))
            .map(|i| i.gateway)
            .or_else(|| {
                st.endpoints
                    .get(container_id)
                    .and_then(|e| e.values().next())
                    .map(|e| e.gateway)
            })
    }

    /// A container's endpoint on its first network, while it has one.
    pub fn endpoint(&self, id: &str) -> Option<Endpoint> {
        let st = self.lock();
        let eps = st.endpoints.get(id)?;
        eps.values()
            .find(|e| e.inner == "eth0")
            .or(eps.values().next())
            .cloned()
    }
}

/// A container's view of the names on its networks, for its DNS server.
struct ContainerNames {
    svc: Weak<NetworkService>,
    id: String,
}

impl dns::Records for ContainerNames {
    fn lookup(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.svc.upgrade()?.lookup(&self.id, name)
    }
}

/// An endpoint's addresses, IPv4 and (on an IPv6 network) IPv6, once each.
fn push_addresses(out: &mut Vec<std::net::IpAddr>, e: &Endpoint) {
    let v6 = e.ipv6.map(|(a, _, _)| std::net::IpAddr::V6(a));
    for ip in std::iter::once(std::net::IpAddr::V4(e.ip)).chain(v6) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
}

/// An `EndpointSettings` of the API (`NetworkingConfig.EndpointsConfig.*`, the body of
/// `network connect`).
///
/// # Errors
/// `InvalidArgument` for a bad address.
pub fn endpoint_config(v: &Value) -> Result<EndpointConfig, DaemonError> {
    let aliases = v["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ipv4 = match v["IPAMConfig"]["IPv4Address"].as_str() {
        Some("") | None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| DaemonError::invalid(format!("invalid IPv4 address: {s}")))?,
        ),
    };
    let ipv6 = match v["IPAMConfig"]["IPv6Address"].as_str() {
        Some("") | None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| DaemonError::invalid(format!("invalid IPv6 address: {s}")))?,
        ),
    };
    let mac = match v["MacAddress"].as_str() {
        Some("") | None => None,
        Some(m) if valid_mac(m) => Some(m.to_ascii_lowercase()),
        Some(m) => return Err(DaemonError::invalid(format!("invalid MAC address: {m}"))),
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let link_local_ips = strings(&v["IPAMConfig"]["LinkLocalIPs"]);
    if let Some(bad) = link_local_ips
        .iter()
        .find(|ip| ip.parse::<std::net::IpAddr>().is_err())
    {
        return Err(DaemonError::invalid(format!(
            "invalid link-local IP address: {bad}"
        )));
    }
    let links = strings(&v["Links"]);
    let driver_opts = match &v["DriverOpts"] {
        Value::Null => None,
        opts => Some(serde_json::from_value(opts.clone()).map_err(|_| {
            DaemonError::invalid("DriverOpts: a map of strings to strings is expected")
        })?),
    };
    Ok(EndpointConfig {
        aliases,
        ipv4,
        ipv6,
        mac,
        link_local_ips,
        links,
        driver_opts,
    })
}

/// Six colon-separated hex octets, unicast (a multicast MAC would break the bridge).
fn valid_mac(m: &str) -> bool {
    let octets: Vec<&str> = m.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()))
        && u8::from_str_radix(octets[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// `eth3` → 3.
fn inner_index(inner: &str) -> usize {
    inner.trim_start_matches("eth").parse().unwrap_or(0)
}

fn valid_bridge_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ' ', ':'])
        && name != "."
        && name != ".."
}

/// The built-in networks' IDs: fixed per name, so that they stay the same across
/// restarts without being stored.
fn builtin_id(name: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(format!("berth-network-{name}")))
}

#[cfg(test)]
mod tests;
