//! `logs`: the container's log stream, demultiplexed unless it has a TTY.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use crate::client::{body_stream, path_escape, with_query};
use crate::commands::Ctx;
use crate::stdcopy::Demuxer;

/// Options of `logs`.
#[derive(Args, Debug)]
#[command(
    override_usage = "[OPTIONS] CONTAINER",
    after_long_help = "berth container logs, berth logs"
)]
pub(crate) struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string", default_value = "")]
    since: String,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string", default_value = "")]
    until: String,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `logs`: inspects the container first (for its ID and TTY), then streams.
///
/// # Errors
/// Daemon errors, bad `--since`/`--until`, broken streams.
pub(crate) async fn run(ctx: &Ctx, a: LogsArgs) -> anyhow::Result<()> {
    ctx.usage.exact_args(&a.args, 1)?;
    let c = ctx
        .client
        .get_json(&format!("/containers/{}/json", path_escape(&a.args[0])))
        .await?;
    let id = c["Id"].as_str().unwrap_or(&a.args[0]).to_string();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut params = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    let now = Utc::now();
    if !a.since.is_empty() {
        let ts = get_timestamp(&a.since, now)
            .map_err(|e| anyhow::anyhow!("invalid value for \"since\": {e}"))?;
        params.push(("since", ts));
    }
    if !a.until.is_empty() {
        let ts = get_timestamp(&a.until, now)
            .map_err(|e| anyhow::anyhow!("invalid value for \"until\": {e}"))?;
        params.push(("until", ts));
    }
    if a.timestamps {
        params.push(("timestamps", "1".to_string()));
    }
    if a.details {
        params.push(("details", "1".to_string()));
    }
    if a.follow {
        params.push(("follow", "1".to_string()));
    }
    params.push(("tail", a.tail.clone()));
    let resp = ctx
        .client
        .send(
            Method::GET,
            &with_query(&format!("/containers/{}/logs", path_escape(&id)), &params),
            crate::client::empty(),
            None,
        )
        .await?;
    let mut body = std::pin::pin!(body_stream(resp));
    let mut demux = Demuxer::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let mut out = std::io::stdout().lock();
        if tty {
            std::io::Write::write_all(&mut out, &chunk)?;
            std::io::Write::flush(&mut out)?;
        } else {
            let mut err = std::io::stderr().lock();
            demux.feed(&chunk, &mut out, &mut err)?;
        }
    }
    Ok(())
}

/// docker's `GetTimestamp`: a Go duration ("42m", relative to `now`), an
/// RFC 3339 date or time (local when it names no zone), or Unix seconds
/// passed through; the API's "seconds[.nanoseconds]" form.
///
/// # Errors
/// "failed to parse value as time or duration" and date parse errors.
pub(crate) fn get_timestamp(value: &str, now: DateTime<Utc>) -> Result<String, String> {
    if value != "0" {
        if let Ok(d) = super::values::go_duration(value) {
            let t = now - chrono::Duration::nanoseconds(d);
            return Ok(t.timestamp().to_string());
        }
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let parsed: Option<DateTime<chrono::FixedOffset>> = if in_location {
        let local_offset = *Local::now().offset();
        let naive = if value.contains('T') {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
                .or_else(|| {
                    // "2006-01-02T15" has no minutes for chrono to read.
                    NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M").ok()
                })
        } else {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        };
        naive.and_then(|n| local_offset.from_local_datetime(&n).single())
    } else {
        let v = value.replace(['z'], "Z");
        DateTime::parse_from_rfc3339(&v)
            .ok()
            .or_else(|| {
                DateTime::parse_from_str(&v.replace('Z', "+00:00"), "%Y-%m-%dT%H:%M%:z").ok()
            })
            .or_else(|| {
                let (date, zone) = v.split_at(v.len().min(10));
                let zone = if zone == "Z" { "+00:00" } else { zone };
                DateTime::parse_from_str(&format!("{date}T00:00:00{zone}"), "%Y-%m-%dT%H:%M:%S%:z")
                    .ok()
            })
    };
    match parsed {
        Some(t) => Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        )),
        None if value.contains('-') => Err(format!("parsing time {value:?}: cannot parse")),
        None => {
            let (s, n) = value.split_once('.').unwrap_or((value, "0"));
            if s.parse::<i64>().is_ok() && n.parse::<i64>().is_ok() {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "failed to parse value as time or duration: {value:?}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_durations_dates_and_unix_seconds() {
        let now = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            get_timestamp("1m", now).unwrap(),
            (now.timestamp() - 60).to_string()
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37.5+01:00", now).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(get_timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(
            get_timestamp("1357133017.25", now).unwrap(),
            "1357133017.25"
        );
        assert_eq!(
            get_timestamp("bogus", now).unwrap_err(),
            "failed to parse value as time or duration: \"bogus\""
        );
        assert_eq!(get_timestamp("0", now).unwrap(), "0");
    }
}
