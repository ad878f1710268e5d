//! `berth images` / `berth image ls`.

use std::collections::BTreeMap;

use clap::Args;
use gtmpl::Value;
use serde_json::Value as Json;

use crate::cli::FORMAT_HELP;
use crate::client::with_query;
use crate::commands::{Ctx, filters_json, parse_filter};
use crate::format::template::{RowFormatter, TABLE_PREFIX, row};
use crate::format::{truncate_id, units};
use crate::reference::parse_normalized_named;

const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_WITH_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const QUIET_FORMAT: &str = "{{.ID}}";

/// Column titles by field (docker's `newImageContext` header).
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// Options of `images` / `image ls`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] [REPOSITORY[:TAG]]",
    after_long_help = "berth image ls, berth image list, berth images"
)]
pub(crate) struct ListArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Runs the listing; `called_as_images` enables docker's "did you mean" hint.
///
/// # Errors
/// Daemon errors and template errors.
pub(crate) async fn run(ctx: &Ctx, a: ListArgs, called_as_images: bool) -> anyhow::Result<()> {
    ctx.usage.max_args(&a.args, 1)?;
    let mut filters = a.filter.clone();
    let match_name = a.args.first().cloned();
    if let Some(name) = &match_name {
        filters.push(("reference".to_string(), name.clone()));
    }
    let mut params = Vec::new();
    if a.all {
        params.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(&filters) {
        params.push(("filters", f));
    }
    let images = ctx
        .client
        .get_json(&with_query("/images/json", &params))
        .await?;
    let images = images.as_array().cloned().unwrap_or_default();

    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| TABLE_PREFIX.to_string());
    let format = image_format(&format, a.quiet, a.digests);
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| image_rows(img, !a.no_trunc, need_digest, a.digests))
        .collect();
    let formatter = RowFormatter::new(&format)?.with_go_type("*formatter.imageContext");
    ctx.print(&formatter.render(HEADERS, &rows)?)?;

    if let Some(name) = match_name {
        if images.is_empty() && called_as_images && is_image_subcommand(&name) {
            eprintln!("\nNo images found matching {name:?}: did you mean \"docker image {name}\"?");
        }
    }
    Ok(())
}

/// docker's `NewImageFormat`.
fn image_format(source: &str, quiet: bool, digest: bool) -> String {
    if source == TABLE_PREFIX {
        return if quiet {
            QUIET_FORMAT
        } else if digest {
            DEFAULT_TABLE_WITH_DIGEST
        } else {
            DEFAULT_TABLE
        }
        .to_string();
    }
    if source == "raw" {
        let quiet_raw = "image_id: {{.ID}}";
        let digest_raw = "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";
        let plain_raw = "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";
        return if quiet {
            quiet_raw
        } else if digest {
            digest_raw
        } else {
            plain_raw
        }
        .to_string();
    }
    let mut format = source.to_string();
    if format.starts_with(TABLE_PREFIX) && digest && !format.contains("{{.Digest}}") {
        format.push_str("\t{{.Digest}}");
    }
    format
}

fn is_image_subcommand(name: &str) -> bool {
    matches!(
        name,
        "build"
            | "history"
            | "import"
            | "inspect"
            | "list"
            | "load"
            | "ls"
            | "prune"
            | "pull"
            | "push"
            | "rm"
            | "save"
            | "tag"
    )
}

