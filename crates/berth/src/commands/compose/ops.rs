//! The compose commands that act on existing containers one by one or list
//! them: `config`, `ps`, `start`, `stop`, `restart`, `kill`, `rm`, `top`,
//! `images`, `port`, `wait`; and the container calls `up`/`down` share.

use std::time::Duration;

use anyhow::Context as _;
use berth_compose::Project;
use clap::Args;
use hyper::Method;

use super::{ProjectContainer, Which, check_services, containers, progress};
use crate::cli::StatusError;
use crate::client::{path_escape, with_query};
use crate::commands::Ctx;
use crate::commands::container::list::displayable_ports;
use crate::format::tabwriter::TabWriter;

/// `POST /containers/{id}/start`; an already running container is fine.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn start_container(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    ctx.client
        .call_json(
            Method::POST,
            &format!("/containers/{}/start", path_escape(id)),
            None,
        )
        .await?;
    Ok(())
}

/// `POST /containers/{id}/stop` (with `t` when given).
///
/// # Errors
/// Daemon errors (a missing container is not one).
pub(crate) async fn stop_container(
    ctx: &Ctx,
    id: &str,
    timeout: Option<i64>,
) -> anyhow::Result<()> {
    let params: Vec<(&str, String)> = timeout.map(|t| ("t", t.to_string())).into_iter().collect();
    match ctx
        .client
        .call_json(
            Method::POST,
            &with_query(&format!("/containers/{}/stop", path_escape(id)), &params),
            None,
        )
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// `DELETE /containers/{id}?force=1` (and its anonymous volumes with `volumes`).
///
/// # Errors
/// Daemon errors (a missing container is not one).
pub(crate) async fn remove_container(ctx: &Ctx, id: &str, volumes: bool) -> anyhow::Result<()> {
    let mut params = vec![("force", "1".to_string())];
    if volumes {
        params.push(("v", "1".to_string()));
    }
    match ctx
        .client
        .call_json(
            Method::DELETE,
            &with_query(&format!("/containers/{}", path_escape(id)), &params),
            None,
        )
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Options of `compose config`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    volumes: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    profiles: bool,
    /// Format the output. Values: [yaml | json]
    #[arg(long, value_name = "string", default_value = "yaml")]
    format: String,
}

/// `compose config`: the resolved project, or parts of it.
///
/// # Errors
/// Output failures and an unknown `--format`.
pub(crate) fn config(ctx: &Ctx, project: &Project, a: ConfigArgs) -> anyhow::Result<()> {
    if a.quiet {
        return Ok(());
    }
    if a.services {
        let order = project.start_order().unwrap_or_default();
        return ctx
            .print(&order.iter().map(|s| format!("{s}\n")).collect::<String>())
            .map_err(Into::into);
    }
    if a.volumes {
        return ctx
            .print(
                &project
                    .volumes
                    .keys()
                    .map(|s| format!("{s}\n"))
                    .collect::<String>(),
            )
            .map_err(Into::into);
    }
    if a.profiles {
        let mut all: Vec<&String> = project
            .services
            .values()
            .chain(project.disabled.values())
            .flat_map(|s| &s.profiles)
            .collect();
        all.sort();
        all.dedup();
        return ctx
            .print(&all.iter().map(|s| format!("{s}\n")).collect::<String>())
            .map_err(Into::into);
    }
    let text = match a.format.as_str() {
        "yaml" => serde_yaml_ng::to_string(project).context("cannot render the project")?,
        "json" => serde_json::to_string_pretty(project)? + "\n",
        other => anyhow::bail!("unsupported format {other:?}"),
    };
    ctx.print(&text)?;
    Ok(())
}

/// Options of `compose ps`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display services
    #[arg(long)]
    services: bool,
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

/// `compose ps`.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn ps(ctx: &Ctx, project: &Project, a: PsArgs) -> anyhow::Result<()> {
    check_services(project, &a.names)?;
    let which = if a.all { Which::All } else { Which::Replicas };
    let list = containers(ctx, &project.name, &a.names, a.all, which).await?;
    if a.quiet {
        return ctx
            .print(
                &list
                    .iter()
                    .map(|c| format!("{}\n", c.id))
                    .collect::<String>(),
            )
            .map_err(Into::into);
    }
    if a.services {
        let mut names: Vec<&str> = list.iter().map(|c| c.service.as_str()).collect();
        names.dedup();
        return ctx
            .print(&names.iter().map(|s| format!("{s}\n")).collect::<String>())
            .map_err(Into::into);
    }
    let mut tw = TabWriter::for_table();
    tw.write("NAME\tIMAGE\tCOMMAND\tSERVICE\tSTATUS\tPORTS\n");
    for c in &list {
        let command = c.raw["Command"].as_str().unwrap_or_default();
        let command =
            crate::commands::container::list::go_quote(&crate::format::ellipsis(command, 20));
        let ports = c.raw["Ports"].as_array().cloned().unwrap_or_default();
        tw.write(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.raw["Image"].as_str().unwrap_or_default(),
            command,
            c.service,
            c.raw["Status"].as_str().unwrap_or_default(),
            displayable_ports(&ports),
        ));
    }
    ctx.print(&tw.flush())?;
    Ok(())
}

