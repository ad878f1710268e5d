//! Networking through the official docker CLI and berth's: the default bridge (veth,
//! address, gateway route, inspect), published ports (DNAT and the loopback proxy,
//! `docker port`, `ps`), teardown, and a daemon restart. Needs root.
//!
//! Traffic goes only to 127.0.0.0/8, to the host's own address and to the bridge this
//! test's daemon made (all local: nothing leaves the host); each daemon has a bridge,
//! subnet and nft table of its own, removed by the harness also when a test fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, free_port, host_address, poll};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// `GET /` over plain HTTP/1.0; the response body, if any answer came.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

fn inspect(d: &Berthd, name: &str, format: &str) -> String {
    d.docker(["inspect", "-f", format, name])
        .assert_success()
        .trim()
        .to_string()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn nft_table(d: &Berthd) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &d.nft_table()])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts busybox httpd serving "hello from <name>" on port 80.
fn httpd(d: &Berthd, name: &str, extra: &[&str]) -> String {
    let script = format!(
        "mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.docker(args).assert_success().trim().to_string()
}

#[test]
fn bridge_gives_eth0_an_address_a_gateway_route_and_docker_inspect_fields() {
    let d = daemon();
    let out = d
        .docker([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -4 addr show eth0; ip route",
        ])
        .assert_success();
    let bip = d.docker([
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    let gateway = bip.assert_success().trim().to_string();
    assert!(out.contains("inet "), "{out}");
    assert!(
        out.contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    assert!(link_exists(&d.bridge()));

    let id = httpd(&d, "web", &[]);
    let veth = format!("vb{}", &id[..10]);
    assert!(link_exists(&veth), "{veth} missing");
    let ip = inspect(&d, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(
        ip.starts_with(&gateway[..gateway.rfind('.').unwrap()]),
        "{ip} vs {gateway}"
    );
    assert_eq!(inspect(&d, "web", "{{.NetworkSettings.Gateway}}"), gateway);
    let mac = inspect(&d, "web", "{{.NetworkSettings.MacAddress}}");
    assert!(mac.starts_with("02:42:"), "{mac}");
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.Networks.bridge.IPAddress}}"),
        ip
    );
    // The host reaches the container through the bridge.
    let body = poll(Duration::from_secs(10), || http_get(&format!("{ip}:80")));
    assert!(body.is_some_and(|b| b.contains("hello from web")));
    // Containers on the bridge reach each other.
    let out = d
        .docker([
            "run",
            "--rm",
            "busybox",
            "wget",
            "-q",
            "-O-",
            &format!("http://{ip}/"),
        ])
        .assert_success();
    assert_eq!(out, "hello from web\n");
    // /etc/hosts maps the container's hostname to its address, as Docker's does.
    let out = d
        .docker([
            "run",
            "--rm",
            "--hostname",
            "h1",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; cat /etc/hosts",
        ])
        .assert_success();
    let own = out
        .split_whitespace()
        .nth(3)
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    assert!(out.contains(&format!("{own}\th1\n")), "{out}");

    // --network container:NAME shares web's namespace: its loopback, its address.
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "sh",
            "-c",
            "wget -q -O- http://127.0.0.1/; ip -4 -o addr show eth0",
        ])
        .assert_success();
    assert!(out.starts_with("hello from web\n"), "{out}");
    assert!(out.contains(&format!("inet {ip}/")), "{out}");

    // --link writes the linked container into /etc/hosts; host-gateway is the gateway.
    let hosts = d
        .docker([
            "run",
            "--rm",
            "--link",
            "web:site",
            "--add-host",
            "gw:host-gateway",
            "busybox",
            "cat",
            "/etc/hosts",
        ])
        .assert_success();
    assert!(
        hosts.contains(&format!("{ip}\tsite {} web\n", &id[..12])),
        "{hosts}"
    );
    assert!(hosts.contains(&format!("{gateway}\tgw\n")), "{hosts}");

    // --mac-address sets eth0's address.
    let out = d
        .docker([
            "run",
            "--rm",
            "--mac-address",
            "02:42:de:ad:be:ef",
            "busybox",
            "cat",
            "/sys/class/net/eth0/address",
        ])
        .assert_success();
    assert_eq!(out, "02:42:de:ad:be:ef\n");

    let sandbox = inspect(&d, "web", "{{.NetworkSettings.SandboxKey}}");
    assert!(std::path::Path::new(&sandbox).exists(), "{sandbox}");
    d.docker(["rm", "-f", "web"]).assert_success();
    assert!(
        !std::path::Path::new(&sandbox).exists(),
        "{sandbox} left behind"
    );
    assert!(!link_exists(&veth), "{veth} left behind");
}

