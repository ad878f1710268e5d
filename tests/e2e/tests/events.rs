//! `docker events` against berthd: past events replayed between --since and --until,
//! the live stream, filters, and the same lines through `berth events`. Needs root.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_e2e::{Berthd, OutputExt};

fn unix_now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn past_events_replay_in_order_with_docker_s_actions_and_attributes() {
    let d = Berthd::start();
    d.load_image("busybox");
    let since = unix_now();
    d.docker([
        "run", "--name", "ev1", "-l", "team=a", "busybox", "sh", "-c", "exit 3",
    ]);
    d.docker(["rename", "ev1", "ev2"]).assert_success();
    d.docker(["rm", "ev2"]).assert_success();
    d.docker(["tag", "busybox", "ev:1"]).assert_success();
    d.docker(["rmi", "ev:1"]).assert_success();
    d.docker(["volume", "create", "evv"]).assert_success();
    d.docker(["volume", "rm", "evv"]).assert_success();
    d.docker(["run", "-d", "--name", "ev3", "busybox", "sleep", "100"])
        .assert_success();
    let out = d.docker(["exec", "ev3", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    d.docker(["stop", "-t", "1", "ev3"]).assert_success();
    d.docker(["commit", "-m", "snap", "ev3", "evimg:1"])
        .assert_success();
    std::thread::sleep(Duration::from_millis(20));
    let until = unix_now();

    let format = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let lines = d
        .docker([
            "events", "--since", &since, "--until", &until, "--format", format,
        ])
        .assert_success();
    let expected = [
        "container create ev1",
        "container attach ev1",
        "container start ev1",
        "container die ev1",
        "container rename ev2",
        "container destroy ev2",
        "image tag ev:1",
        "volume create <no value>",
        "volume destroy <no value>",
        "container create ev3",
        "container start ev3",
        "container exec_create: sh -c exit 5 ev3",
        "container exec_start: sh -c exit 5 ev3",
        "container exec_die ev3",
        // sleep as PID 1 ignores SIGTERM: SIGKILL follows after the timeout.
        "container kill ev3",
        "container kill ev3",
        "container die ev3",
        "container stop ev3",
        "container commit ev3",
    ];
    let got: Vec<&str> = lines.lines().collect();
    let mut at = 0;
    for want in expected {
        match got[at..].iter().position(|l| *l == want) {
            Some(i) => at += i + 1,
            None => panic!("missing {want:?} (in order) in:\n{lines}"),
        }
    }
    assert!(lines.contains("image untag sha256:"), "{lines}");

    // Attributes as Docker sets them.
    let die = d
        .docker([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "event=die",
            "-f",
            "container=ev1",
            "--format",
            "{{json .}}",
        ])
        .assert_success();
    let die: serde_json::Value = serde_json::from_str(die.trim()).expect("one die event");
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "busybox");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(die["Actor"]["Attributes"]["team"], "a");
    assert_eq!(die["Actor"]["Attributes"]["image"], "busybox");
    assert_eq!(die["scope"], "local");
    let kill = d
        .docker([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "event=kill",
            "--format",
            "{{.Actor.Attributes.signal}}",
        ])
        .assert_success();
    assert_eq!(kill, "15\n9\n");

    // Filters: type, image, label.
    let types = d
        .docker([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ])
        .assert_success();
    assert_eq!(types, "create evv\ndestroy evv\n");
    let labelled = d
        .docker([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "label=team=a",
            "--format",
            "{{.Action}}",
        ])
        .assert_success();
    assert_eq!(labelled, "create\nattach\nstart\ndie\nrename\ndestroy\n");
    let out = d.docker([
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "-f",
        "colour=red",
    ]);
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("invalid filter 'colour'"),
        "{}",
        out.stderr_text()
    );

    // berth prints the same default lines as docker.
    let docker = d
        .docker(["events", "--since", &since, "--until", &until])
        .assert_success();
    let berth = d
        .berth(["events", "--since", &since, "--until", &until])
        .assert_success();
    assert_eq!(docker, berth);
    assert!(
        docker.lines().any(|l| l.contains(" container die ")
            && l.ends_with("(exitCode=3, image=busybox, name=ev1, team=a)")),
        "{docker}"
    );
    d.docker(["rm", "ev3"]).assert_success();
}

