//! `berth compose` against berthd: a project in a temporary directory (copied
//! from `tests/e2e/fixtures/compose/`) brought up, inspected, exec'd into,
//! scaled, reconfigured and torn down, checked through `berth compose`, the
//! official docker CLI and, when it is installed, Python docker-compose 1.29.
//! Needs root.
//!
//! Each test has its own daemon; the harness removes its containers, bridges
//! and mounts also when a test fails, and `down -v` is asserted to leave no
//! container, network or volume of the project behind.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually, run_command};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/compose")
        .join(name)
}

/// A copy of fixture `name` in a fresh temporary directory named `project`.
fn project_dir(name: &str, project: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join(project);
    std::fs::create_dir(&dir).expect("project dir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture exists") {
        let entry = entry.expect("fixture entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy fixture");
    }
    (tmp, dir)
}

/// `berth compose ARGS` run in `dir`.
fn compose(d: &Berthd, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = d.berth_cmd();
    cmd.current_dir(dir).arg("compose").args(args);
    run_command(&mut cmd, None)
}

fn daemon() -> Berthd {
    require_root();
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

fn require_root() {
    berth_e2e::require_root();
}

/// Names of the containers (all states) carrying the project label.
fn project_containers(d: &Berthd, project: &str) -> Vec<String> {
    let out = d
        .docker([
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Names}}",
        ])
        .assert_success();
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

fn container_id(d: &Berthd, name: &str) -> String {
    d.docker(["inspect", "-f", "{{.Id}}", name])
        .assert_success()
        .trim()
        .to_string()
}

