//! Healthchecks through the docker CLI and berth's: `--health-*` flags, `State.Health`
//! in inspect, `ps` status words and the `health=` filter, `health_status` events, the
//! probe timeout, probes ending with the container, state kept across a daemon restart,
//! and an image's HEALTHCHECK with `--no-healthcheck`. Needs root.

use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually};

fn health_status(d: &Berthd, name: &str) -> String {
    d.docker(["inspect", "-f", "{{.State.Health.Status}}", name])
        .stdout_text()
        .trim()
        .to_string()
}

fn health_json(d: &Berthd, name: &str) -> serde_json::Value {
    let out = d
        .docker(["inspect", "-f", "{{json .State.Health}}", name])
        .assert_success();
    serde_json::from_str(out.trim()).unwrap()
}

#[track_caller]
fn wait_status(d: &Berthd, name: &str, want: &str) {
    let ok = eventually(Duration::from_secs(20), || health_status(d, name) == want);
    assert!(ok, "{name} never became {want}: {}", health_json(d, name));
}

fn ps_names(d: &Berthd, filter: &str) -> Vec<String> {
    d.docker(["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
        .assert_success()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn passing_check_turns_healthy_with_docker_s_state_ps_words_filter_and_event() {
    let d = Berthd::start();
    d.load_image("busybox");
    d.docker([
        "run",
        "-d",
        "--name",
        "good",
        "--health-cmd",
        "echo ok",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    d.docker(["run", "-d", "--name", "plain", "busybox", "sleep", "100"])
        .assert_success();
    wait_status(&d, "good", "healthy");

    let h = health_json(&d, "good");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "ok\n", "{h}");
    assert!(last["Start"].as_str().unwrap().starts_with("20"), "{h}");

    // No check: no State.Health at all, and `health=none`.
    let plain = d
        .docker(["inspect", "-f", "{{json .State.Health}}", "plain"])
        .assert_success();
    assert_eq!(plain.trim(), "null");

    let status = d
        .docker(["ps", "--filter", "name=good", "--format", "{{.Status}}"])
        .assert_success();
    assert!(status.trim().ends_with("(healthy)"), "{status}");
    assert_eq!(ps_names(&d, "health=healthy"), ["good"]);
    assert_eq!(ps_names(&d, "health=none"), ["plain"]);
    assert!(ps_names(&d, "health=unhealthy").is_empty());
    let bad = d.docker(["ps", "--filter", "health=sick"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid filter 'health=sick'"),
        "{bad:?}"
    );

    // The same through berth's CLI.
    let berth_ps = d
        .berth([
            "ps",
            "--filter",
            "health=healthy",
            "--format",
            "{{.Names}} {{.Status}}",
        ])
        .assert_success();
    assert!(berth_ps.trim().starts_with("good Up"), "{berth_ps}");
    assert!(berth_ps.trim().ends_with("(healthy)"), "{berth_ps}");

    let events = d
        .docker([
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", chrono_now() + 1),
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .assert_success();
    assert_eq!(events.trim(), "health_status: healthy good", "{events}");
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn failing_check_turns_unhealthy_after_its_retries_and_stop_ends_the_probes() {
    let d = Berthd::start();
    d.load_image("busybox");
    d.docker([
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo nope >&2; exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    let starting = d
        .docker(["ps", "--filter", "name=bad", "--format", "{{.Status}}"])
        .assert_success();
    assert!(starting.contains("(health: starting)"), "{starting}");
    assert_eq!(ps_names(&d, "health=starting"), ["bad"]);

    wait_status(&d, "bad", "unhealthy");
    let h = health_json(&d, "bad");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert_eq!(h["Log"][0]["Output"], "nope\n", "{h}");
    let status = d
        .docker([
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Status}}",
        ])
        .assert_success();
    assert!(status.trim().ends_with("(unhealthy)"), "{status}");

    // At most five results are kept.
    assert!(eventually(Duration::from_secs(15), || {
        health_json(&d, "bad")["Log"].as_array().unwrap().len() == 5
    }));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(health_json(&d, "bad")["Log"].as_array().unwrap().len(), 5);

    // Stopping the container stops its probes: the log no longer moves.
    d.docker(["stop", "-t", "0", "bad"]).assert_success();
    let after_stop = health_json(&d, "bad");
    assert_eq!(after_stop["Status"], "unhealthy");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(health_json(&d, "bad"), after_stop);
}

#[test]
fn probe_running_past_its_timeout_is_killed_and_fails_with_docker_s_message() {
    let d = Berthd::start();
    d.load_image("busybox");
    d.docker([
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo started; sleep 30",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    wait_status(&d, "slow", "unhealthy");
    let h = health_json(&d, "slow");
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], -1, "{h}");
    assert_eq!(
        first["Output"], "Health check exceeded timeout (1s): started\n",
        "{h}"
    );
    // The timed-out probes were killed: no `sleep 30` piles up in the container.
    let top = d
        .docker(["exec", "slow", "ps", "-o", "args"])
        .assert_success();
    assert!(!top.contains("sleep 30"), "{top}");
}

#[test]
fn health_log_survives_a_daemon_restart_and_probing_resumes() {
    let mut d = Berthd::start();
    d.load_image("busybox");
    d.berth([
        "run",
        "-d",
        "--name",
        "kept",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    wait_status(&d, "kept", "healthy");
    let before = health_json(&d, "kept")["Log"].as_array().unwrap().len();
    assert!(before >= 1);
    d.restart();
    // The log is still there; probes run again and the container is healthy again.
    let h = health_json(&d, "kept");
    assert!(!h["Log"].as_array().unwrap().is_empty(), "{h}");
    wait_status(&d, "kept", "healthy");
    let end = h["Log"].as_array().unwrap().last().unwrap()["End"].clone();
    assert!(eventually(Duration::from_secs(10), || {
        health_json(&d, "kept")["Log"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["End"]
            != end
    }));
}

#[test]
fn image_healthcheck_runs_unless_no_healthcheck_and_flags_override_its_fields() {
    let d = Berthd::start();
    d.load_image("busybox");
    // An image with a HEALTHCHECK, made by the create API with Docker's field names.
    let body = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sleep", "100"],
        "Healthcheck": {"Test": ["CMD-SHELL", "exit 3"], "Interval": 1_000_000_000i64, "Retries": 1},
    });
    let created = d.request(
        "POST",
        "/containers/create?name=base",
        Some(("application/json", body.to_string().as_bytes())),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    d.docker(["commit", "base", "checked:1"]).assert_success();
    let hc = d
        .docker([
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck}}",
            "checked:1",
        ])
        .assert_success();
    assert!(hc.contains("exit 3"), "{hc}");
    d.docker(["rm", "base"]).assert_success();

    d.docker(["run", "-d", "--name", "inherits", "checked:1"])
        .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "disabled",
        "--no-healthcheck",
        "checked:1",
    ])
    .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "overrides",
        "--health-cmd",
        "true",
        "checked:1",
    ])
    .assert_success();
    wait_status(&d, "inherits", "unhealthy");
    assert_eq!(health_json(&d, "inherits")["Log"][0]["ExitCode"], 3);
    // `--health-cmd` alone keeps the image's interval (1s), so this turns healthy soon.
    wait_status(&d, "overrides", "healthy");
    let disabled = d
        .docker(["inspect", "-f", "{{json .State.Health}}", "disabled"])
        .assert_success();
    assert_eq!(disabled.trim(), "null");
    assert_eq!(ps_names(&d, "health=none"), ["disabled"]);
}

#[test]
fn paused_container_is_not_probed_and_resumes_after_unpause() {
    let d = Berthd::start();
    d.load_image("busybox");
    d.docker([
        "run",
        "-d",
        "--name",
        "napper",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "100",
    ])
    .assert_success();
    wait_status(&d, "napper", "healthy");
    d.docker(["pause", "napper"]).assert_success();
    // As Docker: the monitor stops and the container reads unhealthy while paused.
    let paused = health_json(&d, "napper");
    assert_eq!(paused["Status"], "unhealthy", "{paused}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(health_json(&d, "napper")["Log"], paused["Log"]);
    d.docker(["unpause", "napper"]).assert_success();
    wait_status(&d, "napper", "healthy");
}
