//! `cp`: files between a container and the local filesystem, over the archive API.
//!
//! As docker's client does, the daemon only ever sends or receives a tarball rooted
//! at one path inside the container; deciding names (copy into a directory, or
//! under a new name) happens here, by renaming the tarball's leading component.
//! Local paths are the user's own and are used as given; extraction refuses entry
//! names with `..` or a leading `/`, so a tarball from a container cannot write
//! outside the destination.

use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use hyper::Method;
use serde::Deserialize;

use crate::client::{ClientError, body_stream, empty, streamed, with_query};
use crate::commands::Ctx;

/// Options of `cp`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    after_long_help = "berth container cp, berth cp"
)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically
    /// suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Docker's `container.PathStat`.
#[derive(Debug, Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

/// `CONTAINER:PATH` or a local path (docker's `splitCpArg`: a path starting with `/`
/// or `.` is always local).
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// `cp`.
///
/// # Errors
/// Docker's argument errors, missing paths, and whatever the daemon refuses.
pub(crate) async fn run(ctx: &Ctx, a: CpArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 2)?;
    let (src, dst) = (split_arg(&a.args[0]), split_arg(&a.args[1]));
    match (src, dst) {
        ((Some(_), _), (Some(_), _)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        ((None, _), (None, _)) => anyhow::bail!("must specify at least one container source"),
        ((Some(c), p), (None, d)) => from_container(ctx, &a, c, p, d).await,
        ((None, s), (Some(c), p)) => to_container(ctx, &a, s, c, p).await,
    }
}

/// The stat of a container path, `None` when it does not exist.
async fn stat(ctx: &Ctx, container: &str, path: &str) -> anyhow::Result<Option<PathStat>> {
    let url = with_query(
        &format!(
            "/containers/{}/archive",
            crate::client::path_escape(container)
        ),
        &[("path", path.to_string())],
    );
    match ctx.client.send(Method::HEAD, &url, empty(), None).await {
        Ok(resp) => Ok(Some(decode_stat(
            resp.headers()
                .get("X-Docker-Container-Path-Stat")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        )?)),
        Err(ClientError::Daemon { status, .. }) if status.as_u16() == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn decode_stat(header: &str) -> anyhow::Result<PathStat> {
    let json = base64_decode(header).context("invalid path stat header")?;
    Ok(serde_json::from_slice(&json)?)
}

async fn from_container(
    ctx: &Ctx,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let mut src = src.to_string();
    // With -L the link's target is fetched but keeps the link's name (docker's
    // `GetRebaseName`).
    let link_name = tar_base(&src);
    if a.follow_link {
        match stat(ctx, container, &src).await? {
            Some(st) if st.mode & GO_MODE_SYMLINK != 0 && !st.link_target.is_empty() => {
                src = st.link_target;
            }
            Some(_) => {}
            None => anyhow::bail!(
                "Error response from daemon: Could not find the file {src} in container {container}"
            ),
        }
    }
    let url = with_query(
        &format!(
            "/containers/{}/archive",
            crate::client::path_escape(container)
        ),
        &[("path", src.clone())],
    );
    let resp = ctx
        .client
        .send(Method::GET, &url, empty(), None)
        .await
        .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))?;
    let st = decode_stat(
        resp.headers()
            .get("X-Docker-Container-Path-Stat")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    )?;
    let mut chunks = std::pin::pin!(body_stream(resp));
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = chunks.next().await {
            out.write_all(&chunk?)?;
        }
        out.flush()?;
        return Ok(());
    }
    let src_is_dir = st.mode & GO_MODE_DIR != 0;
    let src_base = tar_base(&src);
    let dst_path = Path::new(dst);
    let (dir, new_base) = match std::fs::metadata(dst_path) {
        Ok(m) if m.is_dir() => (dst_path.to_path_buf(), link_name.clone()),
        Ok(_) if src_is_dir => anyhow::bail!("cannot copy directory"),
        Ok(_) => (parent_of(dst_path), file_name(dst_path)),
        Err(_) if dst.ends_with('/') => anyhow::bail!("no such directory"),
        Err(_) => (parent_of(dst_path), file_name(dst_path)),
    };
    // The tarball is extracted as it arrives, on a blocking thread fed chunk by
    // chunk: a large copy is never held in memory.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let archive = a.archive;
    let extractor = tokio::task::spawn_blocking(move || {
        let mut reader = ChunkReader {
            rx,
            chunk: bytes::Bytes::new(),
        };
        let result = extract_local(&mut reader, &dir, &src_base, &new_base, archive);
        // Drain, so the sender never waits on a reader that stopped early.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        result
    });
    let mut size = 0u64;
    let mut transfer: anyhow::Result<()> = Ok(());
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(c) => {
                size += c.len() as u64;
                if tx.send(c).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                transfer = Err(e.into());
                break;
            }
        }
    }
    drop(tx);
    extractor.await??;
    transfer?;
    if !a.quiet && std::io::stdout().is_terminal() {
        eprintln!("Successfully copied {} to {dst}", human_size(size));
    }
    Ok(())
}

