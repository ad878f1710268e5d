//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: a container's published ports, from
//! its inspect's `NetworkSettings.Ports`, printed and sorted as docker prints them.

use clap::Args;

use crate::client::path_escape;
use crate::commands::Ctx;

/// Options of `port`.
#[derive(Args, Debug)]
#[command(
    override_usage = "CONTAINER [PRIVATE_PORT[/PROTO]]",
    after_long_help = "berth container port, berth port"
)]
pub(crate) struct PortArgs {
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `host:port`, with brackets for IPv6 as Go's `net.JoinHostPort`.
fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The lines `port` prints for the inspect's `Ports` map; `None` when the asked-for
/// port is not published.
fn port_lines(ports: &serde_json::Value, wanted: Option<&str>) -> Option<Vec<String>> {
    let frontends = |key: &str| -> Vec<String> {
        ports[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        join_host_port(
                            f["HostIp"].as_str().unwrap_or(""),
                            f["HostPort"].as_str().unwrap_or(""),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = match wanted {
        Some(w) => {
            let key = if w.contains('/') {
                w.to_string()
            } else {
                format!("{w}/tcp")
            };
            let f = frontends(&key);
            if f.is_empty() {
                return None;
            }
            f
        }
        None => ports
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(k, _)| frontends(k).into_iter().map(move |f| format!("{k} -> {f}")))
            .collect(),
    };
    out.sort_by(|a, b| crate::commands::volume::natural_cmp(a, b));
    Some(out)
}

/// Runs `port`.
///
/// # Errors
/// Unknown container, a bad or unpublished port.
pub(crate) async fn run(ctx: &Ctx, a: PortArgs) -> anyhow::Result<()> {
    ctx.usage.range_args(&a.args, 1, 2)?;
    let container = &a.args[0];
    let wanted = a.args.get(1).map(String::as_str);
    if let Some(w) = wanted {
        let port = w.split_once('/').map_or(w, |(p, _)| p);
        if let Err(e) = port.parse::<u16>() {
            anyhow::bail!("Error: invalid port ({port}): {e}");
        }
    }
    let c = ctx
        .client
        .get_json(&format!("/containers/{}/json", path_escape(container)))
        .await?;
    let Some(lines) = port_lines(&c["NetworkSettings"]["Ports"], wanted) else {
        anyhow::bail!(
            "Error: No public port '{}' published for {container}",
            wanted.unwrap_or("")
        );
    };
    if !lines.is_empty() {
        ctx.print(&format!("{}\n", lines.join("\n")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_follow_docker_port_output() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "443/tcp": null,
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        });
        assert_eq!(
            port_lines(&ports, None).unwrap(),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        assert_eq!(
            port_lines(&ports, Some("80")).unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert!(port_lines(&ports, Some("443")).is_none());
        assert!(port_lines(&ports, Some("53")).is_none());
    }
}
