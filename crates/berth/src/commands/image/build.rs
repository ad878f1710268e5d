//! `berth build`: the docker CLI's classic build client. The context directory is
//! tarred here with `.dockerignore` applied (as docker does, so ignored files never
//! leave the machine), streamed as the body of `POST /build`, and the daemon's
//! message stream is printed as docker prints it.
//!
//! Contexts: a directory, a tarball (sent as is), or `-`: stdin holds a tarball or,
//! if it is not one, a Dockerfile without context. A Dockerfile named with `-f`
//! outside the context (or `-f -`) is added to the tarball under a generated name.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_build::context::{EntryKind, walk_context};
use berth_build::ignore::IgnoreMatcher;
use clap::Args;
use hyper::Method;

use super::super::Ctx;
use crate::client::{body_stream, full, with_query};
use crate::jsonmessage::{JsonStreamDecoder, display};

/// `berth build`.
#[derive(Args, Debug)]
#[command(
    about = "Build an image from a Dockerfile",
    override_usage = "[OPTIONS] PATH | URL | -",
    after_long_help = "berth image build, berth build"
)]
pub(crate) struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    tags: Vec<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    build_args: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    labels: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long, value_name = "string")]
    target: Option<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    iidfile: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "string", default_value = "default")]
    network: String,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    force_rm: bool,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    file: Option<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    cache_from: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    memory: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "int")]
    cpu_period: Option<i64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "int")]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int")]
    cpu_shares: Option<i64>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// The context as sent: a tarball, and the Dockerfile's name inside it.
struct Context {
    tar: Vec<u8>,
    dockerfile: String,
}

fn is_tar(data: &[u8]) -> bool {
    // Compressed tarballs are the daemon's to sniff: gzip, zstd.
    data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (data.len() >= 262 && &data[257..262] == b"ustar")
}

fn append_file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(0);
    b.append_data(&mut h, name, data)
}

/// Tars `dir` as docker does: `.dockerignore` applied (the Dockerfile and
/// `.dockerignore` are always sent), owners reset to root.
fn tar_dir(dir: &Path, dockerfile_rel: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => IgnoreMatcher::from_dockerignore(&text)?,
        Err(_) => IgnoreMatcher::new::<&str>(&[])?,
    };
    let mut entries = walk_context(dir, &ignore)?;
    for keep in [Some(".dockerignore"), dockerfile_rel]
        .into_iter()
        .flatten()
    {
        if !entries.iter().any(|e| e.path == keep) && dir.join(keep).is_file() {
            entries.extend(
                walk_context(dir, &IgnoreMatcher::new::<&str>(&[])?)?
                    .into_iter()
                    .filter(|e| e.path == keep),
            );
        }
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for e in &entries {
        let full = dir.join(&e.path);
        let md = std::fs::symlink_metadata(&full)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        h.set_uid(0);
        h.set_gid(0);
        match e.kind {
            EntryKind::Dir => {
                h.set_size(0);
                b.append_data(&mut h, format!("{}/", e.path), std::io::empty())?;
            }
            EntryKind::Symlink => {
                h.set_size(0);
                b.append_link(&mut h, &e.path, e.link_target.clone().unwrap_or_default())?;
            }
            EntryKind::File => {
                let f = std::fs::File::open(&full)?;
                b.append_data(&mut h, &e.path, f)?;
            }
            EntryKind::Other => {}
        }
    }
    Ok(b.into_inner()?)
}

fn read_all(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v)?;
        return Ok(v);
    }
    std::fs::read(path).map_err(|e| anyhow::anyhow!("unable to prepare context: {path}: {e}"))
}

