//! `pause`, `unpause`, `top`, `update` and `stats`: commands about a running
//! container's processes and cgroup limits.

use std::collections::HashMap;

use clap::Args;
use futures_util::StreamExt;
use futures_util::future::join_all;
use gtmpl::Value;
use hyper::Method;
use serde_json::{Value as Json, json};

use super::values;
use crate::client::{body_stream, path_escape, with_query};
use crate::commands::{Ctx, joined_errors, report_each};
use crate::format::tabwriter::TabWriter;
use crate::format::template::{RowFormatter, row};
use crate::format::units;

/// Options of `pause` and `unpause`.
#[derive(Args, Debug)]
#[command(override_usage = "CONTAINER [CONTAINER...]")]
pub(crate) struct PauseArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `pause` (`unpause` when `resume`): each name printed on success.
///
/// # Errors
/// The joined errors of the containers that failed.
pub(crate) async fn pause(ctx: &Ctx, a: PauseArgs, resume: bool) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let action = if resume { "unpause" } else { "pause" };
    let results = join_all(a.args.iter().map(|name| {
        let path = format!("/containers/{}/{action}", path_escape(name));
        async move { ctx.client.call_json(Method::POST, &path, None).await }
    }))
    .await;
    report_each(ctx, &a.args, results, false)
}

/// Options of `top`.
#[derive(Args, Debug)]
#[command(override_usage = "CONTAINER [ps OPTIONS]")]
pub(crate) struct TopArgs {
    #[arg(hide = true, allow_hyphen_values = true, trailing_var_arg = true)]
    args: Vec<String>,
}

/// `top CONTAINER [ps OPTIONS]`: the daemon runs `ps` and keeps the container's rows.
///
/// # Errors
/// Daemon errors.
pub(crate) async fn top(ctx: &Ctx, a: TopArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut params = Vec::new();
    if a.args.len() > 1 {
        params.push(("ps_args", a.args[1..].join(" ")));
    }
    let path = with_query(
        &format!("/containers/{}/top", path_escape(&a.args[0])),
        &params,
    );
    let top = ctx.client.get_json(&path).await?;
    // docker's tabwriter: minimum width 20, padding 3.
    let mut w = TabWriter::new(20, 3);
    let strings = |v: &Json| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect()
    };
    w.write(&format!("{}\n", strings(&top["Titles"]).join("\t")));
    for p in top["Processes"].as_array().into_iter().flatten() {
        w.write(&format!("{}\n", strings(p).join("\t")));
    }
    ctx.print(&w.flush())?;
    Ok(())
}

/// Options of `update`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] CONTAINER [CONTAINER...]")]
pub(crate) struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = values::go_u16)]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", value_parser = values::go_i64)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", value_parser = values::go_i64)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = values::go_i64)]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = values::parse_cpus)]
    cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = values::ram_in_bytes)]
    memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = values::ram_in_bytes)]
    memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = values::mem_swap_bytes)]
    memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", value_parser = values::go_i64)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    restart: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `update`: the same new limits for every container named.
