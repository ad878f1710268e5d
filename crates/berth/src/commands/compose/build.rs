//! `compose build`, `pull` and `push`, and the image steps of `up`.
//!
//! Builds use the classic `POST /build` endpoint (what the docker CLI uses
//! without buildx): the context directory goes as a tarball, minus what
//! `.dockerignore` excludes, with the Dockerfile name, tag, build args,
//! target and labels as query parameters. A service with `build:` and no
//! `image:` is tagged `<project>_<service>`, as docker-compose 1.29 does.

use std::path::Path;

use anyhow::Context as _;
use berth_compose::Project;
use clap::Args;
use hyper::Method;

use super::{check_services, progress};
use crate::client::{body_stream, empty, full, path_escape, with_query};
use crate::commands::Ctx;
use crate::commands::registry::registry_auth_header;
use crate::jsonmessage::display_stream;
use crate::reference::parse_normalized_named;

/// Options of `compose build`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    pub(crate) services: Vec<String>,
}

/// `compose build`: every selected service that has a `build:` section.
///
/// # Errors
/// Unknown services and failed builds.
pub(crate) async fn build(ctx: &Ctx, project: &Project, a: BuildArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    for (name, svc) in &project.services {
        if svc.build.is_none() || !(a.services.is_empty() || a.services.contains(name)) {
            continue;
        }
        build_service(ctx, project, name, a.no_cache, a.pull).await?;
    }
    Ok(())
}

/// Builds one service's image and tags it with the service's image name.
///
/// # Errors
/// An unreadable context, daemon errors, a failed build step.
pub(crate) async fn build_service(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    no_cache: bool,
    pull: bool,
) -> anyhow::Result<()> {
    let svc = &project.services[service];
    let Some(b) = &svc.build else {
        return Ok(());
    };
    let image = svc.image_name(&project.name, service);
    progress(&format!("Building {service}"));
    let context = Path::new(&b.context);
    let tarball = context_tar(context)
        .with_context(|| format!("cannot read the build context {}", context.display()))?;
    let mut params = vec![("t", image.clone()), ("rm", "1".to_string())];
    if let Some(d) = &b.dockerfile {
        params.push(("dockerfile", d.clone()));
    }
    if let Some(t) = &b.target {
        params.push(("target", t.clone()));
    }
    if no_cache || b.no_cache {
        params.push(("nocache", "1".to_string()));
    }
    if pull || b.pull {
        params.push(("pull", "1".to_string()));
    }
    if let Some(n) = &b.network {
        params.push(("networkmode", n.clone()));
    }
    if !b.args.is_empty() {
        let args: serde_json::Map<String, serde_json::Value> = b
            .args
            .iter()
            .map(|(k, v)| {
                let v = v.clone().or_else(|| std::env::var(k).ok());
                (
                    k.clone(),
                    v.map_or(serde_json::Value::Null, serde_json::Value::String),
                )
            })
            .collect();
        params.push(("buildargs", serde_json::Value::Object(args).to_string()));
    }
    if !b.labels.is_empty() {
        params.push(("labels", serde_json::to_string(&b.labels)?));
    }
    let resp = ctx
        .client
        .send(
            Method::POST,
            &with_query("/build", &params),
            full(tarball),
            Some("application/x-tar"),
        )
        .await
        .with_context(|| format!("cannot build service {service}"))?;
    display_stream(body_stream(resp), &mut std::io::stderr())
        .await
        .with_context(|| format!("building service {service} failed"))?;
    Ok(())
}

/// The `.dockerignore` patterns of a context (plain names, `dir/`, `*.ext`
/// and `!` exceptions are not distinguished: a simple prefix/suffix match).
fn ignore_patterns(context: &Path) -> Vec<String> {
    std::fs::read_to_string(context.join(".dockerignore"))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
                .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn ignored(rel: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        if let Some(ext) = p.strip_prefix("*") {
            rel.ends_with(ext)
        } else {
            rel == p || rel.starts_with(&format!("{p}/"))
        }
    })
}