/// The first component of the tarball's names for a container path: its base
/// name, or `.` for a path ending in `/.`.
fn tar_base(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        _ if trimmed.is_empty() => ".".into(),
        _ => trimmed.to_string(),
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// Renames `old` to `new` as the leading component of `name`.
fn rebase(name: &str, old: &str, new: &str) -> String {
    let name = name.trim_start_matches("./");
    if old == "." {
        if new == "." || name.is_empty() || name == "." {
            return name.to_string();
        }
        return format!("{new}/{name}");
    }
    if name == old || name == format!("{old}/") {
        return new.to_string();
    }
    match name.strip_prefix(&format!("{old}/")) {
        Some(rest) if new == "." => rest.to_string(),
        Some(rest) => format!("{new}/{rest}"),
        None => name.to_string(),
    }
}

/// Whether a (rebased) name stays below the extraction directory.
fn safe_name(name: &str) -> bool {
    Path::new(name)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Reads the chunks sent by the download loop; EOF when the sender is dropped.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn extract_local(
    tarball: impl std::io::Read,
    dir: &Path,
    old: &str,
    new: &str,
    archive: bool,
) -> anyhow::Result<()> {
    let mut ar = tar::Archive::new(tarball);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(archive);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = rebase(&raw, old, new);
        if name.is_empty() || name == "." {
            continue;
        }
        if !safe_name(&name) {
            anyhow::bail!("invalid path in archive: {raw}");
        }
        let target = dir.join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let link = rebase(&link, old, new);
            if !safe_name(&link) {
                anyhow::bail!("invalid link in archive: {raw}");
            }
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(dir.join(link), &target)
                .with_context(|| format!("cannot link {}", target.display()))?;
            continue;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

async fn to_container(
    ctx: &Ctx,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let put = |path: String| {
        let mut q = vec![("path", path), ("noOverwriteDirNonDir", "true".to_string())];
        if a.archive {
            q.push(("copyUIDGID", "true".to_string()));
        }
        with_query(
            &format!(
                "/containers/{}/archive",
                crate::client::path_escape(container)
            ),
            &q,
        )
    };
    let mut dst = dst.to_string();
    let mut dst_stat = stat(ctx, container, &dst).await?;
    // A destination that is a symlink is followed, inside the container (the daemon
    // resolved `linkTarget` there).
    if let Some(st) = &dst_stat
        && st.mode & GO_MODE_SYMLINK != 0
        && !st.link_target.is_empty()
    {
        dst = st.link_target.clone();
        dst_stat = stat(ctx, container, &dst).await?;
    }
    let dst = dst.as_str();
    if src == "-" {
        match &dst_stat {
            Some(st) if st.mode & GO_MODE_DIR != 0 => {}
            Some(_) => anyhow::bail!("destination \"{container}:{dst}\" must be a directory"),
            None => anyhow::bail!(
                "Error response from daemon: Could not find the file {dst} in container {container}"
            ),
        }
        let body = streamed(tokio::io::stdin());
        ctx.client
            .send(
                Method::PUT,
                &put(dst.to_string()),
                body,
                Some("application/x-tar"),
            )
            .await
            .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))?;
        return Ok(());
    }
    let src_path = Path::new(src);
    let meta = if a.follow_link {
        std::fs::metadata(src_path)
    } else {
        std::fs::symlink_metadata(src_path)
    }
    .map_err(|_| anyhow::anyhow!("lstat {src}: no such file or directory"))?;
    let contents_only = src.ends_with("/.");
    let (put_path, name) = match &dst_stat {
        Some(st) if st.mode & GO_MODE_DIR != 0 => (dst.to_string(), file_name(src_path)),
        Some(_) if meta.is_dir() => {
            anyhow::bail!("cannot copy directory")
        }
        Some(_) => (container_parent(dst), container_base(dst)),
        None if dst.ends_with('/') => anyhow::bail!("no such directory"),
        None => (container_parent(dst), container_base(dst)),
    };
    let src_owned = src_path.to_path_buf();
    let follow = a.follow_link;
    // Packed into an unlinked temporary file, then streamed: a large copy is never
    // held in memory.
    let tarball = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        let tmp_path = std::env::temp_dir().join(format!(
            "berth-cp-{}-{}.tar",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        let _ = std::fs::remove_file(&tmp_path);
        let mut b = tar::Builder::new(std::io::BufWriter::new(file));
        b.follow_symlinks(false);
        if meta.is_dir() {
            let base = if contents_only { "." } else { name.as_str() };
            b.append_dir_all(base, &src_owned)?;
        } else if meta.file_type().is_symlink() && !follow {
            let target = std::fs::read_link(&src_owned)?;
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&std::fs::symlink_metadata(&src_owned)?);
            h.set_size(0);
            b.append_link(&mut h, &name, target)?;
        } else {
            let mut f = std::fs::File::open(&src_owned)?;
            b.append_file(&name, &mut f)?;
        }
        let mut file = b
            .into_inner()?
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write archive: {}", e.error()))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        Ok(file)
    })
    .await??;
    let size = tarball.metadata()?.len();
    ctx.client
        .send(
            Method::PUT,
            &put(put_path),
            streamed(tokio::fs::File::from_std(tarball)),
            Some("application/x-tar"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))?;
    if !a.quiet && std::io::stdout().is_terminal() {
        eprintln!(
            "Successfully copied {} to {container}:{dst}",
            human_size(size)
        );
    }
    Ok(())
}

