//! Dockerfile builds through the official docker CLI's classic builder protocol
//! (`POST /build`, with and without `DOCKER_BUILDKIT=0`): the output lines, the
//! layer cache (hits, invalidation, `--no-cache`, a daemon restart), failing RUN
//! steps, multi-stage builds, build args, `.dockerignore` and ADD of a tar archive.
//! Needs root.

use std::fs;
use std::path::Path;
use std::process::Output;

use berth_e2e::{Berthd, OutputExt};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// `docker build` with the classic builder forced, in `dir`.
fn docker_build(d: &Berthd, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = d.docker_cmd();
    cmd.env("DOCKER_BUILDKIT", "0")
        .arg("build")
        .args(args)
        .arg(dir);
    berth_e2e::run_command(&mut cmd, None)
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, text).unwrap();
}

/// Docker's classic builder output, with ids replaced by `<id>`.
fn shape(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let mut out = String::new();
            for word in l.split(' ') {
                if !out.is_empty() || l.starts_with(' ') {
                    out.push(' ');
                }
                if word.len() == 12 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.push_str("<id>");
                } else {
                    out.push_str(word);
                }
            }
            out.trim_start_matches(' ').to_string()
        })
        .collect()
}

const ELEVEN: &str = "FROM busybox
ENV A=1
LABEL x=y
WORKDIR /app
COPY a.txt .
RUN echo hello > /app/b.txt
ENV B=$A
EXPOSE 8080
USER root
COPY dir/ /app/dir/
CMD [\"cat\", \"/app/a.txt\"]
";

fn eleven_context() -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", ELEVEN);
    write(ctx.path(), "a.txt", "A\n");
    write(ctx.path(), "dir/one", "1\n");
    write(ctx.path(), "dir/sub/two", "2\n");
    ctx
}

#[test]
fn classic_build_prints_docker_lines_and_the_image_runs() {
    let d = daemon();
    let ctx = eleven_context();
    let out = docker_build(&d, ctx.path(), &["-t", "built:1"]);
    let stdout = out.assert_success();
    // Only the RUN step makes a container; COPY and WORKDIR write a layer dir directly.
    assert_eq!(
        d.log().matches("container created").count(),
        1,
        "{}",
        d.log()
    );
    let lines = shape(&stdout);
    assert_eq!(
        lines[0],
        "Sending build context to Docker daemon <size>"
            .replace("<size>", lines[0].rsplit("daemon ").next().unwrap())
    );
    assert!(
        lines.contains(&"Step 1/11 : FROM busybox".to_string()),
        "{stdout}"
    );
    assert!(
        lines.contains(&"Step 6/11 : RUN echo hello > /app/b.txt".to_string()),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l == "---> Running in <id>"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "---> Removed intermediate container <id>"),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Successfully built ")),
        "{stdout}"
    );
    assert!(
        lines.contains(&"Successfully tagged built:1".to_string()),
        "{stdout}"
    );
    assert!(!stdout.contains("Using cache"), "{stdout}");
    let run = d.docker(["run", "--rm", "built:1"]);
    assert_eq!(run.assert_success(), "A\n");
    let run = d.docker([
        "run",
        "--rm",
        "built:1",
        "sh",
        "-c",
        "cat /app/b.txt /app/dir/one /app/dir/sub/two; echo $A$B; pwd",
    ]);
    assert_eq!(run.assert_success(), "hello\n1\n2\n11\n/app\n");
    let inspect = d.docker([
        "inspect",
        "-f",
        "{{.Config.Labels.x}} {{json .Config.ExposedPorts}} {{.Config.WorkingDir}}",
        "built:1",
    ]);
    assert_eq!(inspect.assert_success().trim(), "y {\"8080/tcp\":{}} /app");
    // Intermediate images are listed with -a only.
    let all = d.docker(["images", "-a", "-q"]).assert_success();
    let top = d.docker(["images", "-q"]).assert_success();
    assert!(
        all.lines().count() >= top.lines().count() + 9,
        "{all}\n--\n{top}"
    );
    // No build container is left, nor any of the layer dirs COPY and WORKDIR wrote
    // through (they make no container).
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
    let tmp = d.data_root().join("builder/tmp");
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unchanged_rebuild_is_all_cache_and_touching_a_file_rebuilds_from_its_copy() {
    let d = daemon();
    let ctx = eleven_context();
    let first = docker_build(&d, ctx.path(), &["-t", "c:1"]).assert_success();
    let id = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .unwrap()
            .to_string()
    };
    let second = docker_build(&d, ctx.path(), &["-t", "c:1"]).assert_success();
    assert_eq!(second.matches(" ---> Using cache").count(), 10, "{second}");
    assert_eq!(id(&first), id(&second));
    assert!(!second.contains("Running in"), "{second}");
    // The same content (only the mtime changes) still hits.
    write(ctx.path(), "a.txt", "A\n");
    let third = docker_build(&d, ctx.path(), &["-t", "c:1"]).assert_success();
    assert_eq!(third.matches(" ---> Using cache").count(), 10, "{third}");
    // New content rebuilds from its COPY (step 5) on.
    write(ctx.path(), "a.txt", "changed\n");
    let fourth = docker_build(&d, ctx.path(), &["-t", "c:1"]).assert_success();
    assert_eq!(fourth.matches(" ---> Using cache").count(), 3, "{fourth}");
    assert_ne!(id(&fourth), id(&first));
    assert_eq!(
        d.docker(["run", "--rm", "c:1"]).assert_success(),
        "changed\n"
    );
    // --no-cache bypasses the cache.
    let fifth = docker_build(&d, ctx.path(), &["--no-cache", "-t", "c:1"]).assert_success();
    assert!(!fifth.contains("Using cache"), "{fifth}");
}