/// The events of one type between `since` and `until`, through `--format json`
/// with the extra filters given.
fn events_json(d: &Berthd, since: &str, until: &str, filters: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["events", "--since", since, "--until", until];
    for f in filters {
        args.extend(["--filter", f]);
    }
    args.extend(["--format", "json"]);
    d.docker(args)
        .assert_success()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn action_and(v: &serde_json::Value, attribute: &str) -> String {
    format!(
        "{} {}",
        v["Action"].as_str().unwrap(),
        v["Actor"]["Attributes"][attribute].as_str().unwrap_or("-")
    )
}

#[test]
fn resize_volume_network_and_save_events_carry_docker_s_attributes() {
    let d = Berthd::start();
    d.load_image("busybox");
    let since = unix_now();
    d.docker(["network", "create", "evnet"]).assert_success();
    let net_id = d
        .docker(["network", "inspect", "-f", "{{.Id}}", "evnet"])
        .assert_success();
    let net_id = net_id.trim();
    let id = d
        .docker([
            "run",
            "-d",
            "-t",
            "--name",
            "evc",
            "-v",
            "evvol:/data",
            "-v",
            "/tmp:/host:ro",
            "busybox",
            "sleep",
            "1000",
        ])
        .assert_success();
    let id = id.trim();
    let resize = d.request("POST", "/containers/evc/resize?h=30&w=100", None);
    assert_eq!(resize.status, 200, "{}", resize.text());
    d.docker(["network", "connect", "evnet", "evc"])
        .assert_success();
    d.docker(["network", "disconnect", "evnet", "evc"])
        .assert_success();
    d.docker(["network", "rm", "evnet"]).assert_success();
    d.docker(["stop", "-t", "0", "evc"]).assert_success();
    let tar = d.root().join("save.tar");
    d.docker(["save", "-o", tar.to_str().unwrap(), "busybox"])
        .assert_success();
    std::fs::remove_file(&tar).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let until = unix_now();

    let resize = events_json(&d, &since, &until, &["event=resize"]);
    assert_eq!(resize.len(), 1, "{resize:?}");
    let a = &resize[0]["Actor"];
    assert_eq!(a["ID"], id);
    assert_eq!(a["Attributes"]["height"], "30");
    assert_eq!(a["Attributes"]["width"], "100");
    assert_eq!(a["Attributes"]["name"], "evc");

    // Only the named volume mounts (a bind is no volume), at start and at stop.
    let volume = events_json(&d, &since, &until, &["type=volume"]);
    let actions: Vec<&str> = volume
        .iter()
        .map(|v| v["Action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "mount", "unmount"], "{volume:?}");
    let mount = &volume[1]["Actor"];
    assert_eq!(mount["ID"], "evvol");
    assert_eq!(mount["Attributes"]["container"], id);
    assert_eq!(mount["Attributes"]["destination"], "/data");
    assert_eq!(mount["Attributes"]["read/write"], "true");
    assert_eq!(mount["Attributes"]["driver"], "local");
    assert!(mount["Attributes"].get("propagation").is_some());
    assert_eq!(volume[2]["Actor"]["Attributes"]["container"], id);

    // The default bridge and the user network, each with its name and type; the
    // container's ID on connect and disconnect.
    let network = events_json(&d, &since, &until, &["type=network"]);
    let lines: Vec<String> = network
        .iter()
        .map(|v| format!("{} {}", action_and(v, "name"), action_and(v, "container")))
        .collect();
    let expect = [
        "create evnet create -".to_string(),
        format!("connect bridge connect {id}"),
        format!("connect evnet connect {id}"),
        format!("disconnect evnet disconnect {id}"),
        "destroy evnet destroy -".to_string(),
        format!("disconnect bridge disconnect {id}"),
    ];
    assert_eq!(lines, expect, "{network:?}");
    assert!(
        network
            .iter()
            .all(|v| v["Actor"]["Attributes"]["type"] == "bridge")
    );
    assert_eq!(network[0]["Actor"]["ID"], net_id);
    // `network=` selects by the network's name or ID, and `container=` leaves the
    // network events out, as in Docker.
    let by_net = events_json(&d, &since, &until, &["network=evnet"]);
    assert_eq!(by_net.len(), 4, "{by_net:?}");
    let by_container = events_json(&d, &since, &until, &["container=evc"]);
    assert!(
        by_container.iter().all(|v| v["Type"] == "container"),
        "{by_container:?}"
    );

    let save = events_json(&d, &since, &until, &["event=save"]);
    assert_eq!(save.len(), 1, "{save:?}");
    let image_id = d
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .assert_success();
    assert_eq!(save[0]["Type"], "image");
    assert_eq!(save[0]["Actor"]["ID"], image_id.trim());
    assert_eq!(save[0]["Actor"]["Attributes"]["name"], image_id.trim());
    d.docker(["rm", "evc"]).assert_success();
    d.docker(["volume", "rm", "evvol"]).assert_success();
}

#[test]
fn live_stream_delivers_events_as_they_happen() {
    let d = Berthd::start();
    d.load_image("busybox");
    // --since makes the stream start from now even if the CLI connects late: the
    // daemon replays what happened since, then goes live, without gaps or repeats.
    let since = unix_now();
    let mut watcher = d
        .docker_cmd()
        .args([
            "events",
            "--since",
            &since,
            "-f",
            "container=live",
            "--format",
            "{{.Action}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker events starts");
    // Kill the watcher (our own child) however the test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = watcher.stdout.take().unwrap();
    let watcher = Reap(watcher);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    d.docker(["run", "--rm", "--name", "live", "busybox", "true"])
        .assert_success();
    d.docker(["run", "--rm", "--name", "other", "busybox", "true"])
        .assert_success();
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = line == "destroy";
        seen.push(line);
        if done {
            break;
        }
    }
    assert_eq!(seen, ["create", "attach", "start", "die", "destroy"]);
    // Nothing of the other container passed the filter.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    drop(watcher);
}

#[test]
fn detaching_from_an_exec_reports_exec_detach_and_leaves_it_running() {
    use std::io::{Read, Write};
    let d = Berthd::start();
    d.load_image("busybox");
    d.docker(["run", "-d", "--name", "exd", "busybox", "sleep", "1000"])
        .assert_success();
    let since = unix_now();
    let body = br#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"],"DetachKeys":"ctrl-a,x"}"#;
    let created = d.request(
        "POST",
        "/containers/exd/exec",
        Some(("application/json", body)),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let exec_id = created.json()["Id"].as_str().unwrap().to_string();
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /exec/{exec_id}/start HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s.write_all(b"\x01x").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let inspect = d.request("GET", &format!("/exec/{exec_id}/json"), None);
    assert_eq!(inspect.json()["Running"], true, "{}", inspect.text());
    std::thread::sleep(Duration::from_millis(20));
    let until = unix_now();
    let events = d
        .docker([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "-f",
            "event=exec_detach",
            "--format",
            "{{.Action}} {{.Actor.Attributes.execID}} {{.Actor.Attributes.name}}",
        ])
        .assert_success();
    assert_eq!(events, format!("exec_detach {exec_id} exd\n"));
    d.docker(["rm", "-f", "exd"]).assert_success();
}
