#!/usr/bin/env bash
# Compares `berth` with the official docker CLI, command by command, against
# the same daemon (a real dockerd, or berthd). Run by hand, as root, with a
# scratch daemon: it creates, tags and removes images named cmpfix*.
#
#   crates/berth/tests/compare_with_docker.sh unix:///run/cli-peer-docker.sock [path/to/berth]
#
# berth's "berth" in messages is rewritten to "docker" before comparing.
# Lists whose order the daemon leaves open (images created in the same
# second) are compared sorted. Exit status: the number of differences.
set -u
HOST=${1:?usage: $0 DOCKER_HOST [berth-binary]}
BERTH=${2:-$(dirname "$0")/../../../target/debug/berth}
export DOCKER_HOST=$HOST
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fails=0

run_docker() { docker "$@" 2>&1; echo "rc=$?"; }
run_berth() { "$BERTH" "$@" 2>&1 | sed "s/\bberth\b/docker/g"; echo "rc=${PIPESTATUS[0]}"; }

# same ARGS...: stdout+stderr and exit status must be identical.
same() {
  if diff <(run_docker "$@") <(run_berth "$@") >"$WORK/diff"; then
    echo "SAME    $*"
  else
    echo "DIFFER  $*"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}
# same_sorted ARGS...: identical up to line order.
same_sorted() {
  if diff <(run_docker "$@" | sort) <(run_berth "$@" | sort) >"$WORK/diff"; then
    echo "SAME    $* (sorted)"
  else
    echo "DIFFER  $* (sorted)"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}
# same_after SETUP ARGS...: for commands that change state; SETUP (a shell
# command) runs before each of the two runs.
same_after() {
  local setup=$1; shift
  # IDs of images made by SETUP differ between the two runs.
  eval "$setup" >/dev/null 2>&1; run_docker "$@" | sed -E 's/sha256:[0-9a-f]{64}/sha256:ID/g' >"$WORK/docker.out"
  eval "$setup" >/dev/null 2>&1; run_berth "$@" | sed -E 's/sha256:[0-9a-f]{64}/sha256:ID/g' >"$WORK/berth.out"
  if diff "$WORK/docker.out" "$WORK/berth.out" >"$WORK/diff"; then
    echo "SAME    $* (after: $setup)"
  else
    echo "DIFFER  $* (after: $setup)"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}
# same_stdin INPUT ARGS...: as same, with INPUT on stdin.
same_stdin() {
  local input=$1; shift
  if diff <(printf '%s' "$input" | run_docker "$@") <(printf '%s' "$input" | run_berth "$@") >"$WORK/diff"; then
    echo "SAME    $* <<< ${input@Q}"
  else
    echo "DIFFER  $* <<< ${input@Q}"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}

# Fixtures: a busybox rootfs and a one-file image, a second apart so that
# the daemon's listing order is fixed.
mkdir -p "$WORK/rootfs/bin" "$WORK/small"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh ls cat echo true; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
echo hi >"$WORK/small/hello"
tar -C "$WORK/small" -cf "$WORK/small.tar" .
docker rmi -f cmpfix:latest cmpfix:1 cmpfix/small:1 example.com/cmpfix/app:v1 >/dev/null 2>&1
docker import -c 'CMD ["sh"]' -m "busybox rootfs" "$WORK/rootfs.tar" cmpfix:latest >/dev/null
sleep 1.1
docker import -c 'LABEL cmp=yes' "$WORK/small.tar" cmpfix/small:1 >/dev/null
docker tag cmpfix:latest cmpfix:1
docker tag cmpfix:latest example.com/cmpfix/app:v1
sleep 2 # keep "N seconds ago" away from a second boundary

