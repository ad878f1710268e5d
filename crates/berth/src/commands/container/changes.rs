//! `commit`, `diff` and `export`: a container's changes as an image, a list, or the
//! whole filesystem as a tarball.

use std::io::{IsTerminal, Write};

use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use crate::client::{body_stream, empty, path_escape, with_query};
use crate::commands::Ctx;

/// Options of `commit`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    after_long_help = "berth container commit, berth commit"
)]
pub(crate) struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    message: Option<String>,
    /// Pause container during commit
    #[arg(
        short = 'p',
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pause: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `commit`: prints the new image's ID.
///
/// # Errors
/// Argument count, and whatever the daemon refuses.
pub(crate) async fn commit(ctx: &Ctx, a: CommitArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    if a.args.len() > 2 {
        ctx.usage.exact_args(&a.args, 2)?;
    }
    let container = a.args[0].clone();
    let mut params: Vec<(&str, String)> = vec![("container", container)];
    if let Some(reference) = a.args.get(1).filter(|r| !r.is_empty()) {
        // docker's client sends the reference as repo and tag.
        let (repo, tag) = split_reference(reference);
        params.push(("repo", repo));
        if !tag.is_empty() {
            params.push(("tag", tag));
        }
    }
    if let Some(m) = a.message {
        params.push(("comment", m));
    }
    if let Some(author) = a.author {
        params.push(("author", author));
    }
    for c in a.change {
        params.push(("changes", c));
    }
    if !a.pause {
        params.push(("pause", "0".into()));
    }
    let resp = ctx
        .client
        .call_json(Method::POST, &with_query("/commit", &params), None)
        .await?;
    let id = resp.get("Id").and_then(|v| v.as_str()).unwrap_or_default();
    ctx.print(&format!("{id}\n"))?;
    Ok(())
}

/// `repo[:tag]`: the tag is what follows the last `:` after the last `/`.
fn split_reference(r: &str) -> (String, String) {
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), String::new()),
    }
}

/// Options of `diff`.
#[derive(Args, Debug)]
#[command(
    override_usage = "CONTAINER",
    after_long_help = "berth container diff, berth diff"
)]
pub(crate) struct DiffArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `diff`: one `<kind> <path>` line per change.
///
/// # Errors
/// Argument count, and whatever the daemon refuses.
pub(crate) async fn diff(ctx: &Ctx, a: DiffArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let path = format!("/containers/{}/changes", path_escape(&a.args[0]));
    let changes = ctx.client.call_json(Method::GET, &path, None).await?;
    let mut out = String::new();
    for c in changes.as_array().into_iter().flatten() {
        let kind = match c.get("Kind").and_then(|k| k.as_u64()) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        let path = c.get("Path").and_then(|p| p.as_str()).unwrap_or_default();
        out.push_str(&format!("{kind} {path}\n"));
    }
    ctx.print(&out)?;
    Ok(())
}

/// Options of `export`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER",
    after_long_help = "berth container export, berth export"
)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    output: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `export`: the container's filesystem as a tarball, to stdout or `-o FILE`.
///
/// # Errors
/// Argument count, a terminal on stdout, file errors, and whatever the daemon
/// refuses.
pub(crate) async fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let output = a.output.filter(|o| !o.is_empty());
    if output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let path = format!("/containers/{}/export", path_escape(&a.args[0]));
    let resp = ctx.client.send(Method::GET, &path, empty(), None).await?;
    // A file appears under its name only once complete, as docker's atomic writer.
    let mut file = match &output {
        Some(o) => {
            let temp = format!("{o}.berth-tmp-{}", std::process::id());
            Some((std::fs::File::create(&temp)?, temp))
        }
        None => None,
    };
    let mut chunks = std::pin::pin!(body_stream(resp));
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                if let Some((_, temp)) = &file {
                    let _ = std::fs::remove_file(temp);
                }
                return Err(e.into());
            }
        };
        match &mut file {
            Some((f, _)) => f.write_all(&chunk)?,
            None => stdout.write_all(&chunk)?,
        }
    }
    stdout.flush()?;
    if let (Some((f, temp)), Some(o)) = (file, output) {
        f.sync_all()?;
        std::fs::rename(temp, o)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_colon_only() {
        assert_eq!(split_reference("img"), ("img".into(), "".into()));
        assert_eq!(split_reference("img:1"), ("img".into(), "1".into()));
        assert_eq!(
            split_reference("localhost:5000/a/img"),
            ("localhost:5000/a/img".into(), "".into())
        );
        assert_eq!(
            split_reference("localhost:5000/img:v2"),
            ("localhost:5000/img".into(), "v2".into())
        );
    }
}
