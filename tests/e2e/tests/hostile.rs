//! Hostile input against the Engine API and the docker CLI: every bad request gets
//! Docker's status and `{"message": ...}`, never a 500 for the client's mistake, and
//! nothing is written outside where it belongs. Needs root.

use berth_e2e::{Berthd, HttpResponse, OutputExt, exit_code as code};
use serde_json::json;

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

fn post_json(d: &Berthd, path: &str, body: &serde_json::Value) -> HttpResponse {
    d.request(
        "POST",
        path,
        Some(("application/json", body.to_string().as_bytes())),
    )
}

/// Asserts a Docker-shaped error: `status`, a JSON body whose message contains `needle`.
#[track_caller]
fn assert_error(r: &HttpResponse, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

#[test]
fn volume_sources_that_are_paths_create_nothing_outside_the_store() {
    let d = daemon();
    let escape = d.root().join("escape");
    let relative = format!("../../../../../../..{}", escape.display());
    for source in [relative.as_str(), escape.to_str().unwrap(), "a/b"] {
        let r = post_json(
            &d,
            "/containers/create",
            &json!({"Image": "busybox", "HostConfig": {"Mounts": [
                {"Type": "volume", "Source": source, "Target": "/x"}
            ]}}),
        );
        assert_error(&r, 400, "invalid characters for a local volume name");
    }
    assert!(!escape.exists(), "{} was created", escape.display());
    let out = d.docker([
        "create",
        "--mount",
        &format!("type=volume,source={relative},target=/x"),
        "busybox",
    ]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("invalid characters for a local volume name");
    assert!(!escape.exists());
    // A name too long to be a directory is the client's mistake too.
    let out = d.docker(["volume", "create", &"v".repeat(300)]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("volume name is too long");
    assert!(
        d.docker(["container", "ls", "-aq"])
            .assert_success()
            .is_empty()
    );
}

#[test]
fn bad_mounts_are_refused_at_create_in_dockers_words() {
    let d = daemon();
    for (host_config, needle) in [
        (
            json!({"Mounts": [{"Type": "bind", "Source": "relative", "Target": "/x"}]}),
            "invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            json!({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/"}]}),
            "destination can't be '/'",
        ),
        (json!({"Binds": ["/tmp:/"]}), "destination can't be '/'"),
        (json!({"Binds": ["/tmp:/x/.."]}), "destination can't be '/'"),
        (json!({"Binds": ["/tmp:/proc"]}), "/proc"),
        (json!({"Binds": [":/x"]}), "invalid volume specification"),
        (json!({"Binds": ["/tmp:/x:ro,rw"]}), "invalid mode: ro,rw"),
        (
            json!({"Tmpfs": {"/t": "size=garbage"}}),
            "invalid tmpfs option",
        ),
        (
            json!({"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": -5}}]}),
            "invalid tmpfs size",
        ),
    ] {
        let r = post_json(
            &d,
            "/containers/create",
            &json!({"Image": "busybox", "HostConfig": host_config}),
        );
        assert_error(&r, 400, needle);
    }
    let out = d.docker(["run", "--rm", "--tmpfs", "/t:nosuchopt", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    out.assert_stderr_contains("invalid tmpfs option");
    // A destination with `..` in it is cleaned, as Docker does, and the container runs.
    let out = d.docker([
        "run",
        "--rm",
        "-v",
        "hostilevol:/data/../x",
        "busybox",
        "sh",
        "-c",
        "echo ok > /x/f && cat /x/f",
    ]);
    assert_eq!(out.assert_success(), "ok\n");
    assert!(
        d.docker(["container", "ls", "-aq"])
            .assert_success()
            .is_empty()
    );
}

#[test]
fn out_of_range_resources_and_nulls_are_answered_like_docker() {
    let d = daemon();
    for (host_config, needle) in [
        (json!({"OomScoreAdj": 5000}), "range for oom score adj"),
        (json!({"ShmSize": -1}), "SHM size can not be less than 0"),
        (json!({"CpuShares": -5}), "invalid CPU shares (-5)"),
        (
            json!({"MemorySwappiness": 500}),
            "valid memory swappiness range",
        ),
        (json!({"Memory": "x"}), "invalid HostConfig"),
    ] {
        let r = post_json(
            &d,
            "/containers/create",
            &json!({"Image": "busybox", "HostConfig": host_config}),
        );
        assert_error(&r, 400, needle);
    }
    let r = post_json(
        &d,
        "/containers/create",
        &json!({"Image": "busybox", "Cmd": 5}),
    );
    assert_error(&r, 400, "expected a string or an array of strings");
    // Go decodes `null` as the zero value: Docker creates this container.
    let r = post_json(
        &d,
        "/containers/create",
        &json!({"Image": "busybox", "Cmd": null, "Tty": null, "HostConfig": {
            "Memory": null, "CpuShares": null, "Privileged": null, "RestartPolicy": null
        }}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let out = d.docker(["run", "--rm", "--oom-score-adj", "5000", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    out.assert_stderr_contains("range for oom score adj is [-1000, 1000]");
    // Bodies over the limit are a JSON 400 on every route, not a plain-text 413, and
    // the client that writes all of its body before reading the answer gets to read it.
    let big = vec![b' '; 3 << 20];
    for path in ["/containers/create", "/commit?container=x"] {
        let r = d.request("POST", path, Some(("application/json", &big)));
        assert_error(&r, 400, "length limit exceeded");
    }
}

/// A tarball of one entry: a regular file with `data`, or a hardlink to `link`.
fn tarball(name: &str, data: &[u8], link: Option<&str>) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    let size = if link.is_some() { 0 } else { data.len() };
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = if link.is_some() { b'1' } else { b'0' };
    if let Some(target) = link {
        header[157..157 + target.len()].copy_from_slice(target.as_bytes());
    }
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    if link.is_none() {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn archive_paths_stay_inside_the_container_and_fail_cleanly() {
    let d = daemon();
    d.docker([
        "run",
        "-d",
        "--name",
        "ev",
        "busybox",
        "sh",
        "-c",
        "ln -s / /evil && mkdir /d && echo inside > /etc/marker && sleep 600",
    ])
    .assert_success();
    assert!(berth_e2e::eventually(
        std::time::Duration::from_secs(10),
        || d.docker(["exec", "ev", "test", "-d", "/d"])
            .status
            .success()
    ));
    // A symlink to / resolves in the container's root, not the host's.
    let dest = d.root().join("cp-out");
    std::fs::create_dir_all(&dest).unwrap();
    d.docker([
        "cp",
        "ev:/evil/etc/marker",
        dest.join("marker").to_str().unwrap(),
    ])
    .assert_success();
    assert_eq!(
        std::fs::read_to_string(dest.join("marker")).unwrap(),
        "inside\n"
    );
    let out = d.docker(["cp", "ev:/nonexistent", dest.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("Could not find the file /nonexistent in container ev");

    let r = d.request("GET", "/containers/ev/archive?path=/a%00b", None);
    assert_error(&r, 400, "NUL");
    // `file/` names a directory that is not there: an error, not an empty 200 tarball.
    let r = d.request("GET", "/containers/ev/archive?path=/etc/marker/", None);
    assert_error(&r, 400, "not a directory");

    // Uploads: `..` names are refused, a hardlink to nothing is the client's mistake.
    let escape = d.root().join("PWNED");
    let dotdot = format!("../../../../../../../..{}", escape.display());
    let r = d.request(
        "PUT",
        "/containers/ev/archive?path=/d",
        Some(("application/x-tar", &tarball(&dotdot, b"x", None))),
    );
    assert_error(&r, 400, "breakout");
    let r = d.request(
        "PUT",
        "/containers/ev/archive?path=/evil/tmp",
        Some((
            "application/x-tar",
            &tarball("hl", b"", Some("no/such/target")),
        )),
    );
    assert_error(&r, 400, "hl");
    assert!(!escape.exists());
    let r = d.request(
        "PUT",
        "/containers/ev/archive?path=/evil/tmp",
        Some(("application/x-tar", &tarball("ok.txt", b"fine\n", None))),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let out = d.docker(["exec", "ev", "cat", "/tmp/ok.txt"]);
    assert_eq!(out.assert_success(), "fine\n");
    d.docker(["rm", "-f", "ev"]).assert_success();
}

#[test]
fn impossible_updates_are_400_not_a_failed_cgroup_write() {
    let d = daemon();
    d.docker(["run", "-d", "--name", "u1", "busybox", "sleep", "600"])
        .assert_success();
    for (body, needle) in [
        (
            json!({"CpuPeriod": 5}),
            "CPU cfs period can not be less than 1ms",
        ),
        (
            json!({"CpusetCpus": "999"}),
            "Requested CPUs are not available",
        ),
        (
            json!({"CpusetCpus": "garbage"}),
            "Invalid value garbage for cpuset cpus",
        ),
    ] {
        let r = post_json(&d, "/containers/u1/update", &body);
        assert_error(&r, 400, needle);
    }
    let r = post_json(&d, "/containers/u1/update", &json!({"Memory": null}));
    assert_eq!(r.status, 200, "{}", r.text());
    let out = d.docker(["update", "--cpuset-cpus", "999", "u1"]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("Requested CPUs are not available");
    let out = d.docker(["run", "--rm", "--cpuset-cpus", "0-999", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    out.assert_stderr_contains("Requested CPUs are not available");
    let r = d.request("POST", "/containers/u1/rename?name=", None);
    assert_error(&r, 400, "Neither old nor new names may be empty");
    d.docker(["rm", "-f", "u1"]).assert_success();
}

#[test]
fn exec_start_without_an_upgrade_streams_the_output_as_a_plain_body() {
    let d = daemon();
    let id = d
        .docker(["run", "-d", "busybox", "sleep", "60"])
        .assert_success();
    let exec = post_json(
        &d,
        &format!("/containers/{}/exec", id.trim()),
        &json!({"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"],
                "AttachStdout": true, "AttachStderr": true}),
    );
    assert_eq!(exec.status, 201, "{}", exec.text());
    let exec_id = exec.json()["Id"].as_str().unwrap().to_string();
    // Docker answers a plain 200 whose body is the multiplexed stream.
    let r = post_json(
        &d,
        &format!("/exec/{exec_id}/start"),
        &json!({"Detach": false, "Tty": false}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.docker.multiplexed-stream")
    );
    let mut frames = Vec::new();
    let mut rest = &r.body[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        frames.push((
            rest[0],
            String::from_utf8_lossy(&rest[8..8 + len]).to_string(),
        ));
        rest = &rest[8 + len..];
    }
    frames.sort();
    assert_eq!(frames, [(1, "out\n".to_string()), (2, "err\n".to_string())]);
    let inspect = d.request("GET", &format!("/exec/{exec_id}/json"), None);
    assert_eq!(inspect.json()["ExitCode"], 3, "{}", inspect.text());
    d.docker(["rm", "-f", id.trim()]).assert_success();
}

#[test]
fn network_options_and_filters_that_cannot_be_read_are_refused() {
    let d = daemon();
    let out = d.docker([
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=-5",
        "mtu-net",
    ]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("invalid MTU number: -5");
    let out = d.docker([
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=maybe",
        "icc-net",
    ]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("failed to parse com.docker.network.bridge.enable_icc value: maybe");
    // Nothing was made by either refusal.
    let ls = d
        .docker(["network", "ls", "--format", "{{.Name}}"])
        .assert_success();
    assert!(!ls.contains("mtu-net") && !ls.contains("icc-net"), "{ls}");
    let out = d.docker(["network", "ls", "-f", "dangling=maybe"]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("invalid value for filter 'dangling'");
    let out = d.docker(["network", "ls", "-f", "type=odd"]);
    assert_eq!(code(&out), 1);
    out.assert_stderr_contains("invalid filter: 'type'='odd'");
    let ls = d
        .docker([
            "network",
            "ls",
            "-f",
            "dangling=false",
            "--format",
            "{{.Name}}",
        ])
        .assert_success();
    assert!(ls.contains("bridge"), "{ls}");
}
