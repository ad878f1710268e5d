//! `ps` / `container ls`: the container list with docker's columns.
//!
//! Rows carry the fields of docker's `ContainerContext` as strings (ID,
//! Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size,
//! Labels, Mounts, LocalVolumes, Networks, Names, Platform); `Status` is the
//! daemon's text ("Up 2 seconds", "Exited (0) 3 seconds ago").

use std::collections::BTreeMap;

use clap::Args;
use gtmpl::Value;
use serde_json::Value as Json;

use crate::cli::{FORMAT_HELP, StatusError};
use crate::client::with_query;
use crate::commands::image::list::go_time_string;
use crate::commands::{Ctx, filters_json, parse_filter};
use crate::format::template::{GoTemplate, RowFormatter, TABLE_PREFIX, row};
use crate::format::{ellipsis, truncate_id, units};
use crate::reference::parse_normalized_named;

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
const QUIET_FORMAT: &str = "{{.ID}}";

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

/// Options of `ps` / `container ls`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct ListArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int", allow_hyphen_values = true, value_parser = super::values::go_int, default_value = "-1", allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Runs the listing.
///
/// # Errors
/// Template errors and daemon errors.
pub(crate) async fn run(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let format = a.format.clone().unwrap_or_default();
    if !format.is_empty() && a.quiet {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let mut size = a.size;
    if !format.is_empty() {
        // docker runs the template once on an empty row to see what it uses.
        GoTemplate::parse(&format).map_err(|e| StatusError {
            message: format!("failed to parse template: {}", e.0),
            code: 1,
        })?;
        let uses_size = format.contains(".Size") || format.contains("json .");
        if !a.quiet && !a.size && uses_size {
            size = true;
        }
    }
    let mut limit = a.last;
    if a.latest && a.last == -1 {
        limit = 1;
    }
    let mut params = Vec::new();
    if a.all {
        params.push(("all", "1".to_string()));
    }
    if limit > 0 {
        params.push(("limit", limit.to_string()));
    }
    if size {
        params.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&a.filter) {
        params.push(("filters", f));
    }
    let list = ctx
        .client
        .get_json(&with_query("/containers/json", &params))
        .await?;
    let containers = list.as_array().cloned().unwrap_or_default();
    let format = container_format(&format, a.quiet, size);
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| container_row(c, !a.no_trunc))
        .collect();
    let formatter = RowFormatter::new(&format)?.with_go_type("*formatter.ContainerContext");
    if a.format.as_deref().is_some_and(|f| !f.is_empty()) {
        // docker executes the user's template on an empty row before listing.
        let empty = container_row(&Json::Null, true);
        formatter.render(&[], &[empty]).map_err(|e| StatusError {
            message: format!("failed to execute template: {}", e.0),
            code: 1,
        })?;
    }
    ctx.print(&formatter.render(HEADERS, &rows)?)?;
    Ok(())
}

/// docker's `NewContainerFormat`.
fn container_format(source: &str, quiet: bool, size: bool) -> String {
    match source {
        "" | TABLE_PREFIX => {
            if quiet {
                QUIET_FORMAT.to_string()
            } else if size {
                format!("{DEFAULT_TABLE}\\t{{{{.Size}}}}")
            } else {
                DEFAULT_TABLE.to_string()
            }
        }
        "raw" => {
            if quiet {
                return "container_id: {{.ID}}".to_string();
            }
            let mut f = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n".to_string();
            if size {
                f.push_str("size: {{.Size}}\\n");
            }
            f
        }
        _ if quiet => QUIET_FORMAT.to_string(),
        other => other.to_string(),
    }
}

