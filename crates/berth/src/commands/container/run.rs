//! `create` and `run`, in the order of docker's client.
//!
//! `run` creates the container (pulling its image first when the daemon
//! says it is missing and `--pull` allows it), and unless detached attaches
//! (`POST /containers/{id}/attach`, hijacked) BEFORE starting it, so that no
//! output is lost, and registers a wait (`condition=next-exit`, or `removed`
//! with `--rm`) also before the start, so that a fast exit is not missed.
//! Its exit status is the container's; daemon failures are 125, a start
//! that fails because the command cannot be run is 126 or 127 (docker's
//! `toStatusError`).

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::attach::{self, Streams};
use super::opts::{BuildContext, ContainerFlags, CreateRequest};
use super::values;
use crate::cli::{BIN, StatusError};
use crate::client::{ClientError, body_stream, path_escape, read_body, with_query};
use crate::commands::Ctx;
use crate::reference::{parse_any, parse_normalized_named};

/// Options of `create`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    after_long_help = "berth container create, berth create"
)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) common: CreateOptions,
    #[command(flatten)]
    pub(crate) flags: ContainerFlags,
    #[arg(hide = true, trailing_var_arg = true)]
    pub(crate) args: Vec<String>,
}

/// Options of `run`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    after_long_help = "berth container run, berth run"
)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(
        allow_hyphen_values = true,
        long = "detach-keys",
        value_name = "string",
        default_value = ""
    )]
    detach_keys: String,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = values::go_bool)]
    sig_proxy: bool,
    #[command(flatten)]
    common: CreateOptions,
    #[command(flatten)]
    flags: ContainerFlags,
    #[arg(hide = true, trailing_var_arg = true)]
    args: Vec<String>,
}

/// The options `create` and `run` share beyond the container's config.
#[derive(Args, Debug, Default)]
pub(crate) struct CreateOptions {
    /// Skip image verification
    #[arg(long = "disable-content-trust", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = values::go_bool)]
    disable_content_trust: bool,
    /// Assign a name to the container
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = ""
    )]
    name: String,
    /// Set platform if server is multi-platform capable
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        hide_env = true,
        default_value = ""
    )]
    platform: String,
    /// Pull image before running ("always", "missing", "never")
    #[arg(
        allow_hyphen_values = true,
        long,
        value_name = "string",
        default_value = "missing"
    )]
    pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// docker's `withHelp`: "berth: <err>\n\nRun 'berth <cmd> --help' ...", exit 125.
fn with_help(message: &str, command: &str, code: i32) -> StatusError {
    StatusError {
        message: format!("{BIN}: {message}\n\nRun '{BIN} {command} --help' for more information"),
        code,
    }
}

/// docker's `toStatusError` for failures of `run`.
fn run_status_error(err: &anyhow::Error) -> StatusError {
    let text = format!("{err:#}");
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
        || text.contains("system cannot find the file specified")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    };
    with_help(&text, "run", code)
}

fn validate_pull(pull: &str, command: &str) -> Result<(), StatusError> {
    match pull {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(with_help(
            &format!(
                "invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""
            ),
            command,
            125,
        )),
    }
}

/// Parses the flags into the create request, as `runCreate`/`runRun` do.
async fn prepare(
    ctx: &Ctx,
    common: &CreateOptions,
    flags: &ContainerFlags,
    args: &[String],
    command: &str,
) -> anyhow::Result<CreateRequest> {
    crate::commands::check_flag_support(ctx, &flags.versioned()).await?;
    validate_pull(&common.pull, command)?;
    let (image, cmd) = args.split_first().expect("min_args checked first");
    let api_version = ctx.client.api_version().await;
    let build = BuildContext {
        image,
        cmd,
        api_version: &api_version,
        console_size: attach::terminal_size(),
    };
    flags
        .build(&build)
        .map_err(|e| with_help(&e, command, 125).into())
}

/// `create`: prints the new container's ID.
///
/// # Errors
/// Usage errors (125), reference, pull and daemon errors.
pub(crate) async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let request = prepare(ctx, &a.common, &a.flags, &a.args, "create").await?;
    let id = create_container(ctx, &a.common, &a.flags, request).await?;
    ctx.print(&format!("{id}\n"))?;
    Ok(())
}