fn strs(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The rows one image contributes (one per repository:tag, or digest), as
/// docker's `imageFormat` builds them.
fn image_rows(img: &Json, trunc: bool, need_digest: bool, show_digests: bool) -> Vec<Value> {
    let tags = strs(&img["RepoTags"]);
    let digests = strs(&img["RepoDigests"]);
    let dangling = (tags.is_empty() && digests.is_empty())
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
    if dangling {
        return vec![image_row(img, trunc, "<none>", "<none>", "<none>")];
    }
    // Repository → tags / digests, in the order the daemon listed them.
    let mut repo_order: Vec<String> = Vec::new();
    let mut repo_tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &tags {
        let Ok(r) = parse_normalized_named(t) else {
            continue;
        };
        let Some(tag) = r.tag().map(str::to_string) else {
            continue;
        };
        let name = r.familiar_name();
        if !repo_tags.contains_key(&name) {
            repo_order.push(name.clone());
        }
        repo_tags.entry(name).or_default().push(tag);
    }
    let mut digest_order: Vec<String> = Vec::new();
    let mut repo_digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &digests {
        let Ok(r) = parse_normalized_named(d) else {
            continue;
        };
        let Some(digest) = r.digest().map(|d| d.to_string()) else {
            continue;
        };
        let name = r.familiar_name();
        if !repo_digests.contains_key(&name) {
            digest_order.push(name.clone());
        }
        repo_digests.entry(name).or_default().push(digest);
    }
    let mut rows = Vec::new();
    for repo in &repo_order {
        let digests = repo_digests.remove(repo).unwrap_or_default();
        let digests = if need_digest { digests } else { Vec::new() };
        for tag in &repo_tags[repo] {
            if digests.is_empty() {
                rows.push(image_row(img, trunc, repo, tag, "<none>"));
            }
            for d in &digests {
                rows.push(image_row(img, trunc, repo, tag, d));
            }
        }
    }
    for repo in digest_order {
        let Some(digests) = repo_digests.get(&repo) else {
            continue;
        };
        if show_digests {
            for d in digests {
                rows.push(image_row(img, trunc, &repo, "<none>", d));
            }
        } else {
            rows.push(image_row(img, trunc, &repo, "<none>", ""));
        }
    }
    rows
}

fn image_row(img: &Json, trunc: bool, repo: &str, tag: &str, digest: &str) -> Value {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    let na_or = |v: i64, f: &dyn Fn(i64) -> String| if v == -1 { "N/A".to_string() } else { f(v) };
    row(&[
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            },
        ),
        ("Repository", repo.to_string()),
        ("Tag", tag.to_string()),
        ("Digest", digest.to_string()),
        ("CreatedSince", units::human_since(created)),
        ("CreatedAt", go_time_string(created)),
        ("Size", units::human_size_with_precision(size as f64, 3)),
        ("Containers", na_or(containers, &|c| c.to_string())),
        ("VirtualSize", units::human_size(size as f64)),
        (
            "SharedSize",
            na_or(shared, &|s| units::human_size(s as f64)),
        ),
        (
            "UniqueSize",
            if size == -1 || shared == -1 {
                "N/A".to_string()
            } else {
                units::human_size((size - shared) as f64)
            },
        ),
    ])
}

/// Go's `time.Unix(secs, 0).String()` in local time ("2024-05-01 10:00:00 +0000 UTC").
pub(crate) fn go_time_string(secs: i64) -> String {
    use chrono::{Local, TimeZone};
    let Some(t) = Local.timestamp_opt(secs, 0).single() else {
        return String::new();
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::template::go_print;

    fn field(v: &Value, k: &str) -> String {
        match v {
            Value::Object(m) => go_print(&m[k]),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn dangling_images_show_none() {
        let img = serde_json::json!({"Id": "sha256:0123456789abcdef", "RepoTags": [], "RepoDigests": [], "Size": 3, "SharedSize": -1, "Containers": -1});
        let rows = image_rows(&img, true, false, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(field(&rows[0], "Repository"), "<none>");
        assert_eq!(field(&rows[0], "ID"), "0123456789ab");
        assert_eq!(field(&rows[0], "Size"), "3B");
        assert_eq!(field(&rows[0], "SharedSize"), "N/A");
    }

    #[test]
    fn one_row_per_tag_and_digest_only_repos() {
        let d = format!("sha256:{}", "a".repeat(64));
        let img = serde_json::json!({
            "Id": "sha256:ff", "RepoTags": ["busybox:latest", "busybox:1.35", "localhost:5000/x:1"],
            "RepoDigests": [format!("busybox@{d}"), format!("other@{d}")], "Size": 1990000
        });
        let rows = image_rows(&img, true, false, false);
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{}:{}", field(r, "Repository"), field(r, "Tag")))
            .collect();
        assert_eq!(
            names,
            [
                "busybox:latest",
                "busybox:1.35",
                "localhost:5000/x:1",
                "other:<none>"
            ]
        );
        let with_digests = image_rows(&img, true, true, true);
        assert_eq!(field(&with_digests[0], "Digest"), d);
        assert_eq!(field(&with_digests[3], "Digest"), d);
    }

    #[test]
    fn digests_flag_adds_the_column_to_custom_tables() {
        assert_eq!(
            image_format("table {{.ID}}", false, true),
            "table {{.ID}}\t{{.Digest}}"
        );
        assert_eq!(image_format(TABLE_PREFIX, true, true), QUIET_FORMAT);
        assert_eq!(image_format("{{.ID}}", false, true), "{{.ID}}");
    }
}
