//! Debian's docker-compose 1.29 (Python, docker-py underneath) against berthd,
//! unchanged: it reads the API version from `GET /version`, finds its objects by label,
//! creates the project network and named volumes with labels, starts services in
//! `depends_on` order (waiting for `service_healthy`), and reads inspect fields back.
//! Each test has a project directory in a tempdir and the offline busybox image.
//! Needs root and `docker-compose` (scripts/install-deps installs it).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually, run_command};

fn compose_bin() -> &'static str {
    let found = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "docker-compose 1.29 is not installed: run scripts/install-deps (Debian package docker-compose)"
    );
    "docker-compose"
}

/// `docker-compose -p <project> <args>` in `dir`, aimed at `d`.
fn compose(d: &Berthd, dir: &Path, project: &str, args: &[&str]) -> Output {
    compose_env(d, dir, project, args, &[])
}

fn compose_env(
    d: &Berthd,
    dir: &Path,
    project: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(compose_bin());
    cmd.current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.docker_config_dir());
    // `run` and interactive `exec` hand over to the docker CLI on PATH, as on a
    // user's machine (COMPOSE_INTERACTIVE_NO_CLI's in-process attach starts the
    // container before it attaches and loses short output, with Docker too).
    for var in [
        "DOCKER_API_VERSION",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_API_VERSION",
        "COMPOSE_INTERACTIVE_NO_CLI",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["--no-ansi", "-p", project]).args(args);
    run_command(&mut cmd, None)
}

fn inspect(d: &Berthd, name: &str, format: &str) -> String {
    d.docker(["inspect", "-f", format, name])
        .assert_success()
        .trim()
        .to_string()
}

fn project_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// A web server whose healthcheck passes once it serves, a client that may only start
/// once the server is healthy, a named volume, .env and env_file values, labels.
const WEB_PROJECT: &str = r#"
version: "2.4"
services:
  web:
    image: busybox
    command: sh -c 'echo "serving $$GREETING"; hostname > /www/index.html; exec httpd -f -p 80 -h /www'
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost/"]
      interval: 1s
      retries: 3
    labels:
      tier: front
    environment:
      GREETING: ${GREETING}
      LISTED: "from-compose"
    env_file: web.env
    restart: unless-stopped
    volumes:
      - data:/data
    tmpfs: /www
  client:
    image: busybox
    command: sleep 1000
    stop_grace_period: 1s
    depends_on:
      web:
        condition: service_healthy
volumes:
  data:
"#;

fn web_project() -> tempfile::TempDir {
    project_dir(&[
        ("docker-compose.yml", WEB_PROJECT),
        (".env", "GREETING=hi-from-dotenv\n"),
        ("web.env", "FROM_FILE=yes\n"),
    ])
}

