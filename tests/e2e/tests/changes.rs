//! A container's changes through the official docker CLI: `commit` (layer, `-c`,
//! `-a`, `-m`, pause), `diff`, `export`, and `cp` both ways over the archive API,
//! including the symlink confinement `docker cp` must keep. Needs root.

use std::time::Duration;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_e2e::{Berthd, OutputExt, eventually};
use berth_store::layer;

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// Names of the entries in a tarball.
fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// The contents of entry `name` in a tarball.
fn tar_file(data: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(data);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            return Some(out);
        }
    }
    None
}

/// A container `c` that added, changed and deleted files, then exited.
fn changed_container(d: &Berthd) {
    d.docker([
        "run",
        "--name",
        "ctr",
        "busybox",
        "sh",
        "-c",
        "echo hi > /hello && rm /bin/ls && mkdir -p /d/e && echo x > /d/e/f && echo extra >> /etc/group",
    ])
    .assert_success();
}

#[test]
fn diff_lists_added_changed_and_deleted_paths_in_order() {
    let d = daemon();
    changed_container(&d);
    let out = d.docker(["diff", "ctr"]).assert_success();
    assert_eq!(
        out,
        "C /bin\nD /bin/ls\nA /d\nA /d/e\nA /d/e/f\nC /etc\nC /etc/group\nA /hello\n"
    );
    let ours = d.berth(["diff", "ctr"]).assert_success();
    assert_eq!(ours, out);
    // The API's kinds are Docker's numbers.
    let r = d.request("GET", "/containers/ctr/changes", None);
    assert_eq!(r.status, 200);
    let json = r.json();
    assert!(
        json.as_array()
            .unwrap()
            .contains(&serde_json::json!({"Path": "/bin/ls", "Kind": 2}))
    );
}

#[test]
fn commit_makes_an_image_that_runs_with_the_changes() {
    let d = daemon();
    changed_container(&d);
    let id = d
        .docker([
            "commit",
            "-a",
            "Ann Author <ann@example.com>",
            "-m",
            "my message",
            "-c",
            r#"CMD ["cat", "/hello"]"#,
            "-c",
            "ENV GREETING=hello",
            "-c",
            "WORKDIR /d",
            "-c",
            "LABEL stage=test",
            "-c",
            "EXPOSE 8080",
            "-c",
            "USER 0",
            "ctr",
            "committed:1",
        ])
        .assert_success();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker(["run", "--rm", "committed:1"]).assert_success(),
        "hi\n"
    );
    let out = d
        .docker([
            "run",
            "--rm",
            "committed:1",
            "sh",
            "-c",
            "pwd; echo $GREETING; cat /d/e/f; tail -1 /etc/group; test -e /bin/ls || echo ls-gone",
        ])
        .assert_success();
    assert_eq!(out, "/d\nhello\nx\nextra\nls-gone\n");
    let inspect = d
        .docker([
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Config.Labels.stage}}|{{json .Config.ExposedPorts}}|{{len .RootFS.Layers}}",
            "committed:1",
        ])
        .assert_success();
    assert_eq!(
        inspect,
        "Ann Author <ann@example.com>|test|{\"8080/tcp\":{}}|2\n"
    );
    let history = d
        .docker([
            "history",
            "--no-trunc",
            "--format",
            "{{.Comment}}",
            "committed:1",
        ])
        .assert_success();
    assert_eq!(history.lines().next(), Some("my message"));
    // A commit of the committed image's container stacks a third layer.
    d.docker([
        "run",
        "--name",
        "c2",
        "committed:1",
        "sh",
        "-c",
        "rm /hello",
    ])
    .assert_success();
    d.docker(["commit", "c2", "committed:2"]).assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "committed:2",
            "sh",
            "-c",
            "test -e /hello || echo gone; cat /d/e/f",
        ])
        .assert_success();
    assert_eq!(out, "gone\nx\n");
}

