//! Loading a project: find the files, read the environment, parse YAML,
//! interpolate, resolve `extends`, merge the files, apply profiles, and type
//! the result.
//!
//! The work happens on `serde_json::Value` trees until the very end: each
//! file is parsed, interpolated and brought to a canonical raw shape (lists
//! that Compose treats as maps become maps, relative paths become absolute),
//! so merging is a small set of rules on one shape and the final typing step
//! can name the file, service and key of any bad value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::interpolate::{Environment, InterpolateError, interpolate};
use crate::merge::{canonicalize_service, merge_into, merge_service, scalar_text};
use crate::model::{Network, Project, ServiceNetwork};
use crate::typed::{type_file_sources, type_networks, type_service, type_volumes};
use crate::{dotenv, parse};

/// The file names searched for, in Compose's order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Override files picked up beside a discovered file.
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What to load and with which environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files; empty: discover from `cwd` upwards (or `COMPOSE_FILE`).
    pub files: Vec<PathBuf>,
    /// `--project-directory`; default: the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file`; default: `.env` in the project directory.
    pub env_files: Vec<PathBuf>,
    /// `--profile` (added to `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
    /// The process environment (passed in so tests need not touch it).
    pub environment: Environment,
    /// The directory relative `-f` paths and discovery start from.
    pub cwd: PathBuf,
}

/// Why a project could not be loaded. Messages name the file, service and
/// key, as Compose's do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Discovery found no compose file.
    #[error("no configuration file provided: not found")]
    NotFound,
    /// A file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not valid YAML, or not a mapping at the top.
    #[error("{path}: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A variable could not be substituted.
    #[error("{path}: error while interpolating {key}: {error}")]
    Interpolate {
        /// The file.
        path: PathBuf,
        /// The dotted key path of the value.
        key: String,
        /// What went wrong.
        error: InterpolateError,
    },
    /// A service key holds a value of the wrong shape.
    #[error("{}: {} {message}", path.display(), dotted_key(service, key))]
    Invalid {
        /// The file that defines the service.
        path: PathBuf,
        /// The service.
        service: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A top-level key holds a value of the wrong shape.
    #[error("{path}: {key} {message}")]
    InvalidTop {
        /// The file.
        path: PathBuf,
        /// The dotted key path.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// An env file could not be parsed.
    #[error("{path}: {error}")]
    EnvFile {
        /// The env file.
        path: PathBuf,
        /// What is wrong with it.
        error: dotenv::DotenvError,
    },
    /// `extends` names something that does not exist or loops.
    #[error("{path}: services.{service}.extends {message}")]
    Extends {
        /// The file of the extending service.
        path: PathBuf,
        /// The extending service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// `depends_on` names a service that is not defined (or not enabled).
    #[error(
        "service {service:?} depends on undefined service {dependency:?}: invalid compose project"
    )]
    UndefinedDependency {
        /// The dependent service.
        service: String,
        /// The missing one.
        dependency: String,
    },
    /// A service joins a network not declared at the top level.
    #[error("service {service:?} refers to undefined network {network}: invalid compose project")]
    UndefinedNetwork {
        /// The service.
        service: String,
        /// The network key.
        network: String,
    },
    /// A service is granted a secret or config not declared at the top level.
    #[error("service {service:?} refers to undefined {what} {name}: invalid compose project")]
    Undefined {
        /// The service.
        service: String,
        /// `secret` or `config`.
        what: &'static str,
        /// The name it used.
        name: String,
    },
    /// A service mounts a named volume not declared at the top level.
    #[error("service {service:?} refers to undefined volume {volume}: invalid compose project")]
    UndefinedVolume {
        /// The service.
        service: String,
        /// The volume key.
        volume: String,
    },
    /// `depends_on` loops.
    #[error("dependency cycle detected between services {}", services.join(", "))]
    Cycle {
        /// The services on the cycle (and those waiting for them).
        services: Vec<String>,
    },
}

