//! `berth container ...` and the top-level container commands (`run`, `ps`,
//! `logs`, ...).
//!
//! Modules: [`opts`] and [`values`] turn `create`/`run` flags into the API's
//! create request; [`run`] creates, attaches, starts and waits; [`attach`]
//! moves bytes over the hijacked connection; [`lifecycle`] holds the
//! one-call-per-container commands; [`list`] is `ps`; [`logs`] is `logs`.

pub(crate) mod attach;
pub(crate) mod changes;
pub(crate) mod cp;
pub(crate) mod exec;
pub(crate) mod lifecycle;
pub(crate) mod list;
pub(crate) mod logs;
pub(crate) mod opts;
pub(crate) mod resources;
pub(crate) mod run;
pub(crate) mod values;

use clap::{Args, Subcommand};

pub(crate) use changes::{CommitArgs, DiffArgs, ExportArgs};
pub(crate) use cp::CpArgs;
pub(crate) use exec::{AttachArgs, ExecArgs};
pub(crate) use lifecycle::{
    KillArgs, PruneArgs, RemoveArgs, RenameArgs, StartArgs, StopArgs, WaitArgs,
};
pub(crate) use list::ListArgs;
pub(crate) use logs::LogsArgs;
pub(crate) use resources::{PauseArgs, StatsArgs, TopArgs, UpdateArgs};
pub(crate) use run::{CreateArgs, RunArgs};

use super::Ctx;
use crate::commands::inspect::ContainerInspectArgs;

/// `berth container`: the group.
#[derive(Args, Debug)]
#[command(allow_external_subcommands = true)]
pub(crate) struct ContainerGroup {
    #[command(subcommand)]
    pub(crate) command: Option<ContainerCommand>,
}

/// `berth container <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(ListArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    #[command(after_long_help = "berth container restart, berth restart")]
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(
        alias = "remove",
        after_long_help = "berth container rm, berth container remove, berth rm"
    )]
    Rm(RemoveArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    #[command(after_long_help = "berth container stop, berth stop")]
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth container <command>`.
///
/// # Errors
/// Whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, group: ContainerGroup) -> anyhow::Result<()> {
    match group.command {
        None => super::group_without_command(ctx, None),
        Some(ContainerCommand::External(words)) => super::group_without_command(ctx, Some(&words)),
        Some(ContainerCommand::Attach(a)) => exec::attach_container(ctx, a).await,
        Some(ContainerCommand::Commit(a)) => changes::commit(ctx, a).await,
        Some(ContainerCommand::Cp(a)) => cp::run(ctx, a).await,
        Some(ContainerCommand::Create(a)) => run::create(ctx, a).await,
        Some(ContainerCommand::Diff(a)) => changes::diff(ctx, a).await,
        Some(ContainerCommand::Exec(a)) => exec::exec(ctx, a).await,
        Some(ContainerCommand::Export(a)) => changes::export(ctx, a).await,
        Some(ContainerCommand::Inspect(a)) => crate::commands::inspect::container(ctx, a).await,
        Some(ContainerCommand::Kill(a)) => lifecycle::kill(ctx, a).await,
        Some(ContainerCommand::Logs(a)) => logs::run(ctx, a).await,
        Some(ContainerCommand::Ls(a)) => list::run(ctx, a).await,
        Some(ContainerCommand::Prune(a)) => lifecycle::prune(ctx, a).await,
        Some(ContainerCommand::Rename(a)) => lifecycle::rename(ctx, a).await,
        Some(ContainerCommand::Restart(a)) => lifecycle::stop(ctx, a, true).await,
        Some(ContainerCommand::Rm(a)) => lifecycle::remove(ctx, a).await,
        Some(ContainerCommand::Run(a)) => run::run(ctx, a).await,
        Some(ContainerCommand::Start(a)) => lifecycle::start(ctx, a).await,
        Some(ContainerCommand::Stop(a)) => lifecycle::stop(ctx, a, false).await,
        Some(ContainerCommand::Wait(a)) => lifecycle::wait(ctx, a).await,
        Some(ContainerCommand::Pause(a)) => resources::pause(ctx, a, false).await,
        Some(ContainerCommand::Unpause(a)) => resources::pause(ctx, a, true).await,
        Some(ContainerCommand::Top(a)) => resources::top(ctx, a).await,
        Some(ContainerCommand::Stats(a)) => resources::stats(ctx, a).await,
        Some(ContainerCommand::Update(a)) => resources::update(ctx, a).await,
    }
}
