//! Issue 6, pull and push, proven against Debian's `docker-registry` (the reference
//! distribution implementation) on 127.0.0.1, through the official docker CLI and
//! checked with `skopeo`, a client that shares no code with berth.
//!
//! Each test starts its own registry on a free port with a private storage directory;
//! the [`Registry`] guard kills it by PID and removes the directory also when the test
//! fails. Images go up from one berthd and come down into a second one, so a pull
//! never finds the pushed layers locally.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt, run_command};

/// A `docker-registry` process of this test, with its storage and config.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts an anonymous registry.
    fn start() -> Registry {
        Self::start_with("")
    }

    /// Starts a registry whose users are in an htpasswd file (`alice` / `s3cret`).
    fn start_with_basic_auth() -> Registry {
        Self::start_with("htpasswd")
    }

    fn start_with(auth: &str) -> Registry {
        berth_e2e::require_root();
        let dir = tempfile::tempdir().expect("temp dir");
        // A free port: bind, read it, release it; the registry takes it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if auth == "htpasswd" {
            let htpasswd = dir.path().join("htpasswd");
            let out = run_command(
                Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]),
                None,
            );
            std::fs::write(&htpasswd, out.assert_success()).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("docker-registry runs (scripts/install-deps installs it)");
        let registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // By PID: the child we started, nothing found by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skopeo(args: &[&str]) -> String {
    run_command(Command::new("skopeo").args(args), None).assert_success()
}

fn image_id(daemon: &Berthd, name: &str) -> String {
    daemon
        .docker(["image", "inspect", "--format", "{{.Id}}", name])
        .assert_success()
        .trim()
        .to_string()
}

#[test]
fn image_pushed_by_berth_is_valid_for_skopeo_and_pulls_into_another_daemon() {
    let registry = Registry::start();
    let a = Berthd::start();
    let layers = a.load_image("berth-test/layers");
    let target = format!("{}/e2e/layers:v1", registry.host());
    a.docker(["tag", &layers.reference, &target])
        .assert_success();
    let pushed = a.docker(["push", &target]).assert_success();
    assert!(pushed.contains("The push refers to repository"), "{pushed}");
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");

    // skopeo reads what berth pushed: manifest, config and every layer blob.
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    let json: serde_json::Value = serde_json::from_str(&inspect).expect("skopeo json");
    assert_eq!(
        json["Layers"].as_array().map(Vec::len),
        Some(layers.diff_ids.len())
    );
    let copy_dir = tempfile::tempdir().expect("temp dir");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("dir:{}", copy_dir.path().join("img").display()),
    ]);

    // A second daemon pulls it with the docker CLI: same image ID, same diff IDs.
    let b = Berthd::start();
    let pulled = b.docker(["pull", &target]).assert_success();
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {target}")),
        "{pulled}"
    );
    assert_eq!(image_id(&b, &target), image_id(&a, &target));
    assert_eq!(image_id(&b, &target), layers.id);
    let digests = b
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &target,
        ])
        .assert_success();
    let digest = pushed
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .expect("push printed a digest")
        .to_string();
    assert!(
        digests.contains(&format!("{}/e2e/layers@{digest}", registry.host())),
        "{digests} lacks {digest}"
    );
    b.docker(["run", "--rm", &target, "true"]).assert_success();

    // Pulled again: nothing new to fetch.
    let again = b.docker(["pull", &target]).assert_success();
    assert!(again.contains("Status: Image is up to date"), "{again}");
    assert!(!again.contains("Pull complete"), "{again}");

    // Pushed again: every blob is already there.
    let repush = a.docker(["push", &target]).assert_success();
    assert!(repush.contains("Layer already exists"), "{repush}");
    assert!(
        repush.contains(&digest),
        "the manifest digest is stable: {repush}"
    );
}

#[test]
fn push_to_another_repository_mounts_blobs_and_pull_by_digest_works() {
    let registry = Registry::start();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    let first = format!("{}/one/busybox:1", registry.host());
    let second = format!("{}/two/busybox:1", registry.host());
    a.docker(["tag", &busybox.reference, &first])
        .assert_success();
    a.docker(["push", &first]).assert_success();
    // Pull it back so the image is known in repository `one` by digest, then push it
    // to `two`: the layer is mounted, not sent again.
    let b = Berthd::start();
    b.docker(["pull", &first]).assert_success();
    b.docker(["tag", &first, &second]).assert_success();
    let out = b.docker(["push", &second]).assert_success();
    assert!(out.contains("Mounted from one/busybox"), "{out}");

    let digest = b
        .docker([
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &first,
        ])
        .assert_success();
    let by_digest = digest.trim();
    let c = Berthd::start();
    c.docker(["pull", by_digest]).assert_success();
    assert_eq!(image_id(&c, by_digest), busybox.id);
}

#[test]
fn pull_errors_name_the_missing_image_and_run_pulls_what_is_missing() {
    let registry = Registry::start();
    let a = Berthd::start();
    let missing = format!("{}/nobody/here:1", registry.host());
    let err = a.docker(["pull", &missing]).assert_failure();
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(
        err.contains("not found") || err.contains("pull access denied"),
        "{err}"
    );

    let hello = a.load_image("hello-world");
    let target = format!("{}/lib/hello:latest", registry.host());
    a.docker(["tag", &hello.reference, &target])
        .assert_success();
    a.docker(["push", &target]).assert_success();

    // `docker run` of an image the daemon lacks: the CLI pulls it on "No such image".
    let b = Berthd::start();
    let out = b.docker(["run", "--rm", &target]).assert_success();
    assert!(out.contains("Hello"), "{out}");
    assert_eq!(image_id(&b, &target), hello.id);
    // Nothing of a failed pull is left behind.
    let err = b.docker(["pull", &format!("{}/lib/hello:nope", registry.host())]);
    err.assert_failure();
    let images = b.docker(["images", "-q"]).assert_success();
    assert_eq!(images.lines().count(), 1, "{images}");
}

#[test]
fn login_with_basic_auth_lets_push_and_pull_through() {
    let registry = Registry::start_with_basic_auth();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    let target = format!("{}/private/busybox:1", registry.host());
    a.docker(["tag", &busybox.reference, &target])
        .assert_success();

    let err = a.docker(["push", &target]).assert_failure();
    assert!(
        err.contains("authentication required") || err.contains("unauthorized"),
        "{err}"
    );
    let err = a
        .docker_with_stdin(
            ["login", "-u", "alice", "--password-stdin", &registry.host()],
            b"wrong\n",
        )
        .assert_failure();
    assert!(err.contains("401 Unauthorized"), "{err}");
    a.docker_with_stdin(
        ["login", "-u", "alice", "--password-stdin", &registry.host()],
        b"s3cret\n",
    )
    .assert_success();
    a.docker(["push", &target]).assert_success();

    let b = Berthd::start();
    let err = b.docker(["pull", &target]).assert_failure();
    assert!(
        err.contains("pull access denied") || err.contains("unauthorized"),
        "{err}"
    );
    b.docker_with_stdin(
        ["login", "-u", "alice", "--password-stdin", &registry.host()],
        b"s3cret\n",
    )
    .assert_success();
    b.docker(["pull", &target]).assert_success();
    assert_eq!(image_id(&b, &target), busybox.id);
}