#[test]
fn compose_runs_a_project_from_up_to_down() {
    let d = daemon();
    let (_tmp, dir) = project_dir("app", "shop");

    // up -d: the network, the volume and the containers, dependency first.
    let out = compose(&d, &dir, &["up", "-d"]);
    let err = out.assert_success();
    let err = format!("{err}{}", out.stderr_text());
    assert!(err.contains("Creating network \"shop_default\""), "{err}");
    assert!(err.contains("Creating volume \"shop_data\""), "{err}");
    let backend_at = err
        .find("Container shop_backend_1  Created")
        .expect("backend created");
    let web_at = err.find("Creating shop_web_1").expect("web created");
    assert!(backend_at < web_at, "backend starts before web\n{err}");
    assert_eq!(
        project_containers(&d, "shop"),
        ["shop_backend_1", "shop_store_1", "shop_web_1"],
        "the profiled service stays off"
    );
    let labels = d
        .docker(["inspect", "-f", "{{json .Config.Labels}}", "shop_web_1"])
        .assert_success();
    let labels: serde_json::Value = serde_json::from_str(labels.trim()).expect("labels JSON");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.project.working_dir"],
        dir.to_str().unwrap()
    );
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    d.docker(["inspect", "-f", "{{.Config.Env}}", "shop_web_1"])
        .assert_stdout_contains("GREETING=from-dotenv");

    // The published port answers from the host; `port` and `images` report.
    let published = compose(&d, &dir, &["port", "backend", "80"]).assert_success();
    let addr = published.trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let answered = eventually(Duration::from_secs(15), || {
        http_get(&addr).is_some_and(|body| body.contains("backend-ok"))
    });
    assert!(answered, "GET http://{addr}/ from the host");
    compose(&d, &dir, &["images"]).assert_stdout_contains("shop_backend_1");

    // ps lists the replicas; --services and -q too.
    compose(&d, &dir, &["ps"]).assert_stdout_contains("shop_backend_1");
    let services = compose(&d, &dir, &["ps", "--services"]).assert_success();
    assert_eq!(
        services.lines().collect::<Vec<_>>(),
        ["backend", "store", "web"]
    );
    assert_eq!(
        compose(&d, &dir, &["ps", "-q"])
            .assert_success()
            .lines()
            .count(),
        3
    );

    // Service-name and container-name DNS on the project network.
    let fetched = eventually(Duration::from_secs(15), || {
        compose(
            &d,
            &dir,
            &["exec", "-T", "web", "wget", "-q", "-O-", "http://backend/"],
        )
        .stdout_text()
        .contains("backend-ok")
    });
    assert!(fetched, "web reaches backend by its service name");
    compose(
        &d,
        &dir,
        &[
            "exec",
            "-T",
            "web",
            "wget",
            "-q",
            "-O-",
            "http://shop_backend_1/",
        ],
    )
    .assert_stdout_contains("backend-ok");
    // exec passes -e, -w and the exit status.
    compose(
        &d,
        &dir,
        &[
            "exec",
            "-T",
            "-e",
            "X=42",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo $X $(pwd)",
        ],
    )
    .assert_stdout_contains("42 /tmp");
    let failed = compose(&d, &dir, &["exec", "-T", "web", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3));

    // logs: prefixed with the container name.
    let logs_ok = eventually(Duration::from_secs(10), || {
        compose(&d, &dir, &["logs", "store"])
            .stdout_text()
            .contains("shop_store_1 | stored")
    });
    assert!(
        logs_ok,
        "{}",
        compose(&d, &dir, &["logs", "store"]).stdout_text()
    );

    // run --rm: a one-off container on the network, gone afterwards.
    compose(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "-T",
            "web",
            "wget",
            "-q",
            "-O-",
            "http://backend/",
        ],
    )
    .assert_stdout_contains("backend-ok");
    let run_status = compose(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "web",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(run_status.status.code(), Some(7));
    assert_eq!(
        project_containers(&d, "shop").len(),
        3,
        "run --rm leaves nothing"
    );

    // Scale up: a second backend that also answers by the service name.
    compose(&d, &dir, &["up", "-d", "--scale", "backend=2"]).assert_success();
    let names = project_containers(&d, "shop");
    assert!(names.contains(&"shop_backend_2".to_string()), "{names:?}");
    compose(
        &d,
        &dir,
        &[
            "exec",
            "-T",
            "web",
            "wget",
            "-q",
            "-O-",
            "http://shop_backend_2/",
        ],
    )
    .assert_stdout_contains("backend-ok");

    // A config change recreates only that service.
    let backend_id = container_id(&d, "shop_backend_1");
    let store_id = container_id(&d, "shop_store_1");
    let text = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        text.replace("GREETING: ${GREETING:-hello}", "GREETING: changed"),
    )
    .unwrap();
    let out = compose(&d, &dir, &["up", "-d"]);
    let err = format!("{}{}", out.assert_success(), out.stderr_text());
    assert!(err.contains("Recreating shop_web_1"), "{err}");
    assert!(!err.contains("Recreating shop_backend"), "{err}");
    assert_eq!(container_id(&d, "shop_backend_1"), backend_id);
    assert_eq!(container_id(&d, "shop_store_1"), store_id);
    d.docker(["inspect", "-f", "{{.Config.Env}}", "shop_web_1"])
        .assert_stdout_contains("GREETING=changed");
    // Scaling back down removes the surplus replica.
    assert!(
        !project_containers(&d, "shop").contains(&"shop_backend_2".to_string()),
        "up without --scale returns to one backend"
    );

    // stop / start / restart keep the containers.
    compose(&d, &dir, &["stop"]).assert_success();
    assert_eq!(
        compose(&d, &dir, &["ps", "-q"])
            .assert_success()
            .lines()
            .count(),
        0
    );
    compose(&d, &dir, &["start"]).assert_success();
    assert_eq!(
        compose(&d, &dir, &["ps", "-q"])
            .assert_success()
            .lines()
            .count(),
        3
    );
    compose(&d, &dir, &["restart", "store"]).assert_success();
    compose(&d, &dir, &["kill", "store"]).assert_success();
    let killed = eventually(Duration::from_secs(10), || {
        compose(&d, &dir, &["ps", "-q", "store"])
            .assert_success()
            .is_empty()
    });
    assert!(killed, "kill stops the store");
    compose(&d, &dir, &["rm", "-f", "store"]).assert_stderr_contains("shop_store_1");
    assert!(!project_containers(&d, "shop").contains(&"shop_store_1".to_string()));
    compose(&d, &dir, &["up", "-d", "store"]).assert_success();
    let logs_ok = eventually(Duration::from_secs(10), || {
        // First run, start, restart, and this new container: one line each.
        compose(&d, &dir, &["logs", "--no-log-prefix", "store"]).stdout_text()
            == "stored\n".repeat(4)
    });
    assert!(
        logs_ok,
        "the named volume kept the earlier lines: {:?}",
        compose(&d, &dir, &["logs", "--no-log-prefix", "store"]).stdout_text()
    );
    compose(&d, &dir, &["top", "web"]).assert_stdout_contains("sleep 3600");

    // down -v: nothing of the project remains.
    compose(&d, &dir, &["down", "-v"]).assert_success();
    assert!(project_containers(&d, "shop").is_empty());
    d.docker(["network", "inspect", "shop_default"])
        .assert_failure();
    d.docker(["volume", "inspect", "shop_data"])
        .assert_failure();
}

