//! Issue 6, pull and push, proven against Debian's `docker-registry` (the reference
//! distribution implementation) on 127.0.0.1, through the official docker CLI and
//! checked with `skopeo`, a client that shares no code with berth.
//!
//! Each test starts its own registry on a free port with a private storage directory;
//! the [`Registry`] guard kills it by PID and removes the directory also when the test
//! fails. Images go up from one berthd and come down into a second one, so a pull
//! never finds the pushed layers locally.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

    /// Starts a registry that trusts tokens signed by `server`.
    fn start_with_token_auth(server: &TokenServer) -> Registry {
        Self::start_with(&format!(
            "token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
            server.port,
            server.cert.display()
        ))
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
        } else if !auth.is_empty() {
            config.push_str(&format!("auth:\n  {auth}"));
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

    /// The registry's storage directory.
    fn storage(&self) -> std::path::PathBuf {
        self._dir.path().join("data/docker/registry/v2")
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

/// The manifest digest and size a `docker push` printed (`TAG: digest: D size: N`).
fn pushed_digest(out: &str) -> (String, u64) {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[2].to_string(), words[4].parse().expect("size"))
}

#[test]
fn corrupted_layer_is_refused_and_nothing_of_it_is_kept() {
    let registry = Registry::start();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    let target = format!("{}/bad/busybox:1", registry.host());
    a.docker(["tag", &busybox.reference, &target])
        .assert_success();
    a.docker(["push", &target]).assert_success();
    // Flip one byte of the stored layer blob (the registry serves it unverified).
    let blobs = registry.storage().join("blobs/sha256");
    let mut largest: Option<(u64, std::path::PathBuf)> = None;
    for prefix in std::fs::read_dir(&blobs).expect("blob dirs") {
        for blob in std::fs::read_dir(prefix.expect("entry").path()).expect("blob dir") {
            let data = blob.expect("entry").path().join("data");
            let len = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
            if largest.as_ref().is_none_or(|(l, _)| len > *l) {
                largest = Some((len, data));
            }
        }
    }
    let (len, layer) = largest.expect("the layer blob is stored");
    let mut bytes = std::fs::read(&layer).expect("read blob");
    let middle = (len / 2) as usize;
    bytes[middle] ^= 0xff;
    std::fs::write(&layer, bytes).expect("write blob");

    let b = Berthd::start();
    let err = b.docker(["pull", &target]).assert_failure();
    assert!(err.contains("verification failed"), "{err}");
    let images = b.docker(["images", "-q"]).assert_success();
    assert!(images.trim().is_empty(), "{images}");
    let leftovers: Vec<_> = ["blobs/sha256", "snapshots", "ingest"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(b.data_root().join(d))
                .into_iter()
                .flatten()
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn index_pull_picks_the_host_platform_and_refuses_a_missing_one() {
    let registry = Registry::start();
    let a = Berthd::start();
    let hello = a.load_image("hello-world");
    let single = format!("{}/multi/hello:single", registry.host());
    a.docker(["tag", &hello.reference, &single])
        .assert_success();
    let (digest, size) = pushed_digest(&a.docker(["push", &single]).assert_success());
    // An OCI index whose amd64 and arm64 entries both name that manifest; only the
    // entry of this host's platform may be chosen.
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let other = if arch == "amd64" { "riscv64" } else { "amd64" };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
             "platform": {"os": "linux", "architecture": other}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
             "platform": {"os": "linux", "architecture": arch}},
        ]
    });
    let body = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(body.path(), index.to_string()).expect("write index");
    let url = format!("http://{}/v2/multi/hello/manifests/multi", registry.host());
    run_command(
        Command::new("curl").args([
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            &format!("@{}", body.path().display()),
            &url,
        ]),
        None,
    )
    .assert_success();

    let multi = format!("{}/multi/hello:multi", registry.host());
    let b = Berthd::start();
    let err = b
        .docker(["pull", "--platform", "linux/s390x", &multi])
        .assert_failure();
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
    b.docker(["pull", &multi]).assert_success();
    assert_eq!(image_id(&b, &multi), hello.id);
    // RepoDigests names the index, as Docker records it.
    let index_digest = format!("sha256:{}", {
        use std::io::Write;
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(index.to_string().as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("sha256sum output");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let digests = b
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &multi,
        ])
        .assert_success();
    assert!(
        digests.contains(&index_digest),
        "{digests} lacks {index_digest}"
    );
}

