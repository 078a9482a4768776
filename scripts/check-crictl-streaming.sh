#!/bin/bash
# Checks exec, attach and port-forward with the REAL crictl, over both of its transports (spdy
# and websocket), against a fresh `longshore serve` with its own root, state, cgroup and CNI
# bridge. Not part of CI: crictl is built outside the repo. As root, on a host prepared by
# scripts/setup-test-host.sh (the test registry on 127.0.0.1:5000).
#
#   scripts/check-crictl-streaming.sh /work/tools/bin/crictl
#
# LONGSHORE_BIN picks the daemon binary (default: built here with cargo). Exits non-zero if any
# check fails; everything the run made is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

CRICTL=${1:?usage: $0 /path/to/crictl}
[ -x "$CRICTL" ] || { echo "$CRICTL is not executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for tool in script curl python3 ip; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (util-linux, curl, python3, iproute2)" >&2; exit 2; }
done
(exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null || {
  echo "no test registry on 127.0.0.1:5000: run scripts/setup-test-host.sh first" >&2; exit 2; }

BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
HTTP_PORT=18080
PAGE=hello-from-the-pod
T=20 # seconds any one crictl command may take

if [ -z "${LONGSHORE_BIN:-}" ]; then
  cargo build --quiet --bin longshore
  LONGSHORE_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/longshore"
fi

TMP=$(mktemp -d /tmp/longshore-crictl-XXXXXX)
PASSED=0
FAILED=0
SUFFIX=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
BRIDGE="lsc$SUFFIX"
OCTET=$(( (0x$SUFFIX % 200) + 20 ))
SOCK="$TMP/state/longshore.sock"
DAEMON_PID=""
FORWARD_PID=""

# Test cgroups live only under this process's own cgroup (the deepest of its paths).
OWN_CGROUP=$(cut -d: -f3 /proc/self/cgroup | awk '{ print length, $0 }' | sort -n | tail -1 | cut -d' ' -f2-)
CGROUP_ROOT="${OWN_CGROUP%/}/longshore-crictl-$SUFFIX"
hierarchies() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; return; fi
  for c in cpu cpuacct cpuset memory devices freezer blkio pids unified; do
    [ -d "/sys/fs/cgroup/$c" ] && echo "/sys/fs/cgroup/$c"
  done
  return 0
}
make_cgroups() {
  for h in $(hierarchies); do
    mkdir -p "$h$CGROUP_ROOT"
    if [ "${h##*/}" = cpuset ]; then
      # A new cpuset takes no tasks until it has cpus and mems: copy them down the chain.
      local d="$h" part
      for part in $(echo "$CGROUP_ROOT" | tr '/' ' '); do
        d="$d/$part"
        for f in cpuset.cpus cpuset.mems; do
          [ -n "$(cat "$d/$f")" ] || cat "$(dirname "$d")/$f" > "$d/$f"
        done
      done
    fi
  done
}
remove_cgroups() {
  local h dir pid
  for h in $(hierarchies); do
    [ -d "$h$CGROUP_ROOT" ] || continue
    for dir in $(find "$h$CGROUP_ROOT" -depth -type d); do
      for pid in $(cat "$dir/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$dir" 2>/dev/null && break; sleep 0.1; done
    done
  done
}

cleanup() {
  set +e
  [ -n "$FORWARD_PID" ] && kill "$FORWARD_PID" 2>/dev/null
  if [ -n "$DAEMON_PID" ]; then
    for pod in $(cr pods -q 2>/dev/null); do
      cr stopp "$pod" >/dev/null 2>&1
      cr rmp "$pod" >/dev/null 2>&1
    done
    kill -TERM "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  # Anything our daemon started names our temp dir on its command line.
  for pid in $(grep -l -a -F "$TMP" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
  remove_cgroups
  grep -F " $TMP" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | while read -r m; do umount -l "$m"; done
  ip link del "$BRIDGE" 2>/dev/null
  if [ "$FAILED" != 0 ] || [ "${1:-}" = failed ]; then
    cp "$TMP/daemon.log" "$TMP.daemon.log" && echo "the daemon's log is in $TMP.daemon.log"
  fi
  rm -rf "$TMP"
}
trap 'cleanup $([ $? = 0 ] || echo failed)' EXIT

cr() { timeout "$T" "$CRICTL" --config "$TMP/crictl.yaml" -r "unix://$SOCK" -i "unix://$SOCK" "$@"; }

check() { # name, command output, expected substring
  if printf '%s' "$2" | grep -q -F -- "$3"; then
    echo "PASS  $1"; PASSED=$((PASSED + 1))
  else
    echo "FAIL  $1: wanted \"$3\" in:"; printf '%s\n' "$2" | sed 's/^/      | /'; FAILED=$((FAILED + 1))
  fi
}

# --- a daemon of our own -----------------------------------------------------------------------
mkdir -p "$TMP/cni" "$TMP/logs"
: > "$TMP/crictl.yaml"
make_cgroups
cat > "$TMP/cni/10-crictl.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "$BRIDGE-net", "plugins": [{"type": "bridge", "bridge": "$BRIDGE",
 "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local",
 "ranges": [[{"subnet": "10.232.$OCTET.0/24"}]], "dataDir": "$TMP/ipam"}}]}
