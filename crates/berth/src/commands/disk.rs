//! What the daemon's objects take on disk and giving it back: `system df`,
//! `system prune` and `builder prune`, with docker's tables, prompts and reports.
//!
//! `system prune` is the other prunes in docker's order (containers, networks, then
//! volumes with `--volumes`, images, build cache), each printing its block, and one
//! total at the end.

use clap::Args;
use serde_json::Value as Json;

use crate::cli::{Cancelled, FORMAT_HELP};
use crate::commands::{Ctx, confirm, parse_filter, print_prune, prune_report};
use crate::format::template::{RowFormatter, TABLE_PREFIX, row};
use crate::format::units;

/// Options of `system df`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct DfArgs {
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// `size (N%)` as docker's disk-usage formatter writes reclaimable space (integer
/// percent of `total`), or just the size when the total is zero.
fn reclaimable(reclaim: i64, total: i64) -> String {
    let size = units::human_size(reclaim as f64);
    if total > 0 {
        format!("{size} ({}%)", reclaim * 100 / total)
    } else {
        size
    }
}

/// The summary rows of `system df` from `GET /system/df`.
fn df_rows(df: &Json) -> Vec<gtmpl::Value> {
    let list = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let int = |v: &Json, k: &str| v[k].as_i64().unwrap_or(0);
    let mut rows = Vec::new();

    let images = list("Images");
    let layers = int(df, "LayersSize");
    let used: i64 = images
        .iter()
        .filter(|i| int(i, "Containers") != 0)
        .filter(|i| int(i, "Size") != -1 && int(i, "SharedSize") != -1)
        .map(|i| int(i, "Size") - int(i, "SharedSize"))
        .sum();
    rows.push(row(&[
        ("Type", "Images".into()),
        ("TotalCount", images.len().to_string()),
        (
            "Active",
            images
                .iter()
                .filter(|i| int(i, "Containers") > 0)
                .count()
                .to_string(),
        ),
        ("Size", units::human_size(layers as f64)),
        ("Reclaimable", reclaimable(layers - used, layers)),
    ]));

    let containers = list("Containers");
    let active = |c: &Json| {
        matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        )
    };
    let total: i64 = containers.iter().map(|c| int(c, "SizeRw")).sum();
    let idle: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| int(c, "SizeRw"))
        .sum();
    rows.push(row(&[
        ("Type", "Containers".into()),
        ("TotalCount", containers.len().to_string()),
        (
            "Active",
            containers.iter().filter(|c| active(c)).count().to_string(),
        ),
        ("Size", units::human_size(total as f64)),
        ("Reclaimable", reclaimable(idle, total)),
    ]));

    let volumes = list("Volumes");
    let usage = |v: &Json, k: &str| v["UsageData"][k].as_i64().unwrap_or(0);
    let sized = || volumes.iter().filter(|v| usage(v, "Size") != -1);
    let total: i64 = sized().map(|v| usage(v, "Size")).sum();
    let unused: i64 = sized()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .sum();
    rows.push(row(&[
        ("Type", "Local Volumes".into()),
        ("TotalCount", volumes.len().to_string()),
        (
            "Active",
            volumes
                .iter()
                .filter(|v| usage(v, "RefCount") > 0)
                .count()
                .to_string(),
        ),
        ("Size", units::human_size(total as f64)),
        ("Reclaimable", reclaimable(unused, total)),
    ]));

    let cache = list("BuildCache");
    let size: i64 = cache.iter().map(|c| int(c, "Size")).sum();
    let in_use: i64 = cache
        .iter()
        .filter(|c| c["InUse"].as_bool() == Some(true) && c["Shared"].as_bool() != Some(true))
        .map(|c| int(c, "Size"))
        .sum();
    rows.push(row(&[
        ("Type", "Build Cache".into()),
        ("TotalCount", cache.len().to_string()),
        (
            "Active",
            cache
                .iter()
                .filter(|c| c["InUse"].as_bool() == Some(true))
                .count()
                .to_string(),
        ),
        ("Size", units::human_size(size as f64)),
        ("Reclaimable", units::human_size((size - in_use) as f64)),
    ]));
    rows
}

