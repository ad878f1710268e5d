//! `compose down`: stops and removes the project's containers (dependents
//! first), then its networks, and with `-v` its volumes, with `--rmi` its
//! images. External networks and volumes are never touched.

use berth_compose::Project;
use clap::Args;
use hyper::Method;

use super::{Which, containers, ops, progress};
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
    // Dependents stop first, so nothing loses a dependency while running.
    let mut order = project.start_order().unwrap_or_default();
    order.reverse();
    let rank = |s: &str| order.iter().position(|o| o == s).unwrap_or(0);
    doomed.sort_by_key(|c| rank(&c.service));
    let mut i = 0;
    while i < doomed.len() {
        let service = doomed[i].service.clone();
        let group: Vec<_> = doomed[i..]
            .iter()
            .take_while(|c| c.service == service)
            .cloned()
            .collect();
        i += group.len();
        let timeout = a.timeout.or(project
            .services
            .get(&service)
            .and_then(|s| s.stop_grace_period.map(|s| s as i64)));
        let results = super::each(&group, |c| async move {
            if c.is_running() {
                progress(&format!("Stopping {} ...", c.name));
                ops::stop_container(ctx, &c.id, timeout).await?;
            }
            ops::remove_container(ctx, &c.id, a.volumes).await
        })
        .await;
        for (c, r) in group.iter().zip(results) {
            r?;
            progress(&format!("Removing {} ... done", c.name));
        }
    }
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
