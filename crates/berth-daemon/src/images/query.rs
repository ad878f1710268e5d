//! Read-only image queries and the Engine API shapes they answer with
//! (`GET /images/json`, `/images/{name}/json`, `/images/{name}/history`).

use std::collections::BTreeMap;

use berth_oci::reference::{Reference, familiar_match};
use berth_oci::{Digest, chain_ids};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Image, ImageService, State, resolve};
use crate::DaemonError;
use crate::filters::Filters;

/// One row of `GET /images/json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:…`.
    pub id: String,
    /// Parent image ID or "".
    pub parent_id: String,
    /// Familiar `repo:tag` strings.
    pub repo_tags: Vec<String>,
    /// Familiar `repo@digest` strings.
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Bytes of all layers.
    pub size: i64,
    /// -1 unless asked for.
    pub shared_size: i64,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// -1 unless asked for.
    pub containers: i64,
}

/// One row of `GET /images/{name}/history`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the top step, else `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The step's command.
    pub created_by: String,
    /// Tags, on the top step only.
    pub tags: Option<Vec<String>>,
    /// Bytes the step added.
    pub size: i64,
    /// The step's comment.
    pub comment: String,
}

/// `GET /images/{name}/json`, API 1.44 shape.
pub type ImageInspect = Value;

/// One entry of a delete/prune answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteResponseItem {
    /// A reference was removed (familiar form).
    Untagged(String),
    /// An image or layer was deleted (`sha256:…`).
    Deleted(String),
}

/// `POST /images/prune`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    /// What was removed; `null` when nothing.
    pub images_deleted: Option<Vec<DeleteResponseItem>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

fn created(image: &Image) -> Option<DateTime<Utc>> {
    image.config.created
}

fn unix(t: Option<DateTime<Utc>>) -> i64 {
    t.map(|t| t.timestamp()).unwrap_or(0)
}

