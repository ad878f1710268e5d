//! docker-py (Debian's python3-docker) against berthd: the corners where that client
//! reads the Engine API differently from the docker CLI. Each test runs a short
//! Python script on the daemon's socket; the script asserts and prints "ok".
//! Needs root.

use std::process::Command;

use berth_e2e::{Berthd, OutputExt, run_command};

fn daemon() -> Berthd {
    let d = Berthd::start();
    d.load_image("busybox");
    d
}

/// Runs `body` with `c` bound to a low-level `docker.APIClient` on `d`, and `docker`
/// and `time` imported; fails the test with Python's traceback if it raises.
fn py(d: &Berthd, body: &str) -> String {
    let script = format!(
        "import docker, time, socket\n\
         SOCK = 'unix://{}'\n\
         c = docker.APIClient(base_url=SOCK, version='auto', timeout=60)\n\
         {body}\n",
        d.socket().display()
    );
    let out = run_command(Command::new("/usr/bin/python3").arg("-c").arg(script), None);
    let text = out.assert_success();
    assert!(
        text.trim_end().ends_with("ok"),
        "script did not finish: {text}"
    );
    text
}

#[test]
fn a_tty_exec_started_without_tty_is_framed_as_docker_does() {
    let d = daemon();
    py(
        &d,
        r#"
ct = c.create_container('busybox', 'cat', stdin_open=True)
c.start(ct)
cmd = 'sh -c "echo hello out; sleep 0.3; echo hello err >&2"'
# docker-py starts with Tty false unless told: Docker frames by the start's Tty.
e = c.exec_create(ct, cmd, tty=True)
assert c.exec_start(e, demux=True) == (b'hello out\r\nhello err\r\n', None)
e = c.exec_create(ct, cmd, tty=True)
assert c.exec_start(e) == b'hello out\r\nhello err\r\n'
# No TTY, raw output asked for: the frames' headers are gone.
e = c.exec_create(ct, 'echo plain')
assert c.exec_start(e, tty=True) == b'plain\n'
c.remove_container(ct, force=True)
print('ok')
"#,
    );
}

#[test]
fn an_exec_detaches_with_lowercase_detach_keys_and_the_socket_ends_cleanly() {
    let d = daemon();
    py(
        &d,
        r#"
ct = c.create_container('busybox', 'cat', stdin_open=True)
c.start(ct)
# docker-py sends the exec's detach keys as `detachKeys`.
e = c.exec_create(ct, 'cat', stdin=True, tty=True, detach_keys='ctrl-p')
s = c.exec_start(e, tty=True, socket=True)
sock = s._sock if hasattr(s, '_sock') else s
sock.sendall(b'\x10')
time.sleep(0.5)
try:
    sock.sendall(b'after detach\n')
    data = sock.recv(128)
    assert data == b'', data
except BrokenPipeError:
    pass
assert c.inspect_container(ct)['State']['Running']
c.remove_container(ct, force=True)
print('ok')
"#,
    );
}

#[test]
fn attach_with_logs_of_an_exited_container_returns_its_output_every_time() {
    let d = daemon();
    py(
        &d,
        r#"
for i in range(10):
    ct = c.create_container('busybox', 'echo hello')
    c.start(ct)
    c.wait(ct, condition='not-running')
    out = c.attach(ct, stream=False, logs=True)
    assert out == b'hello\n', (i, out)
    c.remove_container(ct)
print('ok')
"#,
    );
}

#[test]
fn kill_answers_once_the_container_has_stopped() {
    let d = daemon();
    py(
        &d,
        r#"
ct = c.create_container('busybox', ['sleep', '9999'])
c.start(ct)
c.kill(ct)
st = c.inspect_container(ct)['State']
assert st['Running'] is False and st['ExitCode'] == 137, st
c.remove_container(ct)
print('ok')
"#,
    );
}

#[test]
fn a_container_waiting_to_restart_refuses_removal_without_force() {
    let d = daemon();
    py(
        &d,
        r#"
hc = c.create_host_config(restart_policy={'Name': 'always'}, network_mode='none')
ct = c.create_container('busybox', ['sleep', '1'], host_config=hc)
c.start(ct)
c.wait(ct)
# Waiting to restart reads as running, as Docker's daemon reports it.
assert c.inspect_container(ct)['State']['Running'] is True
assert ct['Id'] in [x['Id'] for x in c.containers()]
try:
    c.remove_container(ct)
    raise AssertionError('removed a restarting container')
except docker.errors.APIError as e:
    assert e.status_code == 409, e
    assert 'stop the container before removing' in e.explanation, e.explanation
c.remove_container(ct, force=True)
print('ok')
"#,
    );
}