fn text<'a>(v: &'a Json, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// One row, as docker's `ContainerContext` renders each field.
fn container_row(c: &Json, trunc: bool) -> Value {
    let id = text(c, "Id");
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|s| s.as_str())
                .map(|s| s.get(1..).unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let names = if trunc {
        match names.iter().find(|n| !n.contains('/')) {
            Some(n) => vec![n.clone()],
            None => names,
        }
    } else {
        names
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let command = text(c, "Command");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let size_rw = c["SizeRw"].as_i64().unwrap_or(0);
    let size_root = c["SizeRootFs"].as_i64().unwrap_or(0);
    let mut size = units::human_size_with_precision(size_rw as f64, 3);
    if size_root > 0 {
        size = format!(
            "{size} (virtual {})",
            units::human_size_with_precision(size_root as f64, 3)
        );
    }
    let labels = match c["Labels"].as_object() {
        Some(m) => {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            l.sort();
            l.join(",")
        }
        None => String::new(),
    };
    let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = match text(m, "Name") {
                "" => text(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = mounts
        .iter()
        .filter(|m| text(m, "Driver") == "local")
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    let mut r = row(&[
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            },
        ),
        ("Names", names.join(",")),
        ("Image", image_name(c, trunc)),
        ("Command", go_quote(&command)),
        ("CreatedAt", go_time_string(created)),
        ("RunningFor", units::human_since(created)),
        (
            "Ports",
            displayable_ports(c["Ports"].as_array().map_or(&[], |p| p)),
        ),
        ("State", text(c, "State").to_string()),
        ("Status", text(c, "Status").to_string()),
        ("Size", size),
        ("Labels", labels),
        ("Mounts", mount_names.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
        ("Networks", networks.join(",")),
    ]);
    if let Value::Object(m) = &mut r {
        // Only API 1.48+ reports the image's platform; docker then prints null.
        m.insert("Platform".to_string(), Value::Nil);
    }
    r
}

/// docker's `ContainerContext.Image`: the short ID when the container was
/// made from an ID, else the familiar name (and tag, digest dropped).
fn image_name(c: &Json, trunc: bool) -> String {
    let image = text(c, "Image");
    if image.is_empty() {
        return "<no image>".to_string();
    }
    if trunc {
        let short = truncate_id(text(c, "ImageID"));
        if short == truncate_id(image) {
            return short;
        }
        if let Ok(r) = parse_normalized_named(image) {
            return match r.tag() {
                Some(t) => format!("{}:{t}", r.familiar_name()),
                None => r.familiar_name(),
            };
        }
    }
    image.to_string()
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges,
/// "0.0.0.0:8080->80/tcp" for mappings.
pub(crate) fn displayable_ports(ports: &[Json]) -> String {
    struct Port {
        ip: String,
        private: u16,
        public: u16,
        kind: String,
    }
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: text(p, "IP").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0) as u16,
            public: p["PublicPort"].as_u64().unwrap_or(0) as u16,
            kind: text(p, "Type").to_string(),
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind))
    });
    let join_host_port = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let form_group = |key: &str, start: u16, last: u16| {
        let (ip, kind) = match key.split_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut group = start.to_string();
        if start != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{kind}")
    };
    let mut groups: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    let mut group_order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.kind
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (p.private, p.private));
                group_order.push(key);
            }
            Some(g) if p.private == g.1.wrapping_add(1) => g.1 = p.private,
            Some(g) => {
                result.push(form_group(&key, g.0, g.1));
                *g = (p.private, p.private);
            }
        }
    }
    for key in &group_order {
        let g = groups[key];
        result.push(form_group(key, g.0, g.1));
    }
    result.extend(host_mappings);
    result.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_group_and_map_like_docker() {
        let ports = [
            json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"PrivatePort": 1000, "Type": "tcp"}),
            json!({"PrivatePort": 1001, "Type": "tcp"}),
            json!({"PrivatePort": 53, "Type": "udp"}),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "53/udp, 1000-1001/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        let same = [json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"})];
        assert_eq!(displayable_ports(&same), "0.0.0.0:80->80/tcp");
    }

    #[test]
    fn commands_are_quoted_like_go() {
        assert_eq!(go_quote("sh -c \"x\"\n"), "\"sh -c \\\"x\\\"\\n\"");
        assert_eq!(go_quote("a\u{1}"), "\"a\\x01\"");
    }

    #[test]
    fn image_names_are_familiar_and_short() {
        let c = json!({"Image": "docker.io/library/busybox:latest", "ImageID": "sha256:aaa"});
        assert_eq!(image_name(&c, true), "busybox:latest");
        let by_id =
            json!({"Image": "sha256:7048b31b045663afae", "ImageID": "sha256:7048b31b045663afae"});
        assert_eq!(image_name(&by_id, true), "7048b31b0456");
        assert_eq!(image_name(&json!({"Image": ""}), true), "<no image>");
    }

    #[test]
    fn size_column_is_added_to_the_default_table() {
        assert_eq!(container_format("", true, true), QUIET_FORMAT);
        assert!(container_format("table", false, true).ends_with("\\t{{.Size}}"));
        assert_eq!(container_format("{{.Names}}", true, false), QUIET_FORMAT);
    }
}
