//! `compose down`: stops and removes the project's containers (dependents
//! first), then its networks, and with `-v` its volumes, with `--rmi` its
//! images. External networks and volumes are never touched.
//!
//! Services go down as a graph, the mirror of `up`'s: a service's containers
//! stop once every service depending on it is gone, so services nothing
//! depends on all stop at once. Stopping one service after another instead
//! made `down` of ten independent services ten stop round trips long.

use std::collections::BTreeMap;

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};

use berth_compose::Project;
use clap::Args;
use hyper::Method;

use super::{ProjectContainer, Which, containers, ops, progress};
use crate::client::{path_escape, with_query};
use crate::commands::Ctx;

/// Options of `compose down`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICES]")]
pub(crate) struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
    #[arg(long, value_name = "string", value_parser = ["local", "all"])]
    rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long, value_name = "int")]
    timeout: Option<i64>,
}

/// `compose down`.
///
/// # Errors
/// Daemon errors other than "not found".
pub(crate) async fn down(ctx: &Ctx, project: &Project, a: DownArgs) -> anyhow::Result<()> {
    let all = containers(ctx, &project.name, &[], true, Which::All).await?;
    let known = |s: &str| project.services.contains_key(s) || project.disabled.contains_key(s);
    let (mine, orphans): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| known(&c.service));
    let mut doomed = mine;
    if a.remove_orphans {
        doomed.extend(orphans);
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        progress(&format!(
            "WARNING: Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(", ")
        ));
    }
    stop_and_remove(ctx, project, doomed, a.timeout, a.volumes).await?;
    for net in project.networks.values().filter(|n| !n.external) {
        match ctx
            .client
            .call_json(
                Method::DELETE,
                &format!("/networks/{}", path_escape(&net.name)),
                None,
            )
            .await
        {
            Ok(_) => progress(&format!("Removing network {}", net.name)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if a.volumes {
        for vol in project.volumes.values().filter(|v| !v.external) {
            match ctx
                .client
                .call_json(
                    Method::DELETE,
                    &format!("/volumes/{}", path_escape(&vol.name)),
                    None,
                )
                .await
            {
                Ok(_) => progress(&format!("Removing volume {}", vol.name)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let Some(rmi) = &a.rmi {
        for (name, svc) in &project.services {
            // "local": only images compose named itself (built, no `image:`).
            if rmi == "local" && svc.image.is_some() {
                continue;
            }
            let image = svc.image_name(&project.name, name);
            match ctx
                .client
                .call_json(
                    Method::DELETE,
                    &with_query(&format!("/images/{}", path_escape(&image)), &[]),
                    None,
                )
                .await
            {
                Ok(_) => progress(&format!("Removing image {image}")),
                Err(e) if e.is_not_found() => {}
                Err(e) => progress(&format!("Failed to remove image for service {name}: {e}")),
            }
        }
    }
    Ok(())
}

type DownFuture<'a> = Shared<LocalBoxFuture<'a, Result<(), String>>>;

/// Stops and removes `doomed`, each service once its dependents are gone.
///
/// # Errors
/// The first daemon error, naming its container.
async fn stop_and_remove(
    ctx: &Ctx,
    project: &Project,
    doomed: Vec<ProjectContainer>,
    timeout: Option<i64>,
    volumes: bool,
) -> anyhow::Result<()> {
    let mut by_service: BTreeMap<String, Vec<ProjectContainer>> = BTreeMap::new();
    for c in doomed {
        by_service.entry(c.service.clone()).or_default().push(c);
    }
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, svc) in &project.services {
        for dep in svc.depends_on.keys() {
            dependents.entry(dep.as_str()).or_default().push(name);
        }
    }
    // Dependents first: services outside the start order (orphans, or all of
    // them if the order has a cycle) wait for nothing.
    let order = project.start_order().unwrap_or_default();
    let mut names: Vec<String> = by_service
        .keys()
        .filter(|s| !order.contains(s))
        .cloned()
        .collect();
    names.extend(
        order
            .into_iter()
            .rev()
            .filter(|s| by_service.contains_key(s)),
    );
    let mut futures: BTreeMap<String, DownFuture<'_>> = BTreeMap::new();
    for name in names {
        let waits: Vec<DownFuture<'_>> = dependents
            .get(name.as_str())
            .into_iter()
            .flatten()
            .filter_map(|d| futures.get(*d).cloned())
            .collect();
        let group = by_service.remove(&name).unwrap_or_default();
        let grace = timeout.or(project
            .services
            .get(&name)
            .and_then(|s| s.stop_grace_period.map(|s| s as i64)));
        let fut = async move {
            for w in waits {
                w.await?;
            }
            let results = super::each(&group, |c| async move {
                if c.is_running() {
                    progress(&format!("Stopping {} ...", c.name));
                    ops::stop_container(ctx, &c.id, grace).await?;
                }
                ops::remove_container(ctx, &c.id, volumes).await
            })
            .await;
            for (c, r) in group.iter().zip(results) {
                r.map_err(|e| format!("cannot remove {}: {e:#}", c.name))?;
                progress(&format!("Removing {} ... done", c.name));
            }
            Ok(())
        }
        .boxed_local()
        .shared();
        futures.insert(name, fut);
    }
    let results = futures_util::future::join_all(futures.into_values()).await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        anyhow::bail!("{e}");
    }
    Ok(())
}