impl ImageService {
    fn tags_and_digests(
        state: &State,
        id: &Digest,
        filter: Option<&[&str]>,
    ) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in Self::references_of(state, id) {
            if let Some(patterns) = filter
                && !patterns.iter().any(|p| familiar_match(p, &r))
            {
                continue;
            }
            if r.digest().is_some() {
                digests.push(r.familiar_string());
            } else if r.tag().is_some() {
                tags.push(r.familiar_string());
            }
        }
        (tags, digests)
    }

    pub(super) fn has_children(state: &State, id: &Digest) -> bool {
        state
            .images
            .values()
            .any(|i| i.record.parent.as_ref() == Some(id))
    }

    /// `GET /images/json`.
    ///
    /// # Errors
    /// `InvalidArgument` for an unknown filter or a bad value; `NotFound` for a
    /// `before`/`since` image that does not exist.
    pub fn list(&self, all: bool, filters: &Filters) -> Result<Vec<ImageSummary>, DaemonError> {
        filters.validate(&["before", "dangling", "label", "reference", "since", "until"])?;
        let dangling_only = filters.get_bool("dangling")?.unwrap_or(false);
        let state = self.lock();
        let mut before: Option<DateTime<Utc>> = None;
        for name in filters.get("before") {
            let id = resolve(&state, name)?;
            if let Some(c) = created(&state.images[&id]) {
                before = Some(before.map_or(c, |b| b.min(c)));
            }
        }
        for value in filters.get("until") {
            let t = parse_timestamp(value)?;
            before = Some(before.map_or(t, |b| b.min(t)));
        }
        let mut since: Option<DateTime<Utc>> = None;
        for name in filters.get("since") {
            let id = resolve(&state, name)?;
            if let Some(c) = created(&state.images[&id]) {
                since = Some(since.map_or(c, |s| s.max(c)));
            }
        }
        let patterns: Vec<&str> = filters.get("reference").collect();
        let mut out = Vec::new();
        for (id, image) in &state.images {
            let c = created(image);
            if before.is_some_and(|b| c.is_none_or(|c| c >= b))
                || since.is_some_and(|s| c.is_none_or(|c| c <= s))
            {
                continue;
            }
            if filters.contains("label")
                && !filters.match_labels(
                    "label",
                    image.config.config.as_ref().and_then(|c| c.labels.as_ref()),
                )
            {
                continue;
            }
            let (tags, digests) = Self::tags_and_digests(
                &state,
                id,
                if patterns.is_empty() {
                    None
                } else {
                    Some(&patterns)
                },
            );
            if tags.is_empty() && digests.is_empty() {
                if !all && Self::has_children(&state, id) {
                    continue;
                }
                if filters.contains("dangling") && !dangling_only {
                    continue;
                }
                if !patterns.is_empty() {
                    continue;
                }
            } else if dangling_only && !tags.is_empty() {
                continue;
            }
            if dangling_only && !digests.is_empty() && tags.is_empty() {
                // Dangling means "no tag"; digest-only references still count as dangling.
            }
            out.push((
                c,
                ImageSummary {
                    id: id.to_string(),
                    parent_id: image
                        .record
                        .parent
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    repo_tags: tags,
                    repo_digests: digests,
                    created: unix(c),
                    size: image.size as i64,
                    shared_size: -1,
                    labels: image
                        .config
                        .config
                        .as_ref()
                        .and_then(|c| c.labels.clone())
                        .unwrap_or_default(),
                    containers: -1,
                },
            ));
        }
        // Newest first, by the full-precision creation time: whole seconds (what the
        // API shows) tie for images made in the same second, and ties would list in
        // random order.
        out.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then_with(|| a.id.cmp(&b.id)));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// `GET /images/{name}/json`.
    ///
    /// # Errors
    /// As [`ImageService::get`].
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, DaemonError> {
        let state = self.lock();
        let id = resolve(&state, name)?;
        let image = &state.images[&id];
        let (tags, digests) = Self::tags_and_digests(&state, &id, None);
        let cfg = &image.config;
        let run = cfg.config.clone().unwrap_or_default();
        let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
        let chains = chain_ids(&diff_ids);
        let dirs: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| self.snapshots.fs_path(c).display().to_string())
            .collect();
        let mut graph = serde_json::Map::new();
        if let Some((upper, lower)) = dirs.split_first() {
            if !lower.is_empty() {
                graph.insert("LowerDir".into(), json!(lower.join(":")));
            }
            graph.insert("UpperDir".into(), json!(upper));
        }
        let extra = |k: &str| {
            cfg.extra
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut config = serde_json::Map::new();
        // Below API 1.50 the image's run defaults come in container.Config's full shape
        // (the API layer trims them for newer clients).
        for (k, v) in [
            ("Hostname", json!("")),
            ("Domainname", json!("")),
            ("User", json!(run.user.clone().unwrap_or_default())),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("AttachStderr", json!(false)),
            ("ExposedPorts", json!(run.exposed_ports)),
            ("Tty", json!(false)),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Env", json!(run.env)),
            ("Cmd", json!(run.cmd)),
            ("Image", json!("")),
            ("Volumes", json!(run.volumes)),
            (
                "WorkingDir",
                json!(run.working_dir.clone().unwrap_or_default()),
            ),
            ("Entrypoint", json!(run.entrypoint)),
            (
                "OnBuild",
                run.extra.get("OnBuild").cloned().unwrap_or(Value::Null),
            ),
            ("Labels", json!(run.labels)),
        ] {
            if k == "ExposedPorts" && v.is_null() {
                continue;
            }
            config.insert(k.into(), v);
        }
        if let Some(s) = &run.stop_signal {
            config.insert("StopSignal".into(), json!(s));
        }
        for (k, v) in &run.extra {
            if k != "OnBuild" && !config.contains_key(k) {
                config.insert(k.clone(), v.clone());
            }
        }
        let mut out = json!({
            "Id": id.to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": image.record.parent.map(|p| p.to_string()).unwrap_or_default(),
            // The config's own `comment` (commit writes it), else an import's history.
            "Comment": Some(extra("comment")).filter(|c| !c.is_empty()).or_else(|| cfg.history.last().and_then(|h| h.comment.clone()).filter(|_| image.record.parent.is_none())).unwrap_or_default(),
            "Container": extra("container"),
            "DockerVersion": extra("docker_version"),
            "Author": cfg.author.clone().unwrap_or_default(),
            // Deprecated, and Docker sends it only below API 1.45; empty when the image
            // has none. docker-compose 1.29 reads its `Volumes` when it recreates a
            // container and fails with KeyError without it, whatever version it speaks.
            "ContainerConfig": cfg.extra.get("container_config").filter(|c| c.is_object()).cloned().unwrap_or_else(empty_container_config),
            "Config": config,
            "Architecture": cfg.architecture,
            "Os": cfg.os,
            "Size": image.size,
            "GraphDriver": {"Data": graph, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": diff_ids},
            "Metadata": {"LastTagTime": image.record.last_tag_time.map(go_time).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())},
        });
        if let Some(v) = &cfg.variant {
            out["Variant"] = json!(v);
        }
        if let Some(c) = cfg.created {
            out["Created"] = json!(go_time(c));
        }
        Ok(out)
    }

    /// `GET /images/{name}/history`: newest step first.
    ///
    /// # Errors
    /// As [`ImageService::get`].
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, DaemonError> {
        let state = self.lock();
        let id = resolve(&state, name)?;
        let image = &state.images[&id];
        let diff_ids: Vec<Digest> = image.record.layers.iter().map(|l| l.diff_id).collect();
        let chains = chain_ids(&diff_ids);
        let layer_size = |i: usize| {
            chains
                .get(i)
                .and_then(|c| self.snapshots.info(c).ok())
                .map(|i| i.size as i64)
                .unwrap_or(0)
        };
        let mut items = Vec::new();
        let mut layer = 0;
        if image.config.history.is_empty() {
            for i in 0..chains.len() {
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: unix(image.config.created),
                    created_by: String::new(),
                    tags: None,
                    size: layer_size(i),
                    comment: String::new(),
                });
            }
        }
        for h in &image.config.history {
            let size = if h.empty_layer {
                0
            } else {
                layer += 1;
                layer_size(layer - 1)
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: unix(h.created),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: None,
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = id.to_string();
            let (tags, _) = Self::tags_and_digests(&state, &id, None);
            top.tags = if tags.is_empty() { None } else { Some(tags) };
        }
        Ok(items)
    }

    /// The references pointing at an image, for callers outside this module.
    pub fn references(&self, id: &Digest) -> Vec<Reference> {
        Self::references_of(&self.lock(), id)
    }
}