# Images
docker rm -f $(docker ps -aq --filter ancestor=cmpfix) >/dev/null 2>&1
same_sorted images
same_sorted images -a
same_sorted images -q
same_sorted images --digests
same_sorted images --no-trunc
same_sorted image ls cmpfix
same images cmpfix/small
same images 'cmpfix*'
same images nomatch
same images ls
same_sorted images --format json
same_sorted images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.VirtualSize}} {{.SharedSize}} {{.UniqueSize}} {{.Containers}} {{.CreatedAt}} {{.Digest}}'
same_sorted images --format 'table {{.ID}}\t{{.Repository}}\t{{.CreatedSince}}'
same_sorted images --format '{{json .}}' -f reference=cmpfix
same images -f label=cmp=yes
same images -f label=cmp=yes --format '{{.Repository}} {{lower .Tag | upper}} {{pad .Tag 1 2}}| {{truncate .Repository 4}} {{title "a b"}} {{join (split .Repository "/") "+"}}'
same_sorted images -f dangling=false
same_sorted images -f dangling=true
same images -f since=cmpfix:latest
same images -f before=cmpfix/small:1 cmpfix
same images -f bogus
same images --filter bogus=1
same images --format '{{.Nope}}' cmpfix
same images --bogus
same images -x
same images a b
same images --format
# History
same history cmpfix
same history --no-trunc cmpfix
same history -q cmpfix
same history -H=false cmpfix
same history --human=false cmpfix:1
same history --format '{{.ID}} {{.CreatedBy}} {{.Size}} {{.Comment}}' cmpfix
same history --format json cmpfix/small:1
same image history nope
same history
# Inspect
same image inspect cmpfix:latest
same image inspect cmpfix cmpfix/small:1
same image inspect -f '{{.Id}} {{.RepoTags}} {{.Config.Cmd}} {{json .Config.Labels}} {{.Comment}} {{.Size}}' cmpfix/small:1
same image inspect --format json cmpfix
same image inspect nope
same image inspect cmpfix nope
same image inspect -f '{{.Nope}}' cmpfix
same image inspect -f '{{.Id' cmpfix
same inspect cmpfix:1
same inspect --type image -f '{{.Os}}/{{.Architecture}}' cmpfix
same inspect nope
same inspect --type image nope
same inspect --type bogus cmpfix
same inspect --type= cmpfix
# Tag / rmi
same tag cmpfix cmpfix:2
same tag cmpfix:2 cmpfix:3
same tag nope cmpfix:4
same tag cmpfix Bad:name
same tag cmpfix
same_after 'docker tag cmpfix cmpfix:2; docker tag cmpfix cmpfix:3' rmi cmpfix:2 cmpfix:3
same_after 'docker tag cmpfix/small:1 cmpfix/gone:1' rmi -f cmpfix/gone:1 nope
same_after 'docker tag cmpfix/small:1 cmpfix/gone:1' image rm --no-prune cmpfix/gone:1
same rmi nope
same rmi -f nope
same rmi nope cmpfix:nope
same image rm
# Save / load / import
docker save cmpfix/small:1 >"$WORK/small-image.tar"
same load -i "$WORK/small-image.tar"
same load -q -i "$WORK/small-image.tar"
same load -i /nonexistent.tar
same save -o /nonexistent/dir/x.tar cmpfix
same save nope
"$BERTH" save -o "$WORK/b.tar" cmpfix/small:1 && docker load -i "$WORK/b.tar" >/dev/null && echo "SAME    save -o (loads back)"
same import /nonexistent.tar
same import "$WORK/small.tar" Bad:Ref
# Prune
same_stdin 'n\n' image prune
same_after 'docker image prune -f; docker import "$WORK/small.tar"' image prune -f
same_after 'docker image prune -f; docker import "$WORK/small.tar"' image prune --force --filter until=1h
same_after 'docker image prune -f; docker import "$WORK/small.tar"' image prune -a -f --filter label=nomatch
same_stdin 'y\n' image prune
same_stdin '' image prune
same image prune --bogus
# System
same version --format '{{.Server.Version}} {{.Server.APIVersion}} {{.Client.APIVersion}} {{.Client.Context}}'
same info --format '{{.Images}} {{.Driver}} {{.OSType}} {{json .Plugins.Volume}}'
same info --format '{{.Nope'
same version a
same bogus
same image bogus
same -H unix:///nonexistent.sock images
same -H unix:///nonexistent.sock version --format '{{.Server.Version}}'

# ----------------------------------------------------------------------------
# Containers and volumes (named cmpc*/cmpv*), on the image "busybox" that the
# daemon must already hold (docker load -i tests/images/out/busybox.tar).
# IDs differ between the two runs: same_ids masks them.
same_ids() {
  local setup=$1; shift
  local mask='s/\b[0-9a-f]{64}\b/ID/g; s/\b[0-9a-f]{12}\b/SHORTID/g'
  eval "$setup" >/dev/null 2>&1; run_docker "$@" | sed -E "$mask" >"$WORK/docker.out"
  eval "$setup" >/dev/null 2>&1; run_berth "$@" | sed -E "$mask" >"$WORK/berth.out"
  if diff "$WORK/docker.out" "$WORK/berth.out" >"$WORK/diff"; then
    echo "SAME    $* (after: $setup)"
  else
    echo "DIFFER  $* (after: $setup)"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}
