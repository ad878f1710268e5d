//! `exec` and `attach`, as docker's `RunExec` and `RunAttach`.
//!
//! `exec` creates the exec instance (with our terminal's size when `-t`), then
//! either starts it detached or hijacks `POST /exec/{id}/start`, streams, and
//! exits with the exec's exit code from `GET /exec/{id}/json`. `attach` checks the
//! container runs, hijacks `POST /containers/{id}/attach`, and exits with the
//! container's exit code when it ends (not when the user detaches, which is an
//! error, "read escape sequence", as docker reports it).

use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::attach::{self, Streams};
use super::run::forward_signals;
use super::values;
use crate::cli::StatusError;
use crate::client::{path_escape, with_query};
use crate::commands::Ctx;

/// Options of `exec`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER COMMAND [ARG...]",
    after_long_help = "berth container exec, berth exec"
)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string", default_value = "")]
    detach_keys: String,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string", default_value = "")]
    user: String,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string", default_value = "")]
    workdir: String,
    #[arg(hide = true, trailing_var_arg = true)]
    args: Vec<String>,
}

/// `exec`.
///
/// # Errors
/// The daemon's errors, "the input device is not a TTY", or the command's exit
/// status.
pub(crate) async fn exec(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 2)?;
    let name = &a.args[0];
    // A missing container is reported before anything else, as docker does.
    ctx.client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    if !a.detach && a.tty && a.interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("the input device is not a TTY");
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(values::parse_kv_file(f, Some(&lookup)).map_err(anyhow::Error::msg)?);
    }
    for e in &a.env {
        env.push(values::validate_env(e).map_err(anyhow::Error::msg)?);
    }
    let size = if a.tty {
        let (h, w) = attach::terminal_size();
        Some(vec![h, w])
    } else {
        None
    };
    let body = json!({
        "User": a.user,
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "DetachKeys": a.detach_keys,
        "Env": env,
        "WorkingDir": a.workdir,
        "Cmd": a.args[1..],
        "ConsoleSize": size,
    });
    let created = ctx
        .client
        .call_json(
            Method::POST,
            &format!("/containers/{}/exec", path_escape(name)),
            Some(&body),
        )
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    if exec_id.is_empty() {
        anyhow::bail!("exec ID empty");
    }
    let start = format!("/exec/{}/start", path_escape(&exec_id));
    if a.detach {
        ctx.client
            .call_json(
                Method::POST,
                &start,
                Some(&json!({"Detach": true, "Tty": a.tty})),
            )
            .await?;
        return Ok(());
    }
    // The start's `Tty` decides the stream's shape (raw or framed), as Docker's.
    let conn = ctx
        .client
        .hijack_json(&start, &json!({"Detach": false, "Tty": a.tty}))
        .await?;
    if a.tty && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        monitor_exec_size(ctx, &exec_id);
    }
    let streams = Streams {
        stdin: a.interactive,
        stdout: true,
        stderr: true,
        tty: a.tty,
    };
    let streamed = attach::stream(conn, streams, &a.detach_keys).await;
    if attach::is_detached(&streamed) {
        return Ok(());
    }
    streamed?;
    let info = ctx
        .client
        .get_json(&format!("/exec/{}/json", path_escape(&exec_id)))
        .await?;
    match info["ExitCode"].as_i64() {
        Some(0) | None => Ok(()),
        Some(code) => Err(StatusError {
            message: String::new(),
            code: code as i32,
        }
        .into()),
    }
}

/// The exec's TTY follows our terminal's size (now and on SIGWINCH).
fn monitor_exec_size(ctx: &Ctx, exec_id: &str) {
    let client = ctx.client.clone_handle();
    let base = format!("/exec/{}/resize", path_escape(exec_id));
    tokio::spawn(async move {
        let resize = |client: crate::client::Client, base: String| async move {
            let (h, w) = attach::terminal_size();
            if h != 0 || w != 0 {
                let path = with_query(&base, &[("h", h.to_string()), ("w", w.to_string())]);
                let _ = client.call_json(Method::POST, &path, None).await;
            }
        };
        resize(client.clone_handle(), base.clone()).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            resize(client.clone_handle(), base.clone()).await;
        }
    });
}

/// Options of `attach`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER",
    after_long_help = "berth container attach, berth attach"
)]
pub(crate) struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string", default_value = "")]
    detach_keys: String,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = values::go_bool)]
    sig_proxy: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

fn check_running(c: &Value) -> anyhow::Result<()> {
    if c["State"]["Running"].as_bool() != Some(true) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    if c["State"]["Paused"].as_bool() == Some(true) {
        anyhow::bail!("You cannot attach to a paused container, unpause it first");
    }
    if c["State"]["Restarting"].as_bool() == Some(true) {
        anyhow::bail!("You cannot attach to a restarting container, wait until it is running");
    }
    Ok(())
}

/// `attach`.
///
/// # Errors
/// The daemon's errors, a stopped container, [`attach::Detached`], or the
/// container's exit status.
pub(crate) async fn attach_container(ctx: &Ctx, a: AttachArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let name = &a.args[0];
    let inspect = format!("/containers/{}/json", path_escape(name));
    let c = ctx.client.get_json(&inspect).await?;
    check_running(&c)?;
    let id = c["Id"].as_str().unwrap_or(name).to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if stdin && tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("the input device is not a TTY");
    }
    // The wait goes out first, so an exit during the attach is not missed.
    let wait = super::run::wait_exit_or_removed(ctx, &id, false).await;
    if a.sig_proxy && !tty {
        forward_signals(ctx, &id);
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
    check_running(&ctx.client.get_json(&inspect).await?)?;
    if tty && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        super::run::monitor_tty_size(ctx, &id);
    }
    let streams = Streams {
        stdin,
        stdout: true,
        stderr: true,
        tty,
    };
    attach::stream(conn, streams, &a.detach_keys).await?;
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
