//! `rmi` / `image rm`, `image prune` and `tag`: commands that change names.

use clap::Args;
use hyper::Method;

use crate::cli::Cancelled;
use crate::client::{ClientError, path_escape, with_query};
use crate::commands::{Ctx, confirm, joined_errors, parse_filter};
use crate::reference::{parse_any, parse_normalized_named};

/// Options of `rmi`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] IMAGE [IMAGE...]",
    after_long_help = "berth image rm, berth image remove, berth rmi"
)]
pub(crate) struct RemoveArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Removes each image, printing "Untagged:"/"Deleted:" lines; all images are
/// tried, and not-found errors are only reported (exit 0) with `--force`.
///
/// # Errors
/// The joined errors when any removal failed.
pub(crate) async fn rmi(ctx: &Ctx, a: RemoveArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut errors = Vec::new();
    let mut fatal = false;
    for image in &a.args {
        let mut params = Vec::new();
        if a.force {
            params.push(("force", "1".to_string()));
        }
        if a.no_prune {
            params.push(("noprune", "1".to_string()));
        }
        let path = with_query(&format!("/images/{}", path_escape(image)), &params);
        match ctx.client.call_json(Method::DELETE, &path, None).await {
            Ok(items) => {
                let mut text = String::new();
                for item in items.as_array().into_iter().flatten() {
                    match item["Deleted"].as_str().filter(|d| !d.is_empty()) {
                        Some(d) => text.push_str(&format!("Deleted: {d}\n")),
                        None => text.push_str(&format!(
                            "Untagged: {}\n",
                            item["Untagged"].as_str().unwrap_or("")
                        )),
                    }
                }
                ctx.print(&text)?;
            }
            Err(e) => {
                if !e.is_not_found() {
                    fatal = true;
                }
                if matches!(e, ClientError::Connect { .. }) {
                    return Err(e.into());
                }
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    if !a.force || fatal {
        return Err(joined_errors(&errors).into());
    }
    eprintln!("{}", errors.join("\n"));
    Ok(())
}

/// Options of `image prune`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS]")]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const ALL_IMAGES_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";
const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";

/// `image prune`: asks first unless `--force`, then reports what went.
///
/// # Errors
/// [`Cancelled`] when the answer is not "y"; daemon errors.
pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    if !a.force {
        let warning = if a.all {
            ALL_IMAGES_WARNING
        } else {
            DANGLING_WARNING
        };
        if !confirm(ctx, warning)? {
            return Err(Cancelled("image prune has been cancelled".to_string()).into());
        }
    }
    let (reclaimed, block) = prune_images(ctx, a.all, &a.filter).await?;
    crate::commands::print_prune(ctx, reclaimed, &block)?;
    Ok(())
}

/// The image part of a prune (dangling ones unless `all`): space reclaimed and the
/// "Deleted Images:" block of `untagged:`/`deleted:` lines.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn prune_images(
    ctx: &Ctx,
    all: bool,
    filters: &[(String, String)],
) -> anyhow::Result<(u64, String)> {
    let mut filters = filters.to_vec();
    filters.push(("dangling".to_string(), (!all).to_string()));
    crate::commands::prune_report(
        ctx,
        "/images/prune",
        &filters,
        "ImagesDeleted",
        "Deleted Images",
        |d| match d["Untagged"].as_str().filter(|u| !u.is_empty()) {
            Some(u) => format!("untagged: {u}"),
            None => format!("deleted: {}", d["Deleted"].as_str().unwrap_or("")),
        },
    )
    .await
}

/// Options of `tag`.
#[derive(Args, Debug)]
#[command(
    override_usage = "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    after_long_help = "berth image tag, berth tag"
)]
pub(crate) struct TagArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `tag SOURCE TARGET`: validated like docker's client before the API call.
///
/// # Errors
/// Reference errors and daemon errors.
pub(crate) async fn tag(ctx: &Ctx, a: TagArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 2)?;
    let (source, target) = (&a.args[0], &a.args[1]);
    if let Err(e) = parse_any(source) {
        anyhow::bail!("Error parsing reference: {source:?} is not a valid repository/tag: {e}");
    }
    let target_ref = parse_normalized_named(target).map_err(|e| {
        anyhow::anyhow!("Error parsing reference: {target:?} is not a valid repository/tag: {e}")
    })?;
    if target_ref.digest().is_some() {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    let params = [
        ("repo", target_ref.name()),
        ("tag", target_ref.tag().unwrap_or("latest").to_string()),
    ];
    let path = with_query(&format!("/images/{}/tag", path_escape(source)), &params);
    ctx.client.call_json(Method::POST, &path, None).await?;
    Ok(())
}
