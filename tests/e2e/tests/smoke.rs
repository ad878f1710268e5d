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
