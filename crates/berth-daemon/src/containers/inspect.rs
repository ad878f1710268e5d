//! `GET /containers/{id}/json` and `GET /containers/json`: Docker's shapes, status
//! strings and `ps` filters.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::rootfs::RootfsPaths;
use super::{ContainerService, Entry};
use crate::DaemonError;
use crate::filters::Filters;

/// go-units `HumanDuration`, as `docker ps` shows ages.
pub(super) fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = d.num_minutes();
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (d.num_seconds() as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.timestamp() > 0)
}

/// Docker's `State.String()`.
fn status_text(r: &super::ContainerRecord) -> String {
    let now = Utc::now();
    let s = &r.state;
    if s.running {
        let up = parse_time(&s.started_at)
            .map(|t| human_duration(now - t))
            .unwrap_or_default();
        return match &s.health {
            _ if s.paused => format!("Up {up} (Paused)"),
            Some(h) => format!("Up {up} ({})", super::health::status_suffix(h)),
            None => format!("Up {up}"),
        };
    }
    if s.restarting {
        let ago = parse_time(&s.finished_at)
            .map(|t| human_duration(now - t))
            .unwrap_or_default();
        return format!("Restarting ({}) {ago} ago", s.exit_code);
    }
    if s.dead {
        return "Dead".into();
    }
    match parse_time(&s.finished_at) {
        Some(t) => format!("Exited ({}) {} ago", s.exit_code, human_duration(now - t)),
        None if s.status == "created" => "Created".into(),
        None => format!("Exited ({})", s.exit_code),
    }
}