#[test]
fn create_checks_the_log_driver_and_runtime_names() {
    let d = daemon();
    py(
        &d,
        r#"
lc = docker.types.LogConfig(type='asdf', config={})
try:
    c.create_container('busybox', 'true', host_config=c.create_host_config(log_config=lc))
    raise AssertionError('accepted log driver asdf')
except docker.errors.APIError as e:
    assert e.status_code == 400, e
    assert e.explanation == "logger: no log driver named 'asdf' is registered", e.explanation
ct = c.create_container('busybox', 'true', runtime='runc')
assert c.inspect_container(ct)['HostConfig']['Runtime'] == 'runc'
c.remove_container(ct)
try:
    c.create_container('busybox', 'true', host_config=c.create_host_config(runtime='nope'))
    raise AssertionError('accepted runtime nope')
except docker.errors.APIError as e:
    assert 'unknown or invalid runtime name: nope' in e.explanation, e.explanation
assert c.containers(all=True) == []
print('ok')
"#,
    );
}

#[test]
fn prune_reports_the_space_of_what_containers_wrote() {
    let d = daemon();
    py(
        &d,
        r#"
done = c.create_container('busybox', ['sh', '-c', 'echo hello > /data.txt'])
running = c.create_container('busybox', ['sleep', '9999'])
c.start(done)
c.start(running)
c.wait(done)
r = c.prune_containers()
assert r['ContainersDeleted'] == [done['Id']], r
assert r['SpaceReclaimed'] > 0, r
c.remove_container(running, force=True)
print('ok')
"#,
    );
}

#[test]
fn commit_with_pause_works_on_a_container_that_already_exited() {
    let d = daemon();
    py(
        &d,
        r#"
ct = c.create_container('busybox', ['touch', '/test'])
c.start(ct)
c.wait(ct)
img = c.commit(ct, repository='committed', changes=['EXPOSE 8000', 'CMD ["sh"]'])
cfg = c.inspect_image(img['Id'])['Config']
assert cfg['Cmd'] == ['sh'] and '8000/tcp' in cfg['ExposedPorts'], cfg
print('ok')
"#,
    );
}

#[test]
fn bind_modes_carry_propagation_and_bad_modes_are_refused() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    py(
        &d,
        &format!(
            r#"
hc = c.create_host_config(binds=['{0}:/mnt:rw,rshared'])
ct = c.create_container('busybox', 'true', host_config=hc)
m = c.inspect_container(ct)['Mounts'][0]
assert m['Propagation'] == 'rshared' and m['RW'] is True, m
c.remove_container(ct)
try:
    c.create_container('busybox', 'true', host_config=c.create_host_config(binds=['{0}:/mnt:bogus']))
    raise AssertionError('accepted mode bogus')
except docker.errors.APIError as e:
    assert e.explanation == 'invalid mode: bogus', e.explanation
print('ok')
"#,
            dir.path().display()
        ),
    );
}

#[test]
fn endpoint_settings_keep_mac_driver_opts_and_the_asked_address() {
    let d = daemon();
    py(
        &d,
        r#"
ct = c.create_container('busybox', ['sleep', '60'], mac_address='02:42:ac:11:00:0a')
c.start(ct)
assert c.inspect_container(ct)['NetworkSettings']['MacAddress'] == '02:42:ac:11:00:0a'
out = c.exec_start(c.exec_create(ct, 'cat /sys/class/net/eth0/address'))
assert out == b'02:42:ac:11:00:0a\n', out
c.remove_container(ct, force=True)
net = c.create_network('dpy', ipam=docker.types.IPAMConfig(pool_configs=[
    docker.types.IPAMPool(subnet='10.229.7.0/24')]))
nc = c.create_networking_config({'dpy': c.create_endpoint_config(
    aliases=['hello'], driver_opt={'key1': 'a'}, ipv4_address='10.229.7.9')})
ct = c.create_container('busybox', 'true', networking_config=nc,
                        host_config=c.create_host_config(network_mode='dpy'))
ep = c.inspect_container(ct)['NetworkSettings']['Networks']['dpy']
# From API 1.45 the aliases are exactly those asked for; below it Docker adds the
# short ID and the hostname (the same here), which docker-compose 1.29 relies on.
assert ep['Aliases'] == ['hello'], ep
old = docker.APIClient(base_url=SOCK, version='1.44')
old_ep = old.inspect_container(ct)['NetworkSettings']['Networks']['dpy']
assert old_ep['Aliases'] == ['hello', ct['Id'][:12]], old_ep
assert ep['DriverOpts'] == {'key1': 'a'}, ep
assert ep['IPAMConfig']['IPv4Address'] == '10.229.7.9', ep
c.remove_container(ct)
c.remove_network(net['Id'])
print('ok')
"#,
    );
}

