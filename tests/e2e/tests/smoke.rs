//! Smoke tests: the daemon starts, the official docker CLI talks to it, and
//! two daemons side by side keep their state apart. If these fail, every
//! other end-to-end test will too; read these failures first.

use berth_e2e::{API_VERSION, Berthd, OutputExt};

#[test]
fn docker_version_reports_server_api_version() {
    let daemon = Berthd::start();
    let out = daemon.docker(["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(out.assert_success().trim(), API_VERSION);
}

#[test]
fn ping_carries_docker_headers() {
    let daemon = Berthd::start();
    let response = daemon.request("GET", "/_ping", None);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "OK");
    assert_eq!(response.header("Api-Version"), Some(API_VERSION));
    assert_eq!(response.header("Ostype"), Some("linux"));
}

#[test]
fn two_daemons_do_not_see_each_others_images() {
    let first = Berthd::start();
    let second = Berthd::start();
    let busybox = first.load_image("busybox");

    let listed = first
        .docker([
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .assert_success();
    assert!(
        listed.contains(&format!("{} {}", busybox.reference, busybox.id)),
        "first daemon should list {} {}:\n{listed}",
        busybox.reference,
        busybox.id
    );

    let listed = second.docker(["images", "-q"]).assert_success();
    assert_eq!(listed.trim(), "", "second daemon should have no images");
    second
        .docker(["image", "inspect", "busybox:latest"])
        .assert_failure();
}

#[test]
fn loaded_image_survives_a_restart() {
    let mut daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    daemon.restart();
    let id = daemon
        .docker(["image", "inspect", "--format", "{{.Id}}", "busybox:latest"])
        .assert_success();
    assert_eq!(id.trim(), busybox.id);
}

#[test]
fn answers_take_the_shape_of_the_requested_api_version() {
    let d = Berthd::start();
    d.load_image("busybox");
    let image = |v: &str| {
        d.request("GET", &format!("/v{v}/images/busybox/json"), None)
            .json()
    };
    let old = image("1.44");
    let new = image("1.50");
    // From 1.50 the container-only Config fields are gone; ContainerConfig stays at
    // every version for docker-compose 1.29.
    assert!(old["Config"].get("Hostname").is_some(), "{old}");
    assert!(new["Config"].get("Hostname").is_none(), "{new}");
    assert_eq!(old["Config"]["Cmd"], new["Config"]["Cmd"]);
    assert!(new.get("ContainerConfig").is_some());
    let info = |v: &str| d.request("GET", &format!("/v{v}/info"), None).json();
    assert_eq!(info("1.48")["BridgeNfIptables"], false);
    assert!(info("1.48").get("FirewallBackend").is_none());
    assert_eq!(info("1.49")["FirewallBackend"]["Driver"], "nftables");
    assert!(info("1.50").get("BridgeNfIptables").is_none());
    // The docker CLI itself: `docker info` shows the firewall backend.
    let out = d.docker(["info", "--format", "{{json .FirewallBackend}}"]);
    assert_eq!(out.assert_success().trim(), r#"{"Driver":"nftables"}"#);
}
