//! `berth compose`: the Compose Specification over the Engine API.
//!
//! The project model comes from the `berth-compose` crate; this module turns
//! it into API calls, so it drives berthd and dockerd alike. Engine objects
//! carry docker-compose 1.29's labels and names (`<project>_<service>_<n>`,
//! `com.docker.compose.*`), which is how every command finds a project's
//! containers, networks and volumes again: no local state is kept, and
//! either tool can manage what the other started.
//!
//! Modules: [`spec`] (service → create body), [`up`] (converging services
//! in dependency order), [`down`], [`ops`] (the per-container commands and
//! listings), [`logs`], [`exec`] (`exec` and `run`), [`build`] (`build`,
//! `pull`, `push`).

pub(crate) mod build;
pub(crate) mod down;
pub(crate) mod exec;
pub(crate) mod logs;
pub(crate) mod ops;
pub(crate) mod spec;
pub(crate) mod up;

use std::path::PathBuf;

use anyhow::Context as _;
use berth_compose::labels;
use berth_compose::{LoadOptions, Project};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::with_query;
use crate::commands::Ctx;

/// `berth compose`: the group and its project options.
#[derive(Args, Debug)]
#[command(
    allow_external_subcommands = true,
    override_usage = "[OPTIONS] COMMAND"
)]
pub(crate) struct ComposeGroup {
    /// Compose configuration files
    #[arg(short = 'f', long = "file", value_name = "stringArray")]
    file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "string")]
    project_name: Option<String>,
    /// Specify a profile to enable
    #[arg(long, value_name = "stringArray")]
    profile: Vec<String>,
    /// Specify an alternate environment file
    #[arg(long = "env-file", value_name = "stringArray")]
    env_file: Vec<PathBuf>,
    /// Specify an alternate working directory (default: the path of the first specified Compose file)
    #[arg(long = "project-directory", value_name = "string")]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<ComposeCommand>,
}

/// `berth compose <command>`.
#[derive(Subcommand, Debug)]
pub(crate) enum ComposeCommand {
    /// Build or rebuild services
    Build(build::BuildArgs),
    /// Parse, resolve and render compose file in canonical format
    #[command(alias = "convert")]
    Config(ops::ConfigArgs),
    /// Stop and remove containers, networks
    Down(down::DownArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// List images used by the created containers
    Images(ops::ImagesArgs),
    /// Force stop service containers
    Kill(ops::KillArgs),
    /// View output from containers
    Logs(logs::LogsArgs),
    /// Print the public port for a port binding
    Port(ops::PortArgs),
    /// List containers
    Ps(ops::PsArgs),
    /// Pull service images
    Pull(build::PullArgs),
    /// Push service images
    Push(build::PushArgs),
    /// Restart service containers
    Restart(ops::StopArgs),
    /// Removes stopped service containers
    Rm(ops::RmArgs),
    /// Run a one-off command on a service
    Run(exec::RunArgs),
    /// Start services
    Start(ops::ServicesArgs),
    /// Stop services
    Stop(ops::StopArgs),
    /// Display the running processes
    Top(ops::ServicesArgs),
    /// Create and start containers
    Up(up::UpArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(ops::ServicesArgs),
    #[command(external_subcommand)]
    External(Vec<String>),
}

/// Runs `berth compose <command>`.
///
/// # Errors
/// Project loading errors and whatever the subcommand reports.
pub(crate) async fn run_group(ctx: &Ctx, mut group: ComposeGroup) -> anyhow::Result<()> {
    let Some(command) = group.command.take() else {
        return super::group_without_command(ctx, None);
    };
    let load = |services: &[String]| load_project(&group, services);
    match command {
        ComposeCommand::External(words) => super::group_without_command(ctx, Some(&words)),
        ComposeCommand::Config(a) => ops::config(ctx, &load(&[])?, a),
        ComposeCommand::Up(a) => {
            let p = load(&a.services)?;
            up::up(ctx, &p, a).await
        }
        ComposeCommand::Down(a) => down::down(ctx, &load(&[])?, a).await,
        ComposeCommand::Ps(a) => ops::ps(ctx, &load(&[])?, a).await,
        ComposeCommand::Logs(a) => logs::logs(ctx, &load(&[])?, a).await,
        ComposeCommand::Exec(a) => exec::exec(ctx, &load(&[])?, a).await,
        ComposeCommand::Run(a) => {
            let p = load(std::slice::from_ref(&a.service))?;
            exec::run(ctx, &p, a).await
        }
        ComposeCommand::Start(a) => ops::start(ctx, &load(&a.services)?, a).await,
        ComposeCommand::Stop(a) => ops::stop(ctx, &load(&[])?, a, false).await,
        ComposeCommand::Restart(a) => ops::stop(ctx, &load(&[])?, a, true).await,
        ComposeCommand::Kill(a) => ops::kill(ctx, &load(&[])?, a).await,
        ComposeCommand::Rm(a) => ops::rm(ctx, &load(&[])?, a).await,
        ComposeCommand::Top(a) => ops::top(ctx, &load(&[])?, a).await,
        ComposeCommand::Images(a) => ops::images(ctx, &load(&[])?, a).await,
        ComposeCommand::Port(a) => ops::port(ctx, &load(&[])?, a).await,
        ComposeCommand::Wait(a) => ops::wait(ctx, &load(&[])?, a).await,
        ComposeCommand::Pull(a) => build::pull(ctx, &load(&a.services)?, a).await,
        ComposeCommand::Push(a) => build::push(ctx, &load(&a.services)?, a).await,
        ComposeCommand::Build(a) => build::build(ctx, &load(&a.services)?, a).await,
    }
}

/// Loads the project the group's options and the process environment name.
fn load_project(group: &ComposeGroup, services: &[String]) -> anyhow::Result<Project> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let opts = LoadOptions {
        files: group.file.clone(),
        project_directory: group.project_directory.clone(),
        project_name: group.project_name.clone(),
        env_files: group.env_file.clone(),
        profiles: group.profile.clone(),
        services: services.to_vec(),
        environment: std::env::vars().collect(),
        cwd,
    };
    Ok(berth_compose::load(&opts)?)
}

/// Refuses service names the project does not define.
///
/// # Errors
/// "no such service: x".
pub(crate) fn check_services(project: &Project, services: &[String]) -> anyhow::Result<()> {
    for s in services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    Ok(())
}

/// One container of the project, as the list endpoint reports it.
#[derive(Debug, Clone)]
pub(crate) struct ProjectContainer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) number: u32,
    pub(crate) oneoff: bool,
    pub(crate) state: String,
    pub(crate) config_hash: String,
    /// The raw list entry (Image, Command, Status, Ports, Created).
    pub(crate) raw: Value,
}

