//! `pull`, `push`, `login` and `logout`.
//!
//! Credentials are kept the way the docker CLI keeps them, in `config.json` under
//! `$DOCKER_CONFIG` (else `~/.docker`): `auths.<server>.auth` is
//! `base64(user:password)`, Docker Hub's server key is `https://index.docker.io/v1/`.
//! Every other key of that file is preserved. Pull and push look the registry up
//! there and send what they find as `X-Registry-Auth`, as docker does; no credential
//! helpers are run.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use berth_registry::AuthConfig;
use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{body_stream, empty, full, path_escape, with_query};
use crate::commands::Ctx;
use crate::commands::pull_progress::draw_stream;
use crate::jsonmessage::display_stream;
use crate::reference::parse_normalized_named;

/// Docker Hub's key in `config.json`.
const INDEX_SERVER: &str = "https://index.docker.io/v1/";

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn load_config() -> anyhow::Result<Value> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(data) if !data.is_empty() => {
            serde_json::from_slice(&data).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Ok(_) => Ok(json!({})),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// Writes the config through a temp file and a rename, mode 0600 (it holds secrets).
fn save_config(config: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(config)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The `config.json` key of a registry: Docker Hub's index URL or the domain.
fn server_key(domain: &str) -> String {
    match domain {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => INDEX_SERVER.into(),
        d => d.to_string(),
    }
}

/// A server argument as `login`/`logout` take it (`http://host:5000/` → `host:5000`).
fn normalize_server(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    server_key(s.split('/').next().unwrap_or_default())
}

/// The stored credentials for `domain`, as an `X-Registry-Auth` value.
pub(crate) fn registry_auth_header(domain: &str) -> anyhow::Result<String> {
    let key = server_key(domain);
    let config = load_config()?;
    let entry = &config["auths"][&key];
    let mut auth = AuthConfig {
        serveraddress: key,
        ..Default::default()
    };
    if let Some(a) = entry["auth"].as_str() {
        auth.auth = a.to_string();
        if let Some(berth_registry::Credentials::Basic { username, password }) = auth.credentials()
        {
            auth.username = username;
            auth.password = password;
            auth.auth.clear();
        }
    }
    if let Some(t) = entry["identitytoken"].as_str() {
        auth.identitytoken = t.to_string();
    }
    Ok(auth.to_header())
}

/// Options of `pull`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] NAME[:TAG|@DIGEST]",
    after_long_help = "berth image pull, berth pull"
)]
pub(crate) struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", default_value = "")]
    platform: String,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The image.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    args: Vec<String>,
}

/// `pull`: `POST /images/create?fromImage=...`, progress to stdout, then the reference.
///
/// # Errors
/// A bad reference, daemon errors, error messages in the stream.
pub(crate) async fn pull(ctx: &Ctx, a: PullArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let r = parse_normalized_named(&a.args[0])?;
    if a.all_tags && (r.tag().is_some() || r.digest().is_some()) {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let tag = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) if a.all_tags => String::new(),
        (None, None) => {
            if !a.quiet {
                ctx.print("Using default tag: latest\n")?;
            }
            "latest".to_string()
        }
    };
    let mut params = vec![("fromImage", r.familiar_name()), ("tag", tag.clone())];
    if !a.platform.is_empty() {
        params.push(("platform", a.platform.clone()));
    }
    let auth = registry_auth_header(r.domain())?;
    let resp = ctx
        .client
        .send_with_headers(
            Method::POST,
            &with_query("/images/create", &params),
            empty(),
            None,
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    if a.quiet {
        display_stream(body_stream(resp), &mut std::io::sink()).await?;
    } else if std::io::stdout().is_terminal() {
        draw_stream(body_stream(resp)).await?;
    } else {
        display_stream(body_stream(resp), &mut std::io::stdout()).await?;
    }
    let full_name = r.name();
    let shown = if a.all_tags {
        full_name
    } else if tag.starts_with("sha256:") {
        format!("{full_name}@{tag}")
    } else {
        format!("{full_name}:{tag}")
    };
    ctx.print(&format!("{shown}\n"))?;
    Ok(())
}