/// `services.web.ports.0`, or `services.web` for the service itself.
fn dotted_key(service: &str, key: &str) -> String {
    if key.is_empty() {
        format!("services.{service}")
    } else {
        format!("services.{service}.{key}")
    }
}

/// Loads the project `opts` describes.
///
/// # Errors
/// Every [`LoadError`]: missing or unreadable files, YAML and interpolation
/// errors, bad values (naming file, service and key), undefined services,
/// networks and volumes, dependency cycles.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    let files = config_files(opts)?;
    let project_dir = match &opts.project_directory {
        Some(d) => PathBuf::from(parse::absolute(&d.to_string_lossy(), &opts.cwd, None)),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    let env = environment(opts, &project_dir)?;
    let mut merged = Map::new();
    let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in &files {
        let doc = load_file(file, &project_dir, &env, &mut Vec::new())?;
        if let Some(Value::Object(services)) = doc.get("services") {
            for name in services.keys() {
                origin.entry(name.clone()).or_insert_with(|| file.clone());
            }
        }
        merge_into(&mut merged, doc);
    }
    let top_name = merged
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = opts
        .project_name
        .clone()
        .or_else(|| {
            env.get("COMPOSE_PROJECT_NAME")
                .cloned()
                .filter(|s| !s.is_empty())
        })
        .or(top_name)
        .unwrap_or_else(|| {
            project_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let name = normalize_project_name(&name);
    let first = files[0].clone();

    let mut services = BTreeMap::new();
    if let Some(raw) = merged.get("services") {
        let Value::Object(raw) = raw else {
            return Err(invalid_top(&first, "services", "must be a mapping"));
        };
        for (svc_name, body) in raw {
            let path = origin.get(svc_name).unwrap_or(&first);
            let Value::Object(body) = body else {
                return Err(LoadError::Invalid {
                    path: path.clone(),
                    service: svc_name.clone(),
                    key: String::new(),
                    message: "must be a mapping".into(),
                });
            };
            let mut service =
                type_service(body, &env).map_err(|(key, message)| LoadError::Invalid {
                    path: path.clone(),
                    service: svc_name.clone(),
                    key,
                    message,
                })?;
            service.raw = body.clone();
            services.insert(svc_name.clone(), service);
        }
    }

    let networks = type_networks(merged.get("networks"), &name, &first)?;
    let volumes = type_volumes(merged.get("volumes"), &name, &first)?;
    let secrets = type_file_sources(merged.get("secrets"), "secrets", &first, &project_dir, &env)?;
    let configs = type_file_sources(merged.get("configs"), "configs", &first, &project_dir, &env)?;
    let mut project = Project {
        name,
        working_dir: project_dir,
        config_files: files,
        services,
        networks,
        volumes,
        secrets,
        configs,
        disabled: BTreeMap::new(),
    };
    apply_profiles(&mut project, opts, &env);
    check_references(&mut project)?;
    Ok(project)
}

/// docker-compose 1.29's project name rule: lower case, only `[-_a-z0-9]`.
pub fn normalize_project_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The files to load: `-f`, else `COMPOSE_FILE`, else the first default
/// name found in `cwd` or a parent, plus its override file.
fn config_files(opts: &LoadOptions) -> Result<Vec<PathBuf>, LoadError> {
    let abs = |p: &Path| PathBuf::from(parse::absolute(&p.to_string_lossy(), &opts.cwd, None));
    if !opts.files.is_empty() {
        return Ok(opts.files.iter().map(|f| abs(f)).collect());
    }
    if let Some(list) = opts
        .environment
        .get("COMPOSE_FILE")
        .filter(|s| !s.is_empty())
    {
        let sep = opts
            .environment
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        return Ok(list
            .split(sep.as_str())
            .map(|f| abs(Path::new(f)))
            .collect());
    }
    let mut dir = Some(opts.cwd.as_path());
    while let Some(d) = dir {
        if let Some(found) = DEFAULT_FILES
            .iter()
            .map(|n| d.join(n))
            .find(|p| p.is_file())
        {
            let mut files = vec![found];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
        dir = d.parent();
    }
    Err(LoadError::NotFound)
}

/// The interpolation environment: env files, overridden by the process's.
fn environment(opts: &LoadOptions, project_dir: &Path) -> Result<Environment, LoadError> {
    let mut env = Environment::new();
    let files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let default = project_dir.join(".env");
        if default.is_file() {
            vec![default]
        } else {
            vec![]
        }
    } else {
        opts.env_files
            .iter()
            .map(|f| PathBuf::from(parse::absolute(&f.to_string_lossy(), &opts.cwd, None)))
            .collect()
    };
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let lines = dotenv::parse(&text).map_err(|error| LoadError::EnvFile {
            path: path.clone(),
            error,
        })?;
        for (k, v) in lines {
            let v = v
                .or_else(|| opts.environment.get(&k).cloned())
                .unwrap_or_default();
            env.insert(k, v);
        }
    }
    env.extend(opts.environment.clone());
    Ok(env)
}

/// One file: parsed, interpolated, canonical, with `extends` resolved.
/// `stack` holds the (file, service) pairs being extended, to catch loops.
fn load_file(
    path: &Path,
    base_dir: &Path,
    env: &Environment,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Map<String, Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let yaml_err = |message: String| LoadError::Yaml {
        path: path.to_path_buf(),
        message,
    };
    let mut yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| yaml_err(e.to_string()))?;
    yaml.apply_merge().map_err(|e| yaml_err(e.to_string()))?;
    let mut doc = match yaml_to_json(yaml) {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(yaml_err("top-level object must be a mapping".into())),
    };
    doc.retain(|k, _| !k.starts_with("x-"));
    for (key, value) in doc.iter_mut() {
        interpolate_value(value, env, key).map_err(|(key, error)| LoadError::Interpolate {
            path: path.to_path_buf(),
            key,
            error,
        })?;
    }
    let home = env.get("HOME").map(String::as_str);
    if let Some(Value::Object(services)) = doc.get_mut("services") {
        for (name, svc) in services.iter_mut() {
            if let Value::Object(body) = svc {
                body.retain(|k, _| !k.starts_with("x-"));
                canonicalize_service(body, base_dir, home).map_err(|(key, message)| {
                    LoadError::Invalid {
                        path: path.to_path_buf(),
                        service: name.clone(),
                        key,
                        message,
                    }
                })?;
            }
        }
        let names: Vec<String> = services.keys().cloned().collect();
        for name in names {
            let resolved = resolve_extends(path, &name, services, env, stack)?;
            services.insert(name, Value::Object(resolved));
        }
    }
    Ok(doc)
}

