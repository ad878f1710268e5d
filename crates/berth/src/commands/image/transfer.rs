//! `load`, `save` and `import`: image tarballs in and out.
//!
//! Tarballs are streamed in both directions (64 KiB chunks to the daemon,
//! response chunks straight to the file or stdout), never held in memory.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use futures_util::StreamExt;
use hyper::{Method, header};

use crate::client::{body_stream, empty, streamed, with_query};
use crate::commands::{Ctx, go_io_error};
use crate::jsonmessage::display_stream;
use crate::reference::parse_normalized_named;

/// Options of `load`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS]",
    after_long_help = "berth image load, berth load"
)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    input: Option<String>,
    /// Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    platform: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `load`: streams the archive to `POST /images/load` and prints the daemon's messages.
///
/// # Errors
/// Unreadable input, daemon errors, error messages in the stream.
pub(crate) async fn load(ctx: &Ctx, a: LoadArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let body = match a.input.as_deref().filter(|i| !i.is_empty()) {
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            streamed(tokio::io::stdin())
        }
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!(go_io_error("open", path, &e)))?;
            streamed(file)
        }
    };
    let mut params = Vec::new();
    if a.quiet || !std::io::stdout().is_terminal() {
        params.push(("quiet", "1".to_string()));
    }
    if let Some(p) = a.platform.filter(|p| !p.is_empty()) {
        params.push(("platform", platform_json(&p)?));
    }
    let resp = ctx
        .client
        .send(
            Method::POST,
            &with_query("/images/load", &params),
            body,
            Some("application/x-tar"),
        )
        .await?;
    print_response(resp).await
}

/// Prints a response that is a JSON message stream, or copies it as is.
async fn print_response(resp: hyper::Response<hyper::body::Incoming>) -> anyhow::Result<()> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut out = std::io::stdout();
    if is_json {
        display_stream(body_stream(resp), &mut out).await
    } else {
        let mut chunks = std::pin::pin!(body_stream(resp));
        while let Some(chunk) = chunks.next().await {
            out.write_all(&chunk?)?;
        }
        out.flush()?;
        Ok(())
    }
}

/// The API's platform parameter: `{"os":..,"architecture":..,"variant":..}`.
fn platform_json(p: &str) -> anyhow::Result<String> {
    let mut parts = p.split('/');
    let os = parts.next().unwrap_or("").to_lowercase();
    if os.is_empty() {
        anyhow::bail!("invalid platform: {p:?}");
    }
    let mut v = serde_json::json!({"os": os});
    if let Some(arch) = parts.next() {
        v["architecture"] = serde_json::Value::from(arch.to_lowercase());
    }
    if let Some(variant) = parts.next() {
        v["variant"] = serde_json::Value::from(variant.to_lowercase());
    }
    Ok(v.to_string())
}

/// Options of `save`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] IMAGE [IMAGE...]",
    after_long_help = "berth image save, berth save"
)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    output: Option<String>,
    /// Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    platform: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// A file that appears under its name only once completely written
/// (docker's `atomicwriter`): a temp file beside it, renamed on success.
struct AtomicFile {
    file: std::fs::File,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    fn create(target: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let target = PathBuf::from(target);
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // docker's atomicwriter checks the directory and the target first.
        match std::fs::metadata(dir) {
            Err(e) => anyhow::bail!(
                "failed to save image: invalid output path: {}",
                go_io_error("stat", &dir.display().to_string(), &e)
            ),
            Ok(m) if !m.is_dir() => anyhow::bail!(
                "failed to save image: invalid output path: stat {}: not a directory",
                dir.display()
            ),
            Ok(_) => {}
        }
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            anyhow::bail!("failed to save image: cannot write to a directory");
        }
        let temp = dir.join(format!(".{name}.berth-tmp-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| {
                anyhow::anyhow!(
                    "failed to save image: {}",
                    go_io_error("open", &temp.display().to_string(), &e)
                )
            })?;
        Ok(AtomicFile { file, temp, target })
    }

    fn commit(self) -> anyhow::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.target)?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a successful rename this finds nothing to remove.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// `save`: streams `GET /images/get` to a file or to a non-terminal stdout.
///
/// # Errors
/// A terminal stdout, unwritable output, daemon errors.
pub(crate) async fn save(ctx: &Ctx, a: SaveArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut params: Vec<(&str, String)> = a.args.iter().map(|n| ("names", n.clone())).collect();
    if let Some(p) = a.platform.as_deref().filter(|p| !p.is_empty()) {
        params.push(("platform", platform_json(p)?));
    }
    let mut file = match a.output.as_deref().filter(|o| !o.is_empty()) {
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            None
        }
        Some(path) => Some(AtomicFile::create(path)?),
    };
    let resp = ctx
        .client
        .send(
            Method::GET,
            &with_query("/images/get", &params),
            empty(),
            None,
        )
        .await?;
    let mut chunks = std::pin::pin!(body_stream(resp));
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        match &mut file {
            Some(f) => f.file.write_all(&chunk)?,
            None => stdout.write_all(&chunk)?,
        }
    }
    stdout.flush()?;
    if let Some(f) = file {
        f.commit()?;
    }
    Ok(())
}

/// Options of `import`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    after_long_help = "berth image import, berth import"
)]
pub(crate) struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        hide_env = true
    )]
    platform: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `import`: `POST /images/create?fromSrc=-` with the tarball streamed from a
/// file or stdin, or `fromSrc=<URL>` for the daemon to fetch; prints the new ID.
///
/// # Errors
/// Unreadable input, a bad reference, daemon errors.
pub(crate) async fn import(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let source = a.args[0].as_str();
    let reference = a.args.get(1).map(String::as_str).unwrap_or("");
    let (from_src, body) = if source == "-" {
        ("-".to_string(), streamed(tokio::io::stdin()))
    } else if source.starts_with("http://") || source.starts_with("https://") {
        (source.to_string(), empty())
    } else {
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| anyhow::anyhow!(go_io_error("open", source, &e)))?;
        ("-".to_string(), streamed(file))
    };
    if !reference.is_empty() {
        parse_normalized_named(reference)?;
    }
    let mut params = vec![("fromSrc", from_src)];
    if !reference.is_empty() {
        params.push(("repo", reference.to_string()));
    }
    if let Some(m) = a.message.filter(|m| !m.is_empty()) {
        params.push(("message", m));
    }
    if let Some(p) = a.platform.filter(|p| !p.is_empty()) {
        params.push(("platform", p.to_lowercase()));
    }
    for c in a.change {
        params.push(("changes", c));
    }
    let resp = ctx
        .client
        .send(
            Method::POST,
            &with_query("/images/create", &params),
            body,
            None,
        )
        .await?;
    display_stream(body_stream(resp), &mut std::io::stdout()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parameter_is_oci_json() {
        assert_eq!(
            platform_json("linux/amd64").unwrap(),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
        assert!(platform_json("").is_err());
    }

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = std::env::temp_dir().join(format!("berth-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.tar");
        let mut f = AtomicFile::create(target.to_str().unwrap()).unwrap();
        f.file.write_all(b"data").unwrap();
        assert!(!target.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