/// Options of `push`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] NAME[:TAG]",
    after_long_help = "berth image push, berth push"
)]
pub(crate) struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The image.
    #[arg(value_name = "NAME[:TAG]")]
    args: Vec<String>,
}

/// `push`: `POST /images/{name}/push?tag=`.
///
/// # Errors
/// A bad reference, daemon errors, error messages in the stream.
pub(crate) async fn push(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let r = parse_normalized_named(&a.args[0])?;
    if a.all_tags && r.tag().is_some() {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let tag = match r.tag() {
        Some(t) => t.to_string(),
        None if a.all_tags => String::new(),
        None => {
            if !a.quiet {
                ctx.print("Using default tag: latest\n")?;
            }
            "latest".to_string()
        }
    };
    let auth = registry_auth_header(r.domain())?;
    let path = with_query(
        &format!("/images/{}/push", path_escape(&r.familiar_name())),
        &[("tag", tag.clone())],
    );
    let resp = ctx
        .client
        .send_with_headers(
            Method::POST,
            &path,
            empty(),
            None,
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    if a.quiet {
        display_stream(body_stream(resp), &mut std::io::sink()).await?;
        ctx.print(&format!("{}\n", a.args[0]))?;
    } else if std::io::stdout().is_terminal() {
        draw_stream(body_stream(resp)).await?;
    } else {
        display_stream(body_stream(resp), &mut std::io::stdout()).await?;
    }
    Ok(())
}

/// Options of `login`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVER]")]
pub(crate) struct LoginArgs {
    /// Password
    #[arg(short = 'p', long, value_name = "string")]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    username: Option<String>,
    /// The registry.
    #[arg(value_name = "SERVER")]
    args: Vec<String>,
}

/// `login`: checks the credentials with `POST /auth` and stores them.
///
/// # Errors
/// Missing credentials, refused credentials, config file errors.
pub(crate) async fn login(ctx: &Ctx, a: LoginArgs) -> anyhow::Result<()> {
    if a.args.len() > 1 {
        ctx.usage.exact_args(&a.args, 1)?;
    }
    let server = normalize_server(a.args.first().map(String::as_str).unwrap_or(""));
    let mut password = a.password.unwrap_or_default();
    if a.password_stdin {
        if !password.is_empty() {
            anyhow::bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        password = input.trim_end_matches(['\n', '\r']).to_string();
    }
    let username = a.username.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        if std::io::stdin().is_terminal() {
            anyhow::bail!(
                "interactive login is not supported by berth yet: use -u and --password-stdin"
            );
        }
        anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
    }
    let auth = AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: server.clone(),
        ..Default::default()
    };
    ctx.client
        .send(
            Method::POST,
            "/auth",
            full(serde_json::to_vec(&auth)?),
            Some("application/json"),
        )
        .await?;
    let mut config = load_config()?;
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    config["auths"][&server] = json!({"auth": AuthConfig::encode_auth_field(&username, &password)});
    save_config(&config)?;
    ctx.print("Login Succeeded\n")?;
    Ok(())
}

/// Options of `logout`.
#[derive(Args, Debug)]
#[command(override_usage = "[SERVER]")]
pub(crate) struct LogoutArgs {
    /// The registry.
    #[arg(value_name = "SERVER")]
    args: Vec<String>,
}

/// `logout`: forgets the stored credentials of a registry.
///
/// # Errors
/// Config file errors.
pub(crate) async fn logout(ctx: &Ctx, a: LogoutArgs) -> anyhow::Result<()> {
    if a.args.len() > 1 {
        ctx.usage.exact_args(&a.args, 1)?;
    }
    let server = normalize_server(a.args.first().map(String::as_str).unwrap_or(""));
    let mut config = load_config()?;
    let removed = config["auths"]
        .as_object_mut()
        .and_then(|auths| auths.remove(&server))
        .is_some();
    if !removed {
        ctx.print(&format!("Not logged in to {server}\n"))?;
        return Ok(());
    }
    ctx.print(&format!("Removing login credentials for {server}\n"))?;
    save_config(&config)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_keyed_as_docker_keys_them() {
        assert_eq!(normalize_server(""), INDEX_SERVER);
        assert_eq!(normalize_server("docker.io"), INDEX_SERVER);
        assert_eq!(normalize_server("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
    }
}
