//! `berth volume ...`: create, ls, inspect, rm, prune.
//!
//! `volume ls` sorts names naturally ("v2" before "v10") as docker does;
//! `volume inspect` prints the volume as docker's typed struct marshals it
//! (fields and label keys in sorted order) rather than the daemon's bytes.

use std::cmp::Ordering;

use clap::{Args, Subcommand};
use gtmpl::Value;
use hyper::Method;
use serde_json::{Map, Value as Json};

use crate::cli::{Cancelled, FORMAT_HELP, INSPECT_FORMAT_HELP};
use crate::client::{ClientError, path_escape, version_less, with_query};
use crate::commands::{Ctx, confirm, filters_json, joined_errors, parse_filter};
use crate::format::template::{RowFormatter, TABLE_PREFIX, row};
use crate::format::units;

/// `berth volume`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true, override_usage = "COMMAND")]
pub(crate) struct VolumeGroup {
    #[command(subcommand)]
    pub(crate) command: Option<VolumeCommand>,
}

/// `berth volume <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth volume <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, group: VolumeGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(VolumeCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(VolumeCommand::Create(a)) => create(ctx, a).await,
        Some(VolumeCommand::Inspect(a)) => inspect(ctx, a).await,
        Some(VolumeCommand::Ls(a)) => list(ctx, a).await,
        Some(VolumeCommand::Prune(a)) => prune(ctx, a).await,
        Some(VolumeCommand::Rm(a)) => remove(ctx, a).await,
    }
}

/// Options of `volume create`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [VOLUME]")]
pub(crate) struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list", value_parser = crate::commands::container::values::validate_label)]
    label: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string", hide = true)]
    name: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    opt: Vec<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `volume create`: prints the volume's name.
///
/// # Errors
/// A name given twice; daemon errors.
pub(crate) async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    ctx.usage.max_args(&a.args, 1)?;
    let mut name = a.name.clone().unwrap_or_default();
    if let Some(arg) = a.args.first() {
        if !name.is_empty() {
            anyhow::bail!(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
            );
        }
        name = arg.clone();
    }
    let kv = |list: &[String]| -> Map<String, Json> {
        list.iter()
            .map(|s| {
                let (k, v) = s.split_once('=').unwrap_or((s, ""));
                (k.to_string(), Json::from(v))
            })
            .collect()
    };
    let mut body = Map::new();
    if !a.driver.is_empty() {
        body.insert("Driver".into(), a.driver.clone().into());
    }
    let opts = kv(&a.opt);
    if !opts.is_empty() {
        body.insert("DriverOpts".into(), Json::Object(opts));
    }
    let labels = kv(&a.label);
    if !labels.is_empty() {
        body.insert("Labels".into(), Json::Object(labels));
    }
    if !name.is_empty() {
        body.insert("Name".into(), name.into());
    }
    let vol = ctx
        .client
        .call_json(Method::POST, "/volumes/create", Some(&Json::Object(body)))
        .await?;
    ctx.print(&format!("{}\n", vol["Name"].as_str().unwrap_or("")))?;
    Ok(())
}

/// Options of `volume inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] VOLUME [VOLUME...]")]
pub(crate) struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `volume inspect`.
///
/// # Errors
/// A bad template (exit 64) or the joined lookup errors.
pub(crate) async fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    crate::commands::inspect::inspect_each(
        ctx,
        &a.args,
        a.format.as_deref().unwrap_or(""),
        &["Labels", "Options"],
        |name| async move {
            let v = ctx
                .client
                .get_json(&format!("/volumes/{}", path_escape(&name)))
                .await
                .map_err(|e| e.to_string())?;
            // Re-marshalled as docker's typed struct: keys sorted.
            Ok(bytes::Bytes::from(
                serde_json::to_vec(&v).expect("JSON values serialize"),
            ))
        },
    )
    .await
}

/// Options of `volume ls`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct ListArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "VOLUME NAME"),
    ("Group", "GROUP"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Availability", "AVAILABILITY"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Status", "STATUS"),
];

/// `volume ls`.
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
        .get_json(&with_query("/volumes", &params))
        .await?;
    let mut volumes = resp["Volumes"].as_array().cloned().unwrap_or_default();
    volumes.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some(TABLE_PREFIX) if a.quiet => "{{.Name}}".to_string(),
        None | Some(TABLE_PREFIX) => "table {{.Driver}}\t{{.Name}}".to_string(),
        Some("raw") if a.quiet => "name: {{.Name}}".to_string(),
        Some("raw") => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".to_string(),
        Some(f) => f.to_string(),
    };
    let rows: Vec<Value> = volumes.iter().map(volume_row).collect();
    let formatter = RowFormatter::new(&format)?.with_go_type("*formatter.volumeContext");
    ctx.print(&formatter.render(HEADERS, &rows)?)?;
    Ok(())
}