#[test]
fn published_port_is_reachable_on_loopback_and_gateway_and_listed() {
    let d = daemon();
    let port = free_port();
    let spec = format!("{port}:80");
    httpd(&d, "pub", &["-p", &spec]);
    let loopback = format!("127.0.0.1:{port}");
    let body = poll(Duration::from_secs(10), || http_get(&loopback));
    assert!(
        body.is_some_and(|b| b.contains("hello from pub")),
        "no answer on {loopback}"
    );
    let gateway = inspect(&d, "pub", "{{.NetworkSettings.Gateway}}");
    let via_gw = format!("{gateway}:{port}");
    let body = poll(Duration::from_secs(10), || http_get(&via_gw));
    assert!(
        body.is_some_and(|b| b.contains("hello from pub")),
        "no answer on {via_gw}"
    );
    assert!(
        nft_table(&d).contains(&format!("dport {port} dnat")),
        "{}",
        nft_table(&d)
    );

    let out = d.docker(["port", "pub"]).assert_success();
    assert_eq!(out, format!("80/tcp -> 0.0.0.0:{port}\n"));
    let out = d.berth(["port", "pub", "80"]).assert_success();
    assert_eq!(out, format!("0.0.0.0:{port}\n"));
    let ps = d
        .docker(["ps", "--format", "{{.Ports}}", "--filter", "name=pub"])
        .assert_success();
    assert_eq!(ps.trim(), format!("0.0.0.0:{port}->80/tcp"));

    // The same host port again: Docker's error.
    let out = d.docker(["run", "-d", "-p", &spec, "busybox", "sleep", "60"]);
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains(&format!(
            "Bind for 0.0.0.0:{port} failed: port is already allocated"
        )),
        "{}",
        out.stderr_text()
    );

    // A random host port (-p 80 and -P over EXPOSE).
    httpd(&d, "rnd", &["-p", "80", "--expose", "81", "-P"]);
    let out = d.docker(["port", "rnd", "80/tcp"]).assert_success();
    let host_port = out.trim().rsplit(':').next().unwrap().to_string();
    assert_ne!(host_port, "0");
    let addr = format!("127.0.0.1:{host_port}");
    let body = poll(Duration::from_secs(10), || http_get(&addr));
    assert!(body.is_some_and(|b| b.contains("hello from rnd")));
    assert!(
        d.docker(["port", "rnd", "81"])
            .assert_success()
            .contains("0.0.0.0:")
    );

    // Stop closes the port and removes the rule.
    d.docker(["stop", "-t", "1", "pub"]).assert_success();
    assert!(http_get(&loopback).is_none());
    assert!(!nft_table(&d).contains(&format!("dport {port} dnat")));
    // Started again, it is published again.
    d.docker(["start", "pub"]).assert_success();
    let body = poll(Duration::from_secs(10), || http_get(&loopback));
    assert!(body.is_some_and(|b| b.contains("hello from pub")));
}

