//! `compose exec` (a command in a running replica) and `compose run` (a
//! one-off container of a service, after its dependencies are up).

use std::collections::BTreeMap;

use berth_compose::Project;
use clap::Args;
use hyper::Method;
use serde_json::json;

use super::{check_services, ops, progress, spec, up};
use crate::cli::StatusError;
use crate::client::{path_escape, with_query};
use crate::commands::Ctx;
use crate::commands::container::attach::{self, Streams};
use crate::commands::container::run::wait_exit_or_removed;

/// Options of `compose exec`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] SERVICE COMMAND [ARGS...]")]
pub(crate) struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "stringArray")]
    env: Vec<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, value_name = "int", default_value_t = 1)]
    index: u32,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    /// Run the command as this user
    #[arg(short = 'u', long, value_name = "string")]
    user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long, value_name = "string")]
    workdir: Option<String>,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// `compose exec`; exits with the command's status.
///
/// # Errors
/// Unknown services, no running replica, daemon errors.
pub(crate) async fn exec(ctx: &Ctx, project: &Project, a: ExecArgs) -> anyhow::Result<()> {
    check_services(project, std::slice::from_ref(&a.service))?;
    let c = ops::replica(ctx, project, &a.service, a.index).await?;
    if !c.is_running() {
        anyhow::bail!("service {:?} is not running", a.service);
    }
    let tty = !a.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": tty,
        "AttachStdin": !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Env": a.env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    });
    let created = ctx
        .client
        .call_json(
            Method::POST,
            &format!("/containers/{}/exec", path_escape(&c.id)),
            Some(&body),
        )
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    let start = format!("/exec/{}/start", path_escape(&exec_id));
    if a.detach {
        ctx.client
            .call_json(
                Method::POST,
                &start,
                Some(&json!({"Detach": true, "Tty": tty})),
            )
            .await?;
        return Ok(());
    }
    let conn = ctx
        .client
        .hijack_json(&start, &json!({"Detach": false, "Tty": tty}))
        .await?;
    let streams = Streams {
        stdin: true,
        stdout: true,
        stderr: true,
        tty,
    };
    let streamed = attach::stream(conn, streams, "").await;
    if attach::is_detached(&streamed) {
        return Ok(());
    }
    streamed?;
    let info = ctx
        .client
        .get_json(&format!("/exec/{}/json", path_escape(&exec_id)))
        .await?;
    exit_status(info["ExitCode"].as_i64().unwrap_or(0) as i32)
}

fn exit_status(code: i32) -> anyhow::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError {
            message: String::new(),
            code,
        }
        .into())
    }
}

/// Options of `compose run`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] SERVICE [COMMAND] [ARGS...]")]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "stringArray")]
    env: Vec<String>,
    /// Add or override a label
    #[arg(short = 'l', long = "label", value_name = "stringArray")]
    label: Vec<String>,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    name: Option<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Run as specified username or uid
    #[arg(short = 'u', long, value_name = "string")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    workdir: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long, value_name = "string")]
    entrypoint: Option<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    service_ports: bool,
    pub(crate) service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// A random 64-hex slug, as docker-compose names one-off containers.
