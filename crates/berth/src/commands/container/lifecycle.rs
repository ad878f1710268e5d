//! `start`, `stop`, `kill`, `restart`, `wait`, `rm`, `rename` and
//! `container prune`: one API call per container, reported as docker does
//! (each name printed on success, errors joined at the end, exit 1).

use clap::Args;
use futures_util::future::join_all;
use hyper::Method;

use super::attach::{self, Streams};
use super::run::{forward_signals, wait_exit_or_removed};
use crate::cli::{Cancelled, StatusError};
use crate::client::{path_escape, with_query};
use crate::commands::{
    Ctx, confirm, fatal, joined_errors, parse_filter, print_prune, prune_item_text, prune_report,
    report_each,
};

/// Options of `start`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER [CONTAINER...]",
    after_long_help = "berth container start, berth start"
)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string", default_value = "")]
    detach_keys: String,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `start`: plain starts print each name; `-a`/`-i` attach to one container.
///
/// # Errors
/// "failed to start containers: ..." after printing each failure, or the
/// attached container's exit status.
pub(crate) async fn start(ctx: &Ctx, a: StartArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    if a.attach || a.interactive {
        if a.args.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        return start_attached(ctx, &a).await;
    }
    let mut failed = Vec::new();
    for name in &a.args {
        let path = format!("/containers/{}/start", path_escape(name));
        match ctx.client.call_json(Method::POST, &path, None).await {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e) if fatal(&e) => return Err(e.into()),
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("Error: failed to start containers: {}", failed.join(", "));
    }
    Ok(())
}

async fn start_attached(ctx: &Ctx, a: &StartArgs) -> anyhow::Result<()> {
    let name = &a.args[0];
    let c = ctx
        .client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let id = c["Id"].as_str().unwrap_or(name).to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = c["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    if !tty {
        forward_signals(ctx, &id);
    }
    let stdin = a.interactive && open_stdin;
    if tty && stdin && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("the input device is not a TTY");
    }
    let mut params = vec![("stream", "1".to_string())];
    if stdin {
        params.push(("stdin", "1".to_string()));
    }
    params.push(("stdout", "1".to_string()));
    params.push(("stderr", "1".to_string()));
    if !a.detach_keys.is_empty() {
        params.push(("detachKeys", a.detach_keys.clone()));
    }
    let conn = ctx
        .client
        .hijack(&with_query(
            &format!("/containers/{}/attach", path_escape(&id)),
            &params,
        ))
        .await?;
    let streams = Streams {
        stdin,
        stdout: true,
        stderr: true,
        tty,
    };
    let keys = a.detach_keys.clone();
    let task = tokio::spawn(async move { attach::stream(conn, streams, &keys).await });
    let wait = wait_exit_or_removed(ctx, &id, auto_remove).await;
    let path = format!("/containers/{}/start", path_escape(&id));
    if let Err(e) = ctx.client.call_json(Method::POST, &path, None).await {
        task.abort();
        if auto_remove {
            let _ = wait.await;
        }
        return Err(e.into());
    }
    if tty && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        super::run::monitor_tty_size(ctx, &id);
    }
    let streamed = task.await.unwrap_or(Ok(()));
    if attach::is_detached(&streamed) {
        return Ok(());
    }
    streamed?;
    let status = wait.await;
    if status != 0 {
        return Err(StatusError {
            message: String::new(),
            code: status,
        }
        .into());
    }
    Ok(())
}

/// Options of `stop` and `restart`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
pub(crate) struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string", default_value = "")]
    signal: String,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long, value_name = "int", allow_hyphen_values = true, value_parser = super::values::go_int)]
    timeout: Option<i64>,
    /// Seconds to wait before killing the container (deprecated: use --timeout)
    #[arg(long, value_name = "int", allow_hyphen_values = true, value_parser = super::values::go_int, hide = true)]
    time: Option<i64>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `stop` (`restart` = true: `restart`), the containers in parallel for
/// `stop`, one after the other for `restart`, as docker does.
///
/// # Errors
/// The joined errors of the containers that failed.
pub(crate) async fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    if a.time.is_some() && a.timeout.is_some() {
        anyhow::bail!("conflicting options: cannot specify both --timeout and --time");
    }
    if a.time.is_some() {
        eprintln!("Flag --time has been deprecated, use --timeout instead");
    }
    let mut params = Vec::new();
    if let Some(t) = a.timeout.or(a.time) {
        params.push(("t", t.to_string()));
    }
    let version = ctx.client.api_version().await;
    if !a.signal.is_empty() && !crate::client::version_less(&version, "1.42") {
        params.push(("signal", a.signal.clone()));
    }
    let op = if restart { "restart" } else { "stop" };
    let call = |name: String| {
        let path = with_query(&format!("/containers/{}/{op}", path_escape(&name)), &params);
        async move { ctx.client.call_json(Method::POST, &path, None).await }
    };
    let results = if restart {
        let mut r = Vec::new();
        for name in &a.args {
            r.push(call(name.clone()).await);
        }
        r
    } else {
        join_all(a.args.iter().cloned().map(call)).await
    };
    report_each(ctx, &a.args, results, false)
}