#[test]
fn cache_survives_a_daemon_restart() {
    let mut d = daemon();
    let ctx = eleven_context();
    docker_build(&d, ctx.path(), &[]).assert_success();
    d.restart();
    let again = docker_build(&d, ctx.path(), &[]).assert_success();
    assert_eq!(again.matches(" ---> Using cache").count(), 10, "{again}");
}

#[test]
fn failing_run_reports_the_exit_code_and_leaves_no_container() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo before\nRUN exit 3\n",
    );
    let out = docker_build(&d, ctx.path(), &[]);
    assert_eq!(berth_e2e::exit_code(&out), 3, "{}", out.stderr_text());
    assert!(
        out.stdout_text().contains("before\n"),
        "{}",
        out.stdout_text()
    );
    out.assert_stderr_contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3");
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
}

#[test]
fn multi_stage_builds_only_needed_stages_and_copies_from_them() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS unused\nRUN exit 1\n\
         FROM busybox AS builder\nRUN mkdir -p /out && echo built > /out/artifact\n\
         FROM scratch\nCOPY --from=builder /out/artifact /artifact\nCOPY --from=busybox /bin/busybox /bin/cat\n\
         ENTRYPOINT [\"/bin/cat\"]\nCMD [\"/artifact\"]\n",
    );
    let out = docker_build(&d, ctx.path(), &["-t", "ms"]).assert_success();
    assert!(!out.contains("exit 1"), "{out}");
    assert_eq!(d.docker(["run", "--rm", "ms"]).assert_success(), "built\n");
    // --target stops at a stage.
    let out =
        docker_build(&d, ctx.path(), &["--target", "builder", "-t", "ms:builder"]).assert_success();
    assert!(out.contains("Successfully tagged ms:builder"), "{out}");
    assert!(!out.contains("exit 1"), "{out}");
}

#[test]
fn independent_stages_build_at_once_and_print_in_file_order() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS left
RUN sleep 1 && echo left > /l
         FROM busybox AS right
RUN sleep 1 && echo right > /r
         FROM busybox