cleanup_containers() {
  docker ps -aq --filter name=cmpc | xargs -r docker rm -f >/dev/null 2>&1
  docker volume ls -q --filter name=cmpv | xargs -r docker volume rm -f >/dev/null 2>&1
}
cleanup_containers
docker run -d --name cmpc-run1 -l app=web -l tier=1 -p 127.0.0.1:18080:80 --expose 1000-1001 busybox sleep 300 >/dev/null
docker create --name cmpc-created -v /data busybox echo hello >/dev/null
docker run --name cmpc-exited busybox sh -c 'echo out; echo err >&2; exit 3' >/dev/null 2>&1
docker volume create --label cmp=yes cmpv-a >/dev/null
docker volume create cmpv-b10 >/dev/null
docker volume create cmpv-b2 >/dev/null
docker create --name cmpc-vol -v cmpv-a:/v busybox >/dev/null
sleep 1.5
# ps
same ps --format '{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Ports}}|{{.Labels}}|{{.LocalVolumes}}|{{.Networks}}|{{.Size}}'
same_sorted ps -a --format '{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Ports}}|{{.Labels}}|{{.Mounts}}|{{.Networks}}'
same_sorted ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Command}} {{.CreatedAt}}'
same_sorted ps -aq
same_sorted ps -a
same_sorted ps -a -s
same ps -n 1
same ps -l
same ps -l -q
same ps -a --format json -f name=cmpc-created
same ps -a --format 'table {{.Names}}\t{{.State}}' -f name=cmpc
same ps -a --format raw -f name=cmpc-exited
same ps -a -q --format '{{.Names}}' -f name=cmpc-exited
same ps -a --format '{{.Names}}' -f status=exited -f name=cmpc
same ps -a --format '{{.Names}}' -f exited=3
same ps -a --format '{{.Names}}' -f label=app=web
same_sorted ps -a --format '{{.Names}}' -f ancestor=busybox -f name=cmpc
same ps -a --format '{{.Names}}' -f before=cmpc-exited -f name=cmpc
same ps -a --format '{{.Names}}' -f since=cmpc-run1 -f name=cmpc
same ps -a --format '{{.Names}}' -f network=bridge -f name=cmpc-run1
same ps -a --format '{{.Names}}' -f health=none -f name=cmpc-run1
same ps -f bogus
same ps -a --format '{{.Nope}}'
same ps a
same container ls --format '{{.Names}}'
same container list -a --format '{{.Names}}' -f name=cmpc-exited
# logs
same logs cmpc-exited
same logs --tail 1 cmpc-exited
same logs -n 0 cmpc-exited
same logs -t cmpc-exited
same logs --details --since 1h cmpc-exited
same logs --until 1h cmpc-exited
same logs --since bogus cmpc-exited
same logs nope
same logs
same container logs -f cmpc-exited
# inspect
same container inspect -f '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Config.Cmd}} {{json .Config.Labels}}' cmpc-exited cmpc-run1
# Templates run on docker's typed structs print nested structs as {a b}; berth
# sees JSON and prints map[...] (a known difference), so compare JSON here.
same inspect -f '{{.Name}} {{json .HostConfig.PortBindings}}' cmpc-run1
same container inspect nope
same container inspect -s -f '{{.SizeRw}}' cmpc-created
same inspect --type container -f '{{.Name}}' cmpc-created
# lifecycle
same_ids 'docker rm -f cmpc-tmp; docker create --name cmpc-tmp busybox sleep 300' start cmpc-tmp
same start nope
same start cmpc-created nope
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' stop -t 1 cmpc-tmp
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' stop -s KILL cmpc-tmp nope
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' kill cmpc-tmp
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' kill -s TERM cmpc-tmp
same kill cmpc-created
same kill nope
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' restart -t 0 cmpc-tmp
same restart nope
same wait cmpc-exited
same wait nope cmpc-exited
same_ids 'docker rm -f cmpc-tmp cmpc-tmp2; docker create --name cmpc-tmp busybox' rename cmpc-tmp cmpc-tmp2
same rename nope cmpc-x
same rename cmpc-created ' '
same rename cmpc-created cmpc-exited
same rename cmpc-created
same_ids 'docker rm -f cmpc-tmp; docker create --name cmpc-tmp busybox' rm cmpc-tmp
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp busybox sleep 300' rm cmpc-tmp
same_ids 'docker rm -f cmpc-tmp; docker run -d --name cmpc-tmp -v /anon busybox sleep 300' rm -f -v cmpc-tmp nope
same rm nope
same rm -f nope
same rm /
same_ids 'docker rm -f cmpc-tmp; docker create --name cmpc-tmp busybox sh -c "echo a; echo b >&2; exit 4"' start -a cmpc-tmp
same_ids 'docker rm -f cmpc-tmp; docker create -i --name cmpc-tmp busybox cat' start -a -i cmpc-tmp
same start -a cmpc-created cmpc-exited
same_stdin 'n\n' container prune
same_ids 'docker run --name cmpc-p busybox true' container prune -f --filter label=nomatch
same container prune --bogus
# run
same run --rm busybox echo hi
same run --rm busybox sh -c 'echo out; exit 3'
same run --rm -a stderr busybox sh -c 'echo out; echo err >&2'
same run --rm busybox nosuchcmd
same run --rm busybox /etc
same run --rm nosuchimage:1
same run --rm --pull never nosuch
same run --rm -q nosuchimage:1
same run Bad:Ref
same run --pull bogus busybox
same run --rm --restart always busybox
same run -e =x busybox
same run -d -a stdout busybox
same run -t -i busybox true
same run
same run --rm -t busybox echo tty
same_stdin 'from stdin' run --rm -i busybox cat
same_stdin '' run --rm -i busybox sh -c 'cat; echo after-eof'
same_ids '' run --rm --name cmpc-x -w /tmp -u 1 -e A=1 -h hn --entrypoint sh busybox -c 'echo $A $(pwd) $(id -u) $(hostname)'
same run --rm --read-only --tmpfs /scratch busybox sh -c 'touch /scratch/x && touch /x'
same run --rm -v cmpv-a:/v busybox sh -c 'echo hi > /v/f; cat /v/f'
same run --rm --mount type=tmpfs,dst=/t,tmpfs-size=1m busybox df -k /t
same run --rm --cidfile /nonexistent/dir/cid busybox true
same_ids 'docker rm -f cmpc-d' run -d --name cmpc-d busybox true
same_ids 'docker rm -f cmpc-d' create --name cmpc-d busybox true
same create nosuchimage:1
same create --bogus busybox
same create
# volumes
same volume ls -f name=cmpv
same volume ls -q -f name=cmpv
same volume ls -f name=cmpv --format '{{.Name}}|{{.Driver}}|{{.Labels}}|{{.Scope}}|{{.Links}}|{{.Size}}|{{.Group}}|{{.Availability}}|{{.Status}}'
same volume ls -f name=cmpv --format json
same volume ls -f label=cmp=yes
same volume ls -f driver=local -f name=cmpv-b
same volume ls -f dangling=true -f name=cmpv
same volume ls --format 'table {{.Name}}\t{{.Mountpoint}}' -f name=cmpv-a
same volume ls -f bogus
same volume ls x
same volume inspect cmpv-a
same volume inspect -f '{{.Name}} {{.Labels}} {{.Driver}}' cmpv-a cmpv-b2
same volume inspect nope
same volume inspect cmpv-a nope
same inspect -f '{{.Name}}' cmpv-a
same_ids 'docker volume rm -f cmpv-c' volume create --label x=1 -d local -o type=tmpfs -o device=tmpfs cmpv-c
same_ids 'docker volume rm -f cmpv-c' volume create --name cmpv-c
same volume create --name a b
same volume create a b
same_ids 'docker volume create cmpv-c' volume rm cmpv-c
same volume rm nope
same volume rm -f nope
same volume rm cmpv-a
same_stdin 'n\n' volume prune
same_stdin 'n\n' volume prune -a
same_ids 'docker volume create cmpv-p' volume prune -f -a --filter label=nomatch
same volume prune -a --filter all=1 -f
same volume bogus
cleanup_containers