#[test]
fn commit_of_a_running_container_pauses_it_and_it_keeps_running() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "run1",
        "busybox",
        "sh",
        "-c",
        "echo live > /state; sleep 1000",
    ])
    .assert_success();
    assert!(eventually(Duration::from_secs(10), || {
        d.docker(["diff", "run1"])
            .stdout_text()
            .contains("A /state")
    }));
    d.docker(["commit", "run1", "running:1"]).assert_success();
    // The freezer cgroup was found and used (the fallback logs a warning).
    assert!(!d.log().contains("committing it unpaused"), "{}", d.log());
    let running = d
        .docker(["inspect", "-f", "{{.State.Running}}", "run1"])
        .assert_success();
    assert_eq!(running, "true\n");
    assert_eq!(
        d.docker(["run", "--rm", "running:1", "cat", "/state"])
            .assert_success(),
        "live\n"
    );
    // The generated /etc/hostname is what cp sees, as inside the container.
    let id = d
        .docker(["inspect", "-f", "{{.Id}}", "run1"])
        .assert_success();
    let out = d.docker(["cp", "run1:/etc/hostname", "-"]);
    let hostname = String::from_utf8(tar_file(&out.stdout, "hostname").unwrap()).unwrap();
    assert_eq!(hostname.trim(), &id[..12]);
    // Export and cp read a running container through its mounted overlay.
    let out = d.docker(["export", "run1"]);
    assert_eq!(tar_file(&out.stdout, "state").unwrap(), b"live\n");
    let out = d.docker(["cp", "run1:/state", "-"]);
    assert_eq!(tar_file(&out.stdout, "state").unwrap(), b"live\n");
    // The commit thawed what it froze.
    let state = std::path::PathBuf::from("/sys/fs/cgroup/freezer")
        .join(d.cgroup_parent().trim_matches('/'))
        .join(id.trim())
        .join("freezer.state");
    assert_eq!(fs::read_to_string(&state).unwrap().trim(), "THAWED");
    d.docker(["commit", "--pause=false", "run1", "running:2"])
        .assert_success();
    d.docker(["rm", "-f", "run1"]).assert_success();
}

#[test]
fn commit_of_an_unchanged_container_adds_an_empty_layer_entry_only() {
    let d = daemon();
    d.docker(["create", "--name", "idle", "busybox"])
        .assert_success();
    d.docker(["commit", "-c", "ENV X=1", "idle", "idle:1"])
        .assert_success();
    let layers = d
        .docker(["image", "inspect", "-f", "{{len .RootFS.Layers}}", "idle:1"])
        .assert_success();
    assert_eq!(layers, "1\n");
    assert_eq!(
        d.docker(["run", "--rm", "idle:1", "sh", "-c", "echo $X"])
            .assert_success(),
        "1\n"
    );
}