///
/// # Errors
/// No flag given, a bad restart policy, the joined daemon errors.
pub(crate) async fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<()> {
    ctx.usage.min_args(&a.args, 1)?;
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: Json| {
        body.insert(k.to_string(), v);
    };
    if let Some(v) = a.blkio_weight {
        set("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        set("CpuShares", json!(v));
    }
    if let Some(v) = a.cpus {
        set("NanoCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("CpusetMems", json!(v));
    }
    if let Some(v) = a.memory {
        set("Memory", json!(v));
    }
    if let Some(v) = a.memory_reservation {
        set("MemoryReservation", json!(v));
    }
    if let Some(v) = a.memory_swap {
        set("MemorySwap", json!(v));
    }
    if let Some(v) = a.pids_limit {
        set("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        let (name, count) = values::parse_restart_policy(r).map_err(|e| anyhow::anyhow!(e))?;
        set(
            "RestartPolicy",
            json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    if body.is_empty() {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let body = Json::Object(body);
    let results = join_all(a.args.iter().map(|name| {
        let path = format!("/containers/{}/update", path_escape(name));
        let body = &body;
        async move { ctx.client.call_json(Method::POST, &path, Some(body)).await }
    }))
    .await;
    for v in results.iter().flatten() {
        for w in v["Warnings"].as_array().into_iter().flatten() {
            eprintln!("{}", w.as_str().unwrap_or(""));
        }
    }
    report_each(ctx, &a.args, results, false)
}

/// Options of `stats`.
#[derive(Args, Debug)]
#[command(override_usage = "[OPTIONS] [CONTAINER...]")]
pub(crate) struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

const STATS_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// `stats`: one table of every container's latest sample; streaming redraws it each
/// second, `--no-stream` prints it once.
///
/// # Errors
/// Daemon errors, a bad template.
pub(crate) async fn stats(ctx: &Ctx, a: StatsArgs) -> anyhow::Result<()> {
    let names: Vec<String> = if a.args.is_empty() {
        let path = if a.all {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        };
        let list = ctx.client.get_json(path).await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.args.clone()
    };
    let format = a.format.clone().unwrap_or_else(|| STATS_FORMAT.to_string());
    let formatter = RowFormatter::new(&format)?.with_go_type("*formatter.statsContext");
    let rows_of = |latest: &HashMap<String, Json>, order: &[String]| -> Vec<Value> {
        order
            .iter()
            .filter_map(|n| latest.get(n))
            .map(|s| stats_row(s, a.no_trunc))
            .collect()
    };
    if a.no_stream {
        let results = join_all(names.iter().map(|name| {
            let path = format!("/containers/{}/stats?stream=0", path_escape(name));
            async move { ctx.client.get_json(&path).await }
        }))
        .await;
        let mut latest = HashMap::new();
        let mut errors = Vec::new();
        for (name, r) in names.iter().zip(results) {
            match r {
                Ok(v) => {
                    latest.insert(name.clone(), v);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(joined_errors(&errors).into());
        }
        ctx.print(&formatter.render(STATS_HEADERS, &rows_of(&latest, &names))?)?;
        return Ok(());
    }
    // Streaming: one task per container feeds the latest sample; the table is redrawn
    // each time a sample arrives, as docker's does.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Json)>(16);
    for name in &names {
        let tx = tx.clone();
        let name = name.clone();
        let path = format!("/containers/{}/stats?stream=1", path_escape(&name));
        let resp = ctx
            .client
            .send(Method::GET, &path, crate::client::empty(), None)
            .await?;
        tokio::spawn(async move {
            let mut body = std::pin::pin!(body_stream(resp));
            let mut pending = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&line)
                        && tx.send((name.clone(), v)).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    // Interrupt ends the stream. Handled here rather than left to the default action,
    // which a process started with SIGINT ignored (a background job) never takes.
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut latest = HashMap::new();
    loop {
        let (name, sample) = tokio::select! {
            next = rx.recv() => match next {
                Some(next) => next,
                None => return Ok(()),
            },
            _ = &mut interrupted => std::process::exit(130),
        };
        latest.insert(name, sample);
        let table = formatter.render(STATS_HEADERS, &rows_of(&latest, &names))?;
        // Clear the screen and home the cursor, then the table.
        ctx.print(&format!("\x1b[2J\x1b[H{table}"))?;
    }
}

/// One `docker stats` row from a stats JSON, with docker's arithmetic.
fn stats_row(s: &Json, no_trunc: bool) -> Value {
    let u = |v: &Json| v.as_u64().unwrap_or(0) as f64;
    let cpu_delta = u(&s["cpu_stats"]["cpu_usage"]["total_usage"])
        - u(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let system_delta =
        u(&s["cpu_stats"]["system_cpu_usage"]) - u(&s["precpu_stats"]["system_cpu_usage"]);
    let mut cpus = u(&s["cpu_stats"]["online_cpus"]);
    if cpus == 0.0 {
        cpus = s["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    let cpu = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = u(&mem["usage"]);
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| mem["stats"][*k].as_u64())
        .map(|v| v as f64)
        .filter(|v| *v < usage);
    let used = usage - inactive.unwrap_or(0.0);
    let limit = u(&mem["limit"]);
    let mem_perc = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").chars().next() {
            Some('r' | 'R') => read += u(&e["value"]),
            Some('w' | 'W') => write += u(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    };
    row(&[
        ("ID", id.to_string()),
        ("Container", id.to_string()),
        (
            "Name",
            s["name"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
        ),
        ("CPUPerc", format!("{cpu:.2}%")),
        (
            "MemUsage",
            format!("{} / {}", units::bytes_size(used), units::bytes_size(limit)),
        ),
        ("MemPerc", format!("{mem_perc:.2}%")),
        (
            "NetIO",
            format!(
                "{} / {}",
                units::human_size_with_precision(rx, 3),
                units::human_size_with_precision(tx, 3)
            ),
        ),
        (
            "BlockIO",
            format!(
                "{} / {}",
                units::human_size_with_precision(read, 3),
                units::human_size_with_precision(write, 3)
            ),
        ),
        (
            "PIDs",
            s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_row_follows_dockers_arithmetic() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000u64}, "system_cpu_usage": 200_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000u64}, "system_cpu_usage": 100_000_000u64},
            "memory_stats": {"usage": 3_145_728u64, "limit": 10_485_760u64, "stats": {"total_inactive_file": 1_048_576u64}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
            "pids_stats": {"current": 3},
        });
        let r = stats_row(&s, false);
        let f = RowFormatter::new("{{.ID}}|{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}")
            .unwrap();
        assert_eq!(
            f.render(STATS_HEADERS, &[r]).unwrap(),
            "0123456789ab|web|4.00%|2MiB / 10MiB|20.00%|1kB / 2kB|4.1kB / 8.19kB|3\n"
        );
    }
}