fn prepare(context: &str, file: Option<&str>) -> anyhow::Result<Context> {
    if context == "-" {
        let data = read_all("-")?;
        if is_tar(&data) {
            return Ok(Context {
                tar: data,
                dockerfile: file.unwrap_or_default().to_string(),
            });
        }
        let mut b = tar::Builder::new(Vec::new());
        append_file(&mut b, "Dockerfile", &data)?;
        return Ok(Context {
            tar: b.into_inner()?,
            dockerfile: "Dockerfile".into(),
        });
    }
    let path = PathBuf::from(context);
    let md = std::fs::metadata(&path).map_err(|e| {
        anyhow::anyhow!("unable to prepare context: path {context:?} not found: {e}")
    })?;
    if !md.is_dir() {
        return Ok(Context {
            tar: std::fs::read(&path)?,
            dockerfile: file.unwrap_or_default().to_string(),
        });
    }
    let root = std::fs::canonicalize(&path)?;
    // The Dockerfile: inside the context by relative name, else added to the tarball.
    let (inside, extra) = match file {
        None => (Some("Dockerfile".to_string()), None),
        Some("-") => (None, Some(read_all("-")?)),
        Some(f) => {
            let fp = if Path::new(f).is_absolute() {
                PathBuf::from(f)
            } else {
                std::env::current_dir()?.join(f)
            };
            let canon = std::fs::canonicalize(&fp).map_err(|e| {
                anyhow::anyhow!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: {e}"
                )
            })?;
            match canon.strip_prefix(&root) {
                Ok(rel) => (Some(rel.to_string_lossy().into_owned()), None),
                Err(_) => (None, Some(std::fs::read(&canon)?)),
            }
        }
    };
    let tar = tar_dir(&root, inside.as_deref())?;
    match extra {
        None => Ok(Context {
            tar,
            dockerfile: inside.unwrap_or_default(),
        }),
        Some(data) => {
            let name = format!(".dockerfile.{:012x}", rand_suffix());
            // Rebuild the tarball with the Dockerfile appended before the end marker.
            let mut b = tar::Builder::new(Vec::new());
            let mut a = tar::Archive::new(&tar[..]);
            for e in a.entries()? {
                let mut e = e?;
                let mut h = e.header().clone();
                let p = e.path_bytes().into_owned();
                let kind = h.entry_type();
                if kind.is_symlink() {
                    let link = e.link_name()?.map(|l| l.into_owned()).unwrap_or_default();
                    b.append_link(&mut h, String::from_utf8_lossy(&p).as_ref(), link)?;
                } else {
                    b.append_data(&mut h, String::from_utf8_lossy(&p).as_ref(), &mut e)?;
                }
            }
            append_file(&mut b, &name, &data)?;
            Ok(Context {
                tar: b.into_inner()?,
                dockerfile: name,
            })
        }
    }
}

fn rand_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ (u64::from(std::process::id()) << 32)) & 0xffff_ffff_ffff
}

/// `--build-arg K=V` or `--build-arg K` (taken from the environment; JSON null when
/// unset, so the daemon can warn about it).
fn build_args(list: &[String]) -> BTreeMap<String, Option<String>> {
    list.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), std::env::var(a).ok()),
        })
        .collect()
}

