//! `inspect` (any object) and `image inspect`.
//!
//! Objects are inspected by their raw JSON: docker prints the daemon's bytes
//! re-indented (key order and escapes preserved), or runs `--format` on them.
//! [`OBJECT_KINDS`] lists what the type-less `inspect` tries, in docker's
//! order; a new object kind is one more entry there.

use clap::Args;

use crate::cli::{INSPECT_FORMAT_HELP, StatusError};
use crate::client::{ClientError, path_escape};
use crate::commands::Ctx;
use crate::format::json::{compact, indent};
use crate::format::template::{GoTemplate, JSON_KEY, add_aliases, from_json};

/// One kind of object `inspect` can look up.
pub(crate) struct ObjectKind {
    /// The `--type` name.
    pub(crate) name: &'static str,
    /// The API path that inspects `id`, given whether sizes were asked for.
    pub(crate) path: fn(&str, bool) -> String,
    /// Whether `--size` means something for it.
    pub(crate) size_supported: bool,
}

/// What `inspect` tries, in docker's order (swarm objects are not served by berth).
pub(crate) const OBJECT_KINDS: &[ObjectKind] = &[
    ObjectKind {
        name: "container",
        path: |id, size| {
            format!(
                "/containers/{}/json{}",
                path_escape(id),
                if size { "?size=1" } else { "" }
            )
        },
        size_supported: true,
    },
    ObjectKind {
        name: "image",
        path: |id, _| format!("/images/{}/json", path_escape(id)),
        size_supported: false,
    },
    ObjectKind {
        name: "network",
        path: |id, _| format!("/networks/{}", path_escape(id)),
        size_supported: false,
    },
    ObjectKind {
        name: "volume",
        path: |id, _| format!("/volumes/{}", path_escape(id)),
        size_supported: false,
    },
];

/// Every `--type` docker accepts (for its error message).
const ALL_TYPES: &[&str] = &[
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];

/// Options of `inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] NAME|ID [NAME|ID...]")]
pub(crate) struct InspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    kind: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Options of `image inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] IMAGE [IMAGE...]")]
pub(crate) struct ImageInspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Options of `container inspect`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
pub(crate) struct ContainerInspectArgs {
    #[arg(short = 'f', long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `container inspect`.
///
/// # Errors
/// A bad template (exit 64) or the joined lookup errors (exit 1).
pub(crate) async fn container(ctx: &Ctx, a: ContainerInspectArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let size = a.size;
    inspect_each(
        ctx,
        &a.args,
        a.format.as_deref().unwrap_or(""),
        &[],
        |id| async move {
            ctx.client
                .get_bytes(&(OBJECT_KINDS[0].path)(&id, size))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
}

/// `image inspect`.
///
/// # Errors
/// A bad template (exit 64) or the joined lookup errors (exit 1).
pub(crate) async fn image(ctx: &Ctx, a: ImageInspectArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    inspect_each(
        ctx,
        &a.args,
        a.format.as_deref().unwrap_or(""),
        &[],
        |id| async move {
            ctx.client
                .get_bytes(&format!("/images/{}/json", path_escape(&id)))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
}

/// `inspect [--type T]`: tries each object kind until one knows the name.
///
/// # Errors
/// An unknown type, a bad template, or the joined lookup errors.
pub(crate) async fn run(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let types = format!("\"{}\"", ALL_TYPES.join("\", \""));
    let kind = a.kind.clone();
    match kind.as_deref() {
        Some("") => anyhow::bail!("type is empty: must be one of {types}"),
        Some(t) if !ALL_TYPES.contains(&t) => {
            anyhow::bail!("unknown type: {t:?}: must be one of {types}")
        }
        _ => {}
    }
    let size = a.size;
    inspect_each(ctx, &a.args, a.format.as_deref().unwrap_or(""), &[], |id| {
        let kind = kind.clone();
        async move { find_object(ctx, &id, kind.as_deref(), size).await }
    })
    .await
}

async fn find_object(
    ctx: &Ctx,
    id: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<bytes::Bytes, String> {
    for k in OBJECT_KINDS {
        if kind.is_some_and(|t| t != k.name) {
            continue;
        }
        match ctx.client.get_bytes(&(k.path)(id, size)).await {
            Ok(raw) => {
                if size && !k.size_supported {
                    eprintln!("WARNING: --size ignored for {}", k.name);
                }
                return Ok(raw);
            }
            Err(e) if kind.is_none() && is_skippable(&e) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("Error: No such object: {id}"))
}

/// docker's `isErrSkippable`: try the next kind of object.
fn is_skippable(e: &ClientError) -> bool {
    let text = e.to_string();
    e.is_not_found() || text.contains("not supported") || text.contains("invalid reference format")
}

/// docker's `inspect.Inspect`: looks each name up with `lookup`, prints all
/// found objects (a JSON array or one template result per line), then fails
/// with every lookup error joined.
pub(crate) async fn inspect_each<F, Fut>(
    ctx: &Ctx,
    names: &[String],
    format: &str,
    empty_maps: &[&str],
    lookup: F,
) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, String>>,
{
    let template = if format.is_empty() || format == JSON_KEY {
        None
    } else {
        Some(GoTemplate::parse(format).map_err(|e| StatusError {
            message: e.to_string(),
            code: 64,
        })?)
    };
    let mut raws: Vec<bytes::Bytes> = Vec::new();
    let mut rendered = String::new();
    let mut errors = Vec::new();
    for name in names {
        let raw = match lookup(name.clone()).await {
            Ok(raw) => raw,
            Err(e) => {
                if e.starts_with("Cannot connect") {
                    anyhow::bail!(e);
                }
                errors.push(e);
                continue;
            }
        };
        match &template {
            None => raws.push(raw),
            Some(t) => {
                let value: serde_json::Value = match serde_json::from_slice(&raw) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(format!("unable to read inspect data: {e}"));
                        continue;
                    }
                };
                let mut value = value;
                // docker runs templates on its typed structs, where a nil map
                // still prints as "map[]".
                for key in empty_maps {
                    if value.get(*key).is_some_and(serde_json::Value::is_null) {
                        value[*key] = serde_json::json!({});
                    }
                }
                let mut data = from_json(&value);
                // docker runs templates on its typed structs first, where the
                // ID field is `ID` (JSON "Id").
                add_aliases(&mut data, &[("Id", "ID")]);
                match t.render(&data) {
                    Ok(text) => {
                        rendered.push_str(&text);
                        rendered.push('\n');
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
    }
    let output = match &template {
        Some(_) if rendered.is_empty() => "\n".to_string(),
        Some(_) => rendered,
        None if raws.is_empty() => "[]\n".to_string(),
        None => {
            let mut joined = Vec::from(&b"["[..]);
            for (i, r) in raws.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(r);
            }
            joined.push(b']');
            if format == JSON_KEY {
                format!("{}\n", compact(&joined))
            } else {
                format!("{}\n", indent(&joined, "    "))
            }
        }
    };
    ctx.print(&output)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StatusError {
            message: errors.join("\n"),
            code: 1,
        }
        .into())
    }
}
