//! Typing the merged, canonical raw tree into the [`crate::model`], with
//! every error carrying the key it is about, so `load` can name the file,
//! service and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::interpolate::Environment;
use crate::load::{LoadError, invalid_top};
use crate::merge::{KeyError, scalar_text, to_map};
use crate::model::{
    Build, CONTAINER_OPTIONS, Condition, DependsOn, FileGrant, FileSource, Healthcheck, Network,
    Port, Service, ServiceNetwork, ServiceVolume, Volume,
};
use crate::{dotenv, parse};

/// Keys Compose defines that have no effect on a single engine (they are about
/// swarm, the development watcher or file-name prefixes); accepted so that
/// tutorial files load.
const IGNORED_SERVICE_KEYS: [&str; 3] = ["container_name_prefix", "stop_timeout", "develop"];

fn string_list(v: &Value, key: &str) -> Result<Vec<String>, KeyError> {
    match v {
        Value::Array(items) => Ok(items.iter().map(scalar_text).collect()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Null => Ok(vec![]),
        _ => Err((key.to_string(), "must be a list of strings".into())),
    }
}

fn command(v: &Value, key: &str) -> Result<Option<Vec<String>>, KeyError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse::shell_split(s)
            .map(Some)
            .map_err(|e| (key.to_string(), e)),
        Value::Array(_) => string_list(v, key).map(Some),
        _ => Err((key.to_string(), "must be a string or a list".into())),
    }
}

fn text(v: &Value, key: &str) -> Result<String, KeyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err((key.to_string(), "must be a string".into())),
    }
}

fn boolean(v: &Value, key: &str) -> Result<bool, KeyError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "True" | "yes") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "false" | "False" | "no") => Ok(false),
        _ => Err((key.to_string(), "must be a boolean".into())),
    }
}

fn integer(v: &Value, key: &str) -> Result<i64, KeyError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| (key.to_string(), "must be an integer".into())),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| (key.to_string(), "must be an integer".into())),
        _ => Err((key.to_string(), "must be an integer".into())),
    }
}

fn duration(v: &Value, key: &str) -> Result<i64, KeyError> {
    match v {
        Value::Number(n) => Ok((n.as_f64().unwrap_or(0.0) * 1e9) as i64),
        Value::String(s) => parse::duration_nanos(s).map_err(|e| (key.to_string(), e)),
        _ => Err((key.to_string(), "must be a duration".into())),
    }
}

fn size(v: &Value, key: &str) -> Result<i64, KeyError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| (key.to_string(), "must be a size".into())),
        Value::String(s) => parse::size_bytes(s).map_err(|e| (key.to_string(), e)),
        _ => Err((key.to_string(), "must be a size".into())),
    }
}

fn float(v: &Value, key: &str) -> Result<f64, KeyError> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| (key.to_string(), "must be a number".into())),
        _ => Err((key.to_string(), "must be a number".into())),
    }
}

fn string_map(v: &Value, key: &str) -> Result<BTreeMap<String, String>, KeyError> {
    Ok(to_map(v, key)?
        .into_iter()
        .map(|(k, v)| (k, scalar_text(&v)))
        .collect())
}

fn opt_string_map(v: &Value, key: &str) -> Result<BTreeMap<String, Option<String>>, KeyError> {
    Ok(to_map(v, key)?
        .into_iter()
        .map(|(k, v)| {
            let v = if v.is_null() {
                None
            } else {
                Some(scalar_text(&v))
            };
            (k, v)
        })
        .collect())
}

