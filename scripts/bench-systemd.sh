#!/bin/bash
# The systemd cgroup driver's cost: Longshore with [cgroups] driver = "systemd" (transient units
# over D-Bus) side by side with the same build on driver = "cgroupfs", both started from
# deploy/systemd/longshore.service on a systemd node (the QEMU guest of tests/vm/, systemd as
# PID 1, pure cgroup v2), measured by longshore-bench in one interleaved run. The guest's CPU is
# emulated (6-20x slower than the host): read the ratio, not the milliseconds.
#
#   scripts/bench-systemd.sh [longshore-bench options]   (default: --scenarios runp,create-start,lifecycle --iterations 10)
#
# Needs a release build (cargo build --release --workspace) and scripts/setup-test-host.sh.
# Everything it makes lives and dies in the VM.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LONGSHORE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/longshore}
BENCH_BIN=${LONGSHORE_BENCH_BIN:-$(dirname "$BIN")/longshore-bench}
STORAGE=${LONGSHORE_REGISTRY_DIR:-/tmp/longshore-registry}/storage
for f in "$BIN" "$BENCH_BIN"; do
  [ -x "$f" ] || { echo "no $f: cargo build --release --workspace first" >&2; exit 1; }
done
[ -d "$STORAGE/docker" ] || { echo "no registry storage at $STORAGE (run scripts/setup-test-host.sh)" >&2; exit 1; }
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--scenarios runp,create-start,lifecycle --iterations 10)

# Runs in the guest as root, systemd being PID 1: $1 = repo, $2 = storage, $3 = longshore,
# $4 = longshore-bench, the rest = bench options.
GUEST='set -euo pipefail
repo=$1 storage=$2 bin=$3 bench=$4; shift 4
"$repo/tests/vm/guest-registry.sh" "$storage"
n=0
for driver in systemd cgroupfs; do
  d=/tmp/bench-$driver; mkdir -p "$d/cni"
  cat >"$d/cni/10-bench.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bench-$driver", "plugins": [
  {"type": "bridge", "bridge": "lsbsd$n", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.$n.0/24"}]], "dataDir": "$d/ipam"}}]}
JSON
  default_parent=/longshore-$driver
  [ $driver = systemd ] && default_parent=longshore.slice
  cat >"$d/config.toml" <<TOML
root = "$d/root"
state = "$d/state"
[log]
level = "warn"
[registry]
config_path = "$repo/tests/registry/hosts.d"
docker_config = "$d/none.json"
[cgroups]
driver = "$driver"
default_parent = "$default_parent"
[cni]
conf_dir = "$d/cni"
cache_dir = "$d/cni-cache"
TOML
  sed "s|^ExecStart=.*|ExecStart=$bin serve --config $d/config.toml|" \
    "$repo/deploy/systemd/longshore.service" >/run/systemd/system/longshore-$driver.service
  n=$((n + 1))
done
systemctl daemon-reload
systemctl start longshore-systemd.service longshore-cgroupfs.service
"$bench" --endpoint systemd=unix:///tmp/bench-systemd/state/longshore.sock \
  --endpoint cgroupfs=unix:///tmp/bench-cgroupfs/state/longshore.sock "$@"
systemctl stop longshore-systemd.service longshore-cgroupfs.service'

cd "$ROOT"
exec "$ROOT/tests/vm/run-in-systemd-vm.sh" -t "${LONGSHORE_VM_TIMEOUT:-1800}" -w "$STORAGE" \
  bash -c "$GUEST" guest "$ROOT" "$STORAGE" "$BIN" "$BENCH_BIN" "${ARGS[@]}"