#[test]
fn published_ports_survive_a_daemon_restart_and_dead_containers_are_cleaned() {
    let mut d = daemon();
    let port = free_port();
    let (subnet, prefix) = free_subnet();
    d.docker(["network", "create", "--subnet", &subnet, "keep"])
        .assert_success();
    httpd(&d, "live", &["-p", &format!("127.0.0.1:{port}:80")]);
    d.docker([
        "run",
        "-d",
        "--name",
        "named",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "600",
    ])
    .assert_success();
    d.docker(["run", "-d", "--name", "dies", "busybox", "sleep", "600"])
        .assert_success();
    let dies_ns = inspect(&d, "dies", "{{.NetworkSettings.SandboxKey}}");
    let dies_pid = inspect(&d, "dies", "{{.State.Pid}}");
    let loopback = format!("127.0.0.1:{port}");
    assert!(poll(Duration::from_secs(10), || http_get(&loopback)).is_some());

    d.kill9();
    // The container (started by this test) dies while the daemon is down.
    Command::new("kill")
        .args(["-9", &dies_pid])
        .status()
        .expect("kill");
    d.start_again();
    let body = poll(Duration::from_secs(10), || http_get(&loopback));
    assert!(
        body.is_some_and(|b| b.contains("hello from live")),
        "port not restored"
    );
    let table = nft_table(&d);
    assert_eq!(
        table.matches(&format!("dport {port} dnat")).count(),
        1,
        "{table}"
    );
    // The embedded DNS server answers again for the container that kept running.
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "keep",
            "busybox",
            "nslookup",
            "named",
        ])
        .assert_success();
    assert!(out.contains(&format!("{prefix}.")), "{out}");
    let gone = poll(Duration::from_secs(10), || {
        (!std::path::Path::new(&dies_ns).exists()).then_some(())
    });
    assert!(gone.is_some(), "{dies_ns} left after the container died");
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.Running}}", "dies"])
            .assert_success()
            .trim(),
        "false"
    );
}

/// A /24 no route on the host covers, in a range apart from the harness's default
/// bridges, for `network create --subnet`.
fn free_subnet() -> (String, String) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let start = std::process::id().wrapping_mul(31);
    loop {
        let n = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 2048;
        let (b, c) = (216 + n / 256, n % 256);
        let dest = u32::from_ne_bytes([10, b as u8, c as u8, 0]);
        if !routes.contains(&format!("\t{dest:08X}\t")) {
            return (format!("10.{b}.{c}.0/24"), format!("10.{b}.{c}"));
        }
    }
}