#[test]
fn export_streams_the_merged_filesystem_of_a_stopped_container() {
    let d = daemon();
    changed_container(&d);
    let out = d.docker(["export", "ctr"]);
    out.assert_success();
    let names = tar_names(&out.stdout);
    assert!(names.contains(&"hello".to_string()), "{names:?}");
    assert!(names.contains(&"bin/sh".to_string()));
    assert!(!names.contains(&"bin/ls".to_string()));
    assert_eq!(tar_file(&out.stdout, "hello").unwrap(), b"hi\n");
    let file = d.root().join("export.tar");
    d.docker(["export", "-o", file.to_str().unwrap(), "ctr"])
        .assert_success();
    assert_eq!(std::fs::read(&file).unwrap(), out.stdout);
    let ours = d.berth(["export", "ctr"]);
    ours.assert_success();
    assert_eq!(tar_names(&ours.stdout), names);
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    let d = daemon();
    changed_container(&d);
    let host = d.root().join("cp");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_str().unwrap().to_string();
    // Out of the container: a file, a directory, a directory's contents.
    d.docker(["cp", "ctr:/hello", &h("hello.txt")])
        .assert_success();
    assert_eq!(std::fs::read(host.join("hello.txt")).unwrap(), b"hi\n");
    d.docker(["cp", "ctr:/d", &h("dcopy")]).assert_success();
    assert_eq!(std::fs::read(host.join("dcopy/e/f")).unwrap(), b"x\n");
    std::fs::create_dir(host.join("contents")).unwrap();
    d.docker(["cp", "ctr:/d/.", &h("contents")])
        .assert_success();
    assert_eq!(std::fs::read(host.join("contents/e/f")).unwrap(), b"x\n");
    // Into the container, stopped: a file into a directory, a directory, -a.
    std::fs::write(host.join("in.txt"), b"to the container\n").unwrap();
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/leaf"), b"leaf\n").unwrap();
    std::os::unix::fs::chown(host.join("tree/sub/leaf"), Some(1234), Some(5678)).unwrap();
    d.docker(["cp", &h("in.txt"), "ctr:/tmp/"]).assert_success();
    d.docker(["cp", &h("tree"), "ctr:/tree"]).assert_success();
    d.docker(["cp", "-a", &h("tree"), "ctr:/tree-a"])
        .assert_success();
    let out = d.docker(["export", "ctr"]);
    assert_eq!(
        tar_file(&out.stdout, "tmp/in.txt").unwrap(),
        b"to the container\n"
    );
    assert_eq!(tar_file(&out.stdout, "tree/sub/leaf").unwrap(), b"leaf\n");
    // The container is committed and run, to see the files as it does.
    d.docker(["commit", "ctr", "copied"]).assert_success();
    let owners = d
        .docker([
            "run",
            "--rm",
            "copied",
            "stat",
            "-c",
            "%u:%g",
            "/tree-a/sub/leaf",
        ])
        .assert_success();
    assert_eq!(owners, "1234:5678\n");
    // A running container: in and out.
    d.docker(["run", "-d", "--name", "live", "busybox", "sleep", "1000"])
        .assert_success();
    d.docker(["cp", &h("in.txt"), "live:/in.txt"])
        .assert_success();
    d.docker(["cp", "live:/in.txt", &h("back.txt")])
        .assert_success();
    assert_eq!(
        std::fs::read(host.join("back.txt")).unwrap(),
        b"to the container\n"
    );
    d.docker(["rm", "-f", "live"]).assert_success();
    // Missing paths are Docker's errors.
    d.docker(["cp", "ctr:/nope", &h("nope")]).assert_failure();
}

