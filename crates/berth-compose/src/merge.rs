//! Bringing one file's services to a canonical raw shape and merging files
//! and `extends` bases with Compose's per-key rules.
//!
//! Canonical means: lists Compose treats as maps (`environment`, `labels`,
//! `depends_on`, `networks`) are maps, single strings that may be lists
//! (`env_file`, `dns`) are lists, `build: dir` is `build: {context}`, and
//! relative host paths are absolute against the file that wrote them. After
//! that, merging is mapping-deep, except the list keys that append
//! ([`APPEND_KEYS`]) and `volumes`, which merge by target path.

use std::path::Path;

use serde_json::{Map, Value};

use crate::parse;

/// A scalar as text (`8080` → "8080", `true` → "true", null → "").
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) type KeyError = (String, String);

/// A list of `K=V` strings or a mapping, as a mapping (`None` for a bare `K`
/// in a list or a null value).
pub(crate) fn to_map(v: &Value, key: &str) -> Result<Map<String, Value>, KeyError> {
    match v {
        Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                let v = if v.is_null() {
                    Value::Null
                } else {
                    Value::String(scalar_text(v))
                };
                (k.clone(), v)
            })
            .collect()),
        Value::Array(items) => {
            let mut m = Map::new();
            for item in items {
                let s = scalar_text(item);
                match s.split_once('=') {
                    Some((k, v)) => m.insert(k.to_string(), Value::String(v.to_string())),
                    None => m.insert(s, Value::Null),
                };
            }
            Ok(m)
        }
        Value::Null => Ok(Map::new()),
        _ => Err((key.to_string(), "must be a mapping or a list".into())),
    }
}

/// Brings one service to the shape merging expects.
pub(crate) fn canonicalize_service(
    body: &mut Map<String, Value>,
    base: &Path,
    home: Option<&str>,
) -> Result<(), KeyError> {
    for key in ["environment", "labels", "sysctls"] {
        if let Some(v) = body.get(key) {
            let m = to_map(v, key)?;
            body.insert(key.into(), Value::Object(m));
        }
    }
    if let Some(v) = body.get("extra_hosts")
        && let Value::Object(m) = v
    {
        let list = m
            .iter()
            .map(|(k, v)| Value::String(format!("{k}:{}", scalar_text(v))))
            .collect();
        body.insert("extra_hosts".into(), Value::Array(list));
    }
    if let Some(v) = body.get("depends_on") {
        let m: Map<String, Value> = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    (
                        scalar_text(i),
                        serde_json::json!({"condition": "service_started"}),
                    )
                })
                .collect(),
            Value::Object(m) => m.clone(),
            _ => return Err(("depends_on".into(), "must be a list or a mapping".into())),
        };
        body.insert("depends_on".into(), Value::Object(m));
    }
    if let Some(v) = body.get("networks") {
        let m: Map<String, Value> = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| (scalar_text(i), Value::Null))
                .collect(),
            Value::Object(m) => m.clone(),
            _ => return Err(("networks".into(), "must be a list or a mapping".into())),
        };
        body.insert("networks".into(), Value::Object(m));
    }
    for key in ["env_file", "dns", "tmpfs"] {
        if let Some(Value::String(s)) = body.get(key) {
            let one = Value::Array(vec![Value::String(s.clone())]);
            body.insert(key.into(), one);
        }
    }
    if let Some(Value::Array(files)) = body.get_mut("env_file") {
        for f in files.iter_mut() {
            match f {
                Value::String(s) => *s = parse::absolute(s, base, home),
                Value::Object(m) => {
                    if let Some(Value::String(p)) = m.get_mut("path") {
                        *p = parse::absolute(p, base, home);
                    }
                }
                _ => {}
            }
        }
    }
    match body.get_mut("build") {
        Some(Value::String(s)) => {
            let ctx = parse::absolute(s, base, home);
            body.insert("build".into(), serde_json::json!({ "context": ctx }));
        }
        Some(Value::Object(b)) => {
            let ctx = b
                .get("context")
                .and_then(Value::as_str)
                .unwrap_or(".")
                .to_string();
            let ctx = if ctx.contains("://") || ctx.starts_with("git@") {
                ctx
            } else {
                parse::absolute(&ctx, base, home)
            };
            b.insert("context".into(), Value::String(ctx));
            if let Some(a) = b.get("args") {
                let m = to_map(a, "build.args")?;
                b.insert("args".into(), Value::Object(m));
            }
            if let Some(l) = b.get("labels") {
                let m = to_map(l, "build.labels")?;
                b.insert("labels".into(), Value::Object(m));
            }
        }
        Some(_) => return Err(("build".into(), "must be a string or a mapping".into())),
        None => {}
    }
    if let Some(Value::Array(vols)) = body.get_mut("volumes") {
        for v in vols.iter_mut() {
            match v {
                Value::String(s) => {
                    if let Some((src, rest)) = s.split_once(':')
                        && parse::is_path(src)
                    {
                        *s = format!("{}:{rest}", parse::absolute(src, base, home));
                    }
                }
                Value::Object(m) => {
                    if m.get("type").and_then(Value::as_str) == Some("bind")
                        && let Some(Value::String(src)) = m.get_mut("source")
                    {
                        *src = parse::absolute(src, base, home);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Keys whose lists are appended to (without duplicates) when files merge.
const APPEND_KEYS: [&str; 10] = [
    "ports",
    "expose",
    "cap_add",
    "cap_drop",
    "dns",
    "env_file",
    "extra_hosts",
    "security_opt",
    "tmpfs",
    "profiles",
];

/// Merges two canonical top-level documents (`over` wins).
pub(crate) fn merge_into(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        if k == "services"
            && let (Some(Value::Object(bs)), Value::Object(os)) = (base.get_mut("services"), &v)
        {
            for (name, svc) in os {
                match (bs.get_mut(name), svc) {
                    (Some(Value::Object(b)), Value::Object(o)) => merge_service(b, o.clone()),
                    _ => {
                        bs.insert(name.clone(), svc.clone());
                    }
                }
            }
            continue;
        }
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Merges `over` onto a service, with Compose's per-key rules.
pub(crate) fn merge_service(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        let Some(existing) = base.get_mut(&k) else {
            base.insert(k, v);
            continue;
        };
        match (existing, v) {
            (Value::Array(b), Value::Array(o)) if APPEND_KEYS.contains(&k.as_str()) => {
                for item in o {
                    if !b.contains(&item) {
                        b.push(item);
                    }
                }
            }
            (Value::Array(b), Value::Array(o)) if k == "volumes" => {
                for item in o {
                    let t = volume_target(&item);
                    b.retain(|x| t.is_none() || volume_target(x) != t);
                    b.push(item);
                }
            }
            (Value::Object(b), Value::Object(o)) => deep_merge(b, o),
            (slot, v) => *slot = v,
        }
    }
}

fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(if parts.len() == 1 { parts[0] } else { parts[1] }.to_string())
        }
        Value::Object(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Recursive mapping merge; anything else is replaced (lists included, so
/// `command` and `healthcheck.test` are overridden, not appended).
fn deep_merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