#[test]
fn user_network_containers_find_each_other_by_name_and_alias() {
    let d = daemon();
    let (subnet, prefix) = free_subnet();
    let id = d
        .docker([
            "network", "create", "--subnet", &subnet, "--label", "app=demo", "appnet",
        ])
        .assert_success()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ls = d
        .docker(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .assert_success();
    assert!(ls.contains("appnet bridge"), "{ls}");
    assert!(ls.contains("bridge bridge") && ls.contains("host host") && ls.contains("none null"));
    let bridge_dev = format!("br-{}", &id[..12]);
    assert!(link_exists(&bridge_dev));

    httpd(
        &d,
        "web",
        &["--network", "appnet", "--network-alias", "www"],
    );
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    assert!(ip.starts_with(&prefix), "{ip}");
    // By name and by alias, through the embedded DNS server.
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf; nslookup web; wget -q -O- http://www/",
        ])
        .assert_success();
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(
        out.contains(&format!("Address: {ip}")) || out.contains(&format!("Address 1: {ip}")),
        "{out}"
    );
    assert!(out.ends_with("hello from web\n"), "{out}");
    // A renamed container answers to its new name.
    d.docker(["rename", "web", "site"]).assert_success();
    let out = d.docker([
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "site",
    ]);
    assert!(out.status.success(), "{}", out.stderr_text());

    // --ip picks the address.
    let fixed = format!("{prefix}.50");
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "appnet",
            "--ip",
            &fixed,
            "busybox",
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .assert_success();
    assert!(out.contains(&format!("inet {fixed}/24")), "{out}");

    let containers = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "appnet",
        ])
        .assert_success();
    assert_eq!(containers.trim(), "site");
    let out = d.docker(["network", "rm", "appnet"]);
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("has active endpoints"),
        "{}",
        out.stderr_text()
    );

    // Another network cannot reach it; connecting a container to appnet can, and
    // disconnecting cuts it off again. `other` reports what it sees in its log.
    let probe = format!(
        "while true; do if timeout 1 wget -q -O /dev/null http://{ip}/; then echo up; else echo down; fi; sleep 0.3; done"
    );
    d.docker([
        "run", "-d", "--name", "other", "busybox", "sh", "-c", &probe,
    ])
    .assert_success();
    let last = |d: &Berthd| {
        let logs = d.docker(["logs", "other"]).stdout_text();
        logs.lines().last().map(str::to_string)
    };
    let seen = |want: &'static str| {
        poll(Duration::from_secs(15), || {
            (last(&d).as_deref() == Some(want)).then_some(())
        })
    };
    assert!(seen("down").is_some(), "the default bridge reached appnet");
    d.docker(["network", "connect", "--alias", "o2", "appnet", "other"])
        .assert_success();
    assert!(seen("up").is_some(), "connected container cannot reach web");
    let filtered = d
        .docker(["ps", "--filter", "network=appnet", "--format", "{{.Names}}"])
        .assert_success();
    assert!(filtered.lines().any(|l| l == "other"), "{filtered}");
    let nets = inspect(
        &d,
        "other",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert_eq!(nets, "appnet bridge");
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "nslookup",
            "o2",
        ])
        .assert_success();
    assert!(out.contains(&format!("{prefix}.")), "{out}");
    d.docker(["network", "disconnect", "appnet", "other"])
        .assert_success();
    assert!(
        seen("down").is_some(),
        "disconnected container still reaches web"
    );

    d.docker(["rm", "-f", "site", "other"]).assert_success();
    d.docker(["network", "rm", "appnet"]).assert_success();
    assert!(!link_exists(&bridge_dev), "{bridge_dev} left behind");
    let out = d.docker(["network", "inspect", "appnet"]);
    assert!(
        out.stderr_text().contains("network appnet not found"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn the_networks_mtu_is_the_bridges_and_every_containers() {
    let d = daemon();
    let (subnet, _) = free_subnet();
    let id = d
        .docker([
            "network",
            "create",
            "--subnet",
            &subnet,
            "-o",
            "com.docker.network.driver.mtu=1400",
            "smallmtu",
        ])
        .assert_success()
        .trim()
        .to_string();
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "smallmtu",
            "busybox",
            "cat",
            "/sys/class/net/eth0/mtu",
        ])
        .assert_success();
    assert_eq!(out, "1400\n");
    let bridge = std::fs::read_to_string(format!("/sys/class/net/br-{}/mtu", &id[..12])).unwrap();
    assert_eq!(bridge.trim(), "1400");
    // The default network keeps the kernel's default.
    let out = d
        .docker(["run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu"])
        .assert_success();
    assert_eq!(out, "1500\n");
    d.docker(["network", "rm", "smallmtu"]).assert_success();
}

