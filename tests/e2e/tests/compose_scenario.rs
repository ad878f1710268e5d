//! Issue 9's three-service app, run by Debian's docker-compose 1.29 and by
//! `berth compose` on the same project file (`fixtures/compose/stack`): a
//! front built from the project (the build service) that publishes a port and
//! proxies to the backend by its service name, a busybox httpd backend alone
//! on a second network that the front also joins, a store writing to a named
//! volume. Checked: the build, healthcheck ordering (`service_healthy`), the
//! nginx proxy from the host, the backend's network isolation, `up --scale
//! backend=3` with every replica answering, and that `down` / `down -v` leave
//! no container, network, bridge, nft rule, cgroup (or, with `-v`, volume)
//! behind. Needs root and `docker-compose`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::{Berthd, OutputExt, eventually, run_command};

/// Which Compose implementation drives the project.
#[derive(Clone, Copy, Debug)]
enum Tool {
    /// Debian's Python docker-compose 1.29.
    DockerCompose,
    /// `berth compose`.
    Berth,
}

/// A project directory and the daemon it runs against.
struct Stack {
    d: Berthd,
    tool: Tool,
    project: String,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Stack {
    fn new(tool: Tool, project: &str) -> Stack {
        berth_e2e::require_root();
        if matches!(tool, Tool::DockerCompose) {
            let found = Command::new("docker-compose")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "docker-compose 1.29 is not installed: run scripts/install-deps (Debian package docker-compose)"
            );
        }
        let d = Berthd::start();
        d.load_image("busybox");
        d.load_image("nginx");
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join(project);
        copy_dir(&fixture("stack"), &dir);
        Stack {
            d,
            tool,
            project: project.to_string(),
            dir,
            _tmp: tmp,
        }
    }

    /// `<tool> -p <project> ARGS` in the project directory.
    fn compose(&self, args: &[&str]) -> Output {
        let mut cmd = match self.tool {
            Tool::DockerCompose => {
                let mut c = Command::new("docker-compose");
                c.env("DOCKER_HOST", self.d.host())
                    .env("DOCKER_CONFIG", self.d.docker_config_dir());
                for var in [
                    "DOCKER_API_VERSION",
                    "COMPOSE_FILE",
                    "COMPOSE_PROJECT_NAME",
                    "COMPOSE_INTERACTIVE_NO_CLI",
                ] {
                    c.env_remove(var);
                }
                c.arg("--no-ansi");
                c
            }
            Tool::Berth => {
                let mut c = self.d.berth_cmd();
                c.arg("compose");
                c
            }
        };
        cmd.current_dir(&self.dir)
            .args(["-p", &self.project])
            .args(args);
        run_command(&mut cmd, None)
    }

    fn name(&self, service: &str, n: u32) -> String {
        format!("{}_{service}_{n}", self.project)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.d
            .docker(["inspect", "-f", format, name])
            .assert_success()
            .trim()
            .to_string()
    }

    /// `exec -T <service> ARGS`, its output when it succeeded.
    fn exec(&self, service: &str, args: &[&str]) -> Option<String> {
        let mut all = vec!["exec", "-T", service];
        all.extend_from_slice(args);
        let out = self.compose(&all);
        out.status.success().then(|| out.stdout_text())
    }

    /// The containers (any state) carrying the project label.
    fn containers(&self) -> Vec<String> {
        let out = self
            .d
            .docker([
                "ps",
                "-a",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.project),
                "--format",
                "{{.Names}}",
            ])
            .assert_success();
        out.lines().map(str::to_string).collect()
    }

    /// Where the front's port 80 is published on the host.
    fn front_addr(&self) -> String {
        let out = self.compose(&["port", "front", "80"]).assert_success();
        let addr = out.trim().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        addr
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/compose")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create project dir");
    for entry in std::fs::read_dir(from).expect("fixture exists") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy fixture file");
        }
    }
}

/// `GET path` over HTTP/1.0: the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then_some(())?;
    head.split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200")
        .then(|| body.to_string())
}

/// The nft table of the daemon, as `nft list` prints it (empty when there is none).
fn nft_table(d: &Berthd) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &d.nft_table()])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Container cgroups left under the daemon's cgroup parent, in any hierarchy.
fn container_cgroups(d: &Berthd) -> Vec<String> {
    let mut left = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let parent = hierarchy.path().join(d.cgroup_parent());
        for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                left.push(child.path().display().to_string());
            }
        }
    }
    left
}