/// Types one merged, canonical service. Errors carry the key.
pub(crate) fn type_service(
    body: &Map<String, Value>,
    env: &Environment,
) -> Result<Service, KeyError> {
    let mut s = Service::default();
    let mut env_files: Vec<(String, bool)> = Vec::new();
    for (key, v) in body {
        let k = key.as_str();
        match k {
            "image" => s.image = Some(text(v, k)?),
            "build" => s.build = Some(type_build(v)?),
            "command" => s.command = command(v, k)?,
            "entrypoint" => s.entrypoint = command(v, k)?,
            "environment" => s.environment = opt_string_map(v, k)?,
            "env_file" => {
                let Value::Array(items) = v else {
                    return Err((k.into(), "must be a string or a list".into()));
                };
                for item in items {
                    match item {
                        Value::String(p) => env_files.push((p.clone(), true)),
                        Value::Object(m) => env_files.push((
                            m.get("path").map(scalar_text).unwrap_or_default(),
                            m.get("required")
                                .map(|r| boolean(r, k))
                                .transpose()?
                                .unwrap_or(true),
                        )),
                        _ => return Err((k.into(), "entries must be paths".into())),
                    }
                }
            }
            "ports" => s.ports = type_ports(v)?,
            "expose" => s.expose = string_list(v, k)?,
            "volumes" => s.volumes = type_volumes_of_service(v)?,
            "networks" => s.networks = type_service_networks(v)?,
            "network_mode" => s.network_mode = Some(text(v, k)?),
            "depends_on" => s.depends_on = type_depends_on(v)?,
            "healthcheck" => s.healthcheck = Some(type_healthcheck(v)?),
            "restart" => s.restart = Some(text(v, k)?),
            "labels" => s.labels = string_map(v, k)?,
            "container_name" => s.container_name = Some(text(v, k)?),
            "hostname" => s.hostname = Some(text(v, k)?),
            "domainname" => s.domainname = Some(text(v, k)?),
            "user" => s.user = Some(text(v, k)?),
            "working_dir" => s.working_dir = Some(text(v, k)?),
            "scale" => s.scale = Some(integer(v, k)?.max(0) as u32),
            "deploy" => type_deploy(v, &mut s)?,
            "init" => s.init = Some(boolean(v, k)?),
            "tty" => s.tty = boolean(v, k)?,
            "stdin_open" => s.stdin_open = boolean(v, k)?,
            "privileged" => s.privileged = boolean(v, k)?,
            "read_only" => s.read_only = boolean(v, k)?,
            "stop_signal" => s.stop_signal = Some(text(v, k)?),
            "stop_grace_period" => {
                s.stop_grace_period = Some((duration(v, k)? / 1_000_000_000).max(0) as u64)
            }
            "cap_add" => s.cap_add = string_list(v, k)?,
            "cap_drop" => s.cap_drop = string_list(v, k)?,
            "mem_limit" => s.mem_limit = Some(size(v, k)?),
            "cpus" => s.cpus = Some(float(v, k)?),
            "pids_limit" => s.pids_limit = Some(integer(v, k)?),
            "shm_size" => s.shm_size = Some(size(v, k)?),
            "extra_hosts" => s.extra_hosts = string_list(v, k)?,
            "dns" => s.dns = string_list(v, k)?,
            "tmpfs" => s.tmpfs = string_list(v, k)?,
            "security_opt" => s.security_opt = string_list(v, k)?,
            "sysctls" => s.sysctls = string_map(v, k)?,
            "profiles" => s.profiles = string_list(v, k)?,
            "pull_policy" => s.pull_policy = Some(text(v, k)?),
            "platform" => s.platform = Some(text(v, k)?),
            "links" => s.links = string_list(v, k)?,
            "secrets" => s.secrets = type_grants(v, k)?,
            "configs" => s.configs = type_grants(v, k)?,
            k if CONTAINER_OPTIONS.contains(&k) => {
                s.container_options
                    .insert(k.to_string(), container_option(k, v)?);
            }
            k if IGNORED_SERVICE_KEYS.contains(&k) => {}
            _ => {
                return Err((
                    String::new(),
                    format!("additional property {k} is not allowed"),
                ));
            }
        }
    }
    // A link is also a dependency, started first, as Compose treats it.
    for link in &s.links {
        let service = link.split(':').next().unwrap_or_default().to_string();
        s.depends_on.entry(service).or_insert(DependsOn {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        });
    }
    if s.image.is_none() && s.build.is_none() {
        return Err((
            String::new(),
            "has neither an image nor a build context specified".into(),
        ));
    }
    for (path, required) in env_files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(("env_file".into(), format!("cannot read {path}: {e}")));
            }
        };
        let lines =
            dotenv::parse(&text).map_err(|e| ("env_file".to_string(), format!("{path}: {e}")))?;
        for (k, v) in lines {
            let v = v.or_else(|| env.get(&k).cloned());
            s.environment.entry(k).or_insert(v);
        }
    }
    // A bare `KEY` takes its value from the environment, as Compose resolves it.
    for (k, v) in s.environment.iter_mut() {
        if v.is_none() {
            *v = env.get(k).cloned();
        }
    }
    Ok(s)
}