/// A service with its `extends` chain merged in (base first).
fn resolve_extends(
    path: &Path,
    name: &str,
    services: &Map<String, Value>,
    env: &Environment,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Map<String, Value>, LoadError> {
    let Some(Value::Object(body)) = services.get(name) else {
        return Ok(Map::new());
    };
    let mut body = body.clone();
    let Some(ext) = body.remove("extends") else {
        return Ok(body);
    };
    let err = |message: String| LoadError::Extends {
        path: path.to_path_buf(),
        service: name.to_string(),
        message,
    };
    let (base_name, file) = match &ext {
        Value::String(s) => (s.clone(), None),
        Value::Object(m) => (
            m.get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| err("needs a service".into()))?
                .to_string(),
            m.get("file").and_then(Value::as_str).map(str::to_string),
        ),
        _ => return Err(err("must be a string or a mapping".into())),
    };
    let key = (path.to_path_buf(), name.to_string());
    if stack.contains(&key) {
        return Err(err(format!("circular reference to {base_name}")));
    }
    stack.push(key);
    let base = match file {
        None => {
            if !services.contains_key(&base_name) {
                stack.pop();
                return Err(err(format!("refers to undefined service {base_name:?}")));
            }
            resolve_extends(path, &base_name, services, env, stack)?
        }
        Some(file) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            let other = PathBuf::from(parse::absolute(&file, dir, None));
            let other_dir = other.parent().unwrap_or(Path::new("/")).to_path_buf();
            let doc = load_file(&other, &other_dir, env, stack)?;
            match doc.get("services").and_then(|s| s.get(&base_name)) {
                Some(Value::Object(b)) => b.clone(),
                _ => {
                    stack.pop();
                    return Err(err(format!(
                        "refers to service {base_name:?} which {} does not define",
                        other.display()
                    )));
                }
            }
        }
    };
    stack.pop();
    let mut merged = base;
    merge_service(&mut merged, body);
    Ok(merged)
}

