#!/bin/bash
# Benchmarks Longshore side by side with the reference runtime, Debian's containerd 1.6 + runc
# with its CRI plugin, in one run on this machine (see docs/benchmarks.md).
#
# Both runtimes get a private root, state dir and socket, the cgroupfs driver with every cgroup
# under this script's own cgroup, a CNI bridge network of their own (bridge + host-local +
# portmap, loopback added by the runtime), and the local test registry as their mirror. Then
# `longshore-bench` drives both over CRI, alternately. Everything is stopped and removed at the
# end, also on failure or Ctrl-C: processes, mounts, network namespaces, bridges, iptables rules,
# cgroups, files.
#
# Usage (as root, after `LONGSHORE_BENCH_IMAGES=1 ./scripts/setup-test-host.sh` and
# `cargo build --release`):
#   scripts/bench-containerd.sh [longshore-bench options]      e.g. --iterations 30 --json
# Environment:
#   LONGSHORE_BIN      the longshore binary (default: $CARGO_TARGET_DIR or target, /release/longshore)
#   LONGSHORE_BENCH_BIN the bench tool (default: longshore-bench next to LONGSHORE_BIN)
#   CRICTL             crictl (default: /work/tools/bin/crictl, else the one on PATH)
#   LONGSHORE_LOG      the daemon's log filter (default: info), e.g. `debug` for timings
#   BENCH_KEEP_LOGS    a folder to copy both daemons' logs into before cleaning up
#   BENCH_ONLY         `longshore` or `containerd`: start and measure only that runtime
#   BENCH_PAUSE        `static` (default: a real pause binary built here) or `registry` (the
#                      test registry's busybox-script pause) as containerd's sandbox image
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

BIN=${LONGSHORE_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/longshore}
BENCH_BIN=${LONGSHORE_BENCH_BIN:-$(dirname "$BIN")/longshore-bench}
CRICTL=${CRICTL:-/work/tools/bin/crictl}
[ -x "$CRICTL" ] || CRICTL=$(command -v crictl || true)
REGISTRY=127.0.0.1:5000
PAUSE_IMAGE=registry.k8s.io/pause:3.10
CNI_BIN=/usr/lib/cni
V1_CONTROLLERS=(cpu cpuacct cpuset memory devices freezer blkio pids)

die() { echo "bench-containerd: $*" >&2; exit 1; }
note() { echo "bench-containerd: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$BIN" ] || die "no $BIN: cargo build --release --workspace first (or set LONGSHORE_BIN)"
[ -x "$BENCH_BIN" ] || die "no $BENCH_BIN: cargo build --release --workspace first (or set LONGSHORE_BENCH_BIN)"
for tool in containerd containerd-shim-runc-v2 ctr runc gcc umoci ip iptables curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install containerd runc iproute2 iptables curl)"
done
[ -x "$CNI_BIN/bridge" ] || die "no CNI plugins in $CNI_BIN (apt-get install containernetworking-plugins)"
curl -sf "http://$REGISTRY/v2/" >/dev/null || die "no registry on $REGISTRY: run ./scripts/setup-test-host.sh"
curl -sf -o /dev/null "http://$REGISTRY/v2/longshore-test/big/tags/list" ||
  note "the big image is not in the registry (LONGSHORE_BENCH_IMAGES=1 ./scripts/setup-test-host.sh); the pull scenario will fail"

# --- cgroups: everything under our own cgroup -------------------------------------------------
cgroup_mounts() {
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
    echo /sys/fs/cgroup
    return
  fi
  for c in "${V1_CONTROLLERS[@]}"; do
    [ -d "/sys/fs/cgroup/$c" ] && echo "/sys/fs/cgroup/$c"
  done
  [ -e /sys/fs/cgroup/unified/cgroup.controllers ] && echo /sys/fs/cgroup/unified
  return 0
}

# Every cgroup hierarchy, named ones too (runc makes its cgroups in name=systemd as well).
all_cgroup_mounts() {
  awk '$0 ~ / - cgroup2? / { print $5 }' /proc/self/mountinfo
}

