//! `version`, `info` and the `system` group.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use gtmpl::Value;
use serde_json::Value as Json;

use crate::cli::{INSPECT_FORMAT_HELP, StatusError};
use crate::client::MAX_API_VERSION;
use crate::commands::Ctx;
use crate::format::json::compact;
use crate::format::tabwriter::TabWriter;
use crate::format::template::{GoTemplate, JSON_FORMAT, JSON_KEY, add_aliases, from_json};
use crate::format::units;

/// `berth system`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true)]
pub(crate) struct SystemGroup {
    #[command(subcommand)]
    pub(crate) command: Option<SystemCommand>,
}

/// `berth system <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum SystemCommand {
    /// Get real time events from the server
    Events(super::events::EventsArgs),
    /// Show docker disk usage
    Df(super::disk::DfArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Remove unused data
    Prune(super::disk::SystemPruneArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth system <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, group: SystemGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(SystemCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(SystemCommand::Info(a)) => info(ctx, a).await,
        Some(SystemCommand::Events(a)) => super::events::run(ctx, a).await,
        Some(SystemCommand::Df(a)) => super::disk::df(ctx, a).await,
        Some(SystemCommand::Prune(a)) => super::disk::system_prune(ctx, a).await,
    }
}

/// Options of `version`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct VersionArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// The client half of `version` (docker's `clientVersion`).
struct ClientVersion {
    version: &'static str,
    api_version: String,
    go_version: &'static str,
    git_commit: &'static str,
    build_time: &'static str,
    os: &'static str,
    arch: &'static str,
    context: String,
}

impl ClientVersion {
    fn new(api_version: String, context: &str) -> Self {
        ClientVersion {
            version: env!("CARGO_PKG_VERSION"),
            api_version,
            // berth is not written in Go; the field stays for templates.
            go_version: "rust",
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
            build_time: option_env!("BERTH_BUILD_TIME").unwrap_or("unknown"),
            os: std::env::consts::OS,
            arch: go_arch(),
            context: context.to_string(),
        }
    }

    /// Template fields, named as docker's Go struct fields.
    fn template_value(&self) -> Value {
        let mut m: HashMap<String, Value> = HashMap::new();
        m.insert("Platform".into(), Value::Nil);
        m.insert("Version".into(), Value::from(self.version));
        m.insert("APIVersion".into(), Value::from(self.api_version.as_str()));
        m.insert("DefaultAPIVersion".into(), Value::from(MAX_API_VERSION));
        m.insert("GitCommit".into(), Value::from(self.git_commit));
        m.insert("GoVersion".into(), Value::from(self.go_version));
        m.insert("Os".into(), Value::from(self.os));
        m.insert("Arch".into(), Value::from(self.arch));
        m.insert("BuildTime".into(), Value::from(self.build_time));
        m.insert("Context".into(), Value::from(self.context.as_str()));
        Value::Object(m)
    }

    /// JSON with docker's tags and field order.
    fn json(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).expect("strings serialize");
        format!(
            "{{\"Version\":{},\"ApiVersion\":{},\"DefaultAPIVersion\":{},\"GitCommit\":{},\"GoVersion\":{},\"Os\":{},\"Arch\":{},\"BuildTime\":{},\"Context\":{}}}",
            s(self.version),
            s(&self.api_version),
            s(MAX_API_VERSION),
            s(self.git_commit),
            s(self.go_version),
            s(self.os),
            s(self.arch),
            s(self.build_time),
            s(&self.context)
        )
    }
}