/// Checks one of [`CONTAINER_OPTIONS`] and returns it in canonical form (sizes in
/// bytes, single strings as lists where Compose allows either).
fn container_option(k: &str, v: &Value) -> Result<Value, KeyError> {
    let must = |m: &str| Err((k.to_string(), m.to_string()));
    match k {
        "logging" => {
            let Value::Object(m) = v else {
                return must("must be a mapping");
            };
            let mut out = Map::new();
            for (field, value) in m {
                match field.as_str() {
                    "driver" => {
                        out.insert(field.clone(), Value::String(text(value, "logging.driver")?));
                    }
                    "options" => {
                        let opts = string_map(value, "logging.options")?;
                        out.insert(
                            field.clone(),
                            serde_json::to_value(opts).unwrap_or_default(),
                        );
                    }
                    other => {
                        return Err((
                            format!("logging.{other}"),
                            format!("additional property {other} is not allowed"),
                        ));
                    }
                }
            }
            Ok(Value::Object(out))
        }
        "ulimits" => {
            let Value::Object(m) = v else {
                return must("must be a mapping");
            };
            let mut out = Map::new();
            for (name, limit) in m {
                let key = format!("ulimits.{name}");
                let (soft, hard) = match limit {
                    Value::Object(l) => (
                        integer(l.get("soft").unwrap_or(&Value::Null), &key)?,
                        integer(l.get("hard").unwrap_or(&Value::Null), &key)?,
                    ),
                    other => {
                        let n = integer(other, &key)?;
                        (n, n)
                    }
                };
                out.insert(
                    name.clone(),
                    serde_json::json!({"soft": soft, "hard": hard}),
                );
            }
            Ok(Value::Object(out))
        }
        "devices" => {
            let Value::Array(items) = v else {
                return must("must be a list");
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(d) => out.push(Value::String(d.clone())),
                    // The long form, as the short one: source:target:permissions.
                    Value::Object(m) => {
                        let field = |f: &str| m.get(f).map(scalar_text);
                        let source = field("source").ok_or_else(|| {
                            (format!("devices.{i}"), "needs a source".to_string())
                        })?;
                        let target = field("target").unwrap_or_else(|| source.clone());
                        let perms = field("permissions").unwrap_or_else(|| "rwm".into());
                        out.push(Value::String(format!("{source}:{target}:{perms}")));
                    }
                    _ => return Err((format!("devices.{i}"), "must be a string".into())),
                }
            }
            Ok(Value::Array(out))
        }
        "mem_reservation" | "memswap_limit" => match v {
            Value::Number(n) if n.as_i64() == Some(-1) => Ok(v.clone()),
            _ => Ok(Value::from(size(v, k)?)),
        },
        "mem_swappiness" | "oom_score_adj" | "cpu_shares" | "cpu_quota" | "cpu_period" => {
            Ok(Value::from(integer(v, k)?))
        }
        "oom_kill_disable" => Ok(Value::Bool(boolean(v, k)?)),
        "dns_search"
        | "dns_opt"
        | "group_add"
        | "volumes_from"
        | "external_links"
        | "device_cgroup_rules" => Ok(serde_json::to_value(string_list(v, k)?).unwrap_or_default()),
        _ => Ok(Value::String(text(v, k)?)),
    }
}

/// A service's `secrets:` or `configs:`: names, or `{source, target, uid, gid, mode}`.
fn type_grants(v: &Value, key: &str) -> Result<Vec<FileGrant>, KeyError> {
    let Value::Array(items) = v else {
        return Err((key.to_string(), "must be a list".into()));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = format!("{key}.{i}");
        match item {
            Value::String(name) => out.push(FileGrant {
                source: name.clone(),
                ..FileGrant::default()
            }),
            Value::Object(m) => {
                let field = |f: &str| m.get(f).map(scalar_text);
                let Some(source) = field("source") else {
                    return Err((k, "needs a source".into()));
                };
                let mode = match m.get("mode") {
                    None => None,
                    // YAML 1.1 reads 0440 as octal already; a string is taken as octal.
                    Some(Value::Number(n)) => n.as_u64().map(|n| n as u32),
                    Some(Value::String(s)) => Some(
                        u32::from_str_radix(s.trim_start_matches("0o"), 8)
                            .map_err(|_| (format!("{k}.mode"), "must be an octal mode".into()))?,
                    ),
                    Some(_) => return Err((format!("{k}.mode"), "must be a number".into())),
                };
                out.push(FileGrant {
                    source,
                    target: field("target"),
                    uid: field("uid"),
                    gid: field("gid"),
                    mode,
                });
            }
            _ => return Err((k, "must be a string or a mapping".into())),
        }
    }
    Ok(out)
}