# The deepest of our cgroup paths: on a hybrid host the memory controller puts us deeper than
# the others, and every hierarchy has room under the deepest one.
own_cgroup() {
  local deepest=/ path
  while IFS=: read -r _ _ path; do
    [ ${#path} -gt ${#deepest} ] && deepest=$path
  done </proc/self/cgroup
  echo "$deepest"
}

# mkdir -p in every hierarchy; a new cpuset cgroup takes no task until it has cpus and mems.
make_cgroup() {
  local rel=$1 m dir d f
  for m in $(cgroup_mounts); do
    dir=$m$rel
    mkdir -p "$dir"
    if [ "${m##*/}" = cpuset ]; then
      d=$m
      for part in ${rel//\// }; do
        d=$d/$part
        for f in cpuset.cpus cpuset.mems; do
          [ -n "$(cat "$d/$f")" ] || cat "$(dirname "$d")/$f" >"$d/$f"
        done
      done
    fi
  done
}

# Runs a command in cgroup $1 (every hierarchy) in the background; sets BG_PID.
spawn_in_cgroup() {
  local rel=$1
  shift
  (
    for m in $(cgroup_mounts); do echo $BASHPID >"$m$rel/cgroup.procs"; done
    # A session of its own: a Ctrl-C at the terminal reaches the bench, not the daemons, so
    # the bench can still remove its pods through them.
    exec setsid "$@"
  ) &
  BG_PID=$!
}

# --- cleanup, also on failure -----------------------------------------------------------------
stop_daemon() {
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

kill_cgroup_tree() {
  local m dir pid round
  for round in 1 2 3 4 5; do
    for m in $(all_cgroup_mounts); do
      dir=$m$CG
      [ -d "$dir" ] || continue
      for pid in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
      done
    done
    sleep 0.2
  done
}

remove_cgroup_tree() {
  local m
  for m in $(all_cgroup_mounts); do
    [ -d "$m$CG" ] && find "$m$CG" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for m in $(all_cgroup_mounts); do
    [ -d "$m$CG" ] && note "cgroup left: $m$CG"
  done
  return 0
}

unmount_under() {
  local mp
  for _ in 1 2 3; do
    awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mp; do
      umount -l "$mp" 2>/dev/null || true
    done
  done
}

remove_iptables_rules() {
  local table rule
  for table in filter nat mangle; do
    iptables -t "$table" -S 2>/dev/null |
      grep -e "$L_SUBNET" -e "$C_SUBNET" -e "$L_BRIDGE" -e "$C_BRIDGE" -e "$L_NET" -e "$C_NET" |
      grep '^-A ' | sed 's/^-A /-D /' | while read -r rule; do
        eval "iptables -t $table $rule" 2>/dev/null || true
      done
  done
}

remove_shim_sockets() {
  local s
  [ -d $RUN_CONTAINERD/s ] || return 0
  for s in $(ls -1 $RUN_CONTAINERD/s); do
    grep -qxF "$s" <<<"$SHIM_SOCKETS_BEFORE" || rm -f "$RUN_CONTAINERD/s/$s"
  done
  if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
    rmdir $RUN_CONTAINERD/s $RUN_CONTAINERD/runc/k8s.io $RUN_CONTAINERD/runc $RUN_CONTAINERD 2>/dev/null || true
  fi
}

remove_cni_cache() {
  rm -f $CNI_CACHE/results/"$C_NET"-* $CNI_CACHE/results/cni-loopback-* 2>/dev/null || true
  if [ "$CNI_CACHE_EXISTED" = 0 ]; then
    rmdir $CNI_CACHE/results $CNI_CACHE 2>/dev/null || true
  fi
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  note "cleaning up"
  if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
    kill -INT "$BENCH_PID"    # the bench removes its pods and prints what it has
    for _ in $(seq 600); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BENCH_PID" 2>/dev/null
  fi
  if [ -n "$CRICTL" ]; then
    [ -n "$C_PID" ] && kill -0 "$C_PID" 2>/dev/null && crictl_on "$C_SOCK" rmp -fa >/dev/null 2>&1
    [ -n "$L_PID" ] && kill -0 "$L_PID" 2>/dev/null && crictl_on "$L_SOCK" rmp -fa >/dev/null 2>&1
  fi
  stop_daemon "$C_PID"
  stop_daemon "$L_PID"
  kill_cgroup_tree
  unmount_under "$DIR"
  ip link del "$L_BRIDGE" 2>/dev/null
  ip link del "$C_BRIDGE" 2>/dev/null
  remove_iptables_rules
  remove_cgroup_tree
  remove_shim_sockets
  remove_cni_cache
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS"
    cp "$DIR"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null
    note "daemon logs copied to $BENCH_KEEP_LOGS"
  fi
  if awk -v d="$DIR/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    note "mounts are left under $DIR; not removing it"
  else
    rm -rf --one-file-system "$DIR"
  fi
  exit $rc
}

crictl_on() {
  local sock=$1
  shift
  "$CRICTL" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s "$@"
}

wait_for_socket() {
  local sock=$1 pid=$2 name=$3 log=$4
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "$name exited at start"; }
    if [ -S "$sock" ] && { [ -z "$CRICTL" ] || crictl_on "$sock" version >>"$log" 2>&1; }; then
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$log" >&2
  die "$name did not answer on $sock"
}

bridge_conflist() {
  local name=$1 bridge=$2 subnet=$3 ipam_dir=$4
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$subnet"}]],
        "dataDir": "$ipam_dir"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
EOF
}

# --- Longshore --------------------------------------------------------------------------------
start_longshore() {
  mkdir -p "$DIR/l/cni"
  make_cgroup "$CG/longshore/daemon"
  bridge_conflist "$L_NET" "$L_BRIDGE" "$L_SUBNET" "$DIR/l/ipam" >"$DIR/l/cni/10-bench.conflist"
  cat >"$DIR/l/config.toml" <<EOF
root = "$DIR/l/root"
state = "$DIR/l/state"
[log]
level = "${LONGSHORE_LOG:-info}"
[registry]
config_path = "$REPO/tests/registry/hosts.d"
docker_config = "$DIR/l/no-docker-config.json"
[cgroups]
driver = "cgroupfs"
root = "$CG/longshore"
default_parent = "/pods"
[cni]
conf_dir = "$DIR/l/cni"
bin_dirs = ["$CNI_BIN"]
cache_dir = "$DIR/l/cni-cache"
EOF
  spawn_in_cgroup "$CG/longshore/daemon" "$BIN" serve --config "$DIR/l/config.toml" >"$DIR/longshore.log" 2>&1
  L_PID=$BG_PID
  wait_for_socket "$L_SOCK" "$L_PID" longshore "$DIR/longshore.log"
}

# --- containerd -------------------------------------------------------------------------------
# The sandbox image of containerd's pods. By default a real pause: a static C program doing what
# registry.k8s.io/pause does (sleep until SIGTERM, reap children), built here and imported into
# this containerd only. The test registry's registry.k8s.io/pause:3.10 is a busybox shell script
# with a sleep child: two processes where operators run one small one. BENCH_PAUSE=registry uses
# that one instead.
STATIC_PAUSE_IMAGE=localhost/longshore-bench/pause:static

sandbox_image() {
  if [ "${BENCH_PAUSE:-static}" = registry ]; then echo "$PAUSE_IMAGE"; else echo "$STATIC_PAUSE_IMAGE"; fi
}

import_static_pause() {
  local d=$DIR/pause
  mkdir -p "$d"
  cat >"$d/pause.c" <<'PAUSE_C'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction term = { .sa_handler = quit };
  struct sigaction child = { .sa_handler = reap, .sa_flags = SA_NOCLDSTOP };
  sigaction(SIGINT, &term, 0);
  sigaction(SIGTERM, &term, 0);
  sigaction(SIGCHLD, &child, 0);
  for (;;) pause();
}
PAUSE_C
  gcc -Os -static -o "$d/pause" "$d/pause.c"
  umoci init --layout "$d/oci"
  umoci new --image "$d/oci:static"
  umoci unpack --image "$d/oci:static" "$d/bundle" >/dev/null
  install -m 0755 "$d/pause" "$d/bundle/rootfs/pause"
  umoci repack --image "$d/oci:static" "$d/bundle"
  umoci config --image "$d/oci:static" --config.entrypoint /pause --config.user 65535:65535
  tar -C "$d/oci" -cf "$d/pause.tar" .
  ctr --address "$C_SOCK" --namespace k8s.io images import --base-name "${STATIC_PAUSE_IMAGE%:*}" "$d/pause.tar"
}

start_containerd() {
  mkdir -p "$DIR/c/cni"
  make_cgroup "$CG/containerd/daemon"
  bridge_conflist "$C_NET" "$C_BRIDGE" "$C_SUBNET" "$DIR/c/ipam" >"$DIR/c/cni/10-bench.conflist"
  cat >"$DIR/c/config.toml" <<EOF
version = 2
root = "$DIR/c/root"
state = "$DIR/c/state"
[grpc]
  address = "$C_SOCK"
[ttrpc]
  address = "$C_SOCK.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(sandbox_image)"
  netns_mounts_under_state_dir = true
  # The pause container asks for oom_score_adj -998, which this kind of host refuses; clamp to
  # containerd's own, as Longshore's restrict_oom_score_adj does.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$DIR/c/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$DIR/c/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$REPO/tests/registry/hosts.d"
EOF
  spawn_in_cgroup "$CG/containerd/daemon" containerd --config "$DIR/c/config.toml" >"$DIR/containerd.log" 2>&1
  C_PID=$BG_PID
  wait_for_socket "$C_SOCK" "$C_PID" containerd "$DIR/containerd.log"
  # The sandbox image, as a node has it before its first pod.
  if [ "$(sandbox_image)" = "$PAUSE_IMAGE" ]; then
    crictl_on "$C_SOCK" pull "$PAUSE_IMAGE" >>"$DIR/containerd.log" 2>&1
  else
    import_static_pause >>"$DIR/containerd.log" 2>&1 || { tail -20 "$DIR/containerd.log" >&2; die "building the static pause image failed"; }
  fi
}

# --- names of everything this run makes -------------------------------------------------------
ID=$(printf '%06x' $(( (RANDOM << 15 | RANDOM) & 0xffffff )))
OCTET=$(( ($$ + RANDOM) % 250 + 1 ))
L_BRIDGE=lsb-l-$ID
C_BRIDGE=lsb-c-$ID
L_SUBNET=10.232.$OCTET.0/24
C_SUBNET=10.233.$OCTET.0/24
L_NET=lsb-l-$ID-net
C_NET=lsb-c-$ID-net
RUN_CONTAINERD=/run/containerd
RUN_CONTAINERD_EXISTED=$([ -e $RUN_CONTAINERD ] && echo 1 || echo 0)
CNI_CACHE=/var/lib/cni
CNI_CACHE_EXISTED=$([ -e $CNI_CACHE ] && echo 1 || echo 0)
SHIM_SOCKETS_BEFORE=$(ls -1 $RUN_CONTAINERD/s 2>/dev/null || true)
L_PID=
C_PID=
BENCH_PID=
WANT_L=1
WANT_C=1
case "${BENCH_ONLY:-}" in
  longshore) WANT_C=0 ;;
  containerd) WANT_L=0 ;;
  "") ;;
  *) die "BENCH_ONLY is longshore or containerd" ;;
