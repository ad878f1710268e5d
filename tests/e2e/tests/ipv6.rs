//! IPv6 on user-defined networks through the docker CLI and the API: `network create
//! --ipv6`, addresses and the default route inside, `--ip6`, `network connect --ip6`,
//! inspect fields, AAAA answers of the embedded DNS and /etc/hosts. Needs root.
//!
//! Only unique local and documentation-style prefixes on bridges this test's daemon
//! creates; the harness removes them with the daemon.

use berth_e2e::{Berthd, OutputExt};
use serde_json::json;

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

fn inspect(d: &Berthd, name: &str, format: &str) -> String {
    d.docker(["inspect", "-f", format, name])
        .assert_success()
        .trim()
        .to_string()
}

#[test]
fn containers_on_an_ipv6_network_get_addresses_routes_and_names() {
    let d = daemon();
    let id = d
        .docker([
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd00:b:e:1::/64",
            "v6net",
        ])
        .assert_success()
        .trim()
        .to_string();
    let net = d
        .docker([
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{json .IPAM.Config}}",
            "v6net",
        ])
        .assert_success();
    assert!(net.starts_with("true "), "{net}");
    assert!(
        net.contains(r#"{"Subnet":"fd00:b:e:1::/64","Gateway":"fd00:b:e:1::1"}"#),
        "{net}"
    );
    // The bridge holds the gateway address.
    let bridge_addrs = std::process::Command::new("ip")
        .args(["-6", "addr", "show", "dev", &format!("br-{}", &id[..12])])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bridge_addrs.stdout).contains("fd00:b:e:1::1/64"));

    d.docker([
        "run",
        "-d",
        "--name",
        "six",
        "--network",
        "v6net",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    assert_eq!(
        inspect(
            &d,
            "six",
            "{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}/{{.NetworkSettings.Networks.v6net.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.v6net.IPv6Gateway}}"
        ),
        "fd00:b:e:1::2/64 fd00:b:e:1::1"
    );
    // A second container with an address of its choosing reaches the first by its
    // IPv6 address and by name (AAAA), and sees its own in /etc/hosts.
    let out = d
        .docker([
            "run",
            "--rm",
            "--network",
            "v6net",
            "--ip6",
            "fd00:b:e:1::f00d",
            "--hostname",
            "chosen",
            "busybox",
            "sh",
            "-c",
            "ip -6 addr show dev eth0 | grep -o 'fd00:b:e:1::f00d/64'; \
             ip -6 route | grep -o '^default via fd00:b:e:1::1'; \
             ping6 -c1 -W3 fd00:b:e:1::2 >/dev/null && echo ping-ok; \
             nslookup -type=AAAA six 127.0.0.11 | grep -o 'fd00:b:e:1::2'; \
             grep -o 'fd00:b:e:1::f00d.chosen' /etc/hosts | tr '\\t' .",
        ])
        .assert_success();
    assert_eq!(
        out,
        "fd00:b:e:1::f00d/64\ndefault via fd00:b:e:1::1\nping-ok\nfd00:b:e:1::2\nfd00:b:e:1::f00d.chosen\n"
    );
    // network connect --ip6, and the address asked for echoed in IPAMConfig.
    d.docker(["run", "-d", "--name", "later", "busybox", "sleep", "100"])
        .assert_success();
    d.docker([
        "network",
        "connect",
        "--ip6",
        "fd00:b:e:1::beef",
        "v6net",
        "later",
    ])
    .assert_success();
    assert_eq!(
        inspect(
            &d,
            "later",
            "{{.NetworkSettings.Networks.v6net.IPAMConfig.IPv6Address}} {{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}"
        ),
        "fd00:b:e:1::beef fd00:b:e:1::beef"
    );
    let out = d.docker([
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00:b:e:1::beef",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    // Outbound IPv6 is masqueraded in an ip6 table of berth's own, which goes with
    // the last IPv6 network.
    let ip6_table = || {
        std::process::Command::new("nft")
            .args(["list", "table", "ip6", &d.nft_table()])
            .output()
            .unwrap()
    };
    let listed = String::from_utf8_lossy(&ip6_table().stdout).to_string();
    assert!(
        listed.contains(&format!(
            "ip6 saddr fd00:b:e:1::/64 oifname != \"br-{}\" masquerade",
            &id[..12]
        )),
        "{listed}"
    );
    d.docker(["rm", "-f", "six", "later"]).assert_success();
    d.docker(["network", "rm", "v6net"]).assert_success();
    assert!(
        !ip6_table().status.success(),
        "the ip6 table outlived the network"
    );
}

#[test]
fn an_ipv6_pool_alone_gets_an_ipv4_subnet_too_and_ipv6_without_a_pool_gets_a_ula() {
    let d = daemon();
    // docker-py's shape: EnableIPv6 with only an IPv6 pool (range and gateway given).
    let r = d.request(
        "POST",
        "/networks/create",
        Some((
            "application/json",
            json!({"Name": "pyv6", "EnableIPv6": true, "IPAM": {"Driver": "default", "Config": [
                {"Subnet": "2001:db8:389::/64", "IPRange": "2001:db8:389::/96", "Gateway": "2001:db8:389::ffff"}
            ]}})
            .to_string()
            .as_bytes(),
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let net: serde_json::Value = serde_json::from_str(
        &d.docker(["network", "inspect", "pyv6", "-f", "{{json .}}"])
            .assert_success(),
    )
    .unwrap();
    assert_eq!(net["EnableIPv6"], true);
    let config = net["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(config.len(), 2, "{config:?}");
    assert!(config[0]["Subnet"].as_str().unwrap().contains('.'));
    assert_eq!(config[1]["Gateway"], "2001:db8:389::ffff");
    assert_eq!(config[1]["IPRange"], "2001:db8:389::/96");
    // --ipv6 with no IPv6 subnet: a unique local /64 of its own.
    d.docker(["network", "create", "--ipv6", "ula"])
        .assert_success();
    let subnets = d
        .docker([
            "network",
            "inspect",
            "ula",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        ])
        .assert_success();
    let v6 = subnets
        .split_whitespace()
        .find(|s| s.contains(':'))
        .unwrap_or_default();
    assert!(v6.starts_with("fd") && v6.ends_with("::/64"), "{subnets}");
    d.docker(["network", "rm", "pyv6", "ula"]).assert_success();
}