pub(crate) fn invalid_top(path: &Path, key: &str, message: &str) -> LoadError {
    LoadError::InvalidTop {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

/// YAML to JSON, mapping keys turned into strings (`80: x` is allowed).
fn yaml_to_json(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (scalar_text(&yaml_to_json(k)), yaml_to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn interpolate_value(
    v: &mut Value,
    env: &Environment,
    key: &str,
) -> Result<(), (String, InterpolateError)> {
    match v {
        Value::String(s) => {
            *s = interpolate(s, env).map_err(|e| (key.to_string(), e))?;
        }
        Value::Array(a) => {
            for (i, item) in a.iter_mut().enumerate() {
                interpolate_value(item, env, &format!("{key}.[{i}]"))?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                interpolate_value(item, env, &format!("{key}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Moves services none of whose profiles is active into `disabled`.
fn apply_profiles(project: &mut Project, opts: &LoadOptions, env: &Environment) {
    let mut active: Vec<String> = opts.profiles.clone();
    if let Some(p) = env.get("COMPOSE_PROFILES") {
        active.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    let all = active.iter().any(|p| p == "*");
    let names: Vec<String> = project.services.keys().cloned().collect();
    for name in names {
        let svc = &project.services[&name];
        let enabled = svc.profiles.is_empty()
            || all
            || svc.profiles.iter().any(|p| active.contains(p))
            || opts.services.contains(&name);
        if !enabled {
            let svc = project.services.remove(&name).expect("listed above");
            project.disabled.insert(name, svc);
        }
    }
}

/// Checks dependencies, networks and volumes, and adds the implicit
/// `default` network for services that name none.
fn check_references(project: &mut Project) -> Result<(), LoadError> {
    let names: Vec<String> = project.services.keys().cloned().collect();
    let mut uses_default = false;
    for (name, svc) in project.services.iter_mut() {
        svc.depends_on
            .retain(|dep, d| d.required || names.contains(dep));
        for dep in svc.depends_on.keys() {
            if !names.contains(dep) {
                return Err(LoadError::UndefinedDependency {
                    service: name.clone(),
                    dependency: dep.clone(),
                });
            }
        }
        if svc.network_mode.is_none() && svc.networks.is_empty() {
            svc.networks
                .insert("default".into(), ServiceNetwork::default());
        }
        for net in svc.networks.keys() {
            if net == "default" {
                uses_default = true;
            } else if !project.networks.contains_key(net) {
                return Err(LoadError::UndefinedNetwork {
                    service: name.clone(),
                    network: net.clone(),
                });
            }
        }
        for (grants, defined, what) in [
            (&svc.secrets, &project.secrets, "secret"),
            (&svc.configs, &project.configs, "config"),
        ] {
            if let Some(g) = grants.iter().find(|g| !defined.contains_key(&g.source)) {
                return Err(LoadError::Undefined {
                    service: name.clone(),
                    what,
                    name: g.source.clone(),
                });
            }
        }
        for v in &svc.volumes {
            if v.kind == "volume"
                && let Some(src) = &v.source
                && !project.volumes.contains_key(src)
            {
                return Err(LoadError::UndefinedVolume {
                    service: name.clone(),
                    volume: src.clone(),
                });
            }
        }
    }
    if uses_default && !project.networks.contains_key("default") {
        project.networks.insert(
            "default".into(),
            Network {
                name: format!("{}_default", project.name),
                ..Network::default()
            },
        );
    }
    project
        .start_order()
        .map_err(|services| LoadError::Cycle { services })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Condition;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name)
    }

    fn opts(dir: &Path) -> LoadOptions {
        LoadOptions {
            cwd: dir.to_path_buf(),
            environment: [("FROM_SHELL", "shell"), ("HOME", "/root")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn a_project_loads_with_overrides_env_and_profiles() {
        let dir = fixture("full");
        let p = load(&opts(&dir)).unwrap();
        assert_eq!(p.name, "full-app", "top-level name: over the directory");
        assert_eq!(p.config_files.len(), 2, "the override file is picked up");
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["api", "web"]);
        assert!(p.disabled.contains_key("debug"));
        let web = &p.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox:1.36"));
        assert_eq!(
            web.restart.as_deref(),
            Some("unless-stopped"),
            "YAML merge keys"
        );
        assert_eq!(
            web.command.as_deref().unwrap(),
            ["httpd", "-f", "-p", "8080"]
        );
        assert_eq!(web.environment["MODE"].as_deref(), Some("dev"));
        assert_eq!(web.environment["FROM_SHELL"].as_deref(), Some("shell"));
        assert_eq!(web.environment["WEB_ONLY"].as_deref(), Some("1"));
        let published: Vec<_> = web.ports.iter().map(|p| p.published.clone()).collect();
        assert_eq!(
            published,
            [
                Some("8080".into()),
                Some("8443".into()),
                Some("9000".into())
            ]
        );
        assert_eq!(web.volumes.len(), 2, "volumes merge by target");
        assert_eq!(
            web.volumes[1].source.as_deref(),
            Some(dir.join("other").to_str().unwrap())
        );
        assert!(!web.volumes[1].read_only);
        assert_eq!(web.scale, Some(2));
        assert_eq!(web.mem_limit, Some(64 << 20));
        assert_eq!(web.cpus, Some(0.5));
        assert_eq!(web.stop_grace_period, Some(90));
        assert_eq!(web.networks["front"].aliases, ["www"]);
        assert_eq!(web.depends_on["api"].condition, Condition::ServiceHealthy);
        let api = &p.services["api"];
        assert_eq!(api.command.as_deref().unwrap(), ["echo", "hello world"]);
        assert_eq!(
            api.healthcheck.as_ref().unwrap().test,
            ["CMD-SHELL", "wget -q -O- localhost"]
        );
        assert_eq!(
            api.healthcheck.as_ref().unwrap().interval,
            Some(2_000_000_000)
        );
        assert_eq!(p.networks["front"].name, "full-app_front");
        assert_eq!(p.networks["outside"].name, "shared-net");
        assert!(p.networks["outside"].external);
        assert!(!p.networks.contains_key("default"), "nobody uses it");
        assert_eq!(p.volumes["data"].name, "full-app_data");
        assert_eq!(p.start_order().unwrap(), ["api", "web"]);
    }

    #[test]
    fn profiles_and_project_name_come_from_options() {
        let mut o = opts(&fixture("full"));
        o.profiles = vec!["debug".into()];
        o.project_name = Some("My.App".into());
        let p = load(&o).unwrap();
        assert_eq!(p.name, "myapp");
        assert!(p.services.contains_key("debug"));
        assert_eq!(
            p.services["debug"].networks.keys().collect::<Vec<_>>(),
            ["default"]
        );
        assert_eq!(p.networks["default"].name, "myapp_default");
    }

    #[test]
    fn a_required_variable_names_file_and_key() {
        let mut o = opts(&fixture("full"));
        o.env_files = vec![fixture("full").join("web.env")];
        let err = load(&o).unwrap_err().to_string();
        assert!(err.contains("compose.yaml"), "{err}");
        assert!(err.contains("services.web.ports.[0]"), "{err}");
        assert!(
            err.contains("required variable WEB_PORT is missing a value: set WEB_PORT"),
            "{err}"
        );
    }

    #[test]
    fn extends_merges_from_the_same_and_other_files() {
        let dir = fixture("extends");
        let p = load(&opts(&dir)).unwrap();
        let child = &p.services["child"];
        assert_eq!(child.image.as_deref(), Some("busybox"));
        assert_eq!(child.environment.len(), 2);
        assert_eq!(child.cap_add, ["NET_ADMIN"]);
        let remote = &p.services["remote"];
        assert_eq!(remote.command.as_deref().unwrap(), ["echo", "remote"]);
        assert_eq!(remote.environment["SHARED"].as_deref(), Some("yes"));
        assert_eq!(
            remote.volumes[0].source.as_deref(),
            Some(dir.join("common/conf").to_str().unwrap()),
            "paths in the other file are relative to it"
        );
    }

    #[test]
    fn a_bad_value_names_file_service_and_key() {
        let err = load(&opts(&fixture("bad-port"))).unwrap_err().to_string();
        assert!(
            err.contains("docker-compose.yml: services.web.ports.0 invalid port"),
            "{err}"
        );
    }

    #[test]
    fn discovery_fails_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(&opts(dir.path())), Err(LoadError::NotFound)));
    }

    fn write_project(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yml"), text).unwrap();
        dir
    }

    #[test]
    fn references_to_undefined_things_are_refused() {
        let d = write_project("services:\n  a:\n    image: x\n    depends_on: [b]\n");
        let err = load(&opts(d.path())).unwrap_err().to_string();
        assert_eq!(
            err,
            "service \"a\" depends on undefined service \"b\": invalid compose project"
        );
        let d = write_project("services:\n  a:\n    image: x\n    volumes: [v:/v]\n");
        assert!(matches!(
            load(&opts(d.path())),
            Err(LoadError::UndefinedVolume { .. })
        ));
        let d = write_project("services:\n  a:\n    image: x\n    networks: [n]\n");
        assert!(matches!(
            load(&opts(d.path())),
            Err(LoadError::UndefinedNetwork { .. })
        ));
        let d = write_project(
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
        );
        assert!(matches!(
            load(&opts(d.path())),
            Err(LoadError::Cycle { .. })
        ));
    }

    #[test]
    fn unknown_keys_and_missing_images_are_refused() {
        let d = write_project("services:\n  a:\n    image: x\n    imagee: y\n");
        let err = load(&opts(d.path())).unwrap_err().to_string();
        assert!(
            err.ends_with("compose.yml: services.a additional property imagee is not allowed"),
            "{err}"
        );
        let d = write_project("services:\n  a:\n    command: x\n");
        let err = load(&opts(d.path())).unwrap_err().to_string();
        assert!(err.contains("neither an image nor a build"), "{err}");
    }

    #[test]
    fn several_files_merge_in_order_and_build_paths_resolve() {
        let d = write_project(
            "services:\n  a:\n    build: ./app\n    labels: [x=1]\n    cap_add: [A]\n",
        );
        std::fs::write(
            d.path().join("more.yml"),
            "services:\n  a:\n    labels:\n      y: \"2\"\n    cap_add: [B, A]\n",
        )
        .unwrap();
        let mut o = opts(d.path());
        o.files = vec!["compose.yml".into(), "more.yml".into()];
        let p = load(&o).unwrap();
        let a = &p.services["a"];
        assert_eq!(a.labels.len(), 2);
        assert_eq!(a.cap_add, ["A", "B"]);
        assert_eq!(
            a.build.as_ref().unwrap().context,
            d.path().join("app").to_str().unwrap()
        );
        assert_eq!(a.image_name(&p.name, "a"), format!("{}_a", p.name));
    }
}
