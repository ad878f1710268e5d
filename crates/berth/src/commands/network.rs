//! `berth network ...`: create, ls, inspect, rm, prune, connect, disconnect, with
//! docker's flags and output.

use clap::{Args, Subcommand};
use gtmpl::Value;
use hyper::Method;
use serde_json::{Map, Value as Json, json};

use crate::cli::{Cancelled, FORMAT_HELP, INSPECT_FORMAT_HELP};
use crate::client::{path_escape, with_query};
use crate::commands::volume::natural_cmp;
use crate::commands::{Ctx, confirm, filters_json, joined_errors, parse_filter};
use crate::format::template::{RowFormatter, TABLE_PREFIX, row};

/// `berth network`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true, override_usage = "COMMAND")]
pub(crate) struct NetworkGroup {
    #[command(subcommand)]
    pub(crate) command: Option<NetworkCommand>,
}

/// `berth network <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth network <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, group: NetworkGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(NetworkCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(NetworkCommand::Connect(a)) => connect(ctx, a).await,
        Some(NetworkCommand::Create(a)) => create(ctx, a).await,
        Some(NetworkCommand::Disconnect(a)) => disconnect(ctx, a).await,
        Some(NetworkCommand::Inspect(a)) => inspect(ctx, a).await,
        Some(NetworkCommand::Ls(a)) => list(ctx, a).await,
        Some(NetworkCommand::Prune(a)) => prune(ctx, a).await,
        Some(NetworkCommand::Rm(a)) => remove(ctx, a).await,
    }
}

/// Options of `network create`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] NETWORK")]
pub(crate) struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    ip_range: Vec<String>,
    /// Set metadata on a network
    #[arg(long, value_name = "list", value_parser = crate::commands::container::values::validate_label)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    subnet: Vec<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

fn key_values(list: &[String]) -> Map<String, Json> {
    list.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), Json::from(v))
        })
        .collect()
}