#[test]
fn cp_streams_tarballs_on_stdin_and_stdout() {
    let d = daemon();
    changed_container(&d);
    let out = d.docker(["cp", "ctr:/d", "-"]);
    out.assert_success();
    assert_eq!(tar_names(&out.stdout), ["d/", "d/e/", "d/e/f"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, "from-stdin", &b"stdin\n"[..])
        .unwrap();
    let tarball = b.into_inner().unwrap();
    d.docker_with_stdin(["cp", "-", "ctr:/tmp"], &tarball)
        .assert_success();
    let out = d.docker(["cp", "ctr:/tmp/from-stdin", "-"]);
    out.assert_success();
    assert_eq!(tar_file(&out.stdout, "from-stdin").unwrap(), b"stdin\n");
}

#[test]
fn cp_follows_container_symlinks_only_inside_the_container() {
    let d = daemon();
    // Links that would lead onto the host if resolved there.
    d.docker([
        "run",
        "--name",
        "links",
        "busybox",
        "sh",
        "-c",
        "mkdir /inside && ln -s / /rootlink && ln -s ../../../../../../tmp /dotdot && ln -s /etc/passwd /pw && echo marker-inside > /inside/m",
    ])
    .assert_success();
    let host = d.root().join("links");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_str().unwrap().to_string();
    // Out: -L copies the container's /etc/passwd, never the host's.
    d.docker(["cp", "-L", "links:/pw", &h("pw")])
        .assert_success();
    let container_passwd = d
        .docker(["run", "--rm", "busybox", "cat", "/etc/passwd"])
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(host.join("pw")).unwrap(),
        container_passwd
    );
    // Without -L the link itself is copied.
    d.docker(["cp", "links:/pw", &h("pwlink")]).assert_success();
    assert_eq!(
        std::fs::read_link(host.join("pwlink")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    // In: writing through the links lands inside the container.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    std::fs::write(host.join(&marker), b"escaped?\n").unwrap();
    d.docker(["cp", &h(&marker), "links:/dotdot/"])
        .assert_success();
    d.docker(["cp", &h(&marker), "links:/rootlink/tmp/"])
        .assert_success();
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    let out = d.docker(["export", "links"]);
    assert!(tar_file(&out.stdout, &format!("tmp/{marker}")).is_some());
    // -L into a directory keeps the link's name; a symlinked destination is
    // followed inside the container. Both CLIs agree.
    for (cli, dir) in [("docker", "dl"), ("berth", "bl")] {
        std::fs::create_dir(host.join(dir)).unwrap();
        let run = |args: &[&str]| match cli {
            "docker" => d.docker(args),
            _ => d.berth(args),
        };
        run(&["cp", "-L", "links:/pw", &h(&format!("{dir}/"))]).assert_success();
        assert_eq!(
            std::fs::read_to_string(host.join(dir).join("pw")).unwrap(),
            container_passwd,
            "{cli}"
        );
        std::fs::write(host.join(dir).join(format!("{cli}-in")), b"in\n").unwrap();
        run(&["cp", &h(&format!("{dir}/{cli}-in")), "links:/rootlink"]).assert_success();
        let out = d.docker(["cp", &format!("links:/{cli}-in"), "-"]);
        assert_eq!(
            tar_file(&out.stdout, &format!("{cli}-in")).unwrap(),
            b"in\n",
            "{cli}"
        );
    }
    // Reading through them stays inside too.
    let out = d.docker(["cp", "links:/rootlink/inside/m", "-"]);
    assert_eq!(tar_file(&out.stdout, "m").unwrap(), b"marker-inside\n");
}

#[test]
fn berth_cli_commits_and_copies_like_docker() {
    let d = daemon();
    changed_container(&d);
    let id = d
        .berth([
            "commit",
            "-a",
            "berth",
            "-m",
            "from berth",
            "-c",
            "CMD cat /hello",
            "ctr",
            "berthimg:v1",
        ])
        .assert_success();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker(["run", "--rm", "berthimg:v1"]).assert_success(),
        "hi\n"
    );
    let author = d
        .docker([
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}",
            "berthimg:v1",
        ])
        .assert_success();
    assert_eq!(author, "berth|from berth\n");
    d.berth(["commit", "--pause=false", "ctr"]).assert_success();

    let host = d.root().join("berth-cp");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_str().unwrap().to_string();
    d.berth(["cp", "ctr:/hello", &h("hello.txt")])
        .assert_success();
    assert_eq!(std::fs::read(host.join("hello.txt")).unwrap(), b"hi\n");
    d.berth(["cp", "ctr:/d", &h("dcopy")]).assert_success();
    assert_eq!(std::fs::read(host.join("dcopy/e/f")).unwrap(), b"x\n");
    std::fs::create_dir(host.join("contents")).unwrap();
    d.berth(["cp", "ctr:/d/.", &h("contents")]).assert_success();
    assert_eq!(std::fs::read(host.join("contents/e/f")).unwrap(), b"x\n");
    std::fs::write(host.join("in.txt"), b"berth in\n").unwrap();
    std::os::unix::fs::chown(host.join("in.txt"), Some(1234), Some(5678)).unwrap();
    d.berth(["cp", &h("in.txt"), "ctr:/tmp/"]).assert_success();
    d.berth(["cp", &h("in.txt"), "ctr:/renamed.txt"])
        .assert_success();
    d.berth(["cp", &h("dcopy"), "ctr:/dcopy"]).assert_success();
    let out = d.berth(["cp", "ctr:/tmp/in.txt", "-"]);
    out.assert_success();
    assert_eq!(tar_file(&out.stdout, "in.txt").unwrap(), b"berth in\n");
    let out = d.docker(["export", "ctr"]);
    assert_eq!(tar_file(&out.stdout, "renamed.txt").unwrap(), b"berth in\n");
    assert_eq!(tar_file(&out.stdout, "dcopy/e/f").unwrap(), b"x\n");
    // Without -a the source's owners are kept, as dockerd does.
    let owners = {
        d.docker(["commit", "ctr", "owners"]).assert_success();
        d.docker([
            "run",
            "--rm",
            "owners",
            "stat",
            "-c",
            "%u:%g",
            "/renamed.txt",
        ])
        .assert_success()
    };
    assert_eq!(owners, "1234:5678\n");
    let mut b = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(3);
    hd.set_mode(0o644);
    b.append_data(&mut hd, "piped", &b"abc"[..]).unwrap();
    d.berth_with_stdin(["cp", "-", "ctr:/tmp"], &b.into_inner().unwrap())
        .assert_success();
    let out = d.docker(["cp", "ctr:/tmp/piped", "-"]);
    assert_eq!(tar_file(&out.stdout, "piped").unwrap(), b"abc");
    let err = d.berth(["cp", "ctr:/nope", &h("x")]).assert_failure();
    assert!(
        err.contains("Could not find the file /nope in container ctr"),
        "{err}"
    );
}