fn slug() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..4u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// `compose run`: dependencies up, then a one-off container in the
/// foreground (its exit status is ours) or detached.
///
/// # Errors
/// Unknown services, failed dependencies, daemon errors.
pub(crate) async fn run(ctx: &Ctx, project: &Project, a: RunArgs) -> anyhow::Result<()> {
    check_services(project, std::slice::from_ref(&a.service))?;
    let deps: Vec<String> = if a.no_deps {
        Vec::new()
    } else {
        project
            .with_dependencies(std::slice::from_ref(&a.service))
            .into_iter()
            .filter(|s| s != &a.service)
            .collect()
    };
    let mut needed = deps.clone();
    needed.push(a.service.clone());
    up::ensure_networks(ctx, project, &needed).await?;
    let images = up::ensure_images(ctx, project, &needed, false, false).await?;
    if !deps.is_empty() {
        let opts = up::Converge {
            force_recreate: false,
            no_recreate: true,
            no_start: false,
            timeout: None,
        };
        up::converge_all(ctx, project, &deps, &images, &BTreeMap::new(), opts).await?;
    }
    // The one-off container gets the service's config with the overrides.
    let mut project = project.clone();
    let svc = project.services.get_mut(&a.service).expect("checked above");
    if !a.command.is_empty() {
        svc.command = Some(a.command.clone());
    }
    if let Some(ep) = &a.entrypoint {
        svc.entrypoint = Some(berth_compose::parse::shell_split(ep).map_err(anyhow::Error::msg)?);
    }
    for e in &a.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (e.clone(), std::env::var(e).ok()),
        };
        svc.environment.insert(k, v);
    }
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        svc.labels.insert(k.to_string(), v.to_string());
    }
    if a.user.is_some() {
        svc.user = a.user.clone();
    }
    if a.workdir.is_some() {
        svc.working_dir = a.workdir.clone();
    }
    // Restart policies do not apply to one-off containers.
    svc.restart = None;
    let tty = !a.no_tty && !a.detach && std::io::IsTerminal::is_terminal(&std::io::stdin());
    svc.tty = tty;
    svc.stdin_open = !a.detach;
    let slug = slug();
    let name = a.name.clone().unwrap_or_else(|| {
        berth_compose::labels::run_container_name(&project.name, &a.service, &slug)
    });
    let replica = spec::Replica {
        service: &a.service,
        number: 1,
        config_hash: "",
        slug: Some(&slug),
    };
    let image = project.services[&a.service].image_name(&project.name, &a.service);
    let mut body = spec::create_body(&project, &replica, &image);
    if a.service_ports {
        let ports = &project.services[&a.service].ports;
        for p in ports {
            let key = format!("{}/{}", p.target, p.protocol);
            body["ExposedPorts"][&key] = json!({});
            body["HostConfig"]["PortBindings"][&key] = json!([{
                "HostIp": p.host_ip.clone().unwrap_or_default(),
                "HostPort": p.published.clone().unwrap_or_default(),
            }]);
        }
    }
    body["HostConfig"]["AutoRemove"] = json!(a.rm);
    if !a.detach {
        body["AttachStdin"] = json!(true);
        body["AttachStdout"] = json!(true);
        body["AttachStderr"] = json!(true);
        body["StdinOnce"] = json!(true);
    }
    let id = up::create_and_connect(ctx, &project, &a.service, &name, &body, true).await?;
    if a.detach {
        ops::start_container(ctx, &id).await?;
        ctx.print(&format!("{name}\n"))?;
        return Ok(());
    }
    let path = with_query(
        &format!("/containers/{}/attach", path_escape(&id)),
        &[
            ("stream", "1".to_string()),
            ("stdin", "1".to_string()),
            ("stdout", "1".to_string()),
            ("stderr", "1".to_string()),
        ],
    );
    let conn = ctx.client.hijack(&path).await?;
    let streams = Streams {
        stdin: true,
        stdout: true,
        stderr: true,
        tty,
    };
    let task = tokio::spawn(async move { attach::stream(conn, streams, "").await });
    let wait = wait_exit_or_removed(ctx, &id, a.rm).await;
    if let Err(e) = ops::start_container(ctx, &id).await {
        task.abort();
        if a.rm {
            let _ = ops::remove_container(ctx, &id, false).await;
        }
        return Err(e);
    }
    let status = wait.await;
    let streamed = task.await.unwrap_or(Ok(()));
    if !attach::is_detached(&streamed) {
        streamed?;
    } else {
        progress(&format!("Detached from {name}"));
        return Ok(());
    }
    exit_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_64_hex_and_differ() {
        let a = slug();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, slug());
    }
}