fn volume_row(v: &Json) -> Value {
    let text = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let labels = match v["Labels"].as_object() {
        Some(m) => {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or("")))
                .collect();
            l.sort();
            l.join(",")
        }
        None => String::new(),
    };
    let usage = v.get("UsageData").filter(|u| !u.is_null());
    let cluster = v.get("ClusterVolume").filter(|c| !c.is_null());
    let na = || "N/A".to_string();
    row(&[
        ("Name", text("Name")),
        ("Driver", text("Driver")),
        ("Scope", text("Scope")),
        ("Mountpoint", text("Mountpoint")),
        ("Labels", labels),
        (
            "Links",
            usage.map_or_else(na, |u| u["RefCount"].as_i64().unwrap_or(0).to_string()),
        ),
        (
            "Size",
            usage.map_or_else(na, |u| {
                units::human_size(u["Size"].as_i64().unwrap_or(0) as f64)
            }),
        ),
        (
            "Group",
            cluster.map_or_else(na, |c| {
                c["Spec"]["Group"].as_str().unwrap_or("").to_string()
            }),
        ),
        (
            "Availability",
            cluster.map_or_else(na, |c| {
                c["Spec"]["Availability"].as_str().unwrap_or("").to_string()
            }),
        ),
        ("Status", cluster.map_or_else(na, |_| "created".to_string())),
    ])
}

/// fvbommel/sortorder's `NaturalLess` as an ordering: runs of digits
/// compare by value.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (la, lb) = (i - nz_a, j - nz_b);
        if la != lb {
            return la.cmp(&lb);
        }
        if a[nz_a..i] != b[nz_b..j] {
            return a[nz_a..i].cmp(&b[nz_b..j]);
        }
        if nz_a != nz_b {
            return nz_a.cmp(&nz_b);
        }
    }
    a.len().cmp(&b.len())
}

/// Options of `volume rm`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] VOLUME [VOLUME...]")]
pub(crate) struct RemoveArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `volume rm`.
///
/// # Errors
/// The joined errors of the volumes that could not be removed.
pub(crate) async fn remove(ctx: &Ctx, a: RemoveArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut errors = Vec::new();
    for name in &a.args {
        let mut params = Vec::new();
        if a.force {
            params.push(("force", "1".to_string()));
        }
        let path = with_query(&format!("/volumes/{}", path_escape(name)), &params);
        match ctx.client.call_json(Method::DELETE, &path, None).await {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                return Err(e.into());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

/// Options of `volume prune`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const ANONYMOUS_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

/// `volume prune`: anonymous volumes only unless `-a` (API 1.42 and later).
///
/// # Errors
/// [`Cancelled`], conflicting `--all`, daemon errors.
pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    super::check_flag_support(ctx, &[("all", "1.42", a.all)]).await?;
    let mut filters = a.filter.clone();
    let mut warning = ANONYMOUS_WARNING;
    let version = ctx.client.api_version().await;
    if !version_less(&version, "1.42") {
        if a.all {
            if filters.iter().any(|(k, _)| k == "all") {
                anyhow::bail!("conflicting options: cannot specify both --all and --filter all=1");
            }
            filters.push(("all".to_string(), "true".to_string()));
            warning = ALL_WARNING;
        }
    } else {
        warning = ALL_WARNING;
    }
    if !a.force && !confirm(ctx, warning)? {
        return Err(Cancelled("volume prune has been cancelled".to_string()).into());
    }
    let (reclaimed, block) = prune_volumes(ctx, &filters).await?;
    crate::commands::print_prune(ctx, reclaimed, &block)?;
    Ok(())
}

/// The volume part of a prune: space reclaimed and the "Deleted Volumes:" block.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn prune_volumes(
    ctx: &Ctx,
    filters: &[(String, String)],
) -> anyhow::Result<(u64, String)> {
    crate::commands::prune_report(
        ctx,
        "/volumes/prune",
        filters,
        "VolumesDeleted",
        "Deleted Volumes",
        crate::commands::prune_item_text,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_naturally() {
        let mut v = vec!["v10", "v2", "a", "v02", "1x"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["1x", "a", "v2", "v02", "v10"]);
    }
}
