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

docker rmi -f cmpfix:latest cmpfix:1 cmpfix/small:1 example.com/cmpfix/app:v1 >/dev/null 2>&1
echo "$fails difference(s)"
exit "$fails"