#[test]
fn swarm_endpoints_answer_as_a_node_outside_a_swarm() {
    let d = daemon();
    py(
        &d,
        r#"
assert c.leave_swarm(force=True) is True
try:
    c.inspect_swarm()
    raise AssertionError('a swarm answered')
except docker.errors.APIError as e:
    assert e.status_code == 503 and 'not a swarm manager' in e.explanation, e
print('ok')
"#,
    );
    let out = d.docker(["swarm", "leave"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("This node is not part of a swarm"),
        "{out:?}"
    );
}

#[test]
fn system_df_counts_images_containers_and_volumes() {
    let d = daemon();
    d.docker(["volume", "create", "dfvol"]).assert_success();
    d.docker([
        "run",
        "-v",
        "dfvol:/v",
        "busybox",
        "sh",
        "-c",
        "echo hi > /v/x; dd if=/dev/zero of=/big bs=1k count=64 2>/dev/null",
    ])
    .assert_success();
    py(
        &d,
        r#"
df = c.df()
assert df['LayersSize'] > 0, df
[img] = df['Images']
assert img['Containers'] == 1 and img['SharedSize'] == 0, img
[ct] = df['Containers']
assert ct['SizeRw'] >= 64 * 1024, ct
[vol] = df['Volumes']
assert vol['Name'] == 'dfvol' and vol['UsageData'] == {'Size': 3, 'RefCount': 1}, vol
assert df['BuildCache'] == []
print('ok')
"#,
    );
    let table = d.docker(["system", "df"]).assert_success();
    assert!(table.contains("Local Volumes   1         1"), "{table}");
    // berth's own CLI draws the same table, and its formats.
    assert_eq!(d.berth(["system", "df"]).assert_success(), table);
    assert_eq!(
        d.berth(["system", "df", "--format", "{{.Type}}={{.Active}}"])
            .assert_success(),
        "Images=1\nContainers=0\nLocal Volumes=1\nBuild Cache=0\n"
    );
    // berth system prune: docker's blocks in docker's order, one total.
    d.docker(["network", "create", "unused-net"])
        .assert_success();
    let out = d.berth(["system", "prune", "-f"]).assert_success();
    assert!(
        out.starts_with("Deleted Containers:\n")
            && out.contains("\n\nDeleted Networks:\nunused-net\n\n"),
        "{out}"
    );
    // The stopped container's 64 KiB write is what the total counts.
    let total = out.lines().last().unwrap_or_default();
    assert!(
        total.starts_with("Total reclaimed space: ") && total.ends_with("kB"),
        "{out}"
    );
    assert_eq!(
        d.berth(["builder", "prune", "-f"]).assert_success(),
        "Total reclaimed space: 0B\n"
    );
    // `system prune` ends with the build cache's prune: nothing to delete, no error.
    let out = d.docker(["system", "prune", "-f"]).assert_success();
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = d.docker(["builder", "prune", "-f"]).assert_success();
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let out = d.docker(["builder", "prune", "-f", "--filter", "bogus=1"]);
    out.assert_stderr_contains("invalid filter 'bogus'");
}

#[test]
fn networks_echo_their_ipam_and_take_back_a_disconnected_container() {
    let d = daemon();
    py(
        &d,
        r#"
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
    subnet='10.229.8.0/24', iprange='10.229.8.128/25', gateway='10.229.8.254',
    aux_addresses={'a': '10.229.8.128'})])
net = c.create_network('dpyipam', ipam=ipam)
got = c.inspect_network(net['Id'])['IPAM']
# docker-py sends no IPAM options, and Docker echoes what it was sent.
assert got.get('Options') is None, got
assert got['Config'] == [{'Subnet': '10.229.8.0/24', 'IPRange': '10.229.8.128/25',
    'Gateway': '10.229.8.254', 'AuxiliaryAddresses': {'a': '10.229.8.128'}}], got
ct = c.create_container('busybox', ['sleep', '60'],
                        host_config=c.create_host_config(network_mode='dpyipam'))
c.start(ct)
ep = c.inspect_container(ct)['NetworkSettings']['Networks']['dpyipam']
# The auxiliary address is never handed out.
assert ep['IPAddress'] == '10.229.8.129', ep
c.disconnect_container_from_network(ct, 'dpyipam')
assert c.inspect_container(ct)['NetworkSettings']['Networks'] == {}
c.connect_container_to_network(ct, 'dpyipam', ipv4_address='10.229.8.200',
                               link_local_ips=['169.254.8.8'])
ep = c.inspect_container(ct)['NetworkSettings']['Networks']['dpyipam']
assert ep['IPAddress'] == '10.229.8.200', ep
assert ep['IPAMConfig'] == {'IPv4Address': '10.229.8.200', 'LinkLocalIPs': ['169.254.8.8']}, ep
c.remove_container(ct, force=True)
c.remove_network(net['Id'])
print('ok')
"#,
    );
}