/// `network create`: prints the new network's ID.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    if a.subnet.len() > 1 || a.gateway.len() > 1 || a.ip_range.len() > 1 {
        anyhow::bail!(
            "berth networks have one IPv4 subnet: give --subnet, --gateway and --ip-range at most once"
        );
    }
    let mut pool = Map::new();
    for (key, v) in [
        ("Subnet", &a.subnet),
        ("Gateway", &a.gateway),
        ("IPRange", &a.ip_range),
    ] {
        if let Some(v) = v.first() {
            pool.insert(key.into(), v.clone().into());
        }
    }
    if pool.is_empty() && (!a.gateway.is_empty() || !a.ip_range.is_empty()) {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    if !pool.contains_key("Subnet") && !pool.is_empty() {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let configs: Vec<Json> = if pool.is_empty() {
        Vec::new()
    } else {
        vec![Json::Object(pool)]
    };
    let body = json!({
        "Name": a.args[0],
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "IPAM": {"Driver": "default", "Config": configs, "Options": {}},
        "Options": key_values(&a.opt),
        "Labels": key_values(&a.label),
    });
    let resp = ctx
        .client
        .call_json(Method::POST, "/networks/create", Some(&body))
        .await?;
    ctx.print(&format!("{}\n", resp["Id"].as_str().unwrap_or("")))?;
    Ok(())
}

/// Options of `network inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] NETWORK [NETWORK...]")]
pub(crate) struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    verbose: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network inspect`.
///
/// # Errors
/// A bad template or the joined lookup errors.
pub(crate) async fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let _ = a.verbose;
    crate::commands::inspect::inspect_each(
        ctx,
        &a.args,
        a.format.as_deref().unwrap_or(""),
        &["Labels", "Options", "Containers"],
        |name| async move {
            let v = ctx
                .client
                .get_json(&format!("/networks/{}", path_escape(&name)))
                .await
                .map_err(|e| e.to_string())?;
            Ok(bytes::Bytes::from(
                serde_json::to_vec(&v).expect("JSON values serialize"),
            ))
        },
    )
    .await
}

/// Options of `network ls`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct ListArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// `network ls`: sorted by name, as docker sorts them.
///
/// # Errors
/// Template and daemon errors.
pub(crate) async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let mut params = Vec::new();
    if let Some(f) = filters_json(&a.filter) {
        params.push(("filters", f));
    }
    let resp = ctx
        .client
        .get_json(&with_query("/networks", &params))
        .await?;
    let mut networks = resp.as_array().cloned().unwrap_or_default();
    networks.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some(TABLE_PREFIX) if a.quiet => "{{.ID}}".to_string(),
        None | Some(TABLE_PREFIX) => {
            "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".to_string()
        }
        Some("raw") if a.quiet => "network_id: {{.ID}}".to_string(),
        Some("raw") => {
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
                .to_string()
        }
        Some(f) => f.to_string(),
    };
    let rows: Vec<Value> = networks
        .iter()
        .map(|n| network_row(n, a.no_trunc))
        .collect();
    let formatter = RowFormatter::new(&format)?.with_go_type("*formatter.networkContext");
    ctx.print(&formatter.render(HEADERS, &rows)?)?;
    Ok(())
}

fn network_row(n: &Json, no_trunc: bool) -> Value {
    let text = |k: &str| n[k].as_str().unwrap_or("").to_string();
    let mut id = text("Id");
    if !no_trunc {
        id.truncate(12);
    }
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    row(&[
        ("ID", id),
        ("Name", text("Name")),
        ("Driver", text("Driver")),
        ("Scope", text("Scope")),
        (
            "IPv4",
            n["EnableIPv4"].as_bool().unwrap_or(true).to_string(),
        ),
        (
            "IPv6",
            n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        ),
        (
            "Internal",
            n["Internal"].as_bool().unwrap_or(false).to_string(),
        ),
        ("Labels", labels.join(",")),
        ("CreatedAt", text("Created")),
    ])
}

/// Options of `network rm`.
#[derive(Args, Debug)]
#[command(override_usage = "NETWORK [NETWORK...]")]
pub(crate) struct RemoveArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network rm`: prints each name removed.
///
/// # Errors
/// The joined errors of the networks that could not be removed.
pub(crate) async fn remove(ctx: &Ctx, a: RemoveArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut errors = Vec::new();
    for name in &a.args {
        let path = format!("/networks/{}", path_escape(name));
        match ctx.client.call_json(Method::DELETE, &path, None).await {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e) if crate::commands::fatal(&e) => return Err(e.into()),
            Err(e) if a.force && e.to_string().contains("not found") => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

/// Options of `network prune`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

/// `network prune`.
///
/// # Errors
/// [`Cancelled`], daemon errors.
pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    if !a.force && !confirm(ctx, PRUNE_WARNING)? {
        return Err(Cancelled("network prune has been cancelled".to_string()).into());
    }
    let (_, block) = prune_networks(ctx, &a.filter).await?;
    // docker prints no total here: network removal frees no space it counts.
    if !block.is_empty() {
        ctx.print(&block)?;
    }
    Ok(())
}

/// The network part of a prune: the "Deleted Networks:" block.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn prune_networks(
    ctx: &Ctx,
    filters: &[(String, String)],
) -> anyhow::Result<(u64, String)> {
    crate::commands::prune_report(
        ctx,
        "/networks/prune",
        filters,
        "NetworksDeleted",
        "Deleted Networks",
        crate::commands::prune_item_text,
    )
    .await
}

/// Options of `network connect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] NETWORK CONTAINER")]
pub(crate) struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings")]
    alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "ip")]
    ip: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network connect`.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn connect(ctx: &Ctx, a: ConnectArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 2)?;
    let mut endpoint = json!({"Aliases": a.alias});
    if let Some(ip) = &a.ip {
        endpoint["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": a.args[1], "EndpointConfig": endpoint});
    let path = format!("/networks/{}/connect", path_escape(&a.args[0]));
    ctx.client
        .call_json(Method::POST, &path, Some(&body))
        .await?;
    Ok(())
}

/// Options of `network disconnect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] NETWORK CONTAINER")]
pub(crate) struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `network disconnect`.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn disconnect(ctx: &Ctx, a: DisconnectArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 2)?;
    let body = json!({"Container": a.args[1], "Force": a.force});
    let path = format!("/networks/{}/disconnect", path_escape(&a.args[0]));
    ctx.client
        .call_json(Method::POST, &path, Some(&body))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_truncate_ids_unless_asked() {
        let n = json!({"Id": "0123456789abcdef0123", "Name": "app", "Driver": "bridge",
                       "Scope": "local", "Labels": {"b": "2", "a": "1"}});
        let r = network_row(&n, false);
        let formatter = RowFormatter::new("{{.ID}} {{.Name}} {{.Labels}}").unwrap();
        assert_eq!(
            formatter.render(HEADERS, &[r]).unwrap(),
            "0123456789ab app a=1,b=2\n"
        );
        let r = network_row(&n, true);
        let formatter = RowFormatter::new("{{.ID}}").unwrap();
        assert_eq!(
            formatter.render(HEADERS, &[r]).unwrap(),
            "0123456789abcdef0123\n"
        );
    }
}