EOF
cat > "$TMP/config.toml" <<EOF
root = "$TMP/root"
state = "$TMP/state"
[registry]
config_path = "$REPO/tests/registry/hosts.d"
docker_config = "$TMP/no-docker-config.json"
[cgroups]
root = "$CGROUP_ROOT"
default_parent = "/pods"
[cni]
conf_dir = "$TMP/cni"
cache_dir = "$TMP/cni-cache"
EOF
"$LONGSHORE_BIN" serve --config "$TMP/config.toml" > "$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "the daemon did not start:"; cat "$TMP/daemon.log"; exit 1; }

cr pull "$BUSYBOX" >/dev/null
cat > "$TMP/pod.json" <<EOF
{"metadata": {"name": "crictl-streaming", "namespace": "check", "uid": "uid-$SUFFIX", "attempt": 0},
 "hostname": "crictl-streaming", "log_directory": "$TMP/logs", "linux": {}}
EOF
container() { # name, stdin, tty, command...
  local name=$1 stdin=$2 tty=$3; shift 3
  local args; args=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")
  cat > "$TMP/$name.json" <<EOF
{"metadata": {"name": "$name"}, "image": {"image": "$BUSYBOX"}, "command": $args,
 "log_path": "$name.log", "stdin": $stdin, "tty": $tty, "linux": {}}
EOF
  cr create "$POD" "$TMP/$name.json" "$TMP/pod.json"
}
POD=$(cr runp "$TMP/pod.json")
SLEEPER=$(container sleeper false false sleep 3600)
HTTPD=$(container httpd false false sh -c \
  "mkdir -p /tmp/www && echo $PAGE > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:$HTTP_PORT -h /tmp/www")
cr start "$SLEEPER" "$HTTPD" >/dev/null

# --- the checks ----------------------------------------------------------------------------------
out=$(cr exec -s "$SLEEPER" sh -c 'echo sync-out; echo sync-err >&2' 2>&1 || true)
check "exec -s (ExecSync) stdout" "$out" "sync-out"
check "exec -s (ExecSync) stderr" "$out" "sync-err"
out=$(cr exec -s "$SLEEPER" sh -c 'exit 4' 2>&1 || true)
check "exec -s sh -c 'exit 4'" "$out" "exited with 4"
out=$(cr exec -s --timeout 1 "$SLEEPER" sleep 30 2>&1 || true)
check "exec -s --timeout 1 sleep 30" "$out" "DeadlineExceeded"

for transport in spdy websocket; do
  out=$(echo hello-stdin | cr exec -i -r "$transport" "$SLEEPER" cat 2>&1 || true)
  check "$transport: exec -i (stdin, no tty)" "$out" "hello-stdin"

  out=$(cr exec -r "$transport" "$SLEEPER" sh -c 'echo to-stdout; echo to-stderr >&2' 2>&1 || true)
  check "$transport: exec stdout" "$out" "to-stdout"
  check "$transport: exec stderr" "$out" "to-stderr"

  out=$(cr exec -r "$transport" "$SLEEPER" sh -c 'exit 3' 2>&1 || true)
  check "$transport: exec sh -c 'exit 3'" "$out" "command terminated with exit code 3"

  # A terminal of a known size for crictl to pass on; stdin stays open until the command ends.
  out=$(sleep 3 | script -qec "stty rows 33 cols 77; $(printf '%q ' timeout "$T" "$CRICTL" --config "$TMP/crictl.yaml" -r "unix://$SOCK" exec -i -t -r "$transport" "$SLEEPER" stty size)" /dev/null 2>&1 || true)
  check "$transport: exec -i -t (terminal size)" "$out" "33 77"
  out=$(sleep 3 | script -qec "$(printf '%q ' timeout "$T" "$CRICTL" --config "$TMP/crictl.yaml" -r "unix://$SOCK" exec -i -t -r "$transport" "$SLEEPER" sh -c 'test -t 0 && test -t 1 && echo both-ttys')" /dev/null 2>&1 || true)
  check "$transport: exec -i -t (stdin and stdout are a terminal)" "$out" "both-ttys"

  # attach: a fresh reader container each time; stdin in, its answer out.
  READER=$(container "reader-$transport" true false sh -c 'echo ready; while read l; do echo "got $l"; done')
  cr start "$READER" >/dev/null
  out=$( (echo one; sleep 1; echo two; sleep 1) | cr attach -i -r "$transport" "$READER" 2>&1 || true)
  check "$transport: attach -i (input reaches the container)" "$out" "got one"
  check "$transport: attach -i (later output arrives)" "$out" "got two"

  # port-forward to httpd listening on the pod's own loopback.
  LOCAL_PORT=$(( 20000 + (0x$SUFFIX % 20000) + $([ "$transport" = spdy ] && echo 0 || echo 1) ))
  "$CRICTL" --config "$TMP/crictl.yaml" -r "unix://$SOCK" port-forward -r "$transport" "$POD" "$LOCAL_PORT:$HTTP_PORT" > "$TMP/forward.log" 2>&1 &
  FORWARD_PID=$!
  out=""
  for _ in $(seq 50); do
    out=$(curl -s --max-time 5 "http://127.0.0.1:$LOCAL_PORT/" 2>&1) && break
    sleep 0.2
  done
  check "$transport: port-forward (first request)" "$out" "$PAGE"
  out=$(curl -s --max-time 5 "http://127.0.0.1:$LOCAL_PORT/" 2>&1 || true)
  check "$transport: port-forward (second request)" "$out" "$PAGE"
  kill "$FORWARD_PID" 2>/dev/null || true
  wait "$FORWARD_PID" 2>/dev/null || true
  FORWARD_PID=""
done

echo "crictl streaming checks: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