#[test]
fn network_prune_removes_unused_networks_and_internal_has_no_way_out() {
    let d = daemon();
    let (s1, _) = free_subnet();
    let (s2, p2) = free_subnet();
    d.docker(["network", "create", "--subnet", &s1, "unused"])
        .assert_success();
    d.docker(["network", "create", "--internal", "--subnet", &s2, "inner"])
        .assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "inner",
            "busybox",
            "sh",
            "-c",
            "ip -4 addr show eth0; ip route",
        ])
        .assert_success();
    assert!(out.contains(&format!("inet {p2}.")), "{out}");
    assert!(
        !out.contains("default via"),
        "internal network has a default route: {out}"
    );
    let out = d.docker(["network", "prune", "-f"]).assert_success();
    assert!(out.contains("unused") && out.contains("inner"), "{out}");
    let ls = d.docker(["network", "ls", "-q"]).assert_success();
    assert_eq!(ls.lines().count(), 3, "{ls}");
    let out = d.docker(["network", "rm", "bridge"]);
    assert!(
        out.stderr_text().contains("pre-defined network"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn berth_network_commands_match_docker() {
    let d = daemon();
    let (subnet, prefix) = free_subnet();
    let id = d
        .berth([
            "network", "create", "--subnet", &subnet, "--label", "tier=db", "bnet",
        ])
        .assert_success()
        .trim()
        .to_string();
    for args in [
        vec!["network", "ls"],
        vec!["network", "ls", "-q"],
        vec!["network", "ls", "--no-trunc", "--filter", "label=tier=db"],
        vec![
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            "bnet",
        ],
    ] {
        assert_eq!(
            d.berth(&args).assert_success(),
            d.docker(&args).assert_success(),
            "{args:?}"
        );
    }
    let ls = d
        .berth(["network", "ls", "--filter", "label=tier=db", "-q"])
        .assert_success();
    assert_eq!(ls.trim(), &id[..12]);

    d.berth([
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "bnet",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "300",
    ])
    .assert_success();
    let out = d
        .berth([
            "run",
            "--rm",
            "--network",
            "bnet",
            "busybox",
            "nslookup",
            "database",
        ])
        .assert_success();
    assert!(out.contains(&format!("{prefix}.")), "{out}");
    d.berth(["run", "-d", "--name", "app", "busybox", "sleep", "300"])
        .assert_success();
    let fixed = format!("{prefix}.77");
    d.berth([
        "network", "connect", "--ip", &fixed, "--alias", "api", "bnet", "app",
    ])
    .assert_success();
    let ip = d
        .docker([
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bnet.IPAddress}}",
            "app",
        ])
        .assert_success();
    assert_eq!(ip.trim(), fixed);
    let out = d
        .berth([
            "run",
            "--rm",
            "--network",
            "bnet",
            "busybox",
            "nslookup",
            "api",
        ])
        .assert_success();
    assert!(out.contains(&fixed), "{out}");
    d.berth(["network", "disconnect", "bnet", "app"])
        .assert_success();
    let out = d.berth(["network", "rm", "bnet"]);
    assert!(
        out.stderr_text().contains("has active endpoints"),
        "{}",
        out.stderr_text()
    );
    d.berth(["rm", "-f", "db", "app"]).assert_success();
    assert_eq!(
        d.berth(["network", "rm", "bnet"]).assert_success(),
        "bnet\n"
    );
    let out = d.berth(["network", "prune", "-f"]).assert_success();
    assert_eq!(out, "");
}