/// `system df`: the summary table (or `--format`).
///
/// # Errors
/// A bad template; daemon errors.
pub(crate) async fn df(ctx: &Ctx, a: DfArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let usage = ctx.client.get_json("/system/df").await?;
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some(TABLE_PREFIX) => {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
        }
        Some(f) => f,
    };
    let formatter = RowFormatter::new(format)?.with_go_type("*formatter.diskUsageContext");
    ctx.print(&formatter.render(DF_HEADERS, &df_rows(&usage))?)?;
    Ok(())
}

/// Options of `system prune`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// docker's confirmation text for `system prune`.
fn system_prune_warning(a: &SystemPruneArgs) -> String {
    let mut warnings = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if a.volumes {
        warnings.push("all anonymous volumes not used by at least one container");
    }
    warnings.push(if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    warnings.push(if a.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:");
    for w in warnings {
        text.push_str(&format!("\n  - {w}"));
    }
    let mut filters: Vec<String> = a
        .filter
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "label" | "label!" | "until"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    filters.sort();
    if !filters.is_empty() {
        text.push_str("\n\n  Items to be pruned will be filtered with:");
        for f in filters {
            text.push_str(&format!("\n  - {f}"));
        }
    }
    text.push_str("\n\nAre you sure you want to continue?");
    text
}

/// `system prune`.
///
/// # Errors
/// `until` with `--volumes` (docker's message), [`Cancelled`], daemon errors.
pub(crate) async fn system_prune(ctx: &Ctx, a: SystemPruneArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    if a.volumes && a.filter.iter().any(|(k, _)| k == "until") {
        anyhow::bail!(r#"ERROR: The "until" filter is not supported with "--volumes""#);
    }
    if !a.force && !confirm(ctx, &system_prune_warning(&a))? {
        return Err(Cancelled("system prune has been cancelled".to_string()).into());
    }
    let mut parts = vec![
        super::container::lifecycle::prune_containers(ctx, &a.filter).await?,
        super::network::prune_networks(ctx, &a.filter).await?,
    ];
    if a.volumes {
        parts.push(super::volume::prune_volumes(ctx, &a.filter).await?);
    }
    parts.push(super::image::remove::prune_images(ctx, a.all, &a.filter).await?);
    parts.push(prune_build_cache(ctx, a.all, &a.filter).await?);
    let mut text = String::new();
    let mut reclaimed = 0;
    for (space, block) in parts {
        reclaimed += space;
        if !block.is_empty() {
            text.push_str(&block);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(reclaimed as f64)
    ));
    ctx.print(&text)?;
    Ok(())
}

/// `berth builder`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true, override_usage = "COMMAND")]
pub(crate) struct BuilderGroup {
    #[command(subcommand)]
    pub(crate) command: Option<BuilderCommand>,
}

/// `berth builder <command>`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum BuilderCommand {
    /// Remove build cache
    Prune(BuilderPruneArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Options of `builder prune`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Runs `berth builder <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_builder(ctx: &Ctx, group: BuilderGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(BuilderCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(BuilderCommand::Prune(a)) => {
            ctx.usage.no_args(&a.args)?;
            let warning = if a.all {
                "WARNING! This will remove all build cache. Are you sure you want to continue?"
            } else {
                "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
            };
            if !a.force && !confirm(ctx, warning)? {
                return Err(Cancelled("builder prune has been cancelled".to_string()).into());
            }
            let (reclaimed, block) = prune_build_cache(ctx, a.all, &a.filter).await?;
            print_prune(ctx, reclaimed, &block)?;
            Ok(())
        }
    }
}

/// The build-cache part of a prune (`POST /build/prune`).
async fn prune_build_cache(
    ctx: &Ctx,
    all: bool,
    filters: &[(String, String)],
) -> anyhow::Result<(u64, String)> {
    let path = if all {
        "/build/prune?all=1"
    } else {
        "/build/prune"
    };
    prune_report(
        ctx,
        path,
        filters,
        "CachesDeleted",
        "Deleted build cache objects",
        crate::commands::prune_item_text,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_space_is_shown_with_dockers_integer_percent() {
        assert_eq!(reclaimable(0, 0), "0B");
        assert_eq!(reclaimable(1000, 3000), "1kB (33%)");
    }
}
