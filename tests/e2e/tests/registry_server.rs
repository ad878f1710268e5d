//! berth's own registry server (`berth-registry`, crates/berth-registry-server) driven by
//! clients that were written against Docker's registry: the docker CLI through berthd,
//! skopeo (containers/image, no code shared with berth), curl for the raw chunked
//! protocol, and, when it can be started, the real dockerd.
//!
//! Each test starts its own server on a free port with a private root; the [`Server`]
//! guard kills it by PID and removes the root also when the test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt, run_command};

/// A `berth-registry` process of this test.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_REGISTRY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("test executables live in a directory");
    let path = deps
        .parent()
        .expect("target/<profile>/deps has a parent")
        .join("berth-registry");
    assert!(
        path.is_file(),
        "berth-registry not found at {}: cargo build --workspace first",
        path.display()
    );
    path
}

impl Server {
    fn start() -> Server {
        Self::start_with(&[], None)
    }

    /// Starts a server with extra arguments; `{dir}` in them is the server's directory,
    /// where `htpasswd` (when given) is written first.
    fn start_with(extra: &[&str], htpasswd: Option<&str>) -> Server {
        berth_e2e::require_root();
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(text) = htpasswd {
            std::fs::write(dir.path().join("htpasswd"), text).expect("write htpasswd");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let d = dir.path().display().to_string();
        let child = Command::new(server_bin())
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(extra.iter().map(|a| a.replace("{dir}", &d)))
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("berth-registry starts");
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "berth-registry did not listen on {port}: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Starts a stopped server again on the same root and port.
    fn restart(mut old: Server) -> Server {
        let _ = old.child.kill();
        let _ = old.child.wait();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(old.dir.path().join("server.log"))
            .expect("log file");
        old.child = Command::new(server_bin())
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", old.port))
            .arg("--root")
            .arg(old.root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("berth-registry starts");
        let ready = berth_e2e::eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", old.port)).is_ok()
        });
        assert!(ready, "berth-registry did not listen again: {}", old.log());
        old
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // By PID: the child we started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skopeo(args: &[&str]) -> String {
    run_command(Command::new("skopeo").args(args), None).assert_success()
}

/// `curl -s -i` with extra arguments; the whole answer, headers included.
fn curl(args: &[&str]) -> String {
    run_command(Command::new("curl").args(["-s", "-i"]).args(args), None).assert_success()
}

/// The status code and a header of a `curl -i` answer.
fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer}"))
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn image_id(daemon: &Berthd, name: &str) -> String {
    daemon
        .docker(["image", "inspect", "--format", "{{.Id}}", name])
        .assert_success()
        .trim()
        .to_string()
}

fn blob_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn docker_push_and_pull_through_berthd_round_trip_with_mounts_and_tags() {
    let server = Server::start();
    let a = Berthd::start();
    let layers = a.load_image("berth-test/layers");
    let target = format!("{}/e2e/layers:v1", server.host());
    a.docker(["tag", &layers.reference, &target])
        .assert_success();
    let pushed = a.docker(["push", &target]).assert_success();
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    let repush = a.docker(["push", &target]).assert_success();
    assert!(repush.contains("Layer already exists"), "{repush}");

    let b = Berthd::start();
    let pulled = b.docker(["pull", &target]).assert_success();
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert_eq!(image_id(&b, &target), layers.id);
    b.docker(["run", "--rm", &target, "true"]).assert_success();

    // Into another repository of the same server: the layers are mounted, not resent.
    let second = format!("{}/other/layers:v2", server.host());
    b.docker(["tag", &target, &second]).assert_success();
    let out = b.docker(["push", &second]).assert_success();
    assert!(out.contains("Mounted from e2e/layers"), "{out}");

    let tags = curl(&[&server.url("/v2/e2e/layers/tags/list")]);
    assert_eq!(status(&tags), 200, "{tags}");
    assert!(
        tags.ends_with(r#"{"name":"e2e/layers","tags":["v1"]}"#),
        "{tags}"
    );
    let catalog = curl(&[&server.url("/v2/_catalog")]);
    assert!(
        catalog.ends_with(r#"{"repositories":["e2e/layers","other/layers"]}"#),
        "{catalog}"
    );

    // By digest, into a third daemon.
    let by_digest = b
        .docker([
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &target,
        ])
        .assert_success();
    let c = Berthd::start();
    c.docker(["pull", by_digest.trim()]).assert_success();
    assert_eq!(image_id(&c, by_digest.trim()), layers.id);
    assert!(
        server
            .root()
            .join("uploads")
            .read_dir()
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn skopeo_copies_in_and_out_through_docker_archive_and_oci_layouts() {
    let server = Server::start();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = berth_e2e::repo_root().join("tests/images/out/busybox.tar");
    let dest = format!("docker://{}/lib/busybox:1", server.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &dest,
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &dest])).unwrap();
    assert_eq!(inspect["RepoTags"], serde_json::json!(["1"]));
    assert_eq!(inspect["Os"], "linux");

    // Out to an OCI layout, back in as an OCI image to another repository.
    let oci = work.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:x", oci.display()),
    ]);
    let oci_dest = format!("docker://{}/oci/busybox:oci", server.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        &format!("oci:{}:x", oci.display()),
        &oci_dest,
    ]);
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &oci_dest,
    ]))
    .unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let head = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &server.url("/v2/oci/busybox/manifests/oci"),
    ]);
    assert_eq!(
        header(&head, "content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    // Out to a docker archive that berthd loads: same image as the original.
    let out_archive = work.path().join("out.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &oci_dest,
        &format!("docker-archive:{}:copied/busybox:1", out_archive.display()),
    ]);
    let daemon = Berthd::start();
    let original = daemon.load_image("busybox");
    let loaded = daemon
        .docker(["load", "-i", &out_archive.display().to_string()])
        .assert_success();
    assert!(loaded.contains("copied/busybox:1"), "{loaded}");
    daemon
        .docker(["run", "--rm", "copied/busybox:1", "true"])
        .assert_success();
    assert_eq!(
        daemon
            .docker([
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                "copied/busybox:1"
            ])
            .assert_success(),
        daemon
            .docker([
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                &original.reference
            ])
            .assert_success()
    );

    // skopeo delete removes the manifest and its tag.
    skopeo(&["delete", "--tls-verify=false", &oci_dest]);
    let gone = curl(&[&server.url("/v2/oci/busybox/manifests/oci")]);
    assert_eq!(status(&gone), 404, "{gone}");
    assert!(gone.contains("MANIFEST_UNKNOWN"), "{gone}");

    // Offline garbage collection then removes the OCI copy's blobs (its config and
    // manifest differ from the Docker one's; the layer blob is shared and stays).
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let before = blob_files(&server.root());
    let out = run_command(
        Command::new(server_bin())
            .arg("--root")
            .arg(server.root())
            .arg("--garbage-collect"),
        None,
    )
    .assert_success();
    let after = blob_files(&server.root());
    assert!(after < before, "{out}: {before} -> {after}");
    assert!(
        out.starts_with(&format!("removed {} blobs", before - after)),
        "{out}"
    );
    let _server = Server::restart(server);
    let still = skopeo(&["inspect", "--tls-verify=false", &dest]);
    assert!(still.contains("\"RepoTags\""), "{still}");
}