/// A static UDP echo server built for the test (busybox has no UDP tool), in the
/// daemon's directory so the harness removes it.
fn udp_echo_binary(d: &Berthd) -> std::path::PathBuf {
    let src = d.root().join("udpecho.c");
    std::fs::write(
        &src,
        r#"#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    char buf[2048];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) sendto(s, buf, n, 0, (struct sockaddr *)&peer, len);
    }
}
"#,
    )
    .unwrap();
    let bin = d.root().join("udpecho");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc runs (apt-get install gcc libc6-dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Sends `message` to `addr` over UDP; the echoed datagram, if one came back.
fn udp_echo(addr: &str, message: &str) -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.send_to(message.as_bytes(), addr).ok()?;
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

#[test]
fn udp_ports_are_published_on_loopback_and_on_the_host_s_own_address() {
    let d = daemon();
    let echo = udp_echo_binary(&d);
    let (only_loopback, all) = (free_udp_port(), free_udp_port());
    d.docker([
        "run",
        "-d",
        "--name",
        "udp",
        "-v",
        &format!("{}:/udpecho:ro", echo.display()),
        "-p",
        &format!("127.0.0.1:{only_loopback}:5000/udp"),
        "-p",
        &format!("{all}:5000/udp"),
        "busybox",
        "/udpecho",
        "5000",
    ])
    .assert_success();
    for addr in [
        format!("127.0.0.1:{only_loopback}"),
        format!("127.0.0.1:{all}"),
        format!("{}:{all}", host_address()),
    ] {
        let reply = poll(Duration::from_secs(10), || udp_echo(&addr, "ping"));
        assert_eq!(reply.as_deref(), Some("ping"), "no echo through {addr}");
    }
    let ports = d.docker(["port", "udp"]).assert_success();
    let mut lines: Vec<&str> = ports.lines().collect();
    lines.sort_unstable();
    let (a, b) = (
        format!("5000/udp -> 0.0.0.0:{all}"),
        format!("5000/udp -> 127.0.0.1:{only_loopback}"),
    );
    assert_eq!(lines, [a.as_str(), b.as_str()]);
    assert!(
        nft_table(&d).contains(&format!("udp dport {all} dnat")),
        "{}",
        nft_table(&d)
    );
    d.docker(["rm", "-f", "udp"]).assert_success();
    assert!(!nft_table(&d).contains(&format!("udp dport {all}")));
}

#[test]
fn published_tcp_port_answers_on_the_host_s_own_address() {
    let d = daemon();
    let port = free_port();
    httpd(&d, "own", &["-p", &format!("{port}:80")]);
    let addr = format!("{}:{port}", host_address());
    let body = poll(Duration::from_secs(10), || http_get(&addr));
    assert!(
        body.is_some_and(|b| b.contains("hello from own")),
        "no answer on {addr}"
    );
    d.docker(["rm", "-f", "own"]).assert_success();
}

/// Asks 127.0.0.11 inside `pid`'s network namespace (entered with `nsenter -n` from
/// the host: busybox's nslookup has no TCP) for `name`'s `qtype` over `transport`
/// ("udp" or "tcp"); prints "rcode ancount tc".
fn ask_embedded_dns(pid: &str, transport: &str, name: &str, qtype: u16) -> String {
    let script = r#"
import socket, struct, sys
transport, name, qtype = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
q += struct.pack(">HH", qtype, 1)
if transport == "tcp":
    s = socket.create_connection(("127.0.0.11", 53), timeout=20)
    s.sendall(struct.pack(">H", len(q)) + q)
    data = b""
    while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    r = data[2:]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(20)
    s.sendto(q, ("127.0.0.11", 53))
    r = s.recv(4096)
print(r[3] & 15, struct.unpack(">H", r[6:8])[0], (r[2] >> 1) & 1)
"#;
    let out = Command::new("nsenter")
        .args(["-n", "-t", pid, "python3", "-c", script, transport, name])
        .arg(qtype.to_string())
        .output()
        .expect("run nsenter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn embedded_dns_answers_over_tcp_and_aaaa_of_a_known_name_is_empty_noerror() {
    let d = daemon();
    let (subnet, _) = free_subnet();
    d.docker(["network", "create", "--subnet", &subnet, "dnsnet"])
        .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "600",
    ])
    .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "dnsnet",
        "busybox",
        "sleep",
        "600",
    ])
    .assert_success();
    let pid = inspect(&d, "client", "{{.State.Pid}}");
    // A over UDP and over TCP: NOERROR, one record, not truncated.
    assert_eq!(ask_embedded_dns(&pid, "udp", "web", 1), "0 1 0");
    assert_eq!(ask_embedded_dns(&pid, "tcp", "web", 1), "0 1 0");
    // AAAA of a known name: NOERROR without records (NXDOMAIN would make musl and
    // glibc give up on the A record they asked for in parallel).
    assert_eq!(ask_embedded_dns(&pid, "udp", "web", 28), "0 0 0");
    assert_eq!(ask_embedded_dns(&pid, "tcp", "web", 28), "0 0 0");
    // An unknown container name that no upstream knows either is not NOERROR.
    let unknown = ask_embedded_dns(&pid, "tcp", "no-such-container.invalid", 1);
    assert!(!unknown.starts_with("0 "), "{unknown}");
    d.docker(["rm", "-f", "web", "client"]).assert_success();
    d.docker(["network", "rm", "dnsnet"]).assert_success();
}