#[test]
fn a_container_that_changed_nothing_has_no_diff() {
    let d = daemon();
    d.docker(["run", "--name", "quiet", "busybox", "true"])
        .assert_success();
    assert_eq!(d.docker(["diff", "quiet"]).assert_success(), "");
    assert_eq!(d.berth(["diff", "quiet"]).assert_success(), "");
}

#[test]
fn mount_points_the_runtime_made_are_not_changes() {
    let d = daemon();
    d.load_image("hello-world");
    d.docker(["run", "--name", "hello", "hello-world"])
        .assert_success();
    assert_eq!(d.docker(["diff", "hello"]).assert_success(), "");
    d.docker(["commit", "hello", "hello:2"]).assert_success();
    let layers = d
        .docker([
            "image",
            "inspect",
            "-f",
            "{{len .RootFS.Layers}}",
            "hello:2",
        ])
        .assert_success();
    assert_eq!(layers, "1\n");
}

#[test]
fn cp_reaches_volumes_and_respects_read_only() {
    let d = daemon();
    let host = d.root().join("vols");
    std::fs::create_dir_all(host.join("bind")).unwrap();
    std::fs::write(host.join("bind/on-host"), b"bound\n").unwrap();
    let bind = format!("{}:/bound:ro", host.join("bind").display());
    d.docker([
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "named:/data",
        "-v",
        &bind,
        "--read-only",
        "busybox",
        "sleep",
        "1000",
    ])
    .assert_success();
    std::fs::write(host.join("f"), b"into the volume\n").unwrap();
    let f = host.join("f").to_str().unwrap().to_string();
    d.docker(["cp", &f, "vols:/data/"]).assert_success();
    let out = d.docker(["cp", "vols:/data/f", "-"]);
    assert_eq!(tar_file(&out.stdout, "f").unwrap(), b"into the volume\n");
    let out = d.docker(["cp", "vols:/bound/on-host", "-"]);
    assert_eq!(tar_file(&out.stdout, "on-host").unwrap(), b"bound\n");
    let err = d.docker(["cp", &f, "vols:/bound/"]).assert_failure();
    assert!(err.contains("marked read-only"), "{err}");
    let err = d.docker(["cp", &f, "vols:/tmp/"]).assert_failure();
    assert!(err.contains("read-only"), "{err}");
    // The container sees what was copied into its volume.
    d.docker(["rm", "-f", "vols"]).assert_success();
    let out = d
        .docker([
            "run",
            "--rm",
            "-v",
            "named:/data",
            "busybox",
            "cat",
            "/data/f",
        ])
        .assert_success();
    assert_eq!(out, "into the volume\n");
}

// The layer diff itself, below the daemon: overlay whiteouts, opaque directories,
// owners and xattrs need root, so these live here rather than beside the code.

fn mknod_whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0),
        0,
    )
    .unwrap();
}