#[test]
fn chunked_upload_over_http_resumes_after_a_refused_chunk() {
    let server = Server::start();
    let work = tempfile::tempdir().expect("temp dir");
    // 3 MiB of varied bytes in three chunks.
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 977) as u8).collect();
    let parts: Vec<PathBuf> = data
        .chunks(1 << 20)
        .enumerate()
        .map(|(i, c)| {
            let p = work.path().join(format!("part{i}"));
            std::fs::write(&p, c).unwrap();
            p
        })
        .collect();
    let digest = format!("sha256:{}", berth_oci::Digest::of(&data).hex());

    let start = curl(&["-X", "POST", &server.url("/v2/chunks/blobs/uploads/")]);
    assert_eq!(status(&start), 202, "{start}");
    assert_eq!(header(&start, "range"), Some("0-0"));
    let location = server.url(header(&start, "location").expect("Location"));
    let patch = |part: &Path, range: &str| {
        curl(&[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            &format!("Content-Range: {range}"),
            "--data-binary",
            &format!("@{}", part.display()),
            &location,
        ])
    };
    let a = patch(&parts[0], "0-1048575");
    assert_eq!(status(&a), 202, "{a}");
    assert_eq!(header(&a, "range"), Some("0-1048575"));
    // The third chunk first: refused with 416, and the answer tells where to go on.
    let a = patch(&parts[2], "2097152-3145727");
    assert_eq!(status(&a), 416, "{a}");
    assert_eq!(header(&a, "range"), Some("0-1048575"));
    assert!(a.contains("RANGE_INVALID"), "{a}");
    assert_eq!(status(&patch(&parts[1], "1048576-2097151")), 202);
    assert_eq!(status(&patch(&parts[2], "2097152-3145727")), 202);
    let st = curl(&[&location]);
    assert_eq!(status(&st), 204, "{st}");
    assert_eq!(header(&st, "range"), Some("0-3145727"));
    let done = curl(&["-X", "PUT", &format!("{location}?digest={digest}")]);
    assert_eq!(status(&done), 201, "{done}");
    assert_eq!(
        header(&done, "docker-content-digest"),
        Some(digest.as_str())
    );

    let back = work.path().join("back");
    run_command(
        Command::new("curl").args([
            "-s",
            "-o",
            &back.display().to_string(),
            &server.url(&format!("/v2/chunks/blobs/{digest}")),
        ]),
        None,
    )
    .assert_success();
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let ranged = curl(&[
        "-H",
        "Range: bytes=1048576-1048579",
        &server.url(&format!("/v2/chunks/blobs/{digest}")),
    ]);
    assert_eq!(status(&ranged), 206, "{ranged}");
    assert_eq!(
        header(&ranged, "content-range"),
        Some("bytes 1048576-1048579/3145728")
    );
    assert_eq!(blob_files(&server.root()), 1);
}