/// A time as Go's `time.RFC3339Nano` prints it (what Docker's JSON carries): the
/// fraction loses its trailing zeros, and vanishes when zero.
/// A zero `container.Config` as Go serializes it (omitempty fields left out).
fn empty_container_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    })
}

pub(crate) fn go_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{digits}Z")
            }
        }
        None => s,
    }
}

/// Docker's timestamp filter values: unix seconds (with optional fraction), RFC 3339
/// dates, or Go durations (`10m`, `1h30m`) meaning that long ago.
///
/// # Errors
/// `InvalidArgument` for anything else.
/// `"1700000000"` or `"1700000000.123456789"` (any number of fraction digits, as
/// Docker's `ParseTimestamps`) as whole seconds and nanoseconds.
fn unix_seconds(value: &str) -> Option<(i64, u32)> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let secs_digits = secs.strip_prefix('-').unwrap_or(secs);
    if !digits(secs_digits) || !(frac.is_empty() || digits(frac)) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = frac.chars().take(9).collect::<String>();
    while nanos.len() < 9 {
        nanos.push('0');
    }
    Some((secs, nanos.parse().ok()?))
}

pub(crate) fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, DaemonError> {
    let bad = || {
        DaemonError::invalid(format!(
            "failed to parse value as time or duration: \"{value}\""
        ))
    };
    // The docker CLI sends "seconds.nanoseconds": integers on both sides, since an f64
    // cannot hold 19 significant digits and an inclusive bound must compare exactly.
    if let Some((secs, frac)) = unix_seconds(value) {
        return DateTime::from_timestamp(secs, frac).ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = value.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().expect("peeked"));
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        any = true;
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(Utc::now() - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_trims_the_fraction() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00.120000000Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(go_time(t), "2024-01-01T00:00:00.12Z");
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(go_time(t), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn timestamps_and_durations() {
        assert_eq!(
            parse_timestamp("1700000000").unwrap().timestamp(),
            1_700_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z").unwrap().timestamp(),
            1_700_000_000
        );
        let t = parse_timestamp("1h30m").unwrap();
        let ago = Utc::now() - t;
        assert!((ago.num_seconds() - 5400).abs() < 5);
        assert!(parse_timestamp("soon").is_err());
    }

    #[test]
    fn unix_seconds_keep_every_nanosecond() {
        let t = parse_timestamp("1763900000.123456789").unwrap();
        assert_eq!(
            (t.timestamp(), t.timestamp_subsec_nanos()),
            (1_763_900_000, 123_456_789)
        );
        let t = parse_timestamp("1763900000.5").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert!(parse_timestamp("17639.00.1").is_err());
    }
}