/// Options of commands that take only service names.
#[derive(Args, Debug)]
#[command(override_usage = "[SERVICE...]")]
pub(crate) struct ServicesArgs {
    pub(crate) services: Vec<String>,
}

/// `compose start`: starts the existing containers, dependencies first.
///
/// # Errors
/// Unknown services, nothing to start, daemon errors.
pub(crate) async fn start(ctx: &Ctx, project: &Project, a: ServicesArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let order = project.start_order().unwrap_or_default();
    let wanted = project.with_dependencies(&a.services);
    let list = containers(ctx, &project.name, &wanted, true, Which::Replicas).await?;
    if list.is_empty() {
        anyhow::bail!(
            "service {:?} has no container to start",
            a.services.first().map_or("", |s| s.as_str())
        );
    }
    for service in order.iter().filter(|s| wanted.contains(s)) {
        let mine: Vec<&ProjectContainer> = list
            .iter()
            .filter(|c| &c.service == service && !c.is_running())
            .collect();
        let results = super::each(&mine, |c| start_container(ctx, &c.id)).await;
        for (c, r) in mine.iter().zip(results) {
            r.with_context(|| format!("cannot start {}", c.name))?;
            progress(&format!("Container {}  Started", c.name));
        }
    }
    Ok(())
}

/// Options of `compose stop` and `compose restart`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long, value_name = "int")]
    timeout: Option<i64>,
    services: Vec<String>,
}

/// `compose stop` (dependents first) and `compose restart`.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn stop(
    ctx: &Ctx,
    project: &Project,
    a: StopArgs,
    restart: bool,
) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let mut order = project.start_order().unwrap_or_default();
    order.reverse();
    let list = containers(ctx, &project.name, &a.services, restart, Which::Replicas).await?;
    for service in &order {
        let mine: Vec<&ProjectContainer> = list.iter().filter(|c| &c.service == service).collect();
        let timeout = a.timeout.or(project.services[service]
            .stop_grace_period
            .map(|s| s as i64));
        let results = super::each(&mine, |c| async move {
            let params: Vec<(&str, String)> =
                timeout.map(|t| ("t", t.to_string())).into_iter().collect();
            let path = if restart { "restart" } else { "stop" };
            ctx.client
                .call_json(
                    Method::POST,
                    &with_query(
                        &format!("/containers/{}/{path}", path_escape(&c.id)),
                        &params,
                    ),
                    None,
                )
                .await
        })
        .await;
        for (c, r) in mine.iter().zip(results) {
            r.with_context(|| format!("cannot stop {}", c.name))?;
            progress(&format!(
                "Container {}  {}",
                c.name,
                if restart { "Restarted" } else { "Stopped" }
            ));
        }
    }
    Ok(())
}

/// Options of `compose kill`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long, value_name = "string", default_value = "SIGKILL")]
    signal: String,
    services: Vec<String>,
}

/// `compose kill`.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn kill(ctx: &Ctx, project: &Project, a: KillArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let list = containers(ctx, &project.name, &a.services, false, Which::Replicas).await?;
    let results = super::each(&list, |c| {
        let path = with_query(
            &format!("/containers/{}/kill", path_escape(&c.id)),
            &[("signal", a.signal.clone())],
        );
        async move { ctx.client.call_json(Method::POST, &path, None).await }
    })
    .await;
    for (c, r) in list.iter().zip(results) {
        r.with_context(|| format!("cannot kill {}", c.name))?;
        progress(&format!("Container {}  Killed", c.name));
    }
    Ok(())
}

/// Options of `compose rm`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    volumes: bool,
    services: Vec<String>,
}

/// `compose rm`: the stopped containers (all with `-s`), after a prompt
/// unless `-f`.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn rm(ctx: &Ctx, project: &Project, a: RmArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let mut list = containers(ctx, &project.name, &a.services, true, Which::All).await?;
    if a.stop {
        let stops = super::each(&list, |c| stop_container(ctx, &c.id, None)).await;
        for r in stops {
            r?;
        }
        list = containers(ctx, &project.name, &a.services, true, Which::All).await?;
    }
    list.retain(|c| !c.is_running());
    if list.is_empty() {
        progress("No stopped containers");
        return Ok(());
    }
    if !a.force {
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        eprintln!("Going to remove {}", names.join(", "));
        if !crate::commands::confirm(ctx, "Are you sure you want to continue?")? {
            return Ok(());
        }
    }
    let results = super::each(&list, |c| remove_container(ctx, &c.id, a.volumes)).await;
    for (c, r) in list.iter().zip(results) {
        r?;
        progress(&format!("Container {}  Removed", c.name));
    }
    Ok(())
}

