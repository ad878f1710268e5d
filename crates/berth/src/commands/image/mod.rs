//! `berth image ...` and the top-level image commands (`images`, `rmi`, ...).

pub(crate) mod build;
pub(crate) mod history;
pub(crate) mod list;
pub(crate) mod remove;
pub(crate) mod transfer;

use clap::{Args, Subcommand};

pub(crate) use build::BuildArgs;
pub(crate) use history::HistoryArgs;
pub(crate) use list::ListArgs;
pub(crate) use remove::{PruneArgs, RemoveArgs, TagArgs};
pub(crate) use transfer::{ImportArgs, LoadArgs, SaveArgs};

use super::Ctx;
use crate::commands::inspect::ImageInspectArgs;

/// `berth image`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true)]
pub(crate) struct ImageGroup {
    #[command(subcommand)]
    pub(crate) command: Option<ImageCommand>,
}

/// `berth image <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(crate::commands::registry::PullArgs),
    /// Upload an image to a registry
    Push(crate::commands::registry::PushArgs),
    /// Remove one or more images
    #[command(aliases = ["rmi", "remove"])]
    Rm(RemoveArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth image <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, group: ImageGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(ImageCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(ImageCommand::Build(a)) => build::run(ctx, a).await,
        Some(ImageCommand::History(a)) => history::run(ctx, a).await,
        Some(ImageCommand::Import(a)) => transfer::import(ctx, a).await,
        Some(ImageCommand::Inspect(a)) => crate::commands::inspect::image(ctx, a).await,
        Some(ImageCommand::Load(a)) => transfer::load(ctx, a).await,
        Some(ImageCommand::Ls(a)) => list::run(ctx, a, false).await,
        Some(ImageCommand::Prune(a)) => remove::prune(ctx, a).await,
        Some(ImageCommand::Pull(a)) => crate::commands::registry::pull(ctx, a).await,
        Some(ImageCommand::Push(a)) => crate::commands::registry::push(ctx, a).await,
        Some(ImageCommand::Rm(a)) => remove::rmi(ctx, a).await,
        Some(ImageCommand::Save(a)) => transfer::save(ctx, a).await,
        Some(ImageCommand::Tag(a)) => remove::tag(ctx, a).await,
    }
}
