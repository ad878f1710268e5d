//! `berth history` / `berth image history`.

use clap::{ArgAction, Args};
use gtmpl::Value;

use crate::cli::FORMAT_HELP;
use crate::client::path_escape;
use crate::commands::Ctx;
use crate::format::template::{RowFormatter, TABLE_PREFIX, row};
use crate::format::{ellipsis, truncate_id, units};

const HUMAN_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const NON_HUMAN_TABLE: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// Times at or before 2000-01-01 print as "N/A" (docker's history epoch).
const EPOCH_2000: i64 = 946_684_800;

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// Options of `history`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] IMAGE",
    after_long_help = "berth image history, berth history"
)]
pub(crate) struct HistoryArgs {
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_name = "bool")]
    human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// Runs `history`.
///
/// # Errors
/// Daemon and template errors.
pub(crate) async fn run(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let path = format!("/images/{}/history", path_escape(&a.args[0]));
    let items = ctx.client.get_json(&path).await?;
    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| TABLE_PREFIX.to_string());
    let format = if format == TABLE_PREFIX {
        if a.quiet {
            "{{.ID}}"
        } else if a.human {
            HUMAN_TABLE
        } else {
            NON_HUMAN_TABLE
        }
        .to_string()
    } else {
        format
    };
    let rows: Vec<Value> = items
        .as_array()
        .map(|v| {
            v.iter()
                .map(|h| history_row(h, !a.no_trunc, a.human))
                .collect()
        })
        .unwrap_or_default();
    ctx.print(
        &RowFormatter::new(&format)?
            .with_go_type("*image.historyContext")
            .render(HEADERS, &rows)?,
    )?;
    Ok(())
}

fn history_row(h: &serde_json::Value, trunc: bool, human: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("");
    let created = h["Created"].as_i64().unwrap_or(0);
    let size = h["Size"].as_i64().unwrap_or(0);
    let created_at = rfc3339_local(created);
    let created_since = if !human {
        created_at.clone()
    } else if created <= EPOCH_2000 {
        "N/A".to_string()
    } else {
        units::human_since(created)
    };
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    row(&[
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            },
        ),
        ("CreatedSince", created_since),
        ("CreatedAt", created_at),
        (
            "CreatedBy",
            if trunc {
                ellipsis(&created_by, 45)
            } else {
                created_by
            },
        ),
        (
            "Size",
            if human {
                units::human_size_with_precision(size as f64, 3)
            } else {
                size.to_string()
            },
        ),
        ("Comment", h["Comment"].as_str().unwrap_or("").to_string()),
    ])
}

/// Go's `time.Unix(secs, 0).Format(time.RFC3339)` in local time.
fn rfc3339_local(secs: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(secs, 0).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::template::go_print;

    #[test]
    fn rows_truncate_ids_and_commands() {
        let h = serde_json::json!({"Id": "sha256:8430d8a2bfbe499bf930", "Created": 1_700_000_000i64,
            "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"] with a long tail that goes on", "Size": 1990000, "Comment": "c"});
        let Value::Object(m) = history_row(&h, true, true) else {
            panic!()
        };
        assert_eq!(go_print(&m["ID"]), "8430d8a2bfbe");
        assert_eq!(go_print(&m["CreatedBy"]).chars().count(), 45);
        assert!(go_print(&m["CreatedBy"]).ends_with('…'));
        assert_eq!(go_print(&m["Size"]), "1.99MB");
        let Value::Object(m) = history_row(&h, false, false) else {
            panic!()
        };
        assert_eq!(go_print(&m["Size"]), "1990000");
    }

    #[test]
    fn missing_layers_stay_missing() {
        let h = serde_json::json!({"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 0});
        let Value::Object(m) = history_row(&h, true, true) else {
            panic!()
        };
        assert_eq!(go_print(&m["ID"]), "<missing>");
        assert_eq!(go_print(&m["CreatedSince"]), "N/A");
    }
}
