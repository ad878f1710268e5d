//! docker-compose 1.29's `com.docker.compose.config-hash`, so that neither
//! tool recreates the other's containers when nothing changed.
//!
//! docker-compose hashes `json.dumps(config_dict, sort_keys=True,
//! separators=(',', ':'))` with SHA-256, where `config_dict` holds the
//! service's options as its loader left them (raw values for most keys, its
//! own tuples for ports and volumes, a parsed restart policy), the image ID,
//! the primary network and the network settings. This module rebuilds that
//! document for the keys whose 1.29 form is known here; a service using any
//! other key gets `None`, and the caller falls back to berth's own hash
//! ([`crate::Service::config_hash`]), which only costs a recreation when the
//! other tool runs `up`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::merge::scalar_text;
use crate::model::Project;
use crate::parse;

/// Keys whose value docker-compose 1.29 keeps as written.
const VERBATIM: [&str; 21] = [
    "image",
    "command",
    "entrypoint",
    "container_name",
    "hostname",
    "domainname",
    "user",
    "working_dir",
    "tty",
    "stdin_open",
    "init",
    "stop_signal",
    "stop_grace_period",
    "cap_add",
    "cap_drop",
    "privileged",
    "read_only",
    "labels",
    "expose",
    "extra_hosts",
    "profiles",
];

/// docker-compose 1.29's config hash of `service`, or `None` when the
/// service uses a key whose 1.29 form this module does not reproduce.
pub fn v1_config_hash(project: &Project, service: &str, image_id: Option<&str>) -> Option<String> {
    let doc = v1_config_dict(project, service, image_id)?;
    let mut text = String::new();
    python_json(&doc, &mut text);
    Some(hex::encode(Sha256::digest(text.as_bytes())))
}

/// The `config_dict` docker-compose 1.29 hashes.
fn v1_config_dict(project: &Project, service: &str, image_id: Option<&str>) -> Option<Value> {
    let svc = project.services.get(service)?;
    let mut options = Map::new();
    for (key, value) in &svc.raw {
        let k = key.as_str();
        match k {
            k if VERBATIM.contains(&k) => {
                options.insert(key.clone(), value.clone());
            }
            "environment" | "env_file" | "networks" | "network_mode" => {}
            "depends_on" => {
                options.insert(key.clone(), value.clone());
            }
            "restart" => {
                let spec = scalar_text(value);
                let (name, count) = spec.split_once(':').unwrap_or((spec.as_str(), "0"));
                options.insert(
                    key.clone(),
                    json!({ "Name": name, "MaximumRetryCount": count.parse::<i64>().ok()? }),
                );
            }
            "ports" => {
                options.insert(key.clone(), Value::Array(v1_ports(value)?));
            }
            "volumes" => {}
            "healthcheck" => {
                options.insert(key.clone(), v1_healthcheck(value)?);
            }
            _ => return None,
        }
    }
    if svc.raw.contains_key("environment") || svc.raw.contains_key("env_file") {
        let env: Map<String, Value> = svc
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
            .collect();
        options.insert("environment".into(), Value::Object(env));
    }
    options.insert(
        "volumes".into(),
        Value::Array(v1_volumes(project, svc.raw.get("volumes"))?),
    );
    options.insert("device_requests".into(), Value::Null);
    options.insert("platform".into(), Value::Null);
    let mut networks = Map::new();
    if svc.network_mode.is_none() {
        for (key, cfg) in &svc.networks {
            let name = project.networks.get(key)?.name.clone();
            let mut def = Map::new();
            if !cfg.aliases.is_empty() {
                def.insert("aliases".into(), json!(cfg.aliases));
            }
            if let Some(ip) = &cfg.ipv4_address {
                def.insert("ipv4_address".into(), json!(ip));
            }
            networks.insert(name, Value::Object(def));
        }
    }
    let net = match &svc.network_mode {
        Some(mode) if mode.starts_with("service:") || mode.starts_with("container:") => {
            return None;
        }
        Some(mode) => Value::String(mode.clone()),
        // The first by engine name, as 1.29 sorts them.
        None => networks
            .keys()
            .min()
            .map_or(Value::String("none".into()), |n| Value::String(n.clone())),
    };
    Some(json!({
        "options": options,
        "image_id": image_id,
        "links": [],
        "net": net,
        "ipc_mode": null,
        "networks": networks,
        "secrets": [],
        "volumes_from": [],
    }))
}