/// Top-level `secrets:` or `configs:` (`key`): each from a `file` (made absolute
/// against `dir`), an `environment` variable (its value kept as the content),
/// inline `content` (configs), or `external`.
pub(crate) fn type_file_sources(
    v: Option<&Value>,
    key: &str,
    path: &Path,
    dir: &Path,
    env: &Environment,
) -> Result<BTreeMap<String, FileSource>, LoadError> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Value::Object(m) = v else {
        return Err(invalid_top(path, key, "must be a mapping"));
    };
    for (name, cfg) in m {
        let Value::Object(cfg) = cfg else {
            return Err(invalid_top(
                path,
                &format!("{key}.{name}"),
                "must be a mapping",
            ));
        };
        let mut src = FileSource::default();
        for (field, value) in cfg {
            let text = || scalar_text(value);
            match field.as_str() {
                "file" => src.file = Some(PathBuf::from(parse::absolute(&text(), dir, None))),
                "environment" => {
                    // Read now, from the environment the file was interpolated with.
                    src.environment_value = Some(env.get(&text()).cloned().unwrap_or_default());
                    src.environment = Some(text());
                }
                "content" if key == "configs" => src.content = Some(text()),
                "external" => src.external = value.as_bool().unwrap_or(false),
                "name" | "labels" | "driver" | "driver_opts" | "template_driver" => {}
                other => {
                    return Err(invalid_top(
                        path,
                        &format!("{key}.{name}"),
                        &format!("additional property {other} is not allowed"),
                    ));
                }
            }
        }
        out.insert(name.clone(), src);
    }
    Ok(out)
}

fn type_build(v: &Value) -> Result<Build, KeyError> {
    let Value::Object(m) = v else {
        return Err(("build".into(), "must be a mapping".into()));
    };
    let mut b = Build::default();
    for (key, v) in m {
        let k = format!("build.{key}");
        match key.as_str() {
            "context" => b.context = text(v, &k)?,
            "dockerfile" => b.dockerfile = Some(text(v, &k)?),
            "args" => b.args = opt_string_map(v, &k)?,
            "target" => b.target = Some(text(v, &k)?),
            "labels" => b.labels = string_map(v, &k)?,
            "no_cache" => b.no_cache = boolean(v, &k)?,
            "pull" => b.pull = boolean(v, &k)?,
            "network" => b.network = Some(text(v, &k)?),
            "cache_from"
            | "cache_to"
            | "shm_size"
            | "extra_hosts"
            | "platforms"
            | "tags"
            | "secrets"
            | "ssh"
            | "isolation"
            | "additional_contexts"
            | "dockerfile_inline" => {}
            other => {
                return Err((
                    k.clone(),
                    format!("additional property {other} is not allowed"),
                ));
            }
        }
    }
    Ok(b)
}