esac

CG=$(own_cgroup)
CG=${CG%/}/longshore-bench-$ID
DIR=$(mktemp -d /tmp/lsb.XXXXXX)
# Searchable by others, as /var/lib and /run are: the root of a user-namespaced pod is not the
# host's root and must pass through to its root filesystem (the userns scenario).
chmod 711 "$DIR"
trap cleanup EXIT
trap 'exit 130' INT TERM
L_SOCK=$DIR/l/state/longshore.sock
C_SOCK=$DIR/c/containerd.sock

note "run dir $DIR, cgroup $CG"
ARGS=(--log-dir "$DIR/logs")
if [ $WANT_L = 1 ]; then
  start_longshore
  ARGS+=(--endpoint "longshore=unix://$L_SOCK"
         --cgroup-parent "longshore=/kubepods/besteffort"
         --runtime-cgroup "longshore=$CG/longshore")
  note "longshore $("$BIN" version | head -1) up (pid $L_PID)"
fi
if [ $WANT_C = 1 ]; then
  start_containerd
  ARGS+=(--endpoint "containerd=unix://$C_SOCK"
         --cgroup-parent "containerd=$CG/containerd/kubepods/besteffort"
         --runtime-cgroup "containerd=$CG/containerd")
  note "$(containerd --version) up (pid $C_PID), sandbox image $(sandbox_image)"
fi
# In the background so a signal to this script runs the cleanup at once (bash defers traps
# while a foreground command runs).
"$BENCH_BIN" "${ARGS[@]}" "$@" &
BENCH_PID=$!
wait "$BENCH_PID"