/// Runs `berth build`.
///
/// # Errors
/// An unreadable context, daemon errors, a failed step.
pub(crate) async fn run(ctx: &Ctx, a: BuildArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let context = prepare(&a.args[0], a.file.as_deref())?;
    let labels: BTreeMap<String, String> = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let mut params: Vec<(&str, String)> = Vec::new();
    for t in &a.tags {
        params.push(("t", t.clone()));
    }
    if !context.dockerfile.is_empty() {
        params.push(("dockerfile", context.dockerfile.clone()));
    }
    params.push((
        "buildargs",
        serde_json::to_string(&build_args(&a.build_args))?,
    ));
    params.push(("labels", serde_json::to_string(&labels)?));
    if !a.cache_from.is_empty() {
        params.push(("cachefrom", serde_json::to_string(&a.cache_from)?));
    }
    if let Some(t) = &a.target {
        params.push(("target", t.clone()));
    }
    for (k, on) in [
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("q", a.quiet),
        ("forcerm", a.force_rm),
    ] {
        if on {
            params.push((k, "1".into()));
        }
    }
    params.push(("rm", if a.rm { "1" } else { "0" }.into()));
    params.push(("networkmode", a.network.clone()));
    if let Some(m) = &a.memory {
        let bytes = crate::commands::container::values::ram_in_bytes(m).map_err(|e| {
            anyhow::anyhow!("invalid argument {m:?} for \"-m, --memory\" flag: {e}")
        })?;
        params.push(("memory", bytes.to_string()));
    }
    for (k, v) in [
        ("cpuperiod", a.cpu_period),
        ("cpuquota", a.cpu_quota),
        ("cpushares", a.cpu_shares),
    ] {
        if let Some(v) = v {
            params.push((k, v.to_string()));
        }
    }
    if !a.quiet {
        println!(
            "Sending build context to Docker daemon  {}",
            human_size(context.tar.len())
        );
    }
    let resp = ctx
        .client
        .send(
            Method::POST,
            &with_query("/build", &params),
            full(context.tar),
            Some("application/x-tar"),
        )
        .await?;
    let mut stdout = std::io::stdout();
    let mut decoder = JsonStreamDecoder::default();
    let mut body = std::pin::pin!(body_stream(resp));
    let mut image_id = String::new();
    use futures_util::StreamExt;
    while let Some(chunk) = body.next().await {
        for msg in decoder.push(&chunk?)? {
            if let Some(id) = msg.pointer("/aux/ID").and_then(|v| v.as_str()) {
                image_id = id.to_string();
            }
            // A failed RUN carries its exit code, which docker exits with.
            let code = msg
                .pointer("/errorDetail/code")
                .and_then(|c| c.as_i64())
                .filter(|c| *c > 0)
                .unwrap_or(1) as i32;
            let shown = display(&msg).map_err(|e| crate::cli::StatusError {
                message: e.message,
                code,
            })?;
            if let Some(text) = shown {
                if a.quiet && image_id.is_empty() {
                    // With -q the daemon sends only the ID, as a stream line.
                    image_id = text.trim().to_string();
                }
                stdout.write_all(text.as_bytes())?;
                stdout.flush()?;
            }
        }
    }
    if let Some(path) = &a.iidfile {
        std::fs::write(path, &image_id)
            .map_err(|e| anyhow::anyhow!("failed to write image ID to file: {e}"))?;
    }
    Ok(())
}

/// Docker's `units.HumanSize` (decimal, 4 significant digits).
fn human_size(n: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let text = format!("{v:.4}");
    let text = if text.contains('.') {
        let digits = if v >= 1000.0 {
            0
        } else if v >= 100.0 {
            1
        } else if v >= 10.0 {
            2
        } else {
            3
        };
        format!("{v:.digits$}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        text
    };
    format!("{text}{}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_docker() {
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(6174), "6.174kB");
    }

    #[test]
    fn ignored_files_stay_out_but_the_dockerfile_is_always_sent() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".dockerignore"), "*\n!keep\n").unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join("keep"), "k").unwrap();
        std::fs::write(d.path().join("drop"), "d").unwrap();
        let tar = tar_dir(d.path(), Some("Dockerfile")).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let mut names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "keep"]);
    }

    #[test]
    fn stdin_without_a_tarball_is_a_dockerfile() {
        assert!(!is_tar(b"FROM busybox\n"));
        let mut b = tar::Builder::new(Vec::new());
        append_file(&mut b, "x", b"1").unwrap();
        assert!(is_tar(&b.into_inner().unwrap()));
    }

    #[test]
    fn build_args_without_value_come_from_the_environment() {
        let m = build_args(&["A=1".into(), "BERTH_SURELY_UNSET_VAR".into()]);
        assert_eq!(m["A"].as_deref(), Some("1"));
        assert_eq!(m["BERTH_SURELY_UNSET_VAR"], None);
    }
}