#[test]
fn basic_auth_needs_docker_login_for_push_and_pull() {
    let htpasswd = run_command(
        Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]),
        None,
    )
    .assert_success();
    let server = Server::start_with(&["--htpasswd", "{dir}/htpasswd"], Some(&htpasswd));
    let anonymous = curl(&[&server.url("/v2/")]);
    assert_eq!(status(&anonymous), 401, "{anonymous}");
    assert_eq!(
        header(&anonymous, "www-authenticate"),
        Some("Basic realm=\"berth-registry\"")
    );

    let a = Berthd::start();
    let busybox = a.load_image("busybox");
    let target = format!("{}/private/busybox:1", server.host());
    a.docker(["tag", &busybox.reference, &target])
        .assert_success();
    let err = a.docker(["push", &target]).assert_failure();
    assert!(
        err.contains("authentication required") || err.contains("unauthorized"),
        "{err}"
    );
    let err = a
        .docker_with_stdin(
            ["login", "-u", "alice", "--password-stdin", &server.host()],
            b"wrong\n",
        )
        .assert_failure();
    assert!(err.contains("401 Unauthorized"), "{err}");
    a.docker_with_stdin(
        ["login", "-u", "alice", "--password-stdin", &server.host()],
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
        ["login", "-u", "alice", "--password-stdin", &server.host()],
        b"s3cret\n",
    )
    .assert_success();
    b.docker(["pull", &target]).assert_success();
    assert_eq!(image_id(&b, &target), busybox.id);
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &format!("docker://{target}"),
    ]);
    assert!(inspect.contains("\"Os\": \"linux\""), "{inspect}");
}

/// Debian's dockerd (20.10) on a socket, data root and bridge of its own, without
/// iptables so it leaves nothing in the host's firewall. Stopped by its PID file; the
/// bridge and its directories go with the guard, also when the test fails.
struct PeerDockerd {
    dir: tempfile::TempDir,
    bridge: String,
    child: Option<Child>,
}