fn container_parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.into(),
        None => "/".into(),
    }
}

fn container_base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    t.rsplit_once('/').map_or(t, |(_, b)| b).to_string()
}

/// docker's `units.HumanSizeWithPrecision(n, 3)`.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    let digits = s.split('.').next().map_or(0, str::len);
    let precision = 3usize.saturating_sub(digits);
    format!("{v:.precision$}{}", units[i])
}

/// Standard base64 (with or without padding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split_arg("ctr:/etc"), (Some("ctr"), "/etc"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_arg("file"), (None, "file"));
    }

    #[test]
    fn names_rebase_on_their_first_component() {
        assert_eq!(rebase("d/", "d", "copy"), "copy");
        assert_eq!(rebase("d/e/f", "d", "copy"), "copy/e/f");
        assert_eq!(rebase("./e/f", ".", "."), "e/f");
        assert_eq!(rebase("e/f", ".", "x"), "x/e/f");
        assert_eq!(rebase("dx/f", "d", "copy"), "dx/f");
        assert!(!safe_name("../x"));
        assert!(!safe_name("/x"));
        assert!(safe_name("a/b"));
    }

    #[test]
    fn base64_round_trips_the_daemon_header() {
        assert_eq!(
            base64_decode("eyJuYW1lIjoieCJ9").unwrap(),
            b"{\"name\":\"x\"}"
        );
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(2048), "2.05kB");
        assert_eq!(human_size(512), "512B");
    }
}