fn command_text(r: &super::ContainerRecord) -> String {
    std::iter::once(r.path.as_str())
        .chain(r.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mounts_json(r: &super::ContainerRecord) -> Value {
    let mut mounts = json!(r.mounts);
    for m in mounts.as_array_mut().into_iter().flatten() {
        if let Some(m) = m.as_object_mut() {
            m.remove("Subpath");
        }
    }
    mounts
}

impl ContainerService {
    /// `GET /containers/{id}/json`.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn inspect(&self, name: &str, size: bool) -> Result<Value, DaemonError> {
        let entry = self.get(name)?;
        Ok(self.inspect_entry(&entry, size))
    }

    fn inspect_entry(&self, entry: &Entry, size: bool) -> Value {
        let r = entry.record();
        let dir = self.dir(&r.id);
        let paths = RootfsPaths::under(&dir);
        let mut lower = String::new();
        if let Ok(image) = r.image.parse()
            && let Ok(dirs) = self.images().layer_dirs(&image)
        {
            lower = dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
        }
        // Running execs, or null as Docker shows none.
        let exec_ids = match self.exec_ids(&r.id) {
            ids if ids.is_empty() => Value::Null,
            ids => json!(ids),
        };
        let mut v = json!({
            "Id": r.id,
            "Created": crate::images::go_time(r.created),
            "Path": r.path,
            "Args": r.args,
            "State": state_json(&r.state),
            "Image": r.image,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join(format!("{}-json.log", r.id)),
            "Name": r.name,
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": exec_ids,
            "HostConfig": host_config_json(&r),
            "GraphDriver": {
                "Data": {
                    "LowerDir": lower,
                    "MergedDir": paths.merged,
                    "UpperDir": paths.upper,
                    "WorkDir": paths.work,
                },
                "Name": "overlay2"
            },
            "Mounts": mounts_json(&r),
            "Config": r.config,
            "NetworkSettings": self.networks.settings_json(&r),
        });
        if size {
            v["SizeRw"] = json!(crate::volumes::disk_usage(&paths.upper));
            v["SizeRootFs"] =
                json!(crate::volumes::disk_usage(&paths.upper) + self.image_size(&r.image));
        }
        v
    }

    fn image_size(&self, image: &str) -> u64 {
        self.images().get(image).map(|i| i.size).unwrap_or(0)
    }

    /// `GET /containers/json`.
    ///
    /// # Errors
    /// `InvalidArgument` for bad filters; `NotFound` for a `before`/`since` container.
    pub fn list(
        &self,
        all: bool,
        limit: Option<usize>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>, DaemonError> {
        filters.validate(&[
            "ancestor",
            "before",
            "expose",
            "exited",
            "health",
            "id",
            "isolation",
            "is-task",
            "label",
            "name",
            "network",
            "publish",
            "since",
            "status",
            "volume",
        ])?;
        for s in filters.get("status") {
            if !matches!(
                s,
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            ) {
                return Err(DaemonError::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        for h in filters.get("health") {
            super::health::validate_filter(h)?;
        }
        let before = filters
            .get("before")
            .next()
            .map(|n| self.get(n).map(|e| e.record().created))
            .transpose()?;
        let since = filters
            .get("since")
            .next()
            .map(|n| self.get(n).map(|e| e.record().created))
            .transpose()?;
        let mut exited = Vec::new();
        for e in filters.get("exited") {
            exited.push(
                e.parse::<i32>()
                    .map_err(|_| DaemonError::invalid(format!("invalid filter 'exited={e}'")))?,
            );
        }
        let publish = port_filter(filters, "publish")?;
        let expose = port_filter(filters, "expose")?;
        // berth runs no swarm tasks: `is-task=true` matches nothing, `false` everything.
        let tasks_only = filters.get_bool("is-task")? == Some(true);
        let mut ancestors = Vec::new();
        for a in filters.get("ancestor") {
            if let Ok(img) = self.images().get(a) {
                ancestors.push(img.record.id.to_string());
            }
        }
        let mut records: Vec<_> = self.all().into_iter().map(|e| e.record()).collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.created));
        let link_names = Self::link_names(&records);
        let mut out = Vec::new();
        for r in records {
            let implicit_all =
                all || filters.contains("status") || filters.contains("exited") || limit.is_some();
            // A container waiting to restart counts as running, as Docker's does.
            if !implicit_all && !r.state.running && !r.state.restarting {
                continue;
            }
            if before.is_some_and(|b| r.created >= b) || since.is_some_and(|s| r.created <= s) {
                continue;
            }
            if filters.contains("status") && !filters.get("status").any(|s| s == r.state.status) {
                continue;
            }
            if !exited.is_empty()
                && (r.state.running
                    || r.state.status == "created"
                    || !exited.contains(&r.state.exit_code))
            {
                continue;
            }
            if filters.contains("id") && !filters.get("id").any(|p| r.id.starts_with(p)) {
                continue;
            }
            if filters.contains("name") && !filters.get("name").any(|n| name_matches(n, &r.name)) {
                continue;
            }
            if filters.contains("label") && !filters.match_labels("label", r.config.labels.as_ref())
            {
                continue;
            }
            if filters.contains("ancestor") && !ancestors.contains(&r.image) {
                continue;
            }
            if filters.contains("health")
                && !filters
                    .get("health")
                    .any(|h| h == super::health::filter_value(r.state.health.as_ref()))
            {
                continue;
            }
            if filters.contains("volume")
                && !filters.get("volume").any(|v| {
                    r.mounts
                        .iter()
                        .any(|m| m.name == v || m.destination == v || m.source == v)
                })
            {
                continue;
            }
            if tasks_only {
                continue;
            }
            if !publish.is_empty() || !expose.is_empty() {
                // Docker matches against the rows `ps` shows in PORTS: published ports by
                // their host port, exposed ones by the container's.
                let ports = self.networks.ports_list_json(&r);
                let hit = ports.as_array().into_iter().flatten().any(|p| {
                    let proto = p["Type"].as_str().unwrap_or("tcp").to_string();
                    let port = |k: &str| p[k].as_u64().and_then(|n| u16::try_from(n).ok());
                    port("PublicPort").is_some_and(|n| publish.contains(&(n, proto.clone())))
                        || port("PrivatePort").is_some_and(|n| expose.contains(&(n, proto.clone())))
                });
                if !hit {
                    continue;
                }
            }
            if filters.contains("network") {
                // By name or ID of any network the container is on, as Docker matches.
                let nets = self.networks.networks_json(&r);
                let on = |n: &str| {
                    n == r.host_config.network_mode
                        || nets.as_object().is_some_and(|m| {
                            m.iter().any(|(name, v)| {
                                name == n
                                    || v["NetworkID"]
                                        .as_str()
                                        .is_some_and(|id| !id.is_empty() && id.starts_with(n))
                            })
                        })
                };
                if !filters.get("network").any(on) {
                    continue;
                }
            }
            let created = r.created.timestamp();
            let mut v = json!({
                "Id": r.id,
                "Names": std::iter::once(r.name.clone())
                    .chain(link_names.iter().filter(|(target, _)| {
                        target == r.name.trim_start_matches('/')
                            || (target.len() >= 12 && r.id.starts_with(target.as_str()))
                    }).map(|(_, n)| n.clone()))
                    .collect::<Vec<_>>(),
                "Image": if r.config.image.is_empty() { r.image.clone() } else { r.config.image.clone() },
                "ImageID": r.image,
                "Command": command_text(&r),
                "Created": created,
                "Ports": self.networks.ports_list_json(&r),
                "Labels": r.config.labels.clone().unwrap_or_default(),
                "State": r.state.status,
                "Status": status_text(&r),
                "HostConfig": {"NetworkMode": r.host_config.network_mode},
                "NetworkSettings": {"Networks": self.networks.networks_json(&r)},
                "Mounts": mounts_json(&r),
            });
            if size {
                let rw = crate::volumes::disk_usage(&RootfsPaths::under(&self.dir(&r.id)).upper);
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(rw + self.image_size(&r.image));
            }
            out.push(v);
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }
}

/// Rewrites an inspect document for a client below API 1.45: Docker lists the short ID
/// and the hostname among the aliases on each user-defined network for those versions.
/// docker-compose 1.29 relies on it: without the short ID it disconnects and reconnects
/// every container before it starts it.
pub fn add_legacy_aliases(inspect: &mut Value) {
    let id = inspect["Id"].as_str().unwrap_or_default();
    let short_id = id.get(..12).unwrap_or(id).to_owned();
    let hostname = inspect["Config"]["Hostname"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(networks) = inspect["NetworkSettings"]["Networks"].as_object_mut() else {
        return;
    };
    for (name, ep) in networks.iter_mut() {
        if matches!(name.as_str(), "bridge" | "host" | "none" | "default")
            || name.starts_with("container:")
        {
            continue;
        }
        let mut aliases: Vec<Value> = ep["Aliases"].as_array().cloned().unwrap_or_default();
        for extra in [short_id.as_str(), hostname.as_str()] {
            if !extra.is_empty() && !aliases.iter().any(|a| a == extra) {
                aliases.push(json!(extra));
            }
        }
        ep["Aliases"] = json!(aliases);
    }
}

/// Docker's name filter is a regular expression matched anywhere in the name; plain
/// names (the common case) work as substrings, and `^`/`$` anchors are honoured.
fn name_matches(pattern: &str, name: &str) -> bool {
    let bare = name.trim_start_matches('/');
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(p), Some(_)) => {
            let p = &p[..p.len() - 1];
            bare == p.trim_start_matches('/') || name == p
        }
        (Some(p), None) => bare.starts_with(p.trim_start_matches('/')) || name.starts_with(p),
        (None, Some(p)) => bare.ends_with(p),
        (None, None) => name.contains(pattern),
    }
}

/// `State` as inspect shows it. Docker reports a container waiting to restart as
/// `Running` (and `Restarting`); clients such as docker-compose stop it only then.
/// berth's record keeps `running` for "has a live process".
fn state_json(s: &super::model::State) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if s.restarting {
        v["Running"] = json!(true);
    }
    v
}

/// `HostConfig` as inspect shows it: links in Docker's `/child:/parent/alias` form.
fn host_config_json(r: &super::ContainerRecord) -> Value {
    let mut v = serde_json::to_value(&r.host_config).unwrap_or(Value::Null);
    v["Links"] = json!(super::links::links_for_inspect(r));
    v
}

/// The ports of a `publish`/`expose` filter: `80`, `80/udp` or a range `8000-8010/tcp`.
///
/// # Errors
/// A value with `:` or one that is not a port or range, in Docker's words.
fn port_filter(
    filters: &crate::filters::Filters,
    key: &str,
) -> Result<std::collections::HashSet<(u16, String)>, DaemonError> {
    let mut out = std::collections::HashSet::new();
    for value in filters.get(key) {
        if value.contains(':') {
            return Err(DaemonError::invalid(format!(
                "filter for '{key}' should not contain ':': {value}"
            )));
        }
        let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
        let proto = if proto.is_empty() { "tcp" } else { proto };
        let bad = || {
            DaemonError::invalid(format!(
                "error while looking up for {key} {value}: invalid port range"
            ))
        };
        let (a, b) = port.split_once('-').unwrap_or((port, port));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b {
            return Err(bad());
        }
        for p in a..=b {
            out.insert((p, proto.to_ascii_lowercase()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(
            human_duration(chrono::Duration::seconds(0)),
            "Less than a second"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(90)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
        assert_eq!(human_duration(chrono::Duration::days(3)), "3 days");
    }

    #[test]
    fn legacy_aliases_gain_short_id_and_hostname_on_user_networks_only() {
        let mut v = json!({
            "Id": "0123456789abcdef".repeat(4),
            "Config": {"Hostname": "web-host"},
            "NetworkSettings": {"Networks": {
                "p_default": {"Aliases": ["web"]},
                "bridge": {"Aliases": null},
            }},
        });
        add_legacy_aliases(&mut v);
        let nets = &v["NetworkSettings"]["Networks"];
        assert_eq!(
            nets["p_default"]["Aliases"],
            json!(["web", "0123456789ab", "web-host"])
        );
        assert_eq!(nets["bridge"]["Aliases"], Value::Null);
    }

    #[test]
    fn name_filter_matches_substrings_and_anchors() {
        assert!(name_matches("web", "/my-web-1"));
        assert!(name_matches("^my", "/my-web-1"));
        assert!(name_matches("^my-web-1$", "/my-web-1"));
        assert!(!name_matches("^web", "/my-web-1"));
    }
}