#[test]
fn whiteouts_and_opaque_dirs_become_wh_entries() {
    berth_e2e::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path();
    fs::create_dir(up.join("dir")).unwrap();
    rustix::fs::setxattr(
        up.join("dir").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    mknod_whiteout(&up.join("gone"));
    let (buf, _) = layer::write_diff(up, Vec::new()).unwrap();
    let names = tar_names(&buf);
    assert_eq!(names, ["dir/", "dir/.wh..wh..opq", ".wh.gone"]);
    // No overlay xattr leaks into the tarball.
    assert!(!buf.windows(15).any(|w| w == b"trusted.overlay"));
}

#[test]
fn diff_round_trips_through_apply() {
    berth_e2e::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    fs::create_dir_all(up.join("d")).unwrap();
    fs::write(up.join("d/f"), b"data").unwrap();
    std::os::unix::fs::chown(up.join("d/f"), Some(123), Some(456)).unwrap();
    rustix::fs::setxattr(
        up.join("d/f").as_path(),
        "user.note",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    mknod_whiteout(&up.join("gone"));
    let (buf, _) = layer::write_diff(&up, Vec::new()).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    layer::apply_layer(&out, &buf[..], &Default::default()).unwrap();
    let m = fs::symlink_metadata(out.join("d/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (123, 456));
    assert_eq!(fs::read(out.join("d/f")).unwrap(), b"data");
    let w = fs::symlink_metadata(out.join("gone")).unwrap();
    assert_eq!(w.rdev(), 0);
    let mut v = [0u8; 8];
    let n = rustix::fs::getxattr(out.join("d/f").as_path(), "user.note", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"v");
}

#[test]
fn changes_report_added_changed_and_deleted_in_path_order() {
    berth_e2e::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    let up = tmp.path().join("up");
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::create_dir_all(lower.join("bin")).unwrap();
    fs::create_dir_all(lower.join("var/lib")).unwrap();
    fs::write(lower.join("etc/passwd"), b"root").unwrap();
    fs::write(lower.join("bin/sh"), b"sh").unwrap();
    fs::write(lower.join("var/lib/x"), b"x").unwrap();
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::create_dir_all(up.join("new/deep")).unwrap();
    fs::create_dir_all(up.join("var")).unwrap();
    fs::create_dir_all(up.join("bin")).unwrap();
    // Same metadata as below: a copied-up parent.
    fs::set_permissions(
        up.join("var"),
        fs::metadata(lower.join("var")).unwrap().permissions(),
    )
    .unwrap();
    fs::set_permissions(
        up.join("bin"),
        fs::metadata(lower.join("bin")).unwrap().permissions(),
    )
    .unwrap();
    fs::set_permissions(
        up.join("etc"),
        fs::metadata(lower.join("etc")).unwrap().permissions(),
    )
    .unwrap();
    fs::write(up.join("etc/passwd"), b"root2").unwrap();
    fs::write(up.join("new/deep/f"), b"f").unwrap();
    mknod_whiteout(&up.join("bin/sh"));
    mknod_whiteout(&up.join("var/lib"));
    let got: Vec<String> = layer::changes(&up, &[lower])
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {}", c.kind.letter(), String::from_utf8(c.path).unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            "C /bin",
            "D /bin/sh",
            "C /etc",
            "C /etc/passwd",
            "A /new",
            "A /new/deep",
            "A /new/deep/f",
            "C /var",
            "D /var/lib",
        ]
    );
}

#[test]
fn opaque_directory_deletes_what_it_does_not_hold_again() {
    berth_e2e::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    let up = tmp.path().join("up");
    fs::create_dir_all(lower.join("d")).unwrap();
    fs::write(lower.join("d/old"), b"o").unwrap();
    fs::write(lower.join("d/kept"), b"k").unwrap();
    fs::create_dir_all(up.join("d")).unwrap();
    fs::set_permissions(
        up.join("d"),
        fs::metadata(lower.join("d")).unwrap().permissions(),
    )
    .unwrap();
    rustix::fs::setxattr(
        up.join("d").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    fs::write(up.join("d/kept"), b"new").unwrap();
    let got: Vec<(String, layer::ChangeKind)> = layer::changes(&up, &[lower])
        .unwrap()
        .into_iter()
        .map(|c| (String::from_utf8(c.path).unwrap(), c.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("/d".to_string(), layer::ChangeKind::Modify),
            ("/d/kept".to_string(), layer::ChangeKind::Modify),
            ("/d/old".to_string(), layer::ChangeKind::Delete),
        ]
    );
}