/// The scenario, the same for both tools.
fn three_service_app(tool: Tool, project: &str) {
    let s = Stack::new(tool, project);
    let (front, backend1, store) = (s.name("front", 1), s.name("backend", 1), s.name("store", 1));
    let back_net = format!("{project}_back");
    let default_net = format!("{project}_default");

    // The build service, then everything up.
    s.compose(&["build"]).assert_success();
    s.compose(&["up", "-d"]).assert_success();
    let mut names = s.containers();
    names.sort();
    assert_eq!(names, [backend1.clone(), front.clone(), store.clone()]);
    let built = s.inspect(&front, "{{.Config.Image}}");
    assert_eq!(built, format!("{project}_front"));

    // Healthcheck ordering: front started only after backend turned healthy.
    assert_eq!(s.inspect(&backend1, "{{.State.Health.Status}}"), "healthy");
    let order = s.d.start_and_health_events();
    let healthy = order
        .iter()
        .position(|l| *l == format!("{backend1} health_status: healthy"));
    let started = order.iter().position(|l| *l == format!("{front} start"));
    assert!(
        healthy.is_some() && started.is_some() && healthy < started,
        "{order:?}"
    );

    // Networks: the front on both, the backend on its own, the store on the default.
    let nets = |c: &str| -> BTreeSet<String> {
        s.inspect(
            c,
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        )
        .split_whitespace()
        .map(str::to_string)
        .collect()
    };
    assert_eq!(
        nets(&front),
        BTreeSet::from([back_net.clone(), default_net.clone()])
    );
    assert_eq!(nets(&backend1), BTreeSet::from([back_net.clone()]));
    assert_eq!(nets(&store), BTreeSet::from([default_net.clone()]));

    // From the host: the front's own page, and the backend through its proxy.
    let addr = s.front_addr();
    let page = eventually(Duration::from_secs(15), || {
        http_get(&addr, "/").is_some_and(|b| b.contains("front-ok"))
    });
    assert!(page, "GET http://{addr}/");
    let backend_host = s.inspect(&backend1, "{{.Config.Hostname}}");
    let proxied = http_get(&addr, "/backend/");
    assert_eq!(
        proxied.as_deref().map(str::trim),
        Some(backend_host.as_str()),
        "the front proxies to the backend by service name"
    );
    // The store is not on the backend's network: the name does not resolve there.
    assert!(s.exec("store", &["nslookup", "backend"]).is_none());

    // The store wrote to the named volume.
    assert_eq!(
        s.exec("store", &["cat", "/data/log"]).as_deref(),
        Some("stored\n")
    );

    // Scale the backend: three replicas, each answering by container name and
    // by the service name's addresses; the front's proxy answers.
    s.compose(&["up", "-d", "--scale", "backend=3"])
        .assert_success();
    let hosts: BTreeSet<String> = (1..=3)
        .map(|n| s.inspect(&s.name("backend", n), "{{.Config.Hostname}}"))
        .collect();
    assert_eq!(hosts.len(), 3);
    for n in 1..=3 {
        let name = s.name("backend", n);
        let answered = eventually(Duration::from_secs(15), || {
            s.exec("front", &["wget", "-q", "-O-", &format!("http://{name}/")])
                .is_some_and(|b| hosts.contains(b.trim()))
        });
        assert!(answered, "{name} answers the front");
    }
    let lookup = s
        .exec("front", &["nslookup", "backend"])
        .unwrap_or_default();
    let addrs: BTreeSet<String> = lookup
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect();
    assert_eq!(addrs.len(), 3, "{lookup}");
    let mut seen = BTreeSet::new();
    for a in &addrs {
        let page = s
            .exec("front", &["wget", "-q", "-O-", &format!("http://{a}/")])
            .unwrap_or_default();
        seen.insert(page.trim().to_string());
    }
    assert_eq!(seen, hosts, "every replica behind the service name answers");
    // The front's proxy still answers, from one of the replicas (nginx
    // resolved `backend` once, when it started).
    let via_front = http_get(&addr, "/backend/").unwrap_or_default();
    assert!(
        hosts.contains(via_front.trim()),
        "{via_front:?} not in {hosts:?}"
    );

    // down: no container, network, bridge or nft rule of the project; the volume stays.
    let bridges: Vec<String> = [&back_net, &default_net]
        .iter()
        .map(|n| {
            let id =
                s.d.docker(["network", "inspect", "-f", "{{.Id}}", n])
                    .assert_success();
            id.trim()[..12].to_string()
        })
        .collect();
    let port = addr.rsplit(':').next().unwrap().to_string();
    s.compose(&["down"]).assert_success();
    assert_eq!(s.containers(), Vec::<String>::new());
    let nets_left =
        s.d.docker(["network", "ls", "--format", "{{.Name}}"])
            .assert_success();
    assert!(
        !nets_left.contains(&back_net) && !nets_left.contains(&default_net),
        "{nets_left}"
    );
    let table = nft_table(&s.d);
    assert!(!table.contains(&format!("dport {port} ")), "{table}");
    for id in &bridges {
        assert!(!table.contains(id.as_str()), "{id} in\n{table}");
        let links = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|l| l.contains(id.as_str()))
            .collect::<Vec<_>>();
        assert!(links.is_empty(), "bridge left behind: {links:?}");
    }
    let cgroups_gone = eventually(Duration::from_secs(5), || {
        container_cgroups(&s.d).is_empty()
    });
    assert!(cgroups_gone, "{:?}", container_cgroups(&s.d));
    let vols = s.d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(
        vols.lines().any(|v| v == format!("{project}_data")),
        "{vols}"
    );

    // Up again: the store finds its earlier line; then down -v removes the volume.
    s.compose(&["up", "-d"]).assert_success();
    let kept = eventually(Duration::from_secs(10), || {
        s.exec("store", &["cat", "/data/log"]).as_deref() == Some("stored\nstored\n")
    });
    assert!(kept, "the named volume outlived down");
    s.compose(&["down", "-v"]).assert_success();
    assert_eq!(s.containers(), Vec::<String>::new());
    let vols = s.d.docker(["volume", "ls", "-q"]).assert_success();
    assert!(vols.trim().is_empty(), "{vols}");
    let nets_left =
        s.d.docker(["network", "ls", "--format", "{{.Name}}"])
            .assert_success();
    assert!(!nets_left.contains(project), "{nets_left}");
    let cgroups_gone = eventually(Duration::from_secs(5), || {
        container_cgroups(&s.d).is_empty()
    });
    assert!(cgroups_gone, "{:?}", container_cgroups(&s.d));
}

#[test]
fn docker_compose_runs_the_three_service_app() {
    three_service_app(Tool::DockerCompose, "stackpy");
}

#[test]
fn berth_compose_runs_the_three_service_app() {
    three_service_app(Tool::Berth, "stackrs");
}
