//! `compose up`: networks and volumes first, then every service converged to
//! its configuration, each as soon as the services it depends on are ready.
//!
//! Services run as a graph of shared futures built in dependency order: a
//! service's future awaits its dependencies' futures (and their
//! `depends_on` condition) and then converges, so independent services
//! converge at the same time and a chain runs in order. Converging compares
//! the `config-hash` label with the service's current hash (configuration
//! plus image ID): only replicas whose hash differs are recreated, missing
//! ones are created, surplus ones removed, stopped ones started.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use berth_compose::labels;
use berth_compose::model::{Condition, Project};
use clap::Args;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use hyper::Method;
use serde_json::{Value, json};

use super::{ProjectContainer, Which, build, check_services, containers, ops, progress, spec};
use crate::client::{path_escape, with_query};
use crate::commands::Ctx;

/// Options of `compose up`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub(crate) build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    pub(crate) no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate", conflicts_with = "no_recreate")]
    pub(crate) force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub(crate) no_recreate: bool,
    /// Don't start the services after creating them
    #[arg(long = "no-start")]
    pub(crate) no_start: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub(crate) no_deps: bool,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present.
    #[arg(long, value_name = "SERVICE=NUM", value_parser = parse_scale)]
    pub(crate) scale: Vec<(String, u32)>,
    /// Wait for services to be running|healthy. Implies detached mode.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub(crate) remove_orphans: bool,
    /// Use this timeout in seconds for container shutdown when attached or when containers are already running
    #[arg(short = 't', long, value_name = "int")]
    pub(crate) timeout: Option<i64>,
    pub(crate) services: Vec<String>,
}

fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (svc, n) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid --scale {s:?}: expected SERVICE=NUM"))?;
    let n = n
        .parse()
        .map_err(|_| format!("invalid --scale {s:?}: {n:?} is not a number"))?;
    Ok((svc.to_string(), n))
}

/// How converging treats existing containers.
#[derive(Clone, Copy)]
pub(crate) struct Converge {
    pub(crate) force_recreate: bool,
    pub(crate) no_recreate: bool,
    pub(crate) no_start: bool,
    pub(crate) timeout: Option<i64>,
}

/// `compose up`.
///
/// # Errors
/// Unknown services, daemon errors, failed builds or pulls, dependencies
/// that fail their condition.
pub(crate) async fn up(ctx: &Ctx, project: &Project, a: UpArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let targets = if a.no_deps {
        if a.services.is_empty() {
            project.services.keys().cloned().collect()
        } else {
            a.services.clone()
        }
    } else {
        project.with_dependencies(&a.services)
    };
    let scale: BTreeMap<String, u32> = a.scale.iter().cloned().collect();
    let opts = Converge {
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        no_start: a.no_start,
        timeout: a.timeout,
    };
    handle_orphans(ctx, project, a.remove_orphans).await?;
    ensure_networks(ctx, project, &targets).await?;
    ensure_volumes(ctx, project, &targets).await?;
    let images = ensure_images(ctx, project, &targets, a.build, a.no_build).await?;
    converge_all(ctx, project, &targets, &images, &scale, opts).await?;
    if a.wait {
        return wait_ready(ctx, project, &targets).await;
    }
    if a.detach || a.no_start {
        return Ok(());
    }
    attached(ctx, project, &targets, a.timeout).await
}