COPY --from=left /l /l
COPY --from=right /r /r
CMD cat /l /r
",
    );
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let t0 = now();
    let out = docker_build(&d, ctx.path(), &["-t", "both"]).assert_success();
    let t1 = now() + 1;
    // The output reads as the sequential builder's: steps numbered in file order.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/8 : FROM busybox AS left",
            "Step 2/8 : RUN sleep 1 && echo left > /l",
            "Step 3/8 : FROM busybox AS right",
            "Step 4/8 : RUN sleep 1 && echo right > /r",
            "Step 5/8 : FROM busybox",
            "Step 6/8 : COPY --from=left /l /l",
            "Step 7/8 : COPY --from=right /r /r",
            "Step 8/8 : CMD cat /l /r",
        ]
    );
    // The two RUN containers ran at the same time: each started before the other died.
    let events = d
        .docker([
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &t1.to_string(),
            "--filter",
            "type=container",
            "--filter",
            "event=start",
            "--filter",
            "event=die",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ])
        .assert_success();
    let actions: Vec<&str> = events.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(actions, ["start", "start", "die", "die"], "{events}");
    assert_eq!(
        d.docker(["run", "--rm", "both"]).assert_success(),
        "left\nright\n"
    );
    // One stage failing fails the build with its error while the other is mid-RUN;
    // that RUN finishes and its container goes too.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS slow\nRUN sleep 1\nRUN echo never\n\
         FROM busybox AS broken\nRUN exit 3\n\
         FROM busybox\nCOPY --from=slow /bin/sh /a\nCOPY --from=broken /bin/sh /b\n",
    );
    let out = docker_build(&d, ctx.path(), &["--no-cache"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    assert!(
        !out.stdout_text().contains("echo never\n ---> "),
        "{}",
        out.stdout_text()
    );
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
}

#[test]
fn copy_from_a_stage_expands_wildcards_per_path_component() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS builder\n\
         RUN mkdir -p /out/d1 /out/d2 && echo a > /out/a.txt && echo b > /out/b.txt \
             && echo c > /out/c.log && echo 1 > /out/d1/x.txt && echo 2 > /out/d2/y.txt\n\
         FROM busybox\n\
         COPY --from=builder /out/*.txt /got/\n\
         COPY --from=builder /out/d?/*.txt /deep/\n",
    );
    docker_build(&d, ctx.path(), &["-t", "globs"]).assert_success();
    let ls = d
        .docker([
            "run",
            "--rm",
            "globs",
            "sh",
            "-c",
            "ls /got /deep; cat /got/a.txt /got/b.txt /deep/x.txt /deep/y.txt",
        ])
        .assert_success();
    assert_eq!(
        ls,
        "/deep:\nx.txt\ny.txt\n\n/got:\na.txt\nb.txt\na\nb\n1\n2\n"
    );
    // A wildcard that matches nothing fails the step, in Docker's words.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS builder\nFROM busybox\nCOPY --from=builder /nope/*.txt /got/\n",
    );
    let out = docker_build(&d, ctx.path(), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no source files were specified"), "{err}");
}

#[test]
fn build_args_substitute_and_unused_ones_are_warned_about() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nARG GREETING=hi\nRUN echo $GREETING > /g\nLABEL g=$GREETING\n",
    );
    let out = docker_build(
        &d,
        ctx.path(),
        &[
            "--build-arg",
            "GREETING=hello",
            "--build-arg",
            "UNUSED=1",
            "-t",
            "args",
        ],
    );
    let stdout = out.assert_success();
    assert!(
        stdout.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{stdout}"
    );
    assert_eq!(
        d.docker(["run", "--rm", "args", "cat", "/g"])
            .assert_success(),
        "hello\n"
    );
    // The history records the RUN with its build args, as Docker's classic builder.
    let history = d
        .docker([
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "args",
        ])
        .assert_success();
    assert!(
        history
            .lines()
            .any(|l| l == "|1 GREETING=hello /bin/sh -c echo $GREETING > /g"),
        "{history}"
    );
    // A different value misses the cache for the steps that see it.
    let again = docker_build(&d, ctx.path(), &["--build-arg", "GREETING=other"]).assert_success();
    assert_eq!(again.matches("Using cache").count(), 1, "{again}");
}

#[test]
fn dockerignore_keeps_files_out_and_add_extracts_tarballs() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), ".dockerignore", "secret\n*.log\n!keep.log\n");
    write(ctx.path(), "secret", "s");
    write(ctx.path(), "a.log", "a");
    write(ctx.path(), "keep.log", "k");
    // A tarball with one file, for ADD to unpack.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "inside/file", &b"in\n"[..]).unwrap();
    fs::write(ctx.path().join("t.tar"), b.into_inner().unwrap()).unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nCOPY . /ctx/\nADD t.tar /x/\nCOPY --chown=33:33 --chmod=600 keep.log /owned\n",
    );
    docker_build(&d, ctx.path(), &["-t", "ign"]).assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "ign",
            "sh",
            "-c",
            "ls -A /ctx | sort | tr '\\n' ' '; cat /x/inside/file; stat -c '%u:%g %a' /owned",
        ])
        .assert_success();
    assert_eq!(
        out,
        ".dockerignore Dockerfile keep.log t.tar in\n33:33 600\n"
    );
    // -f may name a Dockerfile outside the context (the docker CLI then sends a
    // tarball without its end blocks).
    let elsewhere = tempfile::tempdir().unwrap();
    write(
        elsewhere.path(),
        "Other.dockerfile",
        "FROM busybox\nCOPY keep.log /k\n",
    );
    let f = elsewhere.path().join("Other.dockerfile");
    docker_build(&d, ctx.path(), &["-f", f.to_str().unwrap(), "-t", "other"]).assert_success();
    assert_eq!(
        d.docker(["run", "--rm", "other", "cat", "/k"])
            .assert_success(),
        "k"
    );
    // A COPY of an ignored file fails as Docker's does.
    write(ctx.path(), "Dockerfile", "FROM busybox\nCOPY secret /\n");
    let out = docker_build(&d, ctx.path(), &[]);
    out.assert_failure();
    out.assert_stderr_contains("secret");
}

#[test]
fn buildkit_less_docker_build_uses_the_classic_endpoint_too() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", "FROM busybox\nRUN echo plain\n");
    let mut cmd = d.docker_cmd();
    cmd.env_remove("DOCKER_BUILDKIT")
        .args(["build", "-q"])
        .arg(ctx.path());
    let out = berth_e2e::run_command(&mut cmd, None);
    let stdout = out.assert_success();
    assert!(stdout.trim().starts_with("sha256:"), "{stdout}");
}

#[test]
fn berth_build_streams_the_context_and_prints_like_docker() {
    let d = daemon();
    let ctx = eleven_context();
    write(ctx.path(), ".dockerignore", "dir/sub\n");
    let out = d.berth(["build", "-t", "viaberth", ctx.path().to_str().unwrap()]);
    let stdout = out.assert_success();
    assert!(
        stdout.starts_with("Sending build context to Docker daemon  "),
        "{stdout}"
    );
    assert!(
        stdout.contains("Step 11/11 : CMD [\"cat\", \"/app/a.txt\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Successfully tagged viaberth:latest"),
        "{stdout}"
    );
    let ls = d
        .docker(["run", "--rm", "viaberth", "ls", "/app/dir"])
        .assert_success();
    assert_eq!(ls, "one\n", "ignored files are not sent");
    // The same build through the docker CLI is all cache hits.
    let again = docker_build(&d, ctx.path(), &[]).assert_success();
    assert_eq!(again.matches(" ---> Using cache").count(), 10, "{again}");
    // -q and --iidfile.
    let iid = ctx.path().join("iid");
    let quiet = d
        .berth([
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            ctx.path().to_str().unwrap(),
        ])
        .assert_success();
    assert_eq!(quiet.trim(), fs::read_to_string(&iid).unwrap());
    assert!(quiet.starts_with("sha256:"), "{quiet}");
}

#[test]
fn berth_build_takes_a_dockerfile_from_stdin_or_outside_the_context() {
    let d = daemon();
    let out = d.berth_with_stdin(
        ["build", "-t", "fromstdin", "-"],
        b"FROM busybox\nRUN exit 4\n",
    );
    assert_eq!(berth_e2e::exit_code(&out), 4);
    out.assert_stderr_contains("The command '/bin/sh -c exit 4' returned a non-zero code: 4");
    assert_eq!(d.docker(["ps", "-aq"]).assert_success(), "");
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "data", "D\n");
    let other = tempfile::tempdir().unwrap();
    write(
        other.path(),
        "Build.df",
        "FROM busybox\nCOPY data /data\nLABEL from=outside\n",
    );
    let f = other.path().join("Build.df");
    d.berth([
        "build",
        "-f",
        f.to_str().unwrap(),
        "--label",
        "extra=1",
        "-t",
        "outside",
        ctx.path().to_str().unwrap(),
    ])
    .assert_success();
    let out = d
        .docker(["run", "--rm", "outside", "cat", "/data"])
        .assert_success();
    assert_eq!(out, "D\n");
    let labels = d
        .docker([
            "inspect",
            "-f",
            "{{.Config.Labels.from}} {{.Config.Labels.extra}}",
            "outside",
        ])
        .assert_success();
    assert_eq!(labels.trim(), "outside 1");
    // A tarball context.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let df = b"FROM busybox\nCOPY x /x\n";
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "x", &b"X\n"[..]).unwrap();
    let tarball = ctx.path().join("ctx.tar");
    fs::write(&tarball, b.into_inner().unwrap()).unwrap();
    d.berth(["build", "-t", "fromtar", tarball.to_str().unwrap()])
        .assert_success();
    assert_eq!(
        d.docker(["run", "--rm", "fromtar", "cat", "/x"])
            .assert_success(),
        "X\n"
    );
}

/// A one-file HTTP server on 127.0.0.1 that serves `body` for every request, for as
/// long as the returned guard lives.
fn serve(body: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let mut req = [0u8; 2048];
                    let _ = s.read(&mut req);
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");
                    let _ = s.write_all(body);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    (format!("http://{addr}"), stop)
}

#[test]
fn add_downloads_urls_and_their_content_keys_the_cache() {
    let d = daemon();
    let (base, stop) = serve(b"remote content\n");
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox\nADD {base}/files/remote.txt /srv/\nRUN cat /srv/remote.txt\n"),
    );
    // RUN containers reach 127.0.0.1 of the host only through the daemon's ADD.
    let out = docker_build(&d, ctx.path(), &["-t", "url"]).assert_success();
    assert!(out.contains("remote content"), "{out}");
    let mode = d
        .docker(["run", "--rm", "url", "stat", "-c", "%a", "/srv/remote.txt"])
        .assert_success();
    assert_eq!(mode, "600\n");
    let again = docker_build(&d, ctx.path(), &[]).assert_success();
    assert_eq!(again.matches("Using cache").count(), 2, "{again}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // COPY refuses URLs, as Docker's does.
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox\nCOPY {base}/x /x\n"),
    );
    let out = docker_build(&d, ctx.path(), &[]);
    out.assert_failure();
    out.assert_stderr_contains("source can't be a URL for COPY");
}

#[test]
fn refused_requests_are_http_errors_with_docker_messages() {
    let d = Berthd::start();
    // Not a tarball: refused after the upload was read (no broken pipe for the client).
    let garbage = vec![b'x'; 3 << 20];
    let r = d.request(
        "POST",
        "/v1.44/build",
        Some(("application/x-tar", &garbage)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("failed to read build context"),
        "{}",
        r.text()
    );
    // A bad tag is refused before anything is read.
    let r = d.request(
        "POST",
        "/v1.44/build?t=Bad:Tag:x",
        Some(("application/x-tar", &garbage)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // No Dockerfile (the docker CLI checks that itself; raw clients do not).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "x", &b"1"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    let r = d.request(
        "POST",
        "/v1.44/build",
        Some(("application/x-tar", &tarball)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("Cannot locate specified Dockerfile: Dockerfile"),
        "{}",
        r.text()
    );
    // A Dockerfile that does not parse: a plain HTTP error the CLI prints.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", "FROM busybox\nFOO bar\n");
    let out = docker_build(&d, ctx.path(), &[]);
    out.assert_stderr_contains("dockerfile parse error on line 2: unknown instruction: FOO");
}

#[test]
fn copy_chown_names_resolve_through_the_image_files_and_workdir_of_an_existing_dir_adds_no_layer() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nWORKDIR /etc\nCOPY --chown=nobody:nogroup f /srv/f\nWORKDIR /srv/new\n",
    );
    write(ctx.path(), "f", "x\n");
    docker_build(&d, ctx.path(), &["-t", "owned"]).assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "owned",
            "sh",
            "-c",
            "stat -c '%u:%g %n' /srv/f; pwd",
        ])
        .assert_success();
    assert_eq!(out, "65534:65534 /srv/f\n/srv/new\n");
    // busybox's own layer, COPY and the new WORKDIR: WORKDIR /etc wrote nothing.
    let layers = d
        .docker(["inspect", "-f", "{{len .RootFS.Layers}}", "owned"])
        .assert_success();
    let base = d
        .docker(["inspect", "-f", "{{len .RootFS.Layers}}", "busybox"])
        .assert_success();
    assert_eq!(
        layers.trim().parse::<usize>().unwrap(),
        base.trim().parse::<usize>().unwrap() + 2
    );
}
