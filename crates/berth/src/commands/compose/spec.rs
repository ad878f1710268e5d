//! A compose service as Engine API requests: the `POST /containers/create`
//! body of one replica and the endpoint settings of each network it joins.
//!
//! Pure functions of the model, so the mapping is unit-tested without a
//! daemon. Named volumes and networks are given by their engine names,
//! which only the project knows (`<project>_<key>` unless `name:`).

use std::collections::BTreeMap;

use berth_compose::labels;
use berth_compose::model::{Project, Service};
use serde_json::{Map, Value, json};

/// What sets one container apart from the other replicas of its service.
pub(crate) struct Replica<'a> {
    /// The service key.
    pub(crate) service: &'a str,
    /// Replica number (from 1), or 0 for a one-off `run` container.
    pub(crate) number: u32,
    /// The config hash to label the container with.
    pub(crate) config_hash: &'a str,
    /// For `run`: the slug in the name and labels.
    pub(crate) slug: Option<&'a str>,
}

/// The labels every container of the project carries (docker-compose 1.29's set).
pub(crate) fn container_labels(project: &Project, r: &Replica<'_>) -> Map<String, Value> {
    let svc = &project.services[r.service];
    let mut l: Map<String, Value> = svc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut put = |k: &str, v: String| {
        l.insert(k.to_string(), Value::String(v));
    };
    put(labels::PROJECT, project.name.clone());
    put(labels::SERVICE, r.service.to_string());
    put(
        labels::ONEOFF,
        if r.slug.is_some() { "True" } else { "False" }.to_string(),
    );
    put(labels::CONTAINER_NUMBER, r.number.max(1).to_string());
    put(labels::CONFIG_HASH, r.config_hash.to_string());
    put(labels::VERSION, labels::COMPOSE_VERSION.to_string());
    put(
        labels::WORKING_DIR,
        project.working_dir.to_string_lossy().into_owned(),
    );
    put(
        labels::CONFIG_FILES,
        project
            .config_files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(slug) = r.slug {
        put(labels::SLUG, slug.to_string());
    }
    l
}

/// The engine name of the network a service joins first (the one the
/// container is created on), with its key.
pub(crate) fn primary_network<'a>(
    project: &'a Project,
    svc: &'a Service,
) -> Option<(&'a str, &'a str)> {
    svc.networks.keys().next().map(|k| {
        (
            k.as_str(),
            project
                .networks
                .get(k)
                .map_or(k.as_str(), |n| n.name.as_str()),
        )
    })
}

/// The endpoint settings on network `key`: the service name and the
/// network's aliases as DNS aliases (not for one-off containers).
pub(crate) fn endpoint_config(svc: &Service, service: &str, key: &str, oneoff: bool) -> Value {
    let mut aliases: Vec<String> = Vec::new();
    if !oneoff {
        aliases.push(service.to_string());
        if let Some(n) = svc.networks.get(key) {
            aliases.extend(n.aliases.iter().cloned());
        }
    }
    let mut ep = json!({ "Aliases": aliases });
    if let Some(ip) = svc.networks.get(key).and_then(|n| n.ipv4_address.clone()) {
        ep["IPAMConfig"] = json!({ "IPv4Address": ip });
    }
    ep
}

fn restart_policy(restart: Option<&str>) -> Value {
    match restart {
        None | Some("no") | Some("") => json!({ "Name": "no" }),
        Some(r) => match r.split_once(':') {
            Some((name, count)) => json!({
                "Name": name,
                "MaximumRetryCount": count.parse::<i64>().unwrap_or(0),
            }),
            None => json!({ "Name": r }),
        },
    }
}