# ----------------------------------------------------------------------------
# Request bodies: `create` with every flag must send what docker sends.
# capture_server.py records the requests of both clients; bodies are compared
# as JSON (Env and Binds sorted: docker builds them from Go maps).
CAP_SOCK=$WORK/capture.sock
python3 "$(dirname "$0")/capture_server.py" "$CAP_SOCK" "$WORK/capture.log" &
CAP_PID=$!
trap 'kill $CAP_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [ -S "$CAP_SOCK" ] && break; sleep 0.1; done
normalize_capture() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    body = r["body"]
    try:
        b = json.loads(body)
        if isinstance(b.get("Env"), list): b["Env"] = sorted(b["Env"])
        hc = b.get("HostConfig") or {}
        if isinstance(hc.get("Binds"), list): hc["Binds"] = sorted(hc["Binds"])
        body = json.dumps(b, sort_keys=True, indent=1)
    except ValueError:
        pass
    print(r["method"], r["path"]); print(body)
' "$1"
}
# same_body ARGS...: `ARGS` against the capture server; requests and output equal.
same_body() {
  : >"$WORK/capture.log"; DOCKER_HOST=unix://$CAP_SOCK docker "$@" >"$WORK/d.out" 2>&1; echo "rc=$?" >>"$WORK/d.out"
  normalize_capture "$WORK/capture.log" >"$WORK/d.req"
  : >"$WORK/capture.log"; DOCKER_HOST=unix://$CAP_SOCK "$BERTH" "$@" 2>&1 | sed "s/\bberth\b/docker/g" >"$WORK/b.out"; echo "rc=${PIPESTATUS[0]}" >>"$WORK/b.out"
  normalize_capture "$WORK/capture.log" >"$WORK/b.req"
  if diff <(cat "$WORK/d.req" "$WORK/d.out") <(cat "$WORK/b.req" "$WORK/b.out") >"$WORK/diff"; then
    echo "SAME    $* (request body)"
  else
    echo "DIFFER  $* (request body)"; sed 's/^/    /' "$WORK/diff" | head -20; fails=$((fails + 1))
  fi
}
printf 'F1=1\n# c\nHOME\n  F2=x y \n' >"$WORK/envf"
printf 'la=1\nlb\n' >"$WORK/labf"
echo '{"defaultAction": "SCMP_ACT_ALLOW",  "syscalls": []}' >"$WORK/sec.json"
same_body create busybox
same_body create -e A=1 -e B --env C=3 -l x=y -p 8080:80 -p 127.0.0.1::53/udp --expose 1000-1001 -v /data -v /tmp:/host:ro -v named:/n --mount type=volume,src=v,dst=/m,volume-label=a=b --tmpfs /run:size=1m -m 512m --memory-swap -1 --cpus 1.5 --ulimit nofile=10:20 --sysctl net.ipv4.ip_forward=1 --init --rm --name foo --restart no --health-cmd true --health-interval 5s busybox sh -c 'echo hi'
same_body create -d -i -t --name n1 busybox
same_body create -it busybox sh
same_body create -a stdin -a STDOUT busybox
same_body create --env-file "$WORK/envf" -e F1=override -e A busybox
same_body create --label-file "$WORK/labf" -l lc busybox
same_body create -w /tmp -u 1000:1000 --entrypoint '' busybox
same_body create --entrypoint /bin/sh busybox -c x
same_body create --hostname h1 --domainname example.com --read-only --tmpfs /tmp --tmpfs /run:rw,size=1g busybox
same_body create --init=false --stop-signal SIGUSR1 --stop-timeout 7 busybox
same_body create --restart on-failure:3 busybox
same_body create --restart unless-stopped busybox
same_body create --mount type=bind,src=/tmp,dst=/x,readonly,bind-propagation=rslave busybox
same_body create --mount type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777 busybox
same_body create --mount type=volume,dst=/v,volume-nocopy,volume-driver=local,volume-opt=type=tmpfs,volume-subpath=sub busybox
same_body create --mount type=bind,src=.,dst=/x -v ./rel:/y busybox
same_body create --volumes-from c1 --volumes-from c2:ro busybox
same_body create -p 80 -p 8000-8002:8000-8002/udp -p '[::1]:9000:90' -p published=8081,target=81 -P busybox
same_body create --expose 80/udp --expose 90 busybox
same_body create --network host busybox
same_body create --net none busybox
same_body create --network mynet --network-alias web --ip 10.1.0.5 --ip6 fd00::5 --mac-address 92:d0:c6:0a:29:33 busybox
same_body create --network name=mynet,alias=a1,ip=10.1.0.6,driver-opt=k=v,gw-priority=3 busybox
same_body create --network n1 --network n2 busybox
same_body create --mac-address 92:d0:c6:0a:29:33 busybox
same_body create --link other:alias busybox
same_body create --network mynet --link other:alias busybox
same_body create --dns 8.8.8.8 --dns 127.0.0.1 --dns-search example.com --dns-option ndots:2 --dns-opt x busybox
same_body create --add-host h:1.2.3.4 --add-host h2=::1 --add-host gw:host-gateway busybox
same_body create --cap-add net_admin --cap-add ALL --cap-drop chown --privileged --security-opt no-new-privileges --security-opt label=disable --security-opt "seccomp=$WORK/sec.json" busybox
same_body create --security-opt systempaths=unconfined busybox
same_body create --device /dev/fuse --device /dev/sda:/dev/xvda:r --device nvidia.com/gpu=all --device-cgroup-rule 'c 1:3 rwm' busybox
same_body create --cgroupns private --cgroup-parent /x --pid host --ipc shareable --uts host --userns host busybox
same_body create --pid container:abc --ipc container:abc busybox
same_body create -m 1g --memory-reservation 512m --memory-swap 2g --memory-swappiness 10 --kernel-memory 10m busybox
same_body create --cpus 0.5 --cpu-period 100000 --cpu-quota 50000 -c 512 --cpuset-cpus 0-1 --cpuset-mems 0 --cpu-rt-period 1000 --cpu-rt-runtime 900 busybox
same_body create --pids-limit -1 --oom-kill-disable --oom-score-adj -500 --shm-size 128m busybox
same_body create --blkio-weight 300 --blkio-weight-device /dev/sda:200 --device-read-bps /dev/sda:1mb --device-write-bps /dev/sda:1kb --device-read-iops /dev/sda:100 --device-write-iops /dev/sda:200 busybox
same_body create --sysctl net.core.somaxconn=1024 --sysctl kernel.shmmax=1000 --ulimit nofile=1024 --ulimit nproc=10:20 --ulimit nofile=2048:4096 busybox
same_body create --group-add audio --group-add 1000 --log-driver json-file --log-opt max-size=10m --log-opt max-file=3 busybox
same_body create --health-cmd 'curl x' --health-interval 1m30s --health-timeout 3s --health-retries 3 --health-start-period 10s --health-start-interval 2s busybox
same_body create --no-healthcheck --platform linux/amd64 --annotation a=b --annotation c busybox
same_body create --storage-opt size=10G --runtime runc --isolation default --volume-driver local --rm=false --privileged=true --read-only=false busybox
same_body create --name 'x y' busybox ls -la --color
same_body create -dit -e -x --name -y busybox
# ... and refuse what docker refuses, with its messages and status.
for bad in "-e =x" "-m 1x" "--cpus abc" "--cpus 0.0000000001" "-p 99999:80" "-p 80/xyz" "--expose 1:2" \
  "--mount type=bind,src=/x" "--mount bogus" "-v a::b" "--restart always --rm" "--restart :3" "--pid bogus" \
  "--uts bogus" "--userns bogus" "--cgroupns bogus" "--mac-address zz" "--network-alias x" \
  "--network host --network mynet" "--network n1 --network n1" "--dns bogus" "--dns-search -x" "--add-host bogus" \
  "--sysctl kernel.foo=1" "--ulimit bogus=1" "--ulimit nofile=20:10" "--memory-swappiness 200" \
  "--no-healthcheck --health-cmd x" "--health-interval 5" "--log-driver none --log-opt a=b" "--security-opt bogus" \
  "--security-opt seccomp=/nonexistent" "--storage-opt bogus" "--device /dev/a:rel" "--env-file /nonexistent" \
  "-a bogus" "--blkio-weight-device /dev/sda:5" "--device-read-bps sda:1" "--device-cgroup-rule bogus" \
  "--stop-timeout x" "--pull bogus" "--link a:b:c" "--init=maybe" "--blkio-weight 70000" "--bogus"; do
  # shellcheck disable=SC2086
  same_body create $bad busybox
done
same_body create Bad:Ref
same_body run --pull bogus busybox
same_body volume create --label x=1 -d local -o type=tmpfs -o device=tmpfs -o o=size=1m vol
same_body volume create
kill $CAP_PID 2>/dev/null

docker rmi -f cmpfix:latest cmpfix:1 cmpfix/small:1 example.com/cmpfix/app:v1 >/dev/null 2>&1
echo "$fails difference(s)"
exit "$fails"