/// `compose top`: each running container's processes.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn top(ctx: &Ctx, project: &Project, a: ServicesArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let list = containers(ctx, &project.name, &a.services, false, Which::Replicas).await?;
    let mut out = String::new();
    for c in &list {
        let v = ctx
            .client
            .get_json(&format!("/containers/{}/top", path_escape(&c.id)))
            .await?;
        out.push_str(&format!("{}\n", c.name));
        let mut tw = TabWriter::for_table();
        let titles: Vec<&str> = v["Titles"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
            .unwrap_or_default();
        tw.write(&format!("{}\n", titles.join("\t")));
        for p in v["Processes"].as_array().into_iter().flatten() {
            let cols: Vec<&str> = p
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default()).collect())
                .unwrap_or_default();
            tw.write(&format!("{}\n", cols.join("\t")));
        }
        out.push_str(&tw.flush());
        out.push('\n');
    }
    ctx.print(&out)?;
    Ok(())
}

/// Options of `compose images`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct ImagesArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    services: Vec<String>,
}

/// `compose images`: the image of each container.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn images(ctx: &Ctx, project: &Project, a: ImagesArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let list = containers(ctx, &project.name, &a.services, true, Which::Replicas).await?;
    let mut tw = TabWriter::for_table();
    let mut quiet = String::new();
    if !a.quiet {
        tw.write("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    }
    for c in &list {
        let image_id = c.raw["ImageID"].as_str().unwrap_or_default();
        let img = ctx
            .client
            .get_json(&format!("/images/{}/json", path_escape(image_id)))
            .await?;
        let short = crate::format::truncate_id(image_id);
        if a.quiet {
            quiet.push_str(&format!("{short}\n"));
            continue;
        }
        let tag = img["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
        let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
        let size = img["Size"].as_f64().unwrap_or(0.0);
        tw.write(&format!(
            "{}\t{repo}\t{tag}\t{short}\t{}\n",
            c.name,
            crate::format::units::human_size_with_precision(size, 3)
        ));
    }
    if a.quiet {
        ctx.print(&quiet)?;
    } else {
        ctx.print(&tw.flush())?;
    }
    Ok(())
}

/// Options of `compose port`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] SERVICE PRIVATE_PORT")]
pub(crate) struct PortArgs {
    /// tcp or udp
    #[arg(long, value_name = "string", default_value = "tcp")]
    protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, value_name = "int", default_value_t = 1)]
    index: u32,
    service: String,
    private_port: u16,
}

/// `compose port`: `host:port` that a container port is published on.
///
/// # Errors
/// Unknown services, no such container, an unpublished port.
pub(crate) async fn port(ctx: &Ctx, project: &Project, a: PortArgs) -> anyhow::Result<()> {
    check_services(project, std::slice::from_ref(&a.service))?;
    let c = replica(ctx, project, &a.service, a.index).await?;
    let v = ctx
        .client
        .get_json(&format!("/containers/{}/json", path_escape(&c.id)))
        .await?;
    let key = format!("{}/{}", a.private_port, a.protocol);
    let binding = &v["NetworkSettings"]["Ports"][&key][0];
    let Some(host_port) = binding["HostPort"].as_str() else {
        anyhow::bail!("no port {key} for container {}", c.name);
    };
    let ip = binding["HostIp"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("0.0.0.0");
    ctx.print(&format!("{ip}:{host_port}\n"))?;
    Ok(())
}

/// Replica `index` of `service`.
///
/// # Errors
/// "service x is not running" when there is no such container.
pub(crate) async fn replica(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    index: u32,
) -> anyhow::Result<ProjectContainer> {
    let list = containers(
        ctx,
        &project.name,
        &[service.to_string()],
        true,
        Which::Replicas,
    )
    .await?;
    list.into_iter()
        .find(|c| c.number == index)
        .ok_or_else(|| anyhow::anyhow!("service {service:?} is not running container #{index}"))
}

/// `compose wait`: blocks until the containers stop; prints each exit code,
/// and exits with the first non-zero one.
///
/// # Errors
/// Unknown services and daemon errors.
pub(crate) async fn wait(ctx: &Ctx, project: &Project, a: ServicesArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let list = containers(ctx, &project.name, &a.services, true, Which::Replicas).await?;
    let results = super::each(&list, |c| async move {
        loop {
            let v = ctx
                .client
                .get_json(&format!("/containers/{}/json", path_escape(&c.id)))
                .await?;
            if matches!(
                v["State"]["Status"].as_str(),
                Some("exited" | "dead" | "created")
            ) {
                return anyhow::Ok(v["State"]["ExitCode"].as_i64().unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let mut first_failure = 0;
    for (c, r) in list.iter().zip(results) {
        let code = r?;
        ctx.print(&format!("{} exited with code {code}\n", c.name))?;
        if code != 0 && first_failure == 0 {
            first_failure = code;
        }
    }
    if first_failure != 0 {
        return Err(StatusError {
            message: String::new(),
            code: first_failure as i32,
        }
        .into());
    }
    Ok(())
}