/// Options of `kill`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER [CONTAINER...]",
    after_long_help = "berth container kill, berth kill"
)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string", default_value = "")]
    signal: String,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `kill`.
///
/// # Errors
/// The joined errors of the containers that failed.
pub(crate) async fn kill(ctx: &Ctx, a: KillArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut params = Vec::new();
    if !a.signal.is_empty() {
        params.push(("signal", a.signal.clone()));
    }
    let results = join_all(a.args.iter().map(|name| {
        let path = with_query(&format!("/containers/{}/kill", path_escape(name)), &params);
        async move { ctx.client.call_json(Method::POST, &path, None).await }
    }))
    .await;
    report_each(ctx, &a.args, results, false)
}

/// Options of `wait`.
#[derive(Args, Debug)]
#[command(
    override_usage = "CONTAINER [CONTAINER...]",
    after_long_help = "berth container wait, berth wait"
)]
pub(crate) struct WaitArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `wait`: each container's exit status, one per line.
///
/// # Errors
/// The joined errors of the containers that could not be waited for.
pub(crate) async fn wait(ctx: &Ctx, a: WaitArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut errors = Vec::new();
    for name in &a.args {
        let path = format!("/containers/{}/wait", path_escape(name));
        match ctx.client.call_json(Method::POST, &path, None).await {
            Ok(v) => ctx.print(&format!("{}\n", v["StatusCode"].as_i64().unwrap_or(0)))?,
            Err(e) if fatal(&e) => return Err(e.into()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

/// Options of `rm`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
pub(crate) struct RemoveArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `rm`: with `-f`, missing containers are only reported.
///
/// # Errors
/// The joined errors of the containers that could not be removed.
pub(crate) async fn remove(ctx: &Ctx, a: RemoveArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut params = Vec::new();
    if a.volumes {
        params.push(("v", "1".to_string()));
    }
    if a.link {
        params.push(("link", "1".to_string()));
    }
    if a.force {
        params.push(("force", "1".to_string()));
    }
    let results = join_all(a.args.iter().map(|name| {
        let id = name.trim_matches('/').to_string();
        let path = with_query(&format!("/containers/{}", path_escape(&id)), &params);
        async move {
            if id.is_empty() {
                return None;
            }
            Some(ctx.client.call_json(Method::DELETE, &path, None).await)
        }
    }))
    .await;
    let mut errors = Vec::new();
    for (name, r) in a.args.iter().zip(results) {
        match r {
            // docker's client refuses an empty name before any request.
            None => errors.push("container name cannot be empty".to_string()),
            Some(Ok(_)) => ctx.print(&format!("{name}\n"))?,
            Some(Err(e)) if fatal(&e) => return Err(e.into()),
            Some(Err(e)) if a.force && e.is_not_found() => eprintln!("{e}"),
            Some(Err(e)) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(joined_errors(&errors).into())
    }
}

/// Options of `rename`.
#[derive(Args, Debug)]
#[command(
    override_usage = "CONTAINER NEW_NAME",
    after_long_help = "berth container rename, berth rename"
)]
pub(crate) struct RenameArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `rename`.
///
/// # Errors
/// "Error: failed to rename container named X" after printing the cause.
pub(crate) async fn rename(ctx: &Ctx, a: RenameArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 2)?;
    let (old, new) = (a.args[0].trim(), a.args[1].trim());
    if old.is_empty() || new.is_empty() {
        anyhow::bail!("Error: Neither old nor new names may be empty");
    }
    let path = with_query(
        &format!("/containers/{}/rename", path_escape(old)),
        &[("name", new.to_string())],
    );
    if let Err(e) = ctx.client.call_json(Method::POST, &path, None).await {
        if fatal(&e) {
            return Err(e.into());
        }
        eprintln!("{e}");
        anyhow::bail!("Error: failed to rename container named {old}");
    }
    Ok(())
}

/// Options of `container prune`.
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

const PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

/// `container prune`.
///
/// # Errors
/// [`Cancelled`] when not confirmed; daemon errors.
pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    if !a.force && !confirm(ctx, PRUNE_WARNING)? {
        return Err(Cancelled("container prune has been cancelled".to_string()).into());
    }
    let (reclaimed, block) = prune_containers(ctx, &a.filter).await?;
    print_prune(ctx, reclaimed, &block)?;
    Ok(())
}

/// The container part of a prune: space reclaimed and the "Deleted Containers:" block.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn prune_containers(
    ctx: &Ctx,
    filters: &[(String, String)],
) -> anyhow::Result<(u64, String)> {
    prune_report(
        ctx,
        "/containers/prune",
        filters,
        "ContainersDeleted",
        "Deleted Containers",
        prune_item_text,
    )
    .await
}