/// A healthcheck as 1.29 keeps it: durations in nanoseconds, the rest as
/// written (`disable:` is not reproduced).
fn v1_healthcheck(value: &Value) -> Option<Value> {
    let mut out = Map::new();
    for (k, v) in value.as_object()? {
        match k.as_str() {
            "interval" | "timeout" | "start_period" | "start_interval" => {
                let nanos = match v {
                    Value::String(s) => parse::duration_nanos(s).ok()?,
                    _ => return None,
                };
                out.insert(k.clone(), json!(nanos));
            }
            "test" | "retries" => {
                out.insert(k.clone(), v.clone());
            }
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

/// Ports as 1.29's `ServicePort` tuples: target, published, protocol, mode,
/// external IP (protocol only when written).
fn v1_ports(value: &Value) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for item in value.as_array()? {
        match item {
            Value::String(_) | Value::Number(_) => {
                let text = scalar_text(item);
                let protocol = text.rsplit_once('/').map(|(_, p)| p.to_string());
                for p in parse::short_port(&text).ok()? {
                    out.push(json!([
                        p.target,
                        published(p.published.as_deref()),
                        protocol,
                        null,
                        p.host_ip
                    ]));
                }
            }
            Value::Object(m) => {
                let target = m.get("target")?.as_u64()?;
                out.push(json!([
                    target,
                    published(m.get("published").map(scalar_text).as_deref()),
                    m.get("protocol"),
                    m.get("mode"),
                    null
                ]));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A published port as 1.29 keeps it: a number, a range string, or null.
fn published(p: Option<&str>) -> Value {
    match p {
        None | Some("") => Value::Null,
        Some(p) => p.parse::<u64>().map_or_else(|_| json!(p), |n| json!(n)),
    }
}

/// Short-syntax volumes as 1.29's `VolumeSpec` tuples: external (the named
/// volume's engine name or the host path), internal, mode.
fn v1_volumes(project: &Project, value: Option<&Value>) -> Option<Vec<Value>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for item in value.as_array()? {
        let spec = parse::short_volume(item.as_str()?).ok()?;
        let text = item.as_str()?;
        let mode = match text.split(':').nth(2) {
            Some(m) => m.to_string(),
            None => "rw".to_string(),
        };
        let external = match (spec.kind.as_str(), &spec.source) {
            ("volume", Some(key)) => Value::String(project.volumes.get(key)?.name.clone()),
            (_, Some(path)) => Value::String(path.clone()),
            (_, None) => Value::Null,
        };
        out.push(json!([external, spec.target, mode]));
    }
    Some(out)
}

/// JSON as Python's `json.dumps(sort_keys=True, separators=(',', ':'))`
/// writes it: keys sorted, no spaces, non-ASCII escaped as `\uXXXX`.
fn python_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                python_string(k, out);
                out.push(':');
                python_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                python_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => python_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load::{LoadOptions, load};

    /// The `config_dict`s docker-compose 1.29.2 computed for
    /// `testdata/v1hash/compose.yaml` (project `shop`), dumped with its own
    /// `json.dumps(..., sort_keys=True, separators=(',', ':'))`.
    const WEB: &str = r#"{"image_id":"sha256:7048b31b045663afae965e564f7bb88f70e2d5c7dfdf2fc10b2664452b65664f","ipc_mode":null,"links":[],"net":"shop_default","networks":{"shop_default":{}},"options":{"command":"sleep 3600","depends_on":{"backend":{"condition":"service_started"}},"device_requests":null,"environment":{"GREETING":"changed"},"image":"busybox","platform":null,"stop_grace_period":"1s","volumes":[]},"secrets":[],"volumes_from":[]}"#;
    const BACKEND: &str = r#"{"image_id":"sha256:7048b31b045663afae965e564f7bb88f70e2d5c7dfdf2fc10b2664452b65664f","ipc_mode":null,"links":[],"net":"shop_default","networks":{"shop_default":{}},"options":{"command":["sh","-c","mkdir -p /www && echo backend-ok > /www/index.html && exec httpd -f -p 80 -h /www"],"device_requests":null,"image":"busybox","labels":{"tier":"back"},"platform":null,"ports":[[80,null,null,null,"127.0.0.1"]],"stop_grace_period":"1s","volumes":[]},"secrets":[],"volumes_from":[]}"#;
    const STORE: &str = r#"{"image_id":"sha256:7048b31b045663afae965e564f7bb88f70e2d5c7dfdf2fc10b2664452b65664f","ipc_mode":null,"links":[],"net":"shop_default","networks":{"shop_default":{}},"options":{"command":["sh","-c","echo stored >> /data/log && cat /data/log && exec sleep 3600"],"device_requests":null,"image":"busybox","platform":null,"stop_grace_period":"1s","volumes":[["shop_data","/data","rw"]]},"secrets":[],"volumes_from":[]}"#;
    const IMAGE: &str = "sha256:7048b31b045663afae965e564f7bb88f70e2d5c7dfdf2fc10b2664452b65664f";

    #[test]
    fn the_config_dict_matches_docker_compose_1_29_byte_for_byte() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/v1hash");
        let p = load(&LoadOptions {
            cwd: dir,
            project_name: Some("shop".into()),
            ..LoadOptions::default()
        })
        .unwrap();
        for (service, want) in [("web", WEB), ("backend", BACKEND), ("store", STORE)] {
            let doc = v1_config_dict(&p, service, Some(IMAGE)).unwrap();
            let mut got = String::new();
            python_json(&doc, &mut got);
            assert_eq!(got, want, "{service}");
            assert_eq!(
                v1_config_hash(&p, service, Some(IMAGE)).unwrap(),
                hex::encode(Sha256::digest(want.as_bytes()))
            );
        }
    }

    /// What docker-compose 1.29.2 computed for `testdata/v1rich` (project
    /// `rich`, profile `full`, image ID `sha256:abc`); `@DIR@` is that directory.
    const RICH_API: &str = r#"{"image_id":"sha256:abc","ipc_mode":null,"links":[],"net":"rich_back","networks":{"rich_back":{"aliases":["api-internal"]},"rich_front":{}},"options":{"cap_add":["NET_ADMIN"],"command":["httpd","-f"],"device_requests":null,"environment":{"FROM_FILE":"1","MODE":"prod"},"expose":["8080"],"extra_hosts":["db.local:10.0.0.5"],"healthcheck":{"interval":2000000000,"retries":3,"test":["CMD","true"]},"hostname":"api","image":"busybox","platform":null,"ports":[[80,8000,null,null,null],[443,8443,"tcp",null,null]],"profiles":["full"],"restart":{"MaximumRetryCount":3,"Name":"on-failure"},"user":"1000","volumes":[["@DIR@/conf","/conf","ro"],[null,"/scratch","rw"]],"working_dir":"/srv"},"secrets":[],"volumes_from":[]}"#;
    const RICH_WORKER: &str = r#"{"image_id":"sha256:abc","ipc_mode":null,"links":[],"net":"host","networks":{},"options":{"command":"sleep 3600","device_requests":null,"image":"busybox","init":true,"platform":null,"tty":true,"volumes":[]},"secrets":[],"volumes_from":[]}"#;

    #[test]
    fn ports_volumes_healthchecks_and_network_modes_match_docker_compose_1_29() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/v1rich");
        let p = load(&LoadOptions {
            cwd: dir.clone(),
            project_name: Some("rich".into()),
            profiles: vec!["full".into()],
            ..LoadOptions::default()
        })
        .unwrap();
        let api = RICH_API.replace("@DIR@", dir.to_str().unwrap());
        for (service, want) in [("api", api.as_str()), ("worker", RICH_WORKER)] {
            let doc = v1_config_dict(&p, service, Some("sha256:abc")).unwrap();
            let mut got = String::new();
            python_json(&doc, &mut got);
            assert_eq!(got, want, "{service}");
        }
    }

    #[test]
    fn unknown_keys_fall_back_to_berths_hash() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/full");
        let p = load(&LoadOptions {
            cwd: dir,
            ..LoadOptions::default()
        })
        .unwrap();
        // `deploy:` and a `healthcheck:` test string are not reproduced.
        assert_eq!(v1_config_hash(&p, "web", Some(IMAGE)), None);
    }

    #[test]
    fn python_escapes_non_ascii() {
        let mut out = String::new();
        python_json(&json!({"b": "é😀", "a": [1, null, true]}), &mut out);
        assert_eq!(out, r#"{"a":[1,null,true],"b":"\u00e9\ud83d\ude00"}"#);
    }
}