impl ProjectContainer {
    fn from_list(v: &Value) -> Self {
        let label = |k: &str| v["Labels"][k].as_str().unwrap_or_default().to_string();
        ProjectContainer {
            id: v["Id"].as_str().unwrap_or_default().to_string(),
            name: v["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service: label(labels::SERVICE),
            number: label(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
            oneoff: label(labels::ONEOFF) == "True",
            state: v["State"].as_str().unwrap_or_default().to_string(),
            config_hash: label(labels::CONFIG_HASH),
            raw: v.clone(),
        }
    }

    /// Whether the container is running (or paused/restarting: not to be started).
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }
}

/// Which containers to list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Service replicas only.
    Replicas,
    /// One-off `run` containers too.
    All,
}

/// The project's containers (`all`: stopped ones too), sorted by service
/// and number; only `services` when not empty.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn containers(
    ctx: &Ctx,
    project: &str,
    services: &[String],
    all: bool,
    which: Which,
) -> anyhow::Result<Vec<ProjectContainer>> {
    let mut label_filter = vec![format!("{}={project}", labels::PROJECT)];
    if which == Which::Replicas {
        label_filter.push(format!("{}=False", labels::ONEOFF));
    }
    if let [one] = services {
        label_filter.push(format!("{}={one}", labels::SERVICE));
    }
    let filters = json!({ "label": label_filter });
    let mut params = vec![("filters", filters.to_string())];
    if all {
        params.push(("all", "1".to_string()));
    }
    let list = ctx
        .client
        .get_json(&with_query("/containers/json", &params))
        .await?;
    let mut out: Vec<ProjectContainer> = list
        .as_array()
        .map(|a| a.iter().map(ProjectContainer::from_list).collect())
        .unwrap_or_default();
    out.retain(|c| services.is_empty() || services.contains(&c.service));
    out.sort_by(|a, b| {
        (a.service.as_str(), a.oneoff, a.number, a.name.as_str()).cmp(&(
            b.service.as_str(),
            b.oneoff,
            b.number,
            b.name.as_str(),
        ))
    });
    Ok(out)
}

/// Runs `f` on every item at once and collects the results in order.
pub(crate) async fn each<'a, T, F, Fut, R>(items: &'a [T], f: F) -> Vec<R>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    futures_util::future::join_all(items.iter().map(f)).await
}

/// Prints a progress line on stderr, as docker-compose does.
pub(crate) fn progress(line: &str) {
    eprintln!("{line}");
}