fn type_ports(v: &Value) -> Result<Vec<Port>, KeyError> {
    let Value::Array(items) = v else {
        return Err(("ports".into(), "must be a list".into()));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = format!("ports.{i}");
        match item {
            Value::String(_) | Value::Number(_) => {
                for p in parse::short_port(&scalar_text(item)).map_err(|e| (k.clone(), e))? {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            Value::Object(m) => {
                let target = m
                    .get("target")
                    .ok_or_else(|| (k.clone(), "needs a target".to_string()))
                    .and_then(|t| integer(t, &k))?;
                out.push(Port {
                    target: u16::try_from(target)
                        .map_err(|_| (k.clone(), "invalid port".into()))?,
                    published: m
                        .get("published")
                        .map(scalar_text)
                        .filter(|s| !s.is_empty()),
                    host_ip: m.get("host_ip").map(scalar_text).filter(|s| !s.is_empty()),
                    protocol: m
                        .get("protocol")
                        .map(scalar_text)
                        .unwrap_or_else(|| "tcp".into()),
                });
            }
            _ => return Err((k, "must be a string, a number or a mapping".into())),
        }
    }
    Ok(out)
}

fn type_volumes_of_service(v: &Value) -> Result<Vec<ServiceVolume>, KeyError> {
    let Value::Array(items) = v else {
        return Err(("volumes".into(), "must be a list".into()));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = format!("volumes.{i}");
        match item {
            Value::String(s) => out.push(parse::short_volume(s).map_err(|e| (k, e))?),
            Value::Object(m) => {
                let kind = m
                    .get("type")
                    .map(scalar_text)
                    .unwrap_or_else(|| "volume".into());
                if !matches!(kind.as_str(), "volume" | "bind" | "tmpfs") {
                    return Err((k, format!("type {kind:?} is not supported")));
                }
                let target = m
                    .get("target")
                    .map(scalar_text)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| (k.clone(), "needs a target".to_string()))?;
                out.push(ServiceVolume {
                    kind,
                    source: m.get("source").map(scalar_text).filter(|s| !s.is_empty()),
                    target,
                    read_only: m
                        .get("read_only")
                        .map(|r| boolean(r, &k))
                        .transpose()?
                        .unwrap_or(false),
                });
            }
            _ => return Err((k, "must be a string or a mapping".into())),
        }
    }
    Ok(out)
}

fn type_service_networks(v: &Value) -> Result<BTreeMap<String, ServiceNetwork>, KeyError> {
    let Value::Object(m) = v else {
        return Err(("networks".into(), "must be a list or a mapping".into()));
    };
    let mut out = BTreeMap::new();
    for (name, cfg) in m {
        let k = format!("networks.{name}");
        let mut n = ServiceNetwork::default();
        match cfg {
            Value::Null => {}
            Value::Object(c) => {
                if let Some(a) = c.get("aliases") {
                    n.aliases = string_list(a, &format!("{k}.aliases"))?;
                }
                if let Some(ip) = c.get("ipv4_address") {
                    n.ipv4_address = Some(text(ip, &format!("{k}.ipv4_address"))?);
                }
            }
            _ => return Err((k, "must be a mapping".into())),
        }
        out.insert(name.clone(), n);
    }
    Ok(out)
}

fn type_depends_on(v: &Value) -> Result<BTreeMap<String, DependsOn>, KeyError> {
    let Value::Object(m) = v else {
        return Err(("depends_on".into(), "must be a list or a mapping".into()));
    };
    let mut out = BTreeMap::new();
    for (name, cfg) in m {
        let k = format!("depends_on.{name}");
        let get = |f: &str| cfg.get(f);
        let condition = match get("condition").map(scalar_text).as_deref() {
            None | Some("service_started") => Condition::ServiceStarted,
            Some("service_healthy") => Condition::ServiceHealthy,
            Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
            Some(other) => {
                return Err((
                    format!("{k}.condition"),
                    format!(
                        "must be one of service_started, service_healthy, service_completed_successfully, not {other:?}"
                    ),
                ));
            }
        };
        out.insert(
            name.clone(),
            DependsOn {
                condition,
                restart: get("restart")
                    .map(|r| boolean(r, &k))
                    .transpose()?
                    .unwrap_or(false),
                required: get("required")
                    .map(|r| boolean(r, &k))
                    .transpose()?
                    .unwrap_or(true),
            },
        );
    }
    Ok(out)
}

fn type_healthcheck(v: &Value) -> Result<Healthcheck, KeyError> {
    let Value::Object(m) = v else {
        return Err(("healthcheck".into(), "must be a mapping".into()));
    };
    let mut h = Healthcheck::default();
    for (key, v) in m {
        let k = format!("healthcheck.{key}");
        match key.as_str() {
            "test" => {
                h.test = match v {
                    Value::String(s) => vec!["CMD-SHELL".into(), s.clone()],
                    _ => string_list(v, &k)?,
                }
            }
            "interval" => h.interval = Some(duration(v, &k)?),
            "timeout" => h.timeout = Some(duration(v, &k)?),
            "start_period" => h.start_period = Some(duration(v, &k)?),
            "start_interval" => h.start_interval = Some(duration(v, &k)?),
            "retries" => h.retries = Some(integer(v, &k)?),
            "disable" => {
                if boolean(v, &k)? {
                    h.test = vec!["NONE".into()];
                }
            }
            other => {
                return Err((
                    k.clone(),
                    format!("additional property {other} is not allowed"),
                ));
            }
        }
    }
    Ok(h)
}

fn type_deploy(v: &Value, s: &mut Service) -> Result<(), KeyError> {
    let Value::Object(m) = v else {
        return Err(("deploy".into(), "must be a mapping".into()));
    };
    if let Some(r) = m.get("replicas") {
        s.scale = Some(integer(r, "deploy.replicas")?.max(0) as u32);
    }
    if let Some(limits) = m.get("resources").and_then(|r| r.get("limits")) {
        if let Some(mem) = limits.get("memory") {
            s.mem_limit = Some(size(mem, "deploy.resources.limits.memory")?);
        }
        if let Some(c) = limits.get("cpus") {
            s.cpus = Some(float(c, "deploy.resources.limits.cpus")?);
        }
        if let Some(p) = limits.get("pids") {
            s.pids_limit = Some(integer(p, "deploy.resources.limits.pids")?);
        }
    }
    Ok(())
}

/// The keys networks and volumes share.
struct TopCommon {
    name: Option<String>,
    external: bool,
    driver: Option<String>,
    driver_opts: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

fn top_common(cfg: &Value, key: &str, path: &Path) -> Result<TopCommon, LoadError> {
    let bad = |k: &str, m: &str| invalid_top(path, &format!("{key}.{k}"), m);
    let get = |f: &str| cfg.get(f);
    let name = get("name").map(scalar_text);
    let external = match get("external") {
        None => false,
        Some(Value::Bool(b)) => *b,
        // The legacy `external: {name: x}` form.
        Some(Value::Object(_)) => true,
        Some(_) => return Err(bad("external", "must be a boolean")),
    };
    let name = name.or_else(|| get("external").and_then(|e| e.get("name")).map(scalar_text));
    let driver = get("driver").map(scalar_text);
    let opts = match get("driver_opts") {
        Some(v) => string_map(v, "driver_opts").map_err(|(_, m)| bad("driver_opts", &m))?,
        None => BTreeMap::new(),
    };
    let labels = match get("labels") {
        Some(v) => string_map(v, "labels").map_err(|(_, m)| bad("labels", &m))?,
        None => BTreeMap::new(),
    };
    Ok(TopCommon {
        name,
        external,
        driver,
        driver_opts: opts,
        labels,
    })
}

pub(crate) fn type_networks(
    v: Option<&Value>,
    project: &str,
    path: &Path,
) -> Result<BTreeMap<String, Network>, LoadError> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Value::Object(m) = v else {
        return Err(invalid_top(path, "networks", "must be a mapping"));
    };
    for (key, cfg) in m {
        let TopCommon {
            name,
            external,
            driver,
            driver_opts,
            labels,
        } = top_common(cfg, &format!("networks.{key}"), path)?;
        let name = match (name, external) {
            (Some(n), _) => n,
            (None, true) => key.clone(),
            (None, false) => format!("{project}_{key}"),
        };
        let flag = |f: &str| cfg.get(f).and_then(Value::as_bool).unwrap_or(false);
        out.insert(
            key.clone(),
            Network {
                name,
                external,
                driver,
                driver_opts,
                labels,
                internal: flag("internal"),
                attachable: flag("attachable"),
            },
        );
    }
    Ok(out)
}

pub(crate) fn type_volumes(
    v: Option<&Value>,
    project: &str,
    path: &Path,
) -> Result<BTreeMap<String, Volume>, LoadError> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Value::Object(m) = v else {
        return Err(invalid_top(path, "volumes", "must be a mapping"));
    };
    for (key, cfg) in m {
        let TopCommon {
            name,
            external,
            driver,
            driver_opts,
            labels,
        } = top_common(cfg, &format!("volumes.{key}"), path)?;
        let name = match (name, external) {
            (Some(n), _) => n,
            (None, true) => key.clone(),
            (None, false) => format!("{project}_{key}"),
        };
        out.insert(
            key.clone(),
            Volume {
                name,
                external,
                driver,
                driver_opts,
                labels,
            },
        );
    }
    Ok(out)
}