#[test]
fn berth_cli_logs_in_pushes_and_pulls_like_docker() {
    let registry = Registry::start_with_basic_auth();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    let target = format!("{}/cli/busybox:1", registry.host());
    a.berth(["tag", &busybox.reference, &target])
        .assert_success();
    a.berth(["push", &target]).assert_failure();
    let out = run_command(
        a.berth_cmd()
            .args(["login", "-u", "alice", "--password-stdin", &registry.host()]),
        Some(b"s3cret\n"),
    );
    out.assert_stdout_contains("Login Succeeded");
    // Stored Docker's way, so the docker CLI uses the same login.
    let config =
        std::fs::read_to_string(a.docker_config_dir().join("config.json")).expect("config.json");
    assert!(config.contains(&registry.host()), "{config}");
    let pushed = a.berth(["push", &target]).assert_success();
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");
    a.berth(["rmi", &target]).assert_success();
    let pulled = a.docker(["pull", &target]).assert_success();
    assert!(pulled.contains(&target), "{pulled}");
    let quiet = a.berth(["pull", "-q", &target]).assert_success();
    assert_eq!(quiet.trim(), target);
    // Off a terminal (as here), progress is plain lines as docker prints them to a
    // pipe: one per layer status, no bars, no escape sequences or carriage returns.
    assert!(pushed.contains(": Pushed\n"), "{pushed}");
    a.berth(["rmi", &target]).assert_success();
    let plain = a.berth(["pull", &target]).assert_success();
    assert!(
        // busybox's layer is still in the store (the loaded image): "Already exists".
        plain.contains(": Already exists\n") && plain.contains("Status: Downloaded newer image"),
        "{plain}"
    );
    for out in [&pushed, &plain] {
        assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
    }
    let out = a.berth(["logout", &registry.host()]).assert_success();
    assert!(out.contains("Removing login credentials"), "{out}");
    a.berth(["rmi", &target]).assert_success();
    a.berth(["pull", &target]).assert_failure();
}

// ------------------------------------------------------------- token server

fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// A tiny Docker token server: trades `alice:s3cret` (Basic) for an RS256 JWT
/// granting the scopes asked for, signed with `openssl` by a key whose self-signed
/// certificate the registry trusts. Anonymous requests get 401. It counts the tokens
/// it issued, so tests can see one token serve a whole pull.
struct TokenServer {
    port: u16,
    cert: std::path::PathBuf,
    issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    fn start() -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run_command(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=berth-test-token",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            None,
        )
        .assert_success();
        let der = run_command(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
            None,
        );
        assert!(der.status.success());
        let x5c = base64(&der.stdout, false);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (issued, stop, key) = (issued.clone(), stop.clone(), key.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            serve_token(stream, &key, &x5c, &issued);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        TokenServer {
            port,
            cert,
            issued,
            stop,
            _dir: dir,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_token(
    stream: std::net::TcpStream,
    key: &std::path::Path,
    x5c: &str,
    issued: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if line.to_ascii_lowercase().starts_with("authorization:") {
            authorized = line.trim_end().ends_with(&base64(b"alice:s3cret", false));
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut service = String::new();
    let mut access = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v
            .replace("%3A", ":")
            .replace("%2F", "/")
            .replace("%2C", ",");
        match k {
            "service" => service = v,
            "scope" => {
                let parts: Vec<&str> = v.split(':').collect();
                if parts.len() == 3 {
                    access.push(serde_json::json!({
                        "type": parts[0], "name": parts[1],
                        "actions": parts[2].split(',').collect::<Vec<_>>(),
                    }));
                }
            }
            _ => {}
        }
    }
    let mut out = stream;
    if !authorized {
        let body = r#"{"details":"incorrect username or password"}"#;
        let _ = write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": "alice", "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", issued.load(Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())
        .expect("write signing input");
    let signature = child.wait_with_output().expect("signature").stdout;
    let token = format!("{signing_input}.{}", base64(&signature, true));
    issued.fetch_add(1, Ordering::Relaxed);
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn bearer_token_auth_gets_one_token_per_operation_and_refuses_strangers() {
    let tokens = TokenServer::start();
    let registry = Registry::start_with_token_auth(&tokens);
    let a = Berthd::start();
    let layers = a.load_image("berth-test/layers");
    let target = format!("{}/tok/layers:1", registry.host());
    a.docker(["tag", &layers.reference, &target])
        .assert_success();

    let err = a.docker(["push", &target]).assert_failure();
    assert!(
        err.contains("unauthorized") || err.contains("incorrect"),
        "{err}"
    );
    a.docker_with_stdin(
        ["login", "-u", "alice", "--password-stdin", &registry.host()],
        b"s3cret\n",
    )
    .assert_success();
    a.docker(["push", &target]).assert_success();

    let b = Berthd::start();
    b.docker_with_stdin(
        ["login", "-u", "alice", "--password-stdin", &registry.host()],
        b"s3cret\n",
    )
    .assert_success();
    let before = tokens.issued.load(Ordering::Relaxed);
    let out = b.docker(["pull", &target]).assert_success();
    assert!(out.contains("Pull complete"), "{out}");
    // The manifest, config and three layers all went through on one token.
    assert_eq!(tokens.issued.load(Ordering::Relaxed) - before, 1);
    assert_eq!(image_id(&b, &target), layers.id);
}

#[test]
fn pull_after_a_failed_one_resumes_with_the_layers_it_finished() {
    let registry = Registry::start();
    let a = Berthd::start();
    let layers = a.load_image("berth-test/layers");
    let target = format!("{}/resume/layers:1", registry.host());
    a.docker(["tag", &layers.reference, &target])
        .assert_success();
    a.docker(["push", &target]).assert_success();
    // Corrupt the largest blob (a layer), pull (fails), restore it, pull again.
    let blobs = registry.storage().join("blobs/sha256");
    let mut largest: Option<(u64, std::path::PathBuf)> = None;
    for prefix in std::fs::read_dir(&blobs).expect("blob dirs") {
        for blob in std::fs::read_dir(prefix.expect("entry").path()).expect("blob dir") {
            let data = blob.expect("entry").path().join("data");
            let len = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
            if largest.as_ref().is_none_or(|(l, _)| len > *l) {
                largest = Some((len, data));
            }
        }
    }
    let (len, layer) = largest.expect("a layer blob is stored");
    let good = std::fs::read(&layer).expect("read blob");
    let mut bad = good.clone();
    bad[(len / 2) as usize] ^= 0xff;
    std::fs::write(&layer, &bad).expect("corrupt blob");

    let b = Berthd::start();
    b.docker(["pull", &target]).assert_failure();
    std::fs::write(&layer, &good).expect("restore blob");
    let out = b.docker(["pull", &target]).assert_success();
    let reused = out.matches("Already exists").count();
    let fetched = out.matches("Pull complete").count();
    assert!(reused >= 1, "nothing resumed: {out}");
    assert_eq!(reused + fetched, layers.diff_ids.len(), "{out}");
    assert_eq!(image_id(&b, &target), layers.id);
    b.docker(["run", "--rm", &target, "true"]).assert_success();
}

#[test]
fn docker_hub_images_come_from_a_configured_mirror() {
    let mirror = Registry::start();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    // The mirror holds Docker Hub's path for the official image.
    let on_mirror = format!("{}/library/busybox:latest", mirror.host());
    a.docker(["tag", &busybox.reference, &on_mirror])
        .assert_success();
    a.docker(["push", &on_mirror]).assert_success();

    let b = Berthd::builder()
        .config(serde_json::json!({
            "registry-mirrors": [format!("http://{}", mirror.host())],
            "max-concurrent-downloads": 1,
        }))
        .start();
    let out = b.docker(["pull", "busybox"]).assert_success();
    assert!(out.contains("docker.io/library/busybox:latest"), "{out}");
    assert_eq!(image_id(&b, "busybox:latest"), busybox.id);
    let digests = b
        .docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            "busybox",
        ])
        .assert_success();
    assert!(digests.contains("busybox@sha256:"), "{digests}");
}

// ------------------------------------------------------------- chunked uploads

/// berth's own registry server (target/debug/berth-registry) on a free port, stopped
/// by its PID when dropped.
struct OwnServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnServer {
    fn start() -> OwnServer {
        berth_e2e::require_root();
        let exe = std::env::current_exe().expect("the test executable has a path");
        let bin = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps")
            .join("berth-registry");
        assert!(
            bin.is_file(),
            "no {}: cargo build --workspace",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(dir.path().join("root"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth-registry starts");
        let server = OwnServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "berth-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn layers_above_the_chunk_threshold_push_in_chunks_to_both_registries() {
    let reference = Registry::start();
    let own = OwnServer::start();
    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    // A random layer bigger than CHUNKED_UPLOAD_MIN (32 MiB): gzip cannot shrink it, so
    // its blob goes up in 16 MiB PATCHes; a chunk put in the wrong place would fail the
    // registry's digest check at the final PUT, or the pull's below.
    let mib = 40; // berth_registry::CHUNKED_UPLOAD_MIN is 32 MiB
    let name = "chunked-src";
    a.docker([
        "run",
        "--name",
        name,
        &busybox.reference,
        "dd",
        "if=/dev/urandom",
        "of=/big",
        "bs=1048576",
        &format!("count={mib}"),
    ])
    .assert_success();
    a.docker(["commit", name, "chunked/big:1"]).assert_success();
    a.docker(["rm", name]).assert_success();
    let sum = |d: &Berthd, image: &str| {
        d.docker(["run", "--rm", image, "sha256sum", "/big"])
            .assert_success()
    };
    let expected = sum(&a, "chunked/big:1");
    for host in [reference.host(), format!("127.0.0.1:{}", own.port)] {
        let target = format!("{host}/chunked/big:1");
        a.docker(["tag", "chunked/big:1", &target]).assert_success();
        a.docker(["push", &target]).assert_success();
        let b = Berthd::start();
        b.docker(["pull", &target]).assert_success();
        assert_eq!(sum(&b, &target), expected, "round trip through {host}");
    }
    // The reference registry's access log shows the chunks.
    let log = reference.log();
    assert!(
        log.matches("\"PATCH /v2/chunked/big/blobs/uploads/")
            .count()
            >= 3,
        "{log}"
    );
}