#[test]
fn legacy_links_give_hosts_entries_and_variables_and_can_be_removed() {
    let d = daemon();
    d.docker([
        "run", "-d", "--name", "db", "-e", "FOO=1", "--expose", "6379", "busybox", "sleep", "60",
    ])
    .assert_success();
    let out = d
        .docker([
            "run",
            "--name",
            "web",
            "--link",
            "db:store",
            "busybox",
            "sh",
            "-c",
            "env; grep store /etc/hosts",
        ])
        .assert_success();
    for want in [
        "STORE_NAME=/web/store",
        "STORE_ENV_FOO=1",
        "STORE_PORT=tcp://",
        "STORE_PORT_6379_TCP_PORT=6379",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    assert!(out.contains("\tstore "), "{out}");
    let links = d
        .docker(["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
        .assert_success();
    assert_eq!(links.trim(), r#"["/db:/web/store"]"#);
    // A link to a container that does not exist is refused at create, as Docker does.
    let bad = d.docker(["create", "--link", "nope:x", "busybox"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("could not get container for nope"),
        "{bad:?}"
    );
    py(
        &d,
        r#"
names = [n for x in c.containers(all=True) for n in x['Names']]
assert '/web/store' in names, names
c.remove_container('web/store', link=True)
names = [n for x in c.containers(all=True) for n in x['Names']]
assert '/web/store' not in names and '/web' in names and '/db' in names, names
assert c.inspect_container('web')['HostConfig']['Links'] is None
print('ok')
"#,
    );
    // A stopped link target stops the linking container's start.
    d.docker(["stop", "-t", "0", "db"]).assert_success();
    d.docker([
        "create", "--name", "late", "--link", "db", "busybox", "true",
    ])
    .assert_success();
    let refused = d.docker(["start", "late"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("Cannot link to a non running container: /db AS /late/db"),
        "{refused:?}"
    );
}

#[test]
fn a_link_on_a_user_defined_network_is_a_name_only_its_holder_resolves() {
    let d = daemon();
    d.docker(["network", "create", "linknet"]).assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "upstream",
        "--network",
        "linknet",
        "busybox",
        "sleep",
        "60",
    ])
    .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "linknet",
        "--link",
        "upstream:bar",
        "busybox",
        "sleep",
        "60",
    ])
    .assert_success();
    d.docker(["exec", "holder", "nslookup", "bar"])
        .assert_success();
    d.docker([
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "linknet",
        "busybox",
        "sleep",
        "60",
    ])
    .assert_success();
    let other = d.docker(["exec", "other", "nslookup", "bar"]);
    assert_ne!(berth_e2e::exit_code(&other), 0, "{other:?}");
    let links = d
        .docker([
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.linknet.Links}}",
            "holder",
        ])
        .assert_success();
    assert_eq!(links.trim(), r#"["upstream:bar"]"#);
    d.docker(["rm", "-f", "upstream", "holder", "other"])
        .assert_success();
    d.docker(["network", "rm", "linknet"]).assert_success();
}

#[test]
fn builds_show_stderr_in_red_limit_the_cache_to_cache_from_and_add_extra_hosts() {
    let d = daemon();
    py(
        &d,
        r#"
import io
def build(lines, **kw):
    f = io.BytesIO('\n'.join(lines).encode())
    return list(c.build(fileobj=f, decode=True, **kw))
out = build(['FROM busybox', 'RUN sh -c ">&2 echo to-stderr"'], nocache=True)
assert {'stream': '\x1b[91mto-stderr\n\x1b[0m'} in out, out
steps = ['FROM busybox', 'ENV FOO=bar', 'RUN touch baz', 'RUN touch bax']
build(steps, tag='build1')
hits = lambda out: sum('Using cache' in x.get('stream', '') for x in out)
assert hits(build(steps, tag='build2', cache_from=['build1'])) == 3
# An image that does not exist leaves nothing to match: every step runs.
assert hits(build(steps, tag='build3', cache_from=['nosuchtag'])) == 0
# Two hosts: docker-py sends one `extrahosts` parameter for each.
out = build(['FROM busybox', 'RUN ping -c1 extrahost.local.test', 'RUN ping -c1 hello.world.test',
             'RUN cp /etc/hosts /hosts-file'],
            tag='xh', extra_hosts={'extrahost.local.test': '127.0.0.1', 'hello.world.test': '127.0.0.1'})
assert not [x for x in out if 'errorDetail' in x], out
ct = c.create_container('xh', 'cat /hosts-file')
c.start(ct)
c.wait(ct)
assert '127.0.0.1\textrahost.local.test' in c.logs(ct).decode(), c.logs(ct)
assert '127.0.0.1\thello.world.test' in c.logs(ct).decode(), c.logs(ct)
print('ok')
"#,
    );
}
