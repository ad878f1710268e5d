//! `compose logs`: every container's log, line by line, each line prefixed
//! with the container name padded to the longest (`app_web_1  | `), in a
//! color per service when stdout is a terminal, as docker-compose prints it.

use berth_compose::Project;
use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use super::{ProjectContainer, Which, check_services, containers};
use crate::client::{body_stream, path_escape, with_query};
use crate::commands::Ctx;
use crate::stdcopy::Demuxer;

/// Options of `compose logs`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [SERVICE...]")]
pub(crate) struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    tail: String,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
    services: Vec<String>,
}

/// docker-compose's palette: cyan, yellow, green, magenta, blue, then bright.
const COLORS: [&str; 10] = [
    "36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1",
];

/// How each line is prefixed.
#[derive(Clone)]
struct Prefix {
    text: String,
    color: Option<&'static str>,
}

impl Prefix {
    fn line(&self, line: &str) -> String {
        match self.color {
            Some(c) if !self.text.is_empty() => format!("\x1b[{c}m{}\x1b[0m{line}", self.text),
            _ => format!("{}{line}", self.text),
        }
    }
}

/// `name  | ` with the name padded to `width`.
fn prefix_text(name: &str, width: usize) -> String {
    format!("{name:<width$} | ")
}

/// `compose logs`.
///
/// # Errors
/// Unknown services, daemon errors, broken streams.
pub(crate) async fn logs(ctx: &Ctx, project: &Project, a: LogsArgs) -> anyhow::Result<()> {
    check_services(project, &a.services)?;
    let list = containers(ctx, &project.name, &a.services, true, Which::Replicas).await?;
    let color = !a.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let opts = StreamOpts {
        follow: a.follow,
        timestamps: a.timestamps,
        tail: a.tail.clone(),
    };
    stream_all(ctx, project, &list, &opts, color, !a.no_log_prefix).await
}

/// Follows the logs of the services' replicas until they all end (for `up`
/// without `-d`).
///
/// # Errors
/// Daemon errors, broken streams.
pub(crate) async fn follow_services(
    ctx: &Ctx,
    project: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    let list = containers(ctx, &project.name, services, true, Which::Replicas).await?;
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let opts = StreamOpts {
        follow: true,
        timestamps: false,
        tail: "all".into(),
    };
    stream_all(ctx, project, &list, &opts, color, true).await
}

struct StreamOpts {
    follow: bool,
    timestamps: bool,
    tail: String,
}

async fn stream_all(
    ctx: &Ctx,
    project: &Project,
    list: &[ProjectContainer],
    opts: &StreamOpts,
    color: bool,
    with_prefix: bool,
) -> anyhow::Result<()> {
    let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let services: Vec<&String> = project.services.keys().collect();
    let prefixes: Vec<Prefix> = list
        .iter()
        .map(|c| Prefix {
            text: if with_prefix {
                prefix_text(&c.name, width)
            } else {
                String::new()
            },
            color: color.then(|| {
                let i = services.iter().position(|s| **s == c.service).unwrap_or(0);
                COLORS[i % COLORS.len()]
            }),
        })
        .collect();
    let pairs: Vec<(&ProjectContainer, Prefix)> = list.iter().zip(prefixes).collect();
    let results = super::each(&pairs, |(c, p)| stream_one(ctx, c, p.clone(), opts)).await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Streams one container's log, writing whole lines with their prefix.
async fn stream_one(
    ctx: &Ctx,
    c: &ProjectContainer,
    prefix: Prefix,
    opts: &StreamOpts,
) -> anyhow::Result<()> {
    let info = ctx
        .client
        .get_json(&format!("/containers/{}/json", path_escape(&c.id)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut params = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("tail", opts.tail.clone()),
    ];
    if opts.follow {
        params.push(("follow", "1".to_string()));
    }
    if opts.timestamps {
        params.push(("timestamps", "1".to_string()));
    }
    let resp = ctx
        .client
        .send(
            Method::GET,
            &with_query(&format!("/containers/{}/logs", path_escape(&c.id)), &params),
            crate::client::empty(),
            None,
        )
        .await?;
    let mut body = std::pin::pin!(body_stream(resp));
    let mut demux = Demuxer::default();
    let mut out_buf: Vec<u8> = Vec::new();
    let mut err_buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if tty {
            out_buf.extend_from_slice(&chunk);
        } else {
            demux.feed(&chunk, &mut out_buf, &mut err_buf)?;
        }
        emit_lines(&mut out_buf, &prefix, false, false)?;
        emit_lines(&mut err_buf, &prefix, true, false)?;
    }
    emit_lines(&mut out_buf, &prefix, false, true)?;
    emit_lines(&mut err_buf, &prefix, true, true)?;
    Ok(())
}

/// Writes the complete lines in `buf` (all of it when `flush`), prefixed.
fn emit_lines(
    buf: &mut Vec<u8>,
    prefix: &Prefix,
    stderr: bool,
    flush: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let end = if flush {
        buf.len()
    } else {
        match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => return Ok(()),
        }
    };
    if end == 0 {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let line = line.trim_end_matches('\n').trim_end_matches('\r');
        out.push_str(&prefix.line(line));
        out.push('\n');
    }
    if stderr {
        let mut e = std::io::stderr().lock();
        e.write_all(out.as_bytes())?;
        e.flush()
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(out.as_bytes())?;
        o.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_with_padded_names_and_colored_on_terminals() {
        let p = Prefix {
            text: prefix_text("app_db_1", 10),
            color: None,
        };
        assert_eq!(p.line("ready"), "app_db_1   | ready");
        let c = Prefix {
            text: prefix_text("a", 1),
            color: Some("36"),
        };
        assert_eq!(c.line("x"), "\x1b[36ma | \x1b[0mx");
    }
}