/// The context directory as an uncompressed tarball.
fn context_tar(context: &Path) -> std::io::Result<Vec<u8>> {
    let patterns = ignore_patterns(context);
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack = vec![context.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(context)
                .expect("walked from the context")
                .to_string_lossy()
                .into_owned();
            if ignored(&rel, &patterns) {
                continue;
            }
            let ft = e.file_type()?;
            builder.append_path_with_name(&path, &rel)?;
            if ft.is_dir() {
                stack.push(path);
            }
        }
    }
    builder.into_inner()
}

/// Pulls `image` (`POST /images/create`), progress on stderr.
///
/// # Errors
/// A bad reference, daemon errors, errors in the progress stream.
pub(crate) async fn pull_image(ctx: &Ctx, image: &str) -> anyhow::Result<()> {
    let r = parse_normalized_named(image)?;
    let tag = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let auth = registry_auth_header(r.domain())?;
    let resp = ctx
        .client
        .send_with_headers(
            Method::POST,
            &with_query(
                "/images/create",
                &[("fromImage", r.familiar_name()), ("tag", tag)],
            ),
            empty(),
            None,
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    display_stream(body_stream(resp), &mut std::io::sink()).await
}

/// Options of `compose pull`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct PullArgs {
    /// Pull what it can and ignores images with pull failures
    #[arg(long = "ignore-pull-failures")]
    ignore_pull_failures: bool,
    /// Pull without printing progress information
    #[arg(short = 'q', long)]
    quiet: bool,
    pub(crate) services: Vec<String>,
}

/// `compose pull`: the images of the selected services that name one,
/// all at once.
///
/// # Errors
/// Unknown services; failed pulls unless `--ignore-pull-failures`.
pub(crate) async fn pull(ctx: &Ctx, project: &Project, a: PullArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let images: Vec<(String, String)> = project
        .services
        .iter()
        .filter(|(n, _)| a.services.is_empty() || a.services.contains(n))
        .filter_map(|(n, s)| s.image.clone().map(|i| (n.clone(), i)))
        .collect();
    let results = super::each(&images, |(name, image)| async move {
        if !a.quiet {
            progress(&format!("Pulling {name} ... "));
        }
        pull_image(ctx, image).await
    })
    .await;
    let mut failed = Vec::new();
    for ((name, _), r) in images.iter().zip(results) {
        match r {
            Ok(()) if !a.quiet => progress(&format!("Pulling {name} ... done")),
            Ok(()) => {}
            Err(e) => {
                progress(&format!("Pulling {name} ... error: {e:#}"));
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() && !a.ignore_pull_failures {
        anyhow::bail!("failed to pull images of services: {}", failed.join(", "));
    }
    Ok(())
}

/// Options of `compose push`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long = "ignore-push-failures")]
    ignore_push_failures: bool,
    pub(crate) services: Vec<String>,
}

/// `compose push`: the images of the selected services that have both
/// `build:` and `image:`, as Compose pushes them.
///
/// # Errors
/// Unknown services; failed pushes unless `--ignore-push-failures`.
pub(crate) async fn push(ctx: &Ctx, project: &Project, a: PushArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    for (name, svc) in &project.services {
        if !(a.services.is_empty() || a.services.contains(name)) {
            continue;
        }
        let (Some(image), Some(_)) = (&svc.image, &svc.build) else {
            continue;
        };
        progress(&format!("Pushing {name} ({image})..."));
        let r = parse_normalized_named(image)?;
        let auth = registry_auth_header(r.domain())?;
        let path = with_query(
            &format!("/images/{}/push", path_escape(&r.familiar_name())),
            &[("tag", r.tag().unwrap_or("latest").to_string())],
        );
        let result = async {
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
            display_stream(body_stream(resp), &mut std::io::sink()).await
        }
        .await;
        if let Err(e) = result {
            if a.ignore_push_failures {
                progress(&format!("Pushing {name} ... error: {e:#}"));
            } else {
                return Err(e.context(format!("cannot push the image of service {name}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_tarball_leaves_out_ignored_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "secret\n*.log\n").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::fs::write(dir.path().join("build.log"), "x").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.sh"), "echo").unwrap();
        let tarball = context_tar(dir.path()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tarball[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "src", "src/main.sh"]);
    }
}
