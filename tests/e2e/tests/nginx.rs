//! The tutorials' first real container, as issue 8 tells it: `docker run -d --publish
//! PORT:80 nginx`, then the welcome page from 127.0.0.1 and from the host's own address;
//! a two-container app on a user network (nginx serves, busybox fetches `http://web/` by
//! name); `docker stop` of nginx is quick because its StopSignal (SIGQUIT) is honoured;
//! `-P` publishes the image's EXPOSE 80. Needs root.
//!
//! The image is `nginx:latest` from tests/images/make-images.py (Debian's nginx on
//! busybox). Traffic goes only to 127.0.0.1, the host's own address and the bridges of
//! this test's daemon; the harness removes the daemon's bridge, nft table and
//! containers also when a test fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt, free_port, host_address, poll};

const WELCOME: &str = "Welcome to nginx!";

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("nginx");
    d
}

/// `GET /` over HTTP/1.0 (what curl sends, minus the extras); the whole response.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

/// The welcome page through `addr`, waiting for nginx to come up; panics otherwise.
fn assert_welcome(addr: &str) {
    let response = poll(Duration::from_secs(15), || http_get(addr));
    let response = response.unwrap_or_else(|| panic!("no answer on {addr}"));
    assert!(
        response.starts_with("HTTP/1.1 200 OK"),
        "through {addr}: {response}"
    );
    assert!(response.contains(WELCOME), "through {addr}: {response}");
}

/// A /24 that no route on the host covers, apart from the other tests' ranges.
fn free_subnet() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let start = std::process::id().wrapping_mul(37);
    loop {
        let n = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 1024;
        let (b, c) = (232 + n / 256, n % 256);
        let dest = u32::from_ne_bytes([10, b as u8, c as u8, 0]);
        if !routes.contains(&format!("\t{dest:08X}\t")) {
            return format!("10.{b}.{c}.0/24");
        }
    }
}

#[test]
fn nginx_published_port_serves_the_welcome_page_on_loopback_and_the_host_address() {
    let d = daemon();
    let port = free_port();
    let id = d
        .docker(["run", "-d", "--publish", &format!("{port}:80"), "nginx"])
        .assert_success()
        .trim()
        .to_string();
    assert_welcome(&format!("127.0.0.1:{port}"));
    assert_welcome(&format!("{}:{port}", host_address()));
    assert_eq!(
        d.docker(["port", &id]).assert_success(),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    // The access log goes to the container's stdout, as with the official image.
    let logged = poll(Duration::from_secs(5), || {
        let out = d.docker(["logs", &id]);
        let text = out.stdout_text();
        text.contains("\"GET / HTTP/1.0\" 200").then_some(text)
    });
    assert!(
        logged.is_some(),
        "{}",
        d.docker(["logs", &id]).stdout_text()
    );
    d.docker(["rm", "-f", &id]).assert_success();
    assert!(http_get(&format!("127.0.0.1:{port}")).is_none());
}

#[test]
fn nginx_and_busybox_on_a_user_network_talk_by_name() {
    let d = daemon();
    d.load_image("busybox");
    d.docker(["network", "create", "--subnet", &free_subnet(), "app"])
        .assert_success();
    d.docker(["run", "-d", "--name", "web", "--network", "app", "nginx"])
        .assert_success();
    // busybox wget by name through the embedded DNS; retried until nginx listens.
    // (`wget -T` segfaults in Debian's busybox 1.35: `timeout` bounds it instead.)
    let script = "for i in $(seq 50); do \
                  timeout 5 wget -q -O - http://web/ && exit 0; sleep 0.2; done; exit 1";
    let page = d
        .docker([
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .assert_success();
    assert!(page.contains(WELCOME), "{page}");
    // And the berth CLI sees the same app.
    let page = d
        .berth([
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://web.app/",
        ])
        .assert_success();
    assert!(page.contains(WELCOME), "{page}");
    d.docker(["rm", "-f", "web"]).assert_success();
    d.docker(["network", "rm", "app"]).assert_success();
}

#[test]
fn nginx_stops_quickly_on_its_stop_signal_and_dash_p_publishes_port_80() {
    let d = daemon();
    assert_eq!(
        d.docker(["image", "inspect", "-f", "{{.Config.StopSignal}}", "nginx"])
            .assert_success()
            .trim(),
        "SIGQUIT"
    );
    d.docker(["run", "-d", "--name", "web", "-P", "nginx"])
        .assert_success();
    let mapping = d.docker(["port", "web", "80/tcp"]).assert_success();
    let host_port = mapping
        .trim()
        .rsplit(':')
        .next()
        .expect("HOST:PORT")
        .to_string();
    assert!(
        mapping.starts_with("0.0.0.0:") && host_port.parse::<u16>().is_ok_and(|p| p != 0),
        "{mapping}"
    );
    assert_welcome(&format!("127.0.0.1:{host_port}"));
    assert_eq!(
        d.docker(["inspect", "-f", "{{.Config.StopSignal}}", "web"])
            .assert_success()
            .trim(),
        "SIGQUIT"
    );

    // SIGQUIT is nginx's graceful shutdown: it exits at once, long before the
    // 10 s after which a daemon that sent SIGTERM to an ignoring process would kill it.
    let started = Instant::now();
    d.docker(["stop", "web"]).assert_success();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    assert_eq!(
        d.docker(["inspect", "-f", "{{.State.ExitCode}}", "web"])
            .assert_success()
            .trim(),
        "0"
    );
    assert!(http_get(&format!("127.0.0.1:{host_port}")).is_none());
    // nginx logs (at notice, to stderr) which signal ended it: SIGTERM would be its
    // fast shutdown, so the log line is what shows the image's StopSignal was used.
    let log = d.docker(["logs", "web"]).stderr_text();
    assert!(log.contains("signal 3 (SIGQUIT) received"), "{log}");
    // The welcome page again after a restart, on the same published port.
    d.docker(["start", "web"]).assert_success();
    let mapping = d.docker(["port", "web", "80/tcp"]).assert_success();
    let host_port = mapping.trim().rsplit(':').next().expect("HOST:PORT");
    assert_welcome(&format!("127.0.0.1:{host_port}"));
}
