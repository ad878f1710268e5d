//! `berth compose` service keys that map onto container create (logging, ulimits,
//! devices, namespaces, DNS options, groups, links, volumes_from, memory and CPU
//! knobs) and secrets and configs from files, environment variables and inline
//! content: each checked in the created container through the docker CLI.
//! Needs root.

use std::path::Path;
use std::process::Output;

use berth_e2e::{Berthd, OutputExt, run_command};

/// `berth compose ARGS` run in `dir` with `env` added.
fn compose(d: &Berthd, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = d.berth_cmd();
    cmd.current_dir(dir).arg("compose").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(&mut cmd, None)
}

const PROJECT: &str = r#"
services:
  store:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    volumes:
      - /shared
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    links:
      - store:db
    volumes_from:
      - store:ro
    logging:
      driver: json-file
      options:
        max-size: 1m
        max-file: "2"
    ulimits:
      nofile:
        soft: 512
        hard: 1024
      nproc: 300
    devices:
      - /dev/null:/dev/nothing:rw
    ipc: shareable
    dns_search: [corp.example]
    dns_opt: ["ndots:3"]
    group_add: ["1234"]
    mem_reservation: 32m
    memswap_limit: 128m
    mem_limit: 64m
    oom_score_adj: 100
    cpu_shares: 512
    secrets:
      - token
      - source: password
        target: db-pass
    configs:
      - source: settings
        target: /etc/app/settings.ini
        mode: 0440
      - inline
secrets:
  token:
    file: ./token.txt
  password:
    environment: BERTH_E2E_DB_PASSWORD
configs:
  settings:
    file: ./settings.ini
  inline:
    content: |
      inline=yes
"#;

#[test]
fn service_keys_reach_the_container_and_secrets_and_configs_are_files_in_it() {
    berth_e2e::require_root();
    let d = Berthd::start();
    d.load_image("busybox");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), PROJECT).unwrap();
    std::fs::write(dir.join("token.txt"), "t0ken\n").unwrap();
    std::fs::write(dir.join("settings.ini"), "level=3\n").unwrap();
    let env = [("BERTH_E2E_DB_PASSWORD", "s3cret")];
    compose(&d, &dir, &env, &["up", "-d"]).assert_success();

    let inspect = |format: &str| {
        d.docker(["inspect", "-f", format, "keys_app_1"])
            .assert_success()
            .trim()
            .to_string()
    };
    assert_eq!(
        inspect("{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}"),
        r#"json-file {"max-file":"2","max-size":"1m"}"#
    );
    assert_eq!(inspect("{{.HostConfig.IpcMode}}"), "shareable");
    assert_eq!(
        inspect(
            "{{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwap}} {{.HostConfig.OomScoreAdj}} {{.HostConfig.CpuShares}}"
        ),
        format!("{} {} 100 512", 32 << 20, 128 << 20)
    );
    assert_eq!(
        inspect("{{json .HostConfig.VolumesFrom}}"),
        r#"["keys_store_1:ro"]"#
    );
    let links = inspect("{{json .HostConfig.Links}}");
    assert!(links.contains("keys_store_1"), "{links}");

    let exec = |cmd: &str| {
        d.docker(["exec", "keys_app_1", "sh", "-c", cmd])
            .assert_success()
    };
    assert_eq!(exec("ulimit -n; ulimit -u"), "512\n300\n");
    assert_eq!(exec("ls /dev/nothing"), "/dev/nothing\n");
    let resolv = exec("cat /etc/resolv.conf");
    assert!(
        resolv.contains("corp.example") && resolv.contains("ndots:3"),
        "{resolv}"
    );
    assert!(exec("id -G").split_whitespace().any(|g| g == "1234"));
    // The link's alias resolves to the store container.
    let store_ip = d
        .docker([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "keys_store_1",
        ])
        .assert_success();
    let hosts = exec("getent hosts db || cat /etc/hosts");
    assert!(hosts.contains(store_ip.trim()), "{hosts}");
    // volumes_from: the store's anonymous volume, read-only here.
    exec("test -d /shared && ! touch /shared/x 2>/dev/null");

    // Secrets: a file (bind) and an environment variable (written in); configs: a file
    // at its target and inline content at /<name>.
    assert_eq!(exec("cat /run/secrets/token"), "t0ken\n");
    assert_eq!(exec("cat /run/secrets/db-pass"), "s3cret");
    assert_eq!(exec("stat -c %a /run/secrets/db-pass"), "444\n");
    assert_eq!(exec("cat /etc/app/settings.ini"), "level=3\n");
    assert_eq!(exec("cat /inline"), "inline=yes\n");
    exec("! echo x > /run/secrets/token 2>/dev/null");

    // `config` shows the keys in Compose's shape, and never an environment secret's value.
    let config = compose(&d, &dir, &env, &["config"]).assert_success();
    assert!(
        config.contains("dns_search") && config.contains("ulimits"),
        "{config}"
    );
    assert!(!config.contains("s3cret"), "{config}");

    compose(&d, &dir, &env, &["down", "-v"]).assert_success();
}

#[test]
fn undefined_secrets_and_bad_option_shapes_name_the_service_and_key() {
    berth_e2e::require_root();
    let d = Berthd::start();
    let tmp = tempfile::tempdir().unwrap();
    for (file, needle) in [
        (
            "services:\n  a:\n    image: busybox\n    secrets: [nope]\n",
            "service \"a\" refers to undefined secret nope",
        ),
        (
            "services:\n  a:\n    image: busybox\n    ulimits:\n      nofile: lots\n",
            "ulimits.nofile",
        ),
        (
            "services:\n  a:\n    image: busybox\n    logging:\n      drive: x\n",
            "logging.drive",
        ),
    ] {
        std::fs::write(tmp.path().join("compose.yaml"), file).unwrap();
        let out = compose(&d, tmp.path(), &[], &["config"]);
        assert!(!out.status.success(), "{file}");
        out.assert_stderr_contains(needle);
    }
}