/// Containers of services the file no longer defines: removed with
/// `--remove-orphans`, else named in a warning.
async fn handle_orphans(ctx: &Ctx, project: &Project, remove: bool) -> anyhow::Result<()> {
    let all = containers(ctx, &project.name, &[], true, Which::Replicas).await?;
    let orphans: Vec<ProjectContainer> = all
        .into_iter()
        .filter(|c| {
            !project.services.contains_key(&c.service) && !project.disabled.contains_key(&c.service)
        })
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if remove {
        for c in &orphans {
            progress(&format!("Removing orphan container \"{}\"", c.name));
            ops::stop_container(ctx, &c.id, Some(10)).await?;
            ops::remove_container(ctx, &c.id, false).await?;
        }
    } else {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        progress(&format!(
            "WARNING: Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Creates the project networks the target services use (external ones
/// must exist).
///
/// # Errors
/// A missing external network; daemon errors.
pub(crate) async fn ensure_networks(
    ctx: &Ctx,
    project: &Project,
    targets: &[String],
) -> anyhow::Result<()> {
    let used: Vec<&String> = project
        .networks
        .keys()
        .filter(|k| {
            targets.iter().any(|t| {
                project
                    .services
                    .get(t)
                    .is_some_and(|s| s.networks.contains_key(*k))
            })
        })
        .collect();
    for key in used {
        let net = &project.networks[key];
        let found = ctx
            .client
            .get_json(&format!("/networks/{}", path_escape(&net.name)))
            .await;
        match found {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if net.external {
            anyhow::bail!(
                "network {} declared as external, but could not be found",
                net.name
            );
        }
        let mut label_map: BTreeMap<String, String> = net.labels.clone();
        label_map.insert(labels::PROJECT.into(), project.name.clone());
        label_map.insert(labels::NETWORK.into(), key.clone());
        label_map.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        let driver = net.driver.clone().unwrap_or_else(|| "bridge".into());
        progress(&match &net.driver {
            Some(d) => format!("Creating network {:?} with driver {d:?}", net.name),
            None => format!("Creating network {:?} with the default driver", net.name),
        });
        let body = json!({
            "Name": net.name,
            "CheckDuplicate": true,
            "Driver": driver,
            "Options": net.driver_opts,
            "Labels": label_map,
            "Internal": net.internal,
            "Attachable": net.attachable,
        });
        ctx.client
            .call_json(Method::POST, "/networks/create", Some(&body))
            .await
            .with_context(|| format!("cannot create network {}", net.name))?;
    }
    Ok(())
}

/// Creates the project volumes the target services mount.
async fn ensure_volumes(ctx: &Ctx, project: &Project, targets: &[String]) -> anyhow::Result<()> {
    for (key, vol) in &project.volumes {
        let used = targets.iter().any(|t| {
            project.services.get(t).is_some_and(|s| {
                s.volumes
                    .iter()
                    .any(|v| v.kind == "volume" && v.source.as_deref() == Some(key.as_str()))
            })
        });
        if !used {
            continue;
        }
        match ctx
            .client
            .get_json(&format!("/volumes/{}", path_escape(&vol.name)))
            .await
        {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if vol.external {
            anyhow::bail!("external volume \"{}\" not found", vol.name);
        }
        let mut label_map = vol.labels.clone();
        label_map.insert(labels::PROJECT.into(), project.name.clone());
        label_map.insert(labels::VOLUME.into(), key.clone());
        label_map.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        progress(&format!(
            "Creating volume {:?} with {} driver",
            vol.name,
            vol.driver.as_deref().unwrap_or("default")
        ));
        let body = json!({
            "Name": vol.name,
            "Driver": vol.driver.clone().unwrap_or_else(|| "local".into()),
            "DriverOpts": vol.driver_opts,
            "Labels": label_map,
        });
        ctx.client
            .call_json(Method::POST, "/volumes/create", Some(&body))
            .await
            .with_context(|| format!("cannot create volume {}", vol.name))?;
    }
    Ok(())
}

/// The image ID each target service runs, building or pulling what is
/// missing (builds one at a time, as they compete for the CPU).
///
/// # Errors
/// Failed builds and pulls.
pub(crate) async fn ensure_images(
    ctx: &Ctx,
    project: &Project,
    targets: &[String],
    force_build: bool,
    no_build: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    let mut to_pull = Vec::new();
    for name in targets {
        let svc = &project.services[name];
        let image = svc.image_name(&project.name, name);
        let always_pull = svc.pull_policy.as_deref() == Some("always");
        if svc.build.is_some() && force_build && !no_build {
            build::build_service(ctx, project, name, false, false).await?;
        } else if always_pull && svc.build.is_none() {
            to_pull.push((name.clone(), image.clone()));
            continue;
        }
        match image_id(ctx, &image).await? {
            Some(id) => {
                ids.insert(name.clone(), id);
            }
            None if svc.build.is_some() && !no_build => {
                build::build_service(ctx, project, name, false, false).await?;
            }
            None => to_pull.push((name.clone(), image.clone())),
        }
    }
    let pulls = super::each(&to_pull, |(name, image)| async move {
        progress(&format!("Pulling {name} ({image})..."));
        build::pull_image(ctx, image).await
    })
    .await;
    for r in pulls {
        r?;
    }
    for name in targets {
        if ids.contains_key(name) {
            continue;
        }
        let image = project.services[name].image_name(&project.name, name);
        let id = image_id(ctx, &image)
            .await?
            .ok_or_else(|| anyhow::anyhow!("image {image} for service {name} is missing"))?;
        ids.insert(name.clone(), id);
    }
    Ok(ids)
}

/// The ID of a local image, `None` when there is none by that name.
async fn image_id(ctx: &Ctx, image: &str) -> anyhow::Result<Option<String>> {
    match ctx
        .client
        .get_json(&format!("/images/{}/json", path_escape(image)))
        .await
    {
        Ok(v) => Ok(v["Id"].as_str().map(str::to_string)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

type ServiceFuture<'a> = Shared<LocalBoxFuture<'a, Result<(), String>>>;

/// Converges the target services in dependency order, independent ones at once.
///
/// # Errors
/// The first service that failed, and why.
pub(crate) async fn converge_all(
    ctx: &Ctx,
    project: &Project,
    targets: &[String],
    images: &BTreeMap<String, String>,
    scale: &BTreeMap<String, u32>,
    opts: Converge,
) -> anyhow::Result<()> {
    let order = project
        .start_order()
        .map_err(|cycle| anyhow::anyhow!("dependency cycle between {}", cycle.join(", ")))?;
    let mut futures: BTreeMap<String, ServiceFuture<'_>> = BTreeMap::new();
    for name in order.into_iter().filter(|n| targets.contains(n)) {
        let svc = &project.services[&name];
        let deps: Vec<(String, Condition, ServiceFuture<'_>)> = svc
            .depends_on
            .iter()
            .filter_map(|(d, dep)| {
                futures
                    .get(d)
                    .map(|f| (d.clone(), dep.condition, f.clone()))
            })
            .collect();
        let image = images.get(&name).cloned().unwrap_or_default();
        let replicas = scale.get(&name).copied().unwrap_or_else(|| svc.replicas());
        let service = name.clone();
        let fut = async move {
            for (dep, condition, f) in deps {
                f.await?;
                wait_condition(ctx, project, &dep, condition)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
            }
            converge(ctx, project, &service, &image, replicas, opts)
                .await
                .map_err(|e| format!("{e:#}"))
        }
        .boxed_local()
        .shared();
        futures.insert(name, fut);
    }
    let results = futures_util::future::join_all(futures.values().cloned()).await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if let Some(first) = errors.first() {
        anyhow::bail!("{first}");
    }
    Ok(())
}

/// Waits until `service` meets `condition` (all its replicas).
async fn wait_condition(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    condition: Condition,
) -> anyhow::Result<()> {
    if condition == Condition::ServiceStarted {
        return Ok(());
    }
    let list = containers(
        ctx,
        &project.name,
        &[service.to_string()],
        true,
        Which::Replicas,
    )
    .await?;
    for c in list {
        loop {
            let v = ctx
                .client
                .get_json(&format!("/containers/{}/json", path_escape(&c.id)))
                .await?;
            let state = &v["State"];
            match condition {
                Condition::ServiceStarted => break,
                Condition::ServiceHealthy => match state["Health"]["Status"].as_str() {
                    Some("healthy") => break,
                    Some("unhealthy") => anyhow::bail!(
                        "dependency failed to start: container {} is unhealthy",
                        c.name
                    ),
                    Some(_) => {}
                    None => anyhow::bail!(
                        "dependency failed to start: container {} has no healthcheck configured",
                        c.name
                    ),
                },
                Condition::ServiceCompletedSuccessfully => {
                    if state["Status"].as_str() == Some("exited") {
                        let code = state["ExitCode"].as_i64().unwrap_or(-1);
                        if code != 0 {
                            anyhow::bail!(
                                "service {service:?} didn't complete successfully: exit {code}"
                            );
                        }
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Brings one service to `replicas` containers of its current configuration.
///
/// # Errors
/// Daemon errors creating, starting or removing its containers.
pub(crate) async fn converge(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    image_id: &str,
    replicas: u32,
    opts: Converge,
) -> anyhow::Result<()> {
    let svc = &project.services[service];
    // docker-compose 1.29's hash where it can be reproduced, so that neither
    // tool recreates the other's containers; berth's own otherwise.
    let hash = berth_compose::compat::v1_config_hash(project, service, Some(image_id))
        .unwrap_or_else(|| svc.config_hash(Some(image_id)));
    let replicas = if svc.container_name.is_some() && replicas > 1 {
        progress(&format!(
            "WARNING: The \"{service}\" service is using the custom container name \"{}\". Docker requires each container to have a unique name. Remove the custom name to scale the service.",
            svc.container_name.as_deref().unwrap_or_default()
        ));
        1
    } else {
        replicas
    };
    let existing = containers(
        ctx,
        &project.name,
        &[service.to_string()],
        true,
        Which::Replicas,
    )
    .await?;
    let timeout = opts.timeout.or(svc.stop_grace_period.map(|s| s as i64));
    // Sort the existing replicas into what happens to them, then do each
    // kind of work for all replicas at once.
    let mut surplus: Vec<&ProjectContainer> = Vec::new();
    let mut stale: Vec<&ProjectContainer> = Vec::new();
    let mut to_start: Vec<(String, String, &str)> = Vec::new();
    let mut present = Vec::new();
    for c in existing.iter().rev() {
        if c.number > replicas || c.number == 0 || present.contains(&c.number) {
            surplus.push(c);
            continue;
        }
        present.push(c.number);
        if opts.force_recreate || (c.config_hash != hash && !opts.no_recreate) {
            stale.push(c);
        } else if !c.is_running() {
            to_start.push((c.id.clone(), c.name.clone(), "Started"));
        } else {
            progress(&format!("{} is up-to-date", c.name));
        }
    }
    let removed = super::each(&surplus, |c| async move {
        progress(&format!("Stopping and removing {} ...", c.name));
        ops::stop_container(ctx, &c.id, timeout).await?;
        ops::remove_container(ctx, &c.id, false).await
    })
    .await;
    removed.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let recreated = super::each(&stale, |c| {
        let hash = hash.as_str();
        async move {
            progress(&format!("Recreating {} ...", c.name));
            ops::stop_container(ctx, &c.id, timeout).await?;
            ops::remove_container(ctx, &c.id, false).await?;
            create_replica(ctx, project, service, c.number, hash).await
        }
    })
    .await;
    for (c, id) in stale.iter().zip(recreated) {
        to_start.push((id?, c.name.clone(), "Recreated"));
    }
    let missing: Vec<u32> = (1..=replicas).filter(|n| !present.contains(n)).collect();
    let created = super::each(&missing, |n| {
        let hash = hash.as_str();
        async move {
            progress(&format!(
                "Creating {} ...",
                replica_name(project, service, *n)
            ));
            create_replica(ctx, project, service, *n, hash).await
        }
    })
    .await;
    for (n, id) in missing.iter().zip(created) {
        to_start.push((id?, replica_name(project, service, *n), "Created"));
    }
    if opts.no_start {
        return Ok(());
    }
    let started = super::each(&to_start, |(id, _, _)| ops::start_container(ctx, id)).await;
    for ((_, name, what), r) in to_start.iter().zip(started) {
        r.with_context(|| format!("cannot start {name}"))?;
        progress(&format!("Container {name}  {what}"));
    }
    Ok(())
}

/// The container name of replica `n`: `container_name:` or `<project>_<service>_<n>`.
pub(crate) fn replica_name(project: &Project, service: &str, n: u32) -> String {
    match &project.services[service].container_name {
        Some(name) => name.clone(),
        None => labels::container_name(&project.name, service, n),
    }
}

/// Creates replica `n` and connects it to the service's other networks.
async fn create_replica(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    n: u32,
    hash: &str,
) -> anyhow::Result<String> {
    let svc = &project.services[service];
    let name = replica_name(project, service, n);
    let replica = spec::Replica {
        service,
        number: n,
        config_hash: hash,
        slug: None,
    };
    let image = svc.image_name(&project.name, service);
    let body = spec::create_body(project, &replica, &image);
    create_and_connect(ctx, project, service, &name, &body, false).await
}

/// `POST /containers/create?name=` then joins every network past the first.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn create_and_connect(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    name: &str,
    body: &Value,
    oneoff: bool,
) -> anyhow::Result<String> {
    let svc = &project.services[service];
    let created = ctx
        .client
        .call_json(
            Method::POST,
            &with_query("/containers/create", &[("name", name.to_string())]),
            Some(body),
        )
        .await
        .with_context(|| format!("cannot create container for service {service}"))?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    inject_inline_grants(ctx, project, service, &id).await?;
    if svc.network_mode.is_none() {
        for key in svc.networks.keys().skip(1) {
            let net = project
                .networks
                .get(key)
                .map_or(key.as_str(), |n| n.name.as_str());
            let body = json!({
                "Container": id,
                "EndpointConfig": spec::endpoint_config(svc, service, key, oneoff),
            });
            ctx.client
                .call_json(
                    Method::POST,
                    &format!("/networks/{}/connect", path_escape(net)),
                    Some(&body),
                )
                .await
                .with_context(|| format!("cannot connect {name} to network {net}"))?;
        }
    }
    Ok(id)
}

/// Secrets and configs that are not files (inline `content`, `environment`) are
/// written into the created container before it starts, as Compose does, with the
/// grant's owner and mode (0444 by default).
async fn inject_inline_grants(
    ctx: &Ctx,
    project: &Project,
    service: &str,
    id: &str,
) -> anyhow::Result<()> {
    let svc = &project.services[service];
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let mut any = false;
    for (grants, sources, secret) in [
        (&svc.secrets, &project.secrets, true),
        (&svc.configs, &project.configs, false),
    ] {
        for g in grants {
            let Some(content) = sources.get(&g.source).and_then(|s| s.inline()) else {
                continue;
            };
            let path = g.path(secret);
            let rel = path.trim_start_matches('/');
            // Parents first, so the daemon has somewhere to put the file.
            let mut parent = std::path::Path::new(rel).parent();
            let mut chain = Vec::new();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                chain.push(p.to_path_buf());
                parent = p.parent();
            }
            for dir in chain.into_iter().rev() {
                if dirs.insert(dir.clone()) {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    tar.append_data(&mut h, &dir, std::io::empty())?;
                }
            }
            let id_of = |v: &Option<String>| v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(g.mode.unwrap_or(0o444));
            h.set_uid(id_of(&g.uid));
            h.set_gid(id_of(&g.gid));
            h.set_size(content.len() as u64);
            tar.append_data(&mut h, rel, content.as_bytes())?;
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    let data = tar.into_inner()?;
    ctx.client
        .send(
            Method::PUT,
            &with_query(
                &format!("/containers/{}/archive", path_escape(id)),
                &[
                    ("path", "/".to_string()),
                    ("copyUIDGID", "true".to_string()),
                ],
            ),
            crate::client::full(data),
            Some("application/x-tar"),
        )
        .await
        .with_context(|| format!("cannot write the secrets and configs of service {service}"))?;
    Ok(())
}

/// `--wait`: every replica running, and healthy when it has a healthcheck.
async fn wait_ready(ctx: &Ctx, project: &Project, targets: &[String]) -> anyhow::Result<()> {
    let list = containers(ctx, &project.name, targets, true, Which::Replicas).await?;
    for c in list {
        loop {
            let v = ctx
                .client
                .get_json(&format!("/containers/{}/json", path_escape(&c.id)))
                .await?;
            let state = &v["State"];
            match (state["Status"].as_str(), state["Health"]["Status"].as_str()) {
                (Some("running"), None | Some("healthy")) => break,
                (_, Some("unhealthy")) => anyhow::bail!("container {} is unhealthy", c.name),
                // A one-shot job (a migration others wait for) is done, not down.
                (Some("exited"), _) if state["ExitCode"].as_i64() == Some(0) => break,
                (Some("exited" | "dead"), _) => {
                    anyhow::bail!("container {} exited ({})", c.name, state["ExitCode"])
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        progress(&format!("Container {}  Ready", c.name));
    }
    Ok(())
}

/// Without `-d`: follow the logs until every container ends; Ctrl-C stops them.
async fn attached(
    ctx: &Ctx,
    project: &Project,
    targets: &[String],
    timeout: Option<i64>,
) -> anyhow::Result<()> {
    let follow = super::logs::follow_services(ctx, project, targets);
    tokio::select! {
        r = follow => r,
        _ = tokio::signal::ctrl_c() => {
            progress("Gracefully stopping... (press Ctrl+C again to force)");
            let list = containers(ctx, &project.name, targets, false, Which::Replicas).await?;
            let stops = super::each(&list, |c| ops::stop_container(ctx, &c.id, timeout)).await;
            for r in stops {
                r?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_flags_parse_as_service_and_count() {
        assert_eq!(parse_scale("web=3").unwrap(), ("web".to_string(), 3));
        assert!(parse_scale("web").is_err());
        assert!(parse_scale("web=x").is_err());
    }
}