impl PeerDockerd {
    fn start() -> PeerDockerd {
        berth_e2e::require_root();
        assert!(
            Path::new("/usr/sbin/dockerd").is_file(),
            "this test needs Debian's dockerd: apt-get install docker.io"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let bridge = format!("brrs{}", std::process::id() % 100_000);
        let mut peer = PeerDockerd {
            dir,
            bridge,
            child: None,
        };
        run_command(
            Command::new("ip").args(["link", "add", &peer.bridge, "type", "bridge"]),
            None,
        )
        .assert_success();
        let d = peer.dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).expect("log file");
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args([
                "--storage-driver",
                "overlay2",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge",
                &peer.bridge,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        peer.child = Some(child);
        let ready = berth_e2e::eventually(Duration::from_secs(60), || {
            peer.docker(&["version"]).status.success()
        });
        assert!(ready, "dockerd did not come up: {}", peer.log());
        peer
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        run_command(
            Command::new(berth_e2e::docker_bin())
                .env_remove("DOCKER_HOST")
                .arg("-H")
                .arg(format!(
                    "unix://{}",
                    self.dir.path().join("docker.sock").display()
                ))
                .args(args),
            None,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for PeerDockerd {
    fn drop(&mut self) {
        let pidfile = self.dir.path().join("docker.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SIGTERM to the dockerd we started, then wait for it to remove its PID file
            // (it unmounts its layers and stops its containerd first).
            run_command(Command::new("kill").arg(pid.to_string()), None);
            berth_e2e::eventually(Duration::from_secs(30), || !pidfile.exists());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        run_command(Command::new("ip").args(["link", "del", &self.bridge]), None);
    }
}

#[test]
#[ignore = "starts Debian's dockerd beside berthd (docker.io); run with --ignored"]
fn real_dockerd_pushes_to_and_pulls_from_our_server() {
    let server = Server::start();
    let peer = PeerDockerd::start();
    let archive = berth_e2e::repo_root().join("tests/images/out/busybox.tar");
    let loaded = peer
        .docker(&["load", "-i", &archive.display().to_string()])
        .assert_success();
    let source = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .expect("docker load names the image")
        .trim()
        .to_string();
    let target = format!("{}/dockerd/busybox:1", server.host());
    peer.docker(&["tag", &source, &target]).assert_success();
    let pushed = peer.docker(&["push", &target]).assert_success();
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");
    let id = peer
        .docker(&["image", "inspect", "--format", "{{.Id}}", &target])
        .assert_success();
    peer.docker(&["rmi", &target, &source]).assert_success();
    let pulled = peer.docker(&["pull", &target]).assert_success();
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        peer.docker(&["image", "inspect", "--format", "{{.Id}}", &target])
            .assert_success(),
        id
    );
    // What dockerd pushed, berthd pulls and runs.
    let b = Berthd::start();
    b.docker(["pull", &target]).assert_success();
    assert_eq!(image_id(&b, &target), id.trim());
    b.docker(["run", "--rm", &target, "true"]).assert_success();
    peer.docker(&["rmi", &target]).assert_success();
}

#[test]
fn tls_serves_https_to_a_client_that_trusts_the_certificate() {
    let work = tempfile::tempdir().expect("temp dir");
    let cert = work.path().join("server.crt");
    let key = work.path().join("server.key");
    run_command(
        Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &cert.display().to_string(),
        ]),
        None,
    )
    .assert_success();
    let cert_s = cert.display().to_string();
    let key_s = key.display().to_string();
    let server = Server::start_with(&["--tls-cert", &cert_s, "--tls-key", &key_s], None);
    // skopeo trusts the certificate through a cert dir (`*.crt` are CAs), as Docker does
    // with /etc/docker/certs.d/<host:port>/ca.crt.
    let certs = work.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let certs_s = certs.display().to_string();
    let archive = berth_e2e::repo_root().join("tests/images/out/hello-world.tar");
    let dest = format!("docker://{}/tls/hello:1", server.host());
    skopeo(&[
        "copy",
        "--dest-cert-dir",
        &certs_s,
        &format!("docker-archive:{}", archive.display()),
        &dest,
    ]);
    let inspect = skopeo(&["inspect", "--cert-dir", &certs_s, &dest]);
    assert!(inspect.contains("\"RepoTags\""), "{inspect}");
    let answer = curl(&[
        "--cacert",
        &cert_s,
        &format!("https://{}/v2/tls/hello/tags/list", server.host()),
    ]);
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(
        answer.ends_with(r#"{"name":"tls/hello","tags":["1"]}"#),
        "{answer}"
    );
    // Plain HTTP to the TLS port gets nowhere.
    let plain = run_command(
        Command::new("curl").args(["-s", "-m", "5", &server.url("/v2/")]),
        None,
    );
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("{}"));
}

/// The blobs in a berthd's content store, with their sizes.
fn store_blobs(daemon: &Berthd) -> Vec<(String, u64)> {
    let dir = daemon.data_root().join("blobs/sha256");
    let mut out: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    (e.file_name().to_string_lossy().into_owned(), size)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Push gzips a loaded image's layers and points the records at the gzip blobs; the
/// uncompressed originals (hundreds of MiB for big images) used to stay in the store after
/// every image was removed. Removing both tags also removes the digest reference push
/// left (`repo@sha256:...`), as Docker does, so the image really goes.
#[test]
fn pushing_a_loaded_image_then_removing_every_image_leaves_no_blob_behind() {
    let server = Server::start();
    let a = Berthd::start();
    let layers = a.load_image("berth-test/layers");
    let target = format!("{}/leak/layers:1", server.host());
    a.docker(["tag", &layers.reference, &target])
        .assert_success();
    a.docker(["push", &target]).assert_success();
    // Pushed again under another tag: nothing is compressed a second time.
    let before = store_blobs(&a);
    let second = format!("{}/leak/layers:2", server.host());
    a.docker(["tag", &layers.reference, &second])
        .assert_success();
    a.docker(["push", &second]).assert_success();
    assert_eq!(store_blobs(&a), before);

    let out = a
        .docker(["rmi", &target, &second, &layers.reference])
        .assert_success();
    assert!(
        out.contains(&format!("Untagged: {}/leak/layers@sha256:", server.host())),
        "{out}"
    );
    assert!(out.contains(&format!("Deleted: {}", layers.id)), "{out}");
    let images = a.docker(["images", "-aq"]).assert_success();
    assert!(images.trim().is_empty(), "{images}");
    assert_eq!(store_blobs(&a), Vec::<(String, u64)>::new());
}