/// One of the service's container options (`berth_compose::model::CONTAINER_OPTIONS`)
/// as the `HostConfig` field it sets, or `None` for those set elsewhere (links,
/// the MAC address, which goes on the endpoint).
fn host_option(project: &Project, key: &str, value: &Value) -> Option<(&'static str, Value)> {
    let same = |field: &'static str| Some((field, value.clone()));
    match key {
        "logging" => Some((
            "LogConfig",
            json!({
                "Type": value["driver"].as_str().unwrap_or("json-file"),
                "Config": value.get("options").cloned().unwrap_or_else(|| json!({})),
            }),
        )),
        "ulimits" => Some((
            "Ulimits",
            Value::Array(
                value
                    .as_object()?
                    .iter()
                    .map(|(name, l)| json!({"Name": name, "Soft": l["soft"], "Hard": l["hard"]}))
                    .collect(),
            ),
        )),
        "devices" => Some((
            "Devices",
            Value::Array(
                value
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|d| {
                        let mut parts = d.splitn(3, ':');
                        let host = parts.next().unwrap_or_default();
                        let inner = parts.next().filter(|p| !p.is_empty()).unwrap_or(host);
                        let perms = parts.next().unwrap_or("rwm");
                        json!({"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms})
                    })
                    .collect(),
            ),
        )),
        "volumes_from" => Some((
            "VolumesFrom",
            Value::Array(
                value
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| {
                        // `service[:mode]` names the service's first container;
                        // `container:name[:mode]` a container as is.
                        let v = v.strip_prefix("container:").map_or_else(
                            || {
                                let (service, mode) = v.split_once(':').map_or((v, None), |(s, m)| (s, Some(m)));
                                let name = if project.services.contains_key(service) {
                                    super::up::replica_name(project, service, 1)
                                } else {
                                    service.to_string()
                                };
                                mode.map_or(name.clone(), |m| format!("{name}:{m}"))
                            },
                            str::to_string,
                        );
                        Value::String(v)
                    })
                    .collect(),
            ),
        )),
        "ipc" => same("IpcMode"),
        "pid" => same("PidMode"),
        "uts" => same("UTSMode"),
        "userns_mode" => same("UsernsMode"),
        "cgroup" => same("CgroupnsMode"),
        "cgroup_parent" => same("CgroupParent"),
        "isolation" => same("Isolation"),
        "runtime" => same("Runtime"),
        "mem_reservation" => same("MemoryReservation"),
        "memswap_limit" => same("MemorySwap"),
        "mem_swappiness" => same("MemorySwappiness"),
        "oom_score_adj" => same("OomScoreAdj"),
        "oom_kill_disable" => same("OomKillDisable"),
        "cpu_shares" => same("CpuShares"),
        "cpuset" => same("CpusetCpus"),
        "cpu_quota" => same("CpuQuota"),
        "cpu_period" => same("CpuPeriod"),
        "dns_search" => same("DnsSearch"),
        "dns_opt" => same("DnsOptions"),
        "group_add" => same("GroupAdd"),
        "device_cgroup_rules" => same("DeviceCgroupRules"),
        _ => None,
    }
}