/// docker's `createContainer`: the cidfile, the reference check, `--pull`,
/// the create call with a pull and retry for a missing image, warnings.
async fn create_container(
    ctx: &Ctx,
    common: &CreateOptions,
    flags: &ContainerFlags,
    request: CreateRequest,
) -> anyhow::Result<String> {
    let cidfile = CidFile::create(&flags.cidfile)?;
    let image = request.body["Image"].as_str().unwrap_or("").to_string();
    parse_any(&image)?;
    // The name docker reports and pulls: with ":latest" when untagged.
    let named = parse_normalized_named(&image).ok().map(|r| {
        let mut s = r.familiar_name();
        if let Some(t) = r.tag() {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = r.digest() {
            s.push('@');
            s.push_str(&d.to_string());
        } else if r.tag().is_none() {
            s.push_str(":latest");
        }
        (r, s)
    });
    if common.pull == "always" {
        pull_image(ctx, &image, common).await?;
    }
    let mut params = Vec::new();
    if !common.platform.is_empty() {
        params.push(("platform", common.platform.clone()));
    }
    if !common.name.is_empty() {
        params.push(("name", common.name.clone()));
    }
    let path = with_query("/containers/create", &params);
    let response = match ctx
        .client
        .call_json(Method::POST, &path, Some(&request.body))
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_not_found() && named.is_some() && common.pull == "missing" => {
            let (_, familiar) = named.as_ref().expect("checked above");
            if !common.quiet {
                eprintln!("Unable to find image '{familiar}' locally");
            }
            pull_image(ctx, &image, common).await?;
            ctx.client
                .call_json(Method::POST, &path, Some(&request.body))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let id = response["Id"].as_str().unwrap_or("").to_string();
    let mut warnings: Vec<String> = response["Warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(w) = localhost_dns_warning(&request.body["HostConfig"]["Dns"]) {
        warnings.push(w);
    }
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    cidfile.write(&id)?;
    Ok(id)
}

/// docker's `localhostDNSWarning`.
fn localhost_dns_warning(dns: &Value) -> Option<String> {
    dns.as_array()?.iter().find_map(|d| {
        let ip: std::net::IpAddr = d.as_str()?.parse().ok()?;
        ip.is_loopback()
            .then(|| format!("Localhost DNS ({ip}) may fail in containers."))
    })
}

/// `POST /images/create` for the image, its progress on stderr (nothing with `-q`).
async fn pull_image(ctx: &Ctx, image: &str, common: &CreateOptions) -> anyhow::Result<()> {
    let r = parse_normalized_named(image)?;
    let tag = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let mut params = vec![("fromImage", r.familiar_name()), ("tag", tag)];
    if !common.platform.is_empty() {
        params.push(("platform", common.platform.clone()));
    }
    let resp = ctx
        .client
        .send(
            Method::POST,
            &with_query("/images/create", &params),
            crate::client::empty(),
            None,
        )
        .await?;
    if common.quiet {
        crate::jsonmessage::display_stream(body_stream(resp), &mut std::io::sink()).await
    } else {
        crate::jsonmessage::display_stream(body_stream(resp), &mut std::io::stderr()).await
    }
}

/// `--cidfile`: refused when it exists, removed again when no ID was written.
struct CidFile {
    path: String,
    written: std::cell::Cell<bool>,
}

impl CidFile {
    fn create(path: &str) -> anyhow::Result<Self> {
        if !path.is_empty() {
            if std::path::Path::new(path).exists() {
                anyhow::bail!(
                    "container ID file found, make sure the other container isn't running or delete {path}"
                );
            }
            std::fs::File::create(path).map_err(|e| {
                anyhow::anyhow!(
                    "failed to create the container ID file: {}",
                    crate::commands::go_io_error("open", path, &e)
                )
            })?;
        }
        Ok(CidFile {
            path: path.to_string(),
            written: std::cell::Cell::new(false),
        })
    }

    fn write(&self, id: &str) -> anyhow::Result<()> {
        if self.path.is_empty() {
            return Ok(());
        }
        std::fs::write(&self.path, id)
            .map_err(|e| anyhow::anyhow!("failed to write the container ID to the file: {e}"))?;
        self.written.set(true);
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if !self.path.is_empty() && !self.written.get() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `run`.
///
/// # Errors
/// A [`StatusError`] with the container's exit status, or docker's codes
/// (125 daemon, 126/127 cannot run the command).
pub(crate) async fn run(ctx: &Ctx, a: RunArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut request = prepare(ctx, &a.common, &a.flags, &a.args, "run").await?;
    if let Some(c) = request.body.as_object_mut() {
        c.remove("ArgsEscaped");
    }
    if !a.detach {
        let (stdin, _, _) = request.attach();
        if request.tty() && stdin && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            anyhow::bail!("the input device is not a TTY");
        }
    } else {
        if !a.flags.attach.is_empty() {
            anyhow::bail!("conflicting options: cannot specify both --attach and --detach");
        }
        request.detach();
    }
    let (stdin, stdout, stderr) = request.attach();
    let tty = request.tty();
    let auto_remove = a.flags.auto_remove;

    let id = create_container(ctx, &a.common, &a.flags, request)
        .await
        .map_err(|e| run_status_error(&e))?;
    let attached = stdin || stdout || stderr;
    if !attached {
        ctx.print(&format!("{id}\n"))?;
    }
    if a.sig_proxy {
        forward_signals(ctx, &id);
    }

    let attach_task = if attached {
        let mut params = vec![("stream", "1".to_string())];
        if stdin {
            params.push(("stdin", "1".to_string()));
        }
        if stdout {
            params.push(("stdout", "1".to_string()));
        }
        if stderr {
            params.push(("stderr", "1".to_string()));
        }
        if !a.detach_keys.is_empty() {
            params.push(("detachKeys", a.detach_keys.clone()));
        }
        let path = with_query(&format!("/containers/{}/attach", path_escape(&id)), &params);
        let conn = ctx.client.hijack(&path).await?;
        let streams = Streams {
            stdin,
            stdout,
            stderr,
            tty,
        };
        let keys = a.detach_keys.clone();
        Some(tokio::spawn(async move {
            attach::stream(conn, streams, &keys).await
        }))
    } else {
        None
    };

    let wait = wait_exit_or_removed(ctx, &id, auto_remove).await;

    let start = ctx
        .client
        .call_json(
            Method::POST,
            &format!("/containers/{}/start", path_escape(&id)),
            None,
        )
        .await;
    if let Err(e) = start {
        if let Some(task) = attach_task {
            task.abort();
        }
        if auto_remove {
            let _ = wait.await;
        }
        return Err(run_status_error(&e.into()).into());
    }
    let Some(mut task) = attach_task else {
        return Ok(());
    };
    if tty && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        monitor_tty_size(ctx, &id);
    }
    // The output may still be draining when the container exits: take both.
    // A detach ends the attach first, and the container runs on.
    let mut wait = wait;
    let mut streamed = None;
    let status = tokio::select! {
        status = &mut wait => status,
        result = &mut task => {
            let result = result.unwrap_or(Ok(()));
            if attach::is_detached(&result) {
                return Ok(());
            }
            streamed = Some(result);
            wait.await
        }
    };
    let streamed = match streamed {
        Some(r) => r,
        None if stdout || stderr => task.await.unwrap_or(Ok(())),
        None => {
            task.abort();
            Ok(())
        }
    };
    streamed?;
    if status != 0 {
        return Err(StatusError {
            message: String::new(),
            code: status,
        }
        .into());
    }
    Ok(())
}

/// docker's `waitExitOrRemoved`: the wait request goes out now (before the
/// container starts); the returned future yields the exit status, 125 when
/// the wait itself failed.
pub(crate) async fn wait_exit_or_removed(
    ctx: &Ctx,
    id: &str,
    removed: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = i32>>> {
    let condition = if removed { "removed" } else { "next-exit" };
    let path = with_query(
        &format!("/containers/{}/wait", path_escape(id)),
        &[("condition", condition.to_string())],
    );
    match ctx
        .client
        .send(Method::POST, &path, crate::client::empty(), None)
        .await
    {
        Ok(resp) => Box::pin(async move {
            match read_body(resp).await {
                Ok(body) => match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => {
                        if let Some(msg) = v["Error"]["Message"].as_str() {
                            eprintln!("Error waiting for container: {msg}");
                            return 125;
                        }
                        v["StatusCode"].as_i64().unwrap_or(125) as i32
                    }
                    Err(_) => {
                        eprintln!(
                            "error waiting for container: {}",
                            String::from_utf8_lossy(&body)
                        );
                        125
                    }
                },
                Err(e) => {
                    eprintln!("error waiting for container: {e}");
                    125
                }
            }
        }),
        Err(e) => {
            let text = e.to_string();
            Box::pin(async move {
                eprintln!("error waiting for container: {text}");
                125
            })
        }
    }
}

/// docker's `MonitorTtySize`: the container's TTY takes our terminal's size
/// now and whenever it changes (SIGWINCH).
pub(crate) fn monitor_tty_size(ctx: &Ctx, id: &str) {
    let client = ctx.client.clone_handle();
    let base = format!("/containers/{}/resize", path_escape(id));
    let resize = move |client: &crate::client::Client| {
        let (h, w) = attach::terminal_size();
        let path = with_query(&base, &[("h", h.to_string()), ("w", w.to_string())]);
        let client = client.clone_handle();
        async move {
            if h != 0 || w != 0 {
                let _ = client.call_json(Method::POST, &path, None).await;
            }
        }
    };
    tokio::spawn(async move {
        resize(&client).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            resize(&client).await;
        }
    });
}

/// `--sig-proxy`: signals we receive are sent to the container by name
/// (`POST /containers/{id}/kill?signal=INT`) for as long as we run.
pub(crate) fn forward_signals(ctx: &Ctx, id: &str) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
        (SignalKind::window_change(), "WINCH"),
    ];
    for (kind, name) in kinds {
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        let client = ctx.client.clone_handle();
        let path = with_query(
            &format!("/containers/{}/kill", path_escape(id)),
            &[("signal", name.to_string())],
        );
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if let Err(e) = client.call_json(Method::POST, &path, None).await {
                    if matches!(e, ClientError::Connect { .. }) {
                        break;
                    }
                }
            }
        });
    }
}
