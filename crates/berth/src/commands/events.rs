//! `events`: the daemon's event feed, printed as docker prints it.

use std::collections::BTreeMap;

use chrono::{DateTime, Local, Utc};
use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use crate::client::{body_stream, with_query};
use crate::commands::container::logs::get_timestamp;
use crate::commands::{Ctx, filters_json, parse_filter};
use crate::format::template::{GoTemplate, from_json, prepare_format};

/// Options of `events`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS]",
    after_long_help = "berth system events, berth events"
)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string", verbatim_doc_comment)]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string", default_value = "")]
    since: String,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string", default_value = "")]
    until: String,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `events`: streams until `--until` or until interrupted.
///
/// # Errors
/// Bad times or templates, daemon errors, a broken stream.
pub(crate) async fn run(ctx: &Ctx, a: EventsArgs) -> anyhow::Result<()> {
    ctx.usage.no_args(&a.args)?;
    let now = Utc::now();
    let mut params = Vec::new();
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if !value.is_empty() {
            let ts = get_timestamp(value, now)
                .map_err(|e| anyhow::anyhow!("invalid value for \"{key}\": {e}"))?;
            params.push((key, ts));
        }
    }
    if let Some(f) = filters_json(&a.filter) {
        params.push(("filters", f));
    }
    let template = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(GoTemplate::parse(&prepare_format(f).text)?),
        None => None,
    };
    let resp = ctx
        .client
        .send(
            Method::GET,
            &with_query("/events", &params),
            crate::client::empty(),
            None,
        )
        .await?;
    let mut body = std::pin::pin!(body_stream(resp));
    let mut pending = Vec::new();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk?);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: serde_json::Value = serde_json::from_slice(&line)?;
            let text = match &template {
                Some(t) => t.render(&from_json(&event))?,
                None => default_line(&event),
            };
            ctx.print(&format!("{text}\n"))?;
        }
    }
    Ok(())
}

/// docker's default event line: local time with nine fraction digits, type, action,
/// actor ID, and the attributes sorted by key in parentheses.
fn default_line(event: &serde_json::Value) -> String {
    let nanos = event["timeNano"]
        .as_i64()
        .unwrap_or_else(|| event["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let time = DateTime::from_timestamp_nanos(nanos).with_timezone(&Local);
    // Go's RFC3339NanoFixed: "Z" for UTC, else the offset.
    let zone = if time.offset().local_minus_utc() == 0 {
        "Z".to_string()
    } else {
        time.format("%:z").to_string()
    };
    let mut line = format!(
        "{}{zone} {} {} {}",
        time.format("%Y-%m-%dT%H:%M:%S%.9f"),
        event["Type"].as_str().unwrap_or(""),
        event["Action"].as_str().unwrap_or(""),
        event["Actor"]["ID"].as_str().unwrap_or("")
    );
    let attributes: BTreeMap<&str, &str> = event["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if !attributes.is_empty() {
        let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", pairs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_line_sorts_attributes() {
        let event = serde_json::json!({
            "Type": "container", "Action": "start", "timeNano": 0i64,
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}
        });
        let line = default_line(&event);
        assert!(
            line.ends_with(" container start abc (image=busybox, name=web)"),
            "{line}"
        );
    }
}