#[test]
fn compose_waits_for_a_dependency_to_complete() {
    let d = daemon();
    let (_tmp, dir) = project_dir("ordered", "jobs");
    let up = compose(&d, &dir, &["up", "-d", "--wait"]);
    up.assert_success();
    up.assert_stderr_contains("Container jobs_app_1  Ready");
    let finished = d
        .docker([
            "inspect",
            "-f",
            "{{.State.FinishedAt}} {{.State.ExitCode}}",
            "jobs_migrate_1",
        ])
        .assert_success();
    let started = d
        .docker(["inspect", "-f", "{{.State.StartedAt}}", "jobs_app_1"])
        .assert_success();
    let (finished_at, code) = finished.trim().split_once(' ').expect("two fields");
    assert_eq!(code, "0");
    assert!(
        finished_at < started.trim(),
        "app started at {started} before migrate finished at {finished_at}"
    );
    compose(&d, &dir, &["logs", "migrate"]).assert_stdout_contains("jobs_migrate_1 | migrated");
    compose(&d, &dir, &["down"]).assert_success();
    assert!(project_containers(&d, "jobs").is_empty());
}

#[test]
fn compose_config_resolves_and_reports_errors_like_compose() {
    let d = daemon();
    let (_tmp, dir) = project_dir("app", "cfg");
    let yaml = compose(&d, &dir, &["config"]).assert_success();
    assert!(yaml.contains("GREETING: from-dotenv"), "{yaml}");
    assert!(yaml.contains("name: cfg_data"), "{yaml}");
    assert!(
        !yaml.contains("tools"),
        "profiled services are left out\n{yaml}"
    );
    let with_profile =
        compose(&d, &dir, &["--profile", "debug", "config", "--services"]).assert_success();
    assert_eq!(
        with_profile.lines().collect::<Vec<_>>(),
        ["backend", "store", "tools", "web"]
    );

    let (_tmp2, bad) = project_dir("bad", "bad");
    let err = compose(&d, &bad, &["config"]).assert_failure();
    assert!(
        err.contains("compose.yaml: error while interpolating services.web.ports.[0]: required variable PORT is missing a value: PORT must be set"),
        "{err}"
    );
    let mut cmd = d.berth_cmd();
    cmd.current_dir(&bad)
        .env("PORT", "8080")
        .args(["compose", "config"]);
    run_command(&mut cmd, None).assert_stdout_contains("published: '8080'");
}

#[test]
fn compose_up_in_the_foreground_follows_the_logs_until_exit() {
    let d = daemon();
    let (_tmp, dir) = project_dir("oneshot", "oneshot");
    compose(&d, &dir, &["up"]).assert_stdout_contains("oneshot_hello_1 | hello from world");
    let state = d
        .docker([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "oneshot_hello_1",
        ])
        .assert_success();
    assert_eq!(state.trim(), "exited 0");
    compose(&d, &dir, &["wait", "hello"])
        .assert_stdout_contains("oneshot_hello_1 exited with code 0");
    compose(&d, &dir, &["down"]).assert_success();
    assert!(project_containers(&d, "oneshot").is_empty());
}

/// Python docker-compose 1.29 sees and manages what `berth compose` started.
#[test]
fn docker_compose_sees_berth_compose_containers() {
    let Some(docker_compose) = which("docker-compose") else {
        eprintln!("docker-compose is not on PATH: skipping the interoperability check");
        return;
    };
    let d = daemon();
    let (_tmp, dir) = project_dir("app", "interop");
    compose(&d, &dir, &["up", "-d"]).assert_success();
    let mut cmd = std::process::Command::new(&docker_compose);
    cmd.current_dir(&dir)
        .env("DOCKER_HOST", d.host())
        .args(["ps"]);
    let ps = run_command(&mut cmd, None);
    let text = ps.assert_success();
    for name in ["interop_backend_1", "interop_store_1", "interop_web_1"] {
        assert!(
            text.contains(name),
            "docker-compose ps lacks {name}\n{text}"
        );
    }
    // Same config hash: docker-compose finds nothing to recreate.
    let mut cmd = std::process::Command::new(&docker_compose);
    cmd.current_dir(&dir)
        .env("DOCKER_HOST", d.host())
        .args(["up", "-d"]);
    let up = run_command(&mut cmd, None);
    let err = up.assert_success();
    let err = format!("{err}{}", up.stderr_text());
    assert!(!err.contains("Recreating"), "{err}");
    assert!(err.contains("interop_web_1 is up-to-date"), "{err}");
    let mut cmd = std::process::Command::new(&docker_compose);
    cmd.current_dir(&dir)
        .env("DOCKER_HOST", d.host())
        .args(["down", "-v"]);
    run_command(&mut cmd, None).assert_success();
    assert!(project_containers(&d, "interop").is_empty());

    // The other way round (docker-compose's `up`, then `berth compose`) waits
    // for berthd: docker-compose 1.29's create + network connect is refused
    // with "endpoint with name ... already exists" (the daemon's part).
}

/// `GET /` over plain HTTP/1.0; the response, if any answer came.
fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}