#[test]
fn compose_project_lifecycle_with_healthcheck_ordering() {
    let d = Berthd::start();
    d.load_image("busybox");
    let dir = web_project();
    let p = dir.path();

    // `config` resolves .env substitution and env_file.
    let config = compose(&d, p, "cpy", &["config"]).assert_success();
    assert!(config.contains("GREETING: hi-from-dotenv"), "{config}");
    assert!(
        config.contains("FROM_FILE: 'yes'") || config.contains("FROM_FILE: \"yes\""),
        "{config}"
    );

    compose(&d, p, "cpy", &["up", "-d"]).assert_success();
    // depends_on: service_healthy held the client back until web's first probe (1s
    // after web started) passed.
    assert_eq!(
        inspect(&d, "cpy_web_1", "{{.State.Health.Status}}"),
        "healthy"
    );
    let order = d.start_and_health_events();
    let healthy = order
        .iter()
        .position(|l| l == "cpy_web_1 health_status: healthy");
    let client = order.iter().position(|l| l == "cpy_client_1 start");
    assert!(
        healthy.is_some() && client.is_some() && healthy < client,
        "{order:?}"
    );

    let ps = compose(&d, p, "cpy", &["ps"]).assert_success();
    assert!(
        ps.contains("cpy_web_1") && ps.contains("Up (healthy)"),
        "{ps}"
    );
    assert!(ps.contains("cpy_client_1"), "{ps}");

    let logs = compose(&d, p, "cpy", &["logs", "--no-color", "web"]).assert_success();
    assert!(logs.contains("| serving hi-from-dotenv"), "{logs}");

    // environment:, env_file: and .env reach the container; exec without a TTY.
    let env = compose(
        &d,
        p,
        "cpy",
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo $GREETING $LISTED $FROM_FILE",
        ],
    )
    .assert_success();
    assert_eq!(env.trim(), "hi-from-dotenv from-compose yes");
    // The client reaches web by service name on the project network.
    let page = compose(
        &d,
        p,
        "cpy",
        &["exec", "-T", "client", "wget", "-q", "-O-", "http://web/"],
    )
    .assert_success();
    assert_eq!(
        page.trim(),
        inspect(&d, "cpy_web_1", "{{.Config.Hostname}}")
    );

    // Labels: the service's own and compose's.
    let labels = inspect(&d, "cpy_web_1", "{{json .Config.Labels}}");
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["tier"], "front");
    assert_eq!(labels["com.docker.compose.project"], "cpy");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(
        inspect(&d, "cpy_web_1", "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    let vol_labels = d
        .docker(["volume", "inspect", "-f", "{{json .Labels}}", "cpy_data"])
        .assert_success();
    assert!(
        vol_labels.contains(r#""com.docker.compose.volume":"data""#),
        "{vol_labels}"
    );

    // run --rm: a one-off container that is gone afterwards.
    let ran = compose(&d, p, "cpy", &["run", "--rm", "client", "echo", "ran"]).assert_success();
    assert_eq!(ran.trim(), "ran");
    let left = d
        .docker([
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.oneoff=True",
        ])
        .assert_success();
    assert!(left.trim().is_empty(), "{left}");

    // restart, stop, start.
    let before = inspect(&d, "cpy_web_1", "{{.State.StartedAt}}");
    compose(&d, p, "cpy", &["restart", "-t", "1", "web"]).assert_success();
    assert_ne!(inspect(&d, "cpy_web_1", "{{.State.StartedAt}}"), before);
    compose(&d, p, "cpy", &["stop", "-t", "1"]).assert_success();
    let ps = compose(&d, p, "cpy", &["ps"]).assert_success();
    assert!(ps.contains("Exit"), "{ps}");
    assert!(!ps.contains(" Up"), "{ps}");
    compose(&d, p, "cpy", &["start"]).assert_success();
    assert_eq!(inspect(&d, "cpy_client_1", "{{.State.Running}}"), "true");
    assert!(eventually(Duration::from_secs(15), || {
        inspect(&d, "cpy_web_1", "{{.State.Health.Status}}") == "healthy"
    }));

    // down keeps named volumes; down -v removes them.
    compose(&d, p, "cpy", &["down", "-t", "1"]).assert_success();
    assert!(d.docker(["ps", "-aq"]).assert_success().trim().is_empty());
    let nets = d
        .docker(["network", "ls", "--format", "{{.Name}}"])
        .assert_success();
    assert!(!nets.contains("cpy_default"), "{nets}");
    let vols = d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(vols.lines().any(|v| v == "cpy_data"), "{vols}");
    compose(&d, p, "cpy", &["up", "-d"]).assert_success();
    compose(&d, p, "cpy", &["down", "-v", "-t", "1"]).assert_success();
    let vols = d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(!vols.lines().any(|v| v == "cpy_data"), "{vols}");
    assert!(d.docker(["ps", "-aq"]).assert_success().trim().is_empty());
}

#[test]
fn compose_scale_every_replica_answers_by_service_name() {
    let d = Berthd::start();
    d.load_image("busybox");
    let dir = web_project();
    let p = dir.path();
    compose(&d, p, "cps", &["up", "-d", "--scale", "web=3"]).assert_success();
    let ps = compose(&d, p, "cps", &["ps"]).assert_success();
    for n in 1..=3 {
        assert!(ps.contains(&format!("cps_web_{n}")), "{ps}");
    }
    // The service name resolves to every replica, and each one serves.
    let lookup =
        compose(&d, p, "cps", &["exec", "-T", "client", "nslookup", "web"]).assert_success();
    let addrs: BTreeSet<String> = lookup
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect();
    assert_eq!(addrs.len(), 3, "{lookup}");
    let mut hosts = BTreeSet::new();
    for a in &addrs {
        let page = compose(
            &d,
            p,
            "cps",
            &[
                "exec",
                "-T",
                "client",
                "wget",
                "-q",
                "-O-",
                &format!("http://{a}/"),
            ],
        )
        .assert_success();
        hosts.insert(page.trim().to_string());
    }
    let expected: BTreeSet<String> = (1..=3)
        .map(|n| inspect(&d, &format!("cps_web_{n}"), "{{.Config.Hostname}}"))
        .collect();
    assert_eq!(hosts, expected);
    // And by container name.
    let page = compose(
        &d,
        p,
        "cps",
        &[
            "exec",
            "-T",
            "client",
            "wget",
            "-q",
            "-O-",
            "http://cps_web_2/",
        ],
    )
    .assert_success();
    assert_eq!(
        page.trim(),
        inspect(&d, "cps_web_2", "{{.Config.Hostname}}")
    );

    compose(&d, p, "cps", &["up", "-d", "--scale", "web=1"]).assert_success();
    let names = d.docker(["ps", "--format", "{{.Names}}"]).assert_success();
    assert!(
        !names.contains("cps_web_3") && !names.contains("cps_web_2"),
        "{names}"
    );
    compose(&d, p, "cps", &["down", "-v", "-t", "1"]).assert_success();
    assert!(d.docker(["ps", "-aq"]).assert_success().trim().is_empty());
}

const POLICY_PROJECT: &str = r#"
version: "3.7"
services:
  flaky:
    image: busybox
    command: sh -c 'echo try; exit 3'
    restart: on-failure:2
  always:
    image: busybox
    command: sh -c 'echo again; sleep 1; exit 0'
    restart: always
    stop_grace_period: 1s
  app:
    image: busybox
    command: sh -c 'echo "name=$$NAME"; exec sleep 1000'
    stop_grace_period: 1s
    environment:
      - NAME=${NAME:-default}
"#;

#[test]
fn compose_restart_policies_and_recreate_on_changed_config() {
    let d = Berthd::start();
    d.load_image("busybox");
    let dir = project_dir(&[("docker-compose.yml", POLICY_PROJECT)]);
    let p = dir.path();
    compose(&d, p, "cpr", &["up", "-d"]).assert_success();

    // on-failure:2 restarts twice, then stays exited; always keeps restarting.
    assert!(eventually(Duration::from_secs(20), || {
        inspect(&d, "cpr_flaky_1", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    }));
    let logs = compose(&d, p, "cpr", &["logs", "--no-color", "flaky"]).assert_success();
    assert_eq!(logs.matches("try").count(), 3, "{logs}");
    assert!(eventually(Duration::from_secs(20), || {
        inspect(&d, "cpr_always_1", "{{.RestartCount}}")
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
    }));

    // Up again with nothing changed leaves the container alone; a changed
    // environment recreates it, with no renamed leftover.
    let id = inspect(&d, "cpr_app_1", "{{.Id}}");
    compose(&d, p, "cpr", &["up", "-d", "app"]).assert_success();
    assert_eq!(inspect(&d, "cpr_app_1", "{{.Id}}"), id);
    compose_env(&d, p, "cpr", &["up", "-d", "app"], &[("NAME", "changed")]).assert_success();
    assert_ne!(inspect(&d, "cpr_app_1", "{{.Id}}"), id);
    let env = compose(
        &d,
        p,
        "cpr",
        &["exec", "-T", "app", "sh", "-c", "echo $NAME"],
    )
    .assert_success();
    assert_eq!(env.trim(), "changed");
    let names = d
        .docker(["ps", "-a", "--format", "{{.Names}}"])
        .assert_success();
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["cpr_always_1", "cpr_app_1", "cpr_flaky_1"]);

    compose(&d, p, "cpr", &["down", "-t", "1"]).assert_success();
    assert!(d.docker(["ps", "-aq"]).assert_success().trim().is_empty());
}

#[test]
fn compose_build_service_and_down_rmi_local() {
    let d = Berthd::start();
    d.load_image("busybox");
    let dir = project_dir(&[
        (
            "docker-compose.yml",
            "version: \"3.7\"\nservices:\n  built:\n    build: .\n    command: cat /hello\n",
        ),
        ("Dockerfile", "FROM busybox\nRUN echo built > /hello\n"),
    ]);
    let p = dir.path();
    compose(&d, p, "cpb", &["build"]).assert_success();
    compose(&d, p, "cpb", &["up", "-d", "--build"]).assert_success();
    assert!(eventually(Duration::from_secs(10), || {
        compose(&d, p, "cpb", &["logs", "--no-color"])
            .stdout_text()
            .contains("| built")
    }));
    compose(&d, p, "cpb", &["down", "--rmi", "local"]).assert_success();
    let images = d
        .docker(["images", "--format", "{{.Repository}}"])
        .assert_success();
    assert!(!images.contains("cpb_built"), "{images}");
}

const ATTACHED_PROJECT: &str = r#"
version: "2.4"
services:
  db:
    image: busybox
    command: sh -c 'sleep 2; touch /tmp/ready; echo db-ready; exec sleep 1000'
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 500ms
      start_period: 10s
  job:
    image: busybox
    command: sh -c 'echo job-done; exit 0'
    depends_on:
      db:
        condition: service_healthy
  nocheck:
    image: busybox
    command: sleep 1000
    stop_grace_period: 1s
    healthcheck:
      disable: true
"#;

#[test]
fn compose_up_attached_waits_for_health_and_exits_with_the_job() {
    let d = Berthd::start();
    d.load_image("busybox");
    let dir = project_dir(&[("docker-compose.yml", ATTACHED_PROJECT)]);
    let p = dir.path();
    // Failures inside the start period do not count: db turns healthy once ready,
    // then the job runs, and `up` ends with its exit code.
    let out = compose(&d, p, "cpa", &["up", "--exit-code-from", "job"]);
    let text = out.assert_success();
    assert!(
        text.contains("| db-ready") && text.contains("| job-done"),
        "{text}"
    );
    // Output of the attached services interleaves freely: the order is in the events.
    let order = d.start_and_health_events();
    let healthy = order
        .iter()
        .position(|l| l == "cpa_db_1 health_status: healthy");
    let job = order.iter().position(|l| l == "cpa_job_1 start");
    assert!(
        healthy.is_some() && job.is_some() && healthy < job,
        "{order:?}"
    );
    // `healthcheck: disable` is Docker's NONE test: no State.Health.
    assert_eq!(
        inspect(&d, "cpa_nocheck_1", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    assert_eq!(
        inspect(&d, "cpa_nocheck_1", "{{json .State.Health}}"),
        "null"
    );
    compose(&d, p, "cpa", &["down", "-t", "1"]).assert_success();
    assert!(d.docker(["ps", "-aq"]).assert_success().trim().is_empty());
}