/// The `POST /containers/create` body of one replica.
pub(crate) fn create_body(project: &Project, r: &Replica<'_>, image: &str) -> Value {
    let svc = &project.services[r.service];
    let env: Vec<String> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut exposed: BTreeMap<String, Value> = BTreeMap::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &svc.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    // One-off containers publish nothing, as with docker-compose's `run`.
    if r.slug.is_none() {
        for p in &svc.ports {
            let key = format!("{}/{}", p.target, p.protocol);
            exposed.insert(key.clone(), json!({}));
            bindings.entry(key).or_default().push(json!({
                "HostIp": p.host_ip.clone().unwrap_or_default(),
                "HostPort": p.published.clone().unwrap_or_default(),
            }));
        }
    }
    let mut binds = Vec::new();
    let mut anonymous: BTreeMap<String, Value> = BTreeMap::new();
    let mut tmpfs: BTreeMap<String, String> = BTreeMap::new();
    for t in &svc.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), opts.to_string());
    }
    for v in &svc.volumes {
        let ro = if v.read_only { ":ro" } else { "" };
        match (v.kind.as_str(), &v.source) {
            ("tmpfs", _) => {
                tmpfs.insert(v.target.clone(), String::new());
            }
            ("volume", None) => {
                anonymous.insert(v.target.clone(), json!({}));
            }
            ("volume", Some(key)) => {
                let name = project
                    .volumes
                    .get(key)
                    .map_or(key.as_str(), |vol| vol.name.as_str());
                binds.push(format!("{name}:{}{ro}", v.target));
            }
            (_, Some(src)) => binds.push(format!("{src}:{}{ro}", v.target)),
            (_, None) => {}
        }
    }
    let oneoff = r.slug.is_some();
    let (network_mode, endpoints) = match (&svc.network_mode, primary_network(project, svc)) {
        (Some(mode), _) => (mode.clone(), json!({})),
        (None, Some((key, name))) => {
            let mut ep = endpoint_config(svc, r.service, key, oneoff);
            if let Some(mac) = svc.container_options.get("mac_address") {
                ep["MacAddress"] = mac.clone();
            }
            (name.to_string(), json!({ name: ep }))
        }
        (None, None) => ("default".to_string(), json!({})),
    };
    let healthcheck = svc.healthcheck.as_ref().map(|h| {
        json!({
            "Test": h.test,
            "Interval": h.interval.unwrap_or(0),
            "Timeout": h.timeout.unwrap_or(0),
            "Retries": h.retries.unwrap_or(0),
            "StartPeriod": h.start_period.unwrap_or(0),
            "StartInterval": h.start_interval.unwrap_or(0),
        })
    });
    let mut host = json!({
        "Binds": binds,
        "PortBindings": bindings,
        "RestartPolicy": restart_policy(svc.restart.as_deref()),
        "NetworkMode": network_mode,
        "Privileged": svc.privileged,
        "ReadonlyRootfs": svc.read_only,
        "CapAdd": svc.cap_add,
        "CapDrop": svc.cap_drop,
        "ExtraHosts": svc.extra_hosts,
        "Dns": svc.dns,
        "SecurityOpt": svc.security_opt,
        "Tmpfs": tmpfs,
        "Sysctls": svc.sysctls,
    });
    let mut set = |k: &str, v: Value| {
        host[k] = v;
    };
    if let Some(i) = svc.init {
        set("Init", json!(i));
    }
    if let Some(m) = svc.mem_limit {
        set("Memory", json!(m));
    }
    if let Some(c) = svc.cpus {
        set("NanoCpus", json!((c * 1e9) as i64));
    }
    if let Some(p) = svc.pids_limit {
        set("PidsLimit", json!(p));
    }
    if let Some(s) = svc.shm_size {
        set("ShmSize", json!(s));
    }
    for (key, value) in &svc.container_options {
        if let Some((field, v)) = host_option(project, key, value) {
            set(field, v);
        }
    }
    let mut links: Vec<String> = Vec::new();
    for link in &svc.links {
        let (service, alias) = link.split_once(':').unwrap_or((link, link));
        // Every replica of the linked service, under the alias and its own names,
        // as docker-compose links them.
        let replicas = project
            .services
            .get(service)
            .map_or(1, |s| s.scale.unwrap_or(1).max(1));
        for n in 1..=replicas {
            let name = super::up::replica_name(project, service, n);
            links.push(format!("{name}:{alias}"));
            links.push(format!("{name}:{name}"));
        }
    }
    if let Some(external) = svc
        .container_options
        .get("external_links")
        .and_then(Value::as_array)
    {
        for l in external.iter().filter_map(Value::as_str) {
            let (container, alias) = l.split_once(':').unwrap_or((l, l));
            links.push(format!("{container}:{alias}"));
        }
    }
    if !links.is_empty() {
        set("Links", json!(links));
    }
    // Secrets and configs from files are read-only binds of those files.
    let mut grant_binds = Vec::new();
    for (grants, sources, secret) in [
        (&svc.secrets, &project.secrets, true),
        (&svc.configs, &project.configs, false),
    ] {
        for g in grants {
            if let Some(file) = sources.get(&g.source).and_then(|s| s.file.as_ref()) {
                grant_binds.push(format!("{}:{}:ro", file.display(), g.path(secret)));
            }
        }
    }
    if !grant_binds.is_empty()
        && let Some(b) = host["Binds"].as_array_mut()
    {
        b.extend(grant_binds.into_iter().map(Value::String));
    }
    let mut body = json!({
        "Image": image,
        "Env": env,
        "Labels": container_labels(project, r),
        "ExposedPorts": exposed,
        "Volumes": anonymous,
        "Tty": svc.tty,
        "OpenStdin": svc.stdin_open,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "HostConfig": host,
        "NetworkingConfig": { "EndpointsConfig": endpoints },
    });
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body[k] = v;
        }
    };
    put("Cmd", svc.command.as_ref().map(|c| json!(c)));
    put("Entrypoint", svc.entrypoint.as_ref().map(|c| json!(c)));
    put("Hostname", svc.hostname.as_ref().map(|c| json!(c)));
    put("Domainname", svc.domainname.as_ref().map(|c| json!(c)));
    put("User", svc.user.as_ref().map(|c| json!(c)));
    put("WorkingDir", svc.working_dir.as_ref().map(|c| json!(c)));
    put("StopSignal", svc.stop_signal.as_ref().map(|c| json!(c)));
    put("StopTimeout", svc.stop_grace_period.map(|c| json!(c)));
    put("Healthcheck", healthcheck);
    body
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use berth_compose::model::{Network, Port, ServiceNetwork, ServiceVolume, Volume};

    use super::*;

    fn project() -> Project {
        let svc = Service {
            image: Some("busybox".into()),
            command: Some(vec!["httpd".into(), "-f".into()]),
            environment: [
                ("A".to_string(), Some("1".to_string())),
                ("B".to_string(), None),
            ]
            .into_iter()
            .collect(),
            ports: vec![Port {
                target: 80,
                published: Some("8080".into()),
                host_ip: None,
                protocol: "tcp".into(),
            }],
            volumes: vec![
                ServiceVolume {
                    kind: "volume".into(),
                    source: Some("data".into()),
                    target: "/data".into(),
                    read_only: true,
                },
                ServiceVolume {
                    kind: "volume".into(),
                    source: None,
                    target: "/scratch".into(),
                    read_only: false,
                },
            ],
            networks: [(
                "back".to_string(),
                ServiceNetwork {
                    aliases: vec!["api".into()],
                    ipv4_address: None,
                },
            )]
            .into_iter()
            .collect(),
            restart: Some("on-failure:3".into()),
            cpus: Some(0.5),
            ..Service::default()
        };
        Project {
            name: "app".into(),
            working_dir: PathBuf::from("/src/app"),
            config_files: vec![PathBuf::from("/src/app/compose.yaml")],
            services: [("web".to_string(), svc)].into_iter().collect(),
            networks: [(
                "back".to_string(),
                Network {
                    name: "app_back".into(),
                    ..Network::default()
                },
            )]
            .into_iter()
            .collect(),
            volumes: [(
                "data".to_string(),
                Volume {
                    name: "app_data".into(),
                    ..Volume::default()
                },
            )]
            .into_iter()
            .collect(),
            secrets: BTreeMap::new(),
            configs: BTreeMap::new(),
            disabled: BTreeMap::new(),
        }
    }

    #[test]
    fn a_replica_is_created_with_compose_labels_and_engine_names() {
        let p = project();
        let r = Replica {
            service: "web",
            number: 2,
            config_hash: "abc",
            slug: None,
        };
        let b = create_body(&p, &r, "busybox");
        assert_eq!(b["Labels"][labels::PROJECT], "app");
        assert_eq!(b["Labels"][labels::SERVICE], "web");
        assert_eq!(b["Labels"][labels::CONTAINER_NUMBER], "2");
        assert_eq!(b["Labels"][labels::ONEOFF], "False");
        assert_eq!(b["Labels"][labels::CONFIG_HASH], "abc");
        assert_eq!(b["Labels"][labels::CONFIG_FILES], "/src/app/compose.yaml");
        assert_eq!(b["Env"], json!(["A=1"]), "unset variables are left out");
        assert_eq!(b["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(b["HostConfig"]["Binds"], json!(["app_data:/data:ro"]));
        assert_eq!(b["Volumes"], json!({"/scratch": {}}));
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(b["HostConfig"]["NetworkMode"], "app_back");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["app_back"]["Aliases"],
            json!(["web", "api"])
        );
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(b["HostConfig"]["NanoCpus"], 500_000_000);
    }

    #[test]
    fn a_one_off_container_publishes_nothing_and_has_no_alias() {
        let p = project();
        let r = Replica {
            service: "web",
            number: 0,
            config_hash: "abc",
            slug: Some("0123456789abcdef"),
        };
        let b = create_body(&p, &r, "busybox");
        assert_eq!(b["Labels"][labels::ONEOFF], "True");
        assert_eq!(b["Labels"][labels::SLUG], "0123456789abcdef");
        assert_eq!(b["HostConfig"]["PortBindings"], json!({}));
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["app_back"]["Aliases"],
            json!([])
        );
    }
}