/// Go's GOARCH names for the machine.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Go's `time.ANSIC` for an RFC 3339 time, or the text unchanged (`reformatDate`).
fn reformat_date(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// `version`: the client section, then the server's (or the connection error).
///
/// # Errors
/// A bad template (exit 64), an unreachable daemon.
pub(crate) async fn version(ctx: &Ctx, a: VersionArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let format = a.format.unwrap_or_default();
    let template = match format.as_str() {
        "" | JSON_KEY => None,
        f => Some(GoTemplate::parse(f).map_err(|e| StatusError {
            message: e.to_string(),
            code: 64,
        })?),
    };
    let server = ctx.client.get_bytes("/version").await;
    let client = ClientVersion::new(ctx.client.api_version().await, &ctx.context);
    let server_json: Option<Json> = match &server {
        Ok(raw) => Some(serde_json::from_slice(raw)?),
        Err(_) => None,
    };
    let mut render_err = None;
    let text = if format == JSON_KEY || format == JSON_FORMAT {
        let server = match &server {
            Ok(raw) => format!(",\"Server\":{}", compact(raw)),
            Err(_) => ",\"Server\":null".to_string(),
        };
        format!("{{\"Client\":{}{server}}}\n", client.json())
    } else if let Some(t) = template {
        let mut data = HashMap::new();
        data.insert("Client".to_string(), client.template_value());
        let mut server = server_json.as_ref().map_or(Value::Nil, from_json);
        add_aliases(&mut server, &[("ApiVersion", "APIVersion")]);
        data.insert("Server".to_string(), server);
        let out = t.render(&Value::Object(data)).unwrap_or_else(|e| {
            render_err = Some(e);
            String::new()
        });
        let mut tw = TabWriter::new(20, 1);
        tw.write(&out);
        tw.write("\n");
        tw.flush()
    } else {
        default_version_text(&client, server_json.as_ref())
    };
    ctx.print(&text)?;
    server?;
    if let Some(e) = render_err {
        return Err(e.into());
    }
    Ok(())
}

/// docker's default version template, rendered.
fn default_version_text(c: &ClientVersion, server: Option<&Json>) -> String {
    let downgraded = if c.api_version != MAX_API_VERSION {
        format!(" (downgraded from {MAX_API_VERSION})")
    } else {
        String::new()
    };
    let mut t = format!(
        "Client:\n Version:\t{}\n API version:\t{}{downgraded}\n Go version:\t{}\n Git commit:\t{}\n Built:\t{}\n OS/Arch:\t{}/{}\n Context:\t{}",
        c.version, c.api_version, c.go_version, c.git_commit, c.build_time, c.os, c.arch, c.context
    );
    if let Some(sv) = server {
        let s = |v: &Json, k: &str| -> String {
            match &v[k] {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            }
        };
        t.push_str("\n\nServer:");
        let platform = s(&sv["Platform"], "Name");
        if !platform.is_empty() {
            t.push(' ');
            t.push_str(&platform);
        }
        let mut components: Vec<Json> = sv["Components"].as_array().cloned().unwrap_or_default();
        if !components.iter().any(|c| c["Name"] == "Engine") {
            components.push(serde_json::json!({
                "Name": "Engine", "Version": s(sv, "Version"),
                "Details": {
                    "ApiVersion": s(sv, "ApiVersion"), "MinAPIVersion": s(sv, "MinAPIVersion"),
                    "GitCommit": s(sv, "GitCommit"), "GoVersion": s(sv, "GoVersion"),
                    "Os": s(sv, "Os"), "Arch": s(sv, "Arch"), "BuildTime": s(sv, "BuildTime"),
                    "Experimental": sv["Experimental"].as_bool().unwrap_or(false).to_string(),
                }
            }));
        }
        for comp in &components {
            let name = s(comp, "Name");
            let d = &comp["Details"];
            t.push_str(&format!("\n {name}:"));
            if name == "Engine" {
                t.push_str(&format!(
                    "\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}",
                    s(comp, "Version"),
                    s(d, "ApiVersion"),
                    s(d, "MinAPIVersion"),
                    s(d, "GoVersion"),
                    s(d, "GitCommit"),
                    reformat_date(&s(d, "BuildTime")),
                    s(d, "Os"),
                    s(d, "Arch"),
                    s(d, "Experimental"),
                ));
            } else {
                t.push_str(&format!("\n  Version:\t{}", s(comp, "Version")));
                let mut keys: Vec<&String> = d
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                keys.sort();
                for k in keys {
                    t.push_str(&format!("\n  {k}:\t{}", s(d, k)));
                }
            }
        }
    }
    t.push('\n');
    let mut tw = TabWriter::new(20, 1);
    tw.write(&t);
    tw.flush()
}

/// Options of `info`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS]",
    after_long_help = "berth system info, berth info"
)]
pub(crate) struct InfoArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `info`: client and server sections like docker's, or `--format`.
///
/// # Errors
/// A bad template (exit 64), an unreachable daemon, daemon errors.
pub(crate) async fn info(ctx: &Ctx, a: InfoArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let format = a.format.unwrap_or_default();
    let template = match format.as_str() {
        "" | JSON_KEY | JSON_FORMAT => None,
        f => Some(GoTemplate::parse(f).map_err(|e| StatusError {
            message: e.to_string(),
            code: 64,
        })?),
    };
    let client = ClientVersion::new(ctx.client.api_version().await, &ctx.context);
    let raw = ctx.client.get_bytes("/info").await;
    if format.is_empty() {
        let mut text = format!(
            "Client:\n Version:    {}\n Context:    {}\n Debug Mode: {}\n\nServer:\n",
            client.version, client.context, ctx.debug
        );
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                ctx.print(&text)?;
                return Err(e.into());
            }
        };
        let info: Json = serde_json::from_slice(&raw)?;
        text.push_str(&server_info_text(&info, ctx.debug));
        ctx.print(&text)?;
        for w in info["Warnings"].as_array().into_iter().flatten() {
            eprintln!("{}", w.as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let raw = raw?;
    let client_info = format!(
        "{{\"Debug\":{},{},\"Plugins\":[],\"Warnings\":null}}",
        ctx.debug,
        client.json().trim_start_matches('{').trim_end_matches('}')
    );
    let Some(t) = template else {
        // `json`: the daemon's object with ClientInfo appended, fields in docker's order.
        let server = compact(&raw);
        let server = server.trim_end().trim_end_matches('}');
        ctx.print(&format!("{server},\"ClientInfo\":{client_info}}}\n"))?;
        return Ok(());
    };
    let mut info = from_json(&serde_json::from_slice(&raw)?);
    // Go field names of system.Info whose JSON keys differ.
    add_aliases(
        &mut info,
        &[
            ("HttpProxy", "HTTPProxy"),
            ("HttpsProxy", "HTTPSProxy"),
            ("CpuCfsPeriod", "CPUCfsPeriod"),
            ("CpuCfsQuota", "CPUCfsQuota"),
        ],
    );
    let mut data = match info {
        Value::Object(m) => m,
        _ => HashMap::new(),
    };
    data.insert(
        "ClientInfo".into(),
        from_json(&serde_json::from_str(&client_info)?),
    );
    let result = t.render(&Value::Object(data));
    let (out, err) = match result {
        Ok(out) => (out, None),
        Err(e) => (String::new(), Some(e)),
    };
    ctx.print(&format!("{out}\n"))?;
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(())
}

/// docker's `prettyPrintServerInfo`.
fn server_info_text(i: &Json, client_debug: bool) -> String {
    let s = |k: &str| -> String {
        match &i[k] {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        }
    };
    let strs = |v: &Json| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut o = String::new();
    let mut line = |text: String| {
        o.push_str(&text);
        o.push('\n');
    };
    let non_empty = |label: &str, value: String| -> Option<String> {
        (!value.is_empty()).then(|| format!("{label} {value}"))
    };
    line(format!(" Containers: {}", s("Containers")));
    line(format!("  Running: {}", s("ContainersRunning")));
    line(format!("  Paused: {}", s("ContainersPaused")));
    line(format!("  Stopped: {}", s("ContainersStopped")));
    line(format!(" Images: {}", s("Images")));
    for l in [
        non_empty(" Server Version:", s("ServerVersion")),
        non_empty(" Storage Driver:", s("Driver")),
    ]
    .into_iter()
    .flatten()
    {
        line(l);
    }
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        let p = strs(pair);
        line(format!(
            "  {}: {}",
            p.first().cloned().unwrap_or_default(),
            p.get(1).cloned().unwrap_or_default()
        ));
    }
    for pair in i["SystemStatus"].as_array().into_iter().flatten() {
        let p = strs(pair);
        line(format!(
            " {}: {}",
            p.first().cloned().unwrap_or_default(),
            p.get(1).cloned().unwrap_or_default()
        ));
    }
    for l in [
        non_empty(" Logging Driver:", s("LoggingDriver")),
        non_empty(" Cgroup Driver:", s("CgroupDriver")),
        non_empty(" Cgroup Version:", s("CgroupVersion")),
    ]
    .into_iter()
    .flatten()
    {
        line(l);
    }
    let plugins = &i["Plugins"];
    line(" Plugins:".to_string());
    line(format!("  Volume: {}", strs(&plugins["Volume"]).join(" ")));
    line(format!(
        "  Network: {}",
        strs(&plugins["Network"]).join(" ")
    ));
    let authz = strs(&plugins["Authorization"]);
    if !authz.is_empty() {
        line(format!("  Authorization: {}", authz.join(" ")));
    }
    line(format!("  Log: {}", strs(&plugins["Log"]).join(" ")));
    let cdi = strs(&i["CDISpecDirs"]);
    if !cdi.is_empty() {
        line(" CDI spec directories:".to_string());
        for d in cdi {
            line(format!("  {d}"));
        }
    }
    line(format!(
        " Swarm: {}",
        i["Swarm"]["LocalNodeState"].as_str().unwrap_or("")
    ));
    if let Some(runtimes) = i["Runtimes"].as_object().filter(|r| !r.is_empty()) {
        let mut names: Vec<&String> = runtimes.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        line(format!(" Runtimes: {}", names.join(" ")));
        line(format!(" Default Runtime: {}", s("DefaultRuntime")));
    }
    if s("OSType") == "linux" {
        line(format!(" Init Binary: {}", s("InitBinary")));
        line(format!(
            " containerd version: {}",
            i["ContainerdCommit"]["ID"].as_str().unwrap_or("")
        ));
        line(format!(
            " runc version: {}",
            i["RuncCommit"]["ID"].as_str().unwrap_or("")
        ));
        line(format!(
            " init version: {}",
            i["InitCommit"]["ID"].as_str().unwrap_or("")
        ));
        let opts = strs(&i["SecurityOptions"]);
        if !opts.is_empty() {
            line(" Security Options:".to_string());
            for opt in opts {
                let mut name = String::new();
                let mut profile = None;
                for kv in opt.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v.to_string(),
                        Some(("profile", v)) => profile = Some(v.to_string()),
                        Some(_) => {}
                        None => name = kv.to_string(),
                    }
                }
                line(format!("  {name}"));
                if let Some(p) = profile {
                    line(format!("   Profile: {p}"));
                }
            }
        }
    }
    for l in [
        non_empty(" Kernel Version:", s("KernelVersion")),
        non_empty(" Operating System:", s("OperatingSystem")),
        non_empty(" OSType:", s("OSType")),
        non_empty(" Architecture:", s("Architecture")),
    ]
    .into_iter()
    .flatten()
    {
        line(l);
    }
    line(format!(" CPUs: {}", s("NCPU")));
    line(format!(
        " Total Memory: {}",
        units::bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    for l in [non_empty(" Name:", s("Name")), non_empty(" ID:", s("ID"))]
        .into_iter()
        .flatten()
    {
        line(l);
    }
    line(format!(" Docker Root Dir: {}", s("DockerRootDir")));
    let debug = i["Debug"].as_bool().unwrap_or(false);
    line(format!(" Debug Mode: {debug}"));
    if debug || client_debug {
        line(format!("  File Descriptors: {}", s("NFd")));
        line(format!("  Goroutines: {}", s("NGoroutines")));
        line(format!("  System Time: {}", s("SystemTime")));
        line(format!("  EventsListeners: {}", s("NEventsListener")));
    }
    for l in [
        non_empty(" HTTP Proxy:", s("HttpProxy")),
        non_empty(" HTTPS Proxy:", s("HttpsProxy")),
        non_empty(" No Proxy:", s("NoProxy")),
    ]
    .into_iter()
    .flatten()
    {
        line(l);
    }
    let labels = strs(&i["Labels"]);
    if !labels.is_empty() {
        line(" Labels:".to_string());
        for l in labels {
            line(format!("  {l}"));
        }
    }
    line(format!(
        " Experimental: {}",
        i["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    let reg = &i["RegistryConfig"];
    let cidrs = strs(&reg["InsecureRegistryCIDRs"]);
    let index = reg["IndexConfigs"].as_object();
    if !cidrs.is_empty() || index.is_some_and(|m| !m.is_empty()) {
        line(" Insecure Registries:".to_string());
        let mut names: Vec<&String> = index.map(|m| m.keys().collect()).unwrap_or_default();
        names.sort();
        for n in names {
            let cfg = &reg["IndexConfigs"][n.as_str()];
            if !cfg["Secure"].as_bool().unwrap_or(false) {
                line(format!("  {}", cfg["Name"].as_str().unwrap_or(n)));
            }
        }
        for c in cidrs {
            line(format!("  {c}"));
        }
    }
    let mirrors = strs(&reg["Mirrors"]);
    if !mirrors.is_empty() {
        line(" Registry Mirrors:".to_string());
        for m in mirrors {
            line(format!("  {m}"));
        }
    }
    line(format!(
        " Live Restore Enabled: {}",
        i["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    if let Some(l) = non_empty(" Product License:", s("ProductLicense")) {
        line(l);
    }
    if let Some(pools) = i["DefaultAddressPools"]
        .as_array()
        .filter(|p| !p.is_empty())
    {
        line(" Default Address Pools:".to_string());
        for p in pools {
            line(format!(
                "   Base: {}, Size: {}",
                p["Base"].as_str().unwrap_or(""),
                p["Size"]
            ));
        }
    }
    line(String::new());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientVersion {
        ClientVersion {
            version: "0.1.0",
            api_version: "1.41".into(),
            go_version: "rust",
            git_commit: "abc",
            build_time: "unknown",
            os: "linux",
            arch: "amd64",
            context: "default".into(),
        }
    }

    #[test]
    fn version_aligns_like_dockers_tabwriter() {
        let out = default_version_text(&client(), None);
        assert!(out.starts_with("Client:\n Version:           0.1.0\n API version:       1.41 (downgraded from 1.51)\n"), "{out}");
        assert!(out.ends_with(" Context:           default\n"));
    }

    #[test]
    fn version_synthesizes_the_engine_component() {
        let sv = serde_json::json!({"Version": "0.1.0", "ApiVersion": "1.44", "MinAPIVersion": "1.24",
            "GitCommit": "x", "GoVersion": "rust", "Os": "linux", "Arch": "amd64",
            "BuildTime": "2024-05-01T10:00:00.000000000+00:00", "Experimental": false});
        let out = default_version_text(&client(), Some(&sv));
        assert!(out.contains("\n\nServer:\n Engine:\n  Version:          0.1.0\n  API version:      1.44 (minimum version 1.24)\n"), "{out}");
        assert!(
            out.contains("  Built:            Wed May  1 10:00:00 2024\n"),
            "{out}"
        );
    }

    #[test]
    fn info_prints_dockers_sections() {
        let info = serde_json::json!({"Containers": 2, "ContainersRunning": 1, "ContainersPaused": 0,
            "ContainersStopped": 1, "Images": 3, "ServerVersion": "0.1.0", "Driver": "overlay2",
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host"], "Log": ["json-file"]},
            "Swarm": {"LocalNodeState": "inactive"}, "OSType": "linux", "MemTotal": 2_087_575_552u64,
            "NCPU": 2, "SecurityOptions": ["name=seccomp,profile=builtin"], "Runtimes": {"runc": {}}});
        let out = server_info_text(&info, false);
        assert!(out.starts_with(" Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 3\n Server Version: 0.1.0\n"));
        assert!(out.contains("  Network: bridge host\n"));
        assert!(out.contains(" Security Options:\n  seccomp\n   Profile: builtin\n"));
        assert!(out.contains(" Total Memory: 1.944GiB\n"));
        assert!(out.ends_with(" Live Restore Enabled: false\n\n"));
    }
}
