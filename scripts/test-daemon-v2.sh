#!/bin/bash
# Run end-to-end tests of the daemon (a root tests/<name>.rs file) on a pure cgroup v2 kernel: the
# real `longshore serve`, pods, containers, CNI bridge, inside the QEMU kit.
#
# The guest cannot reach the host's registries, so it serves the test images itself: a read-only
# docker-registry on its own 127.0.0.1:5000 over the host's registry storage (shared into the
# guest with -w; the registry runs in read-only mode and writes nothing there). Run
# scripts/setup-test-host.sh once first.
#
#   scripts/test-daemon-v2.sh [--systemd] [--test NAME] [TEST-NAME-FILTER...]
#
# --systemd: the guest runs systemd as PID 1 (tests/vm/run-in-systemd-vm.sh, a systemd node).
# --ext4-tmp: the tests' temporary folders on an ext4 scratch disk instead of the guest's tmpfs
# (kernel 6.1's tmpfs takes no idmapped mounts, which pods with a user namespace need).
#
# Default: --test stats with the tests that read cgroups (CPU, working set, pod stats and
# metrics, pod resize). Takes a few minutes (the guest's CPU is 6-20x slower). Without a VM kit or without the
# registry storage this prints "skipped: ..." and exits 0; any other failure exits non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_DIR=${LONGSHORE_VM_DIR:-}
if [ -z "$VM_DIR" ]; then
  common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for d in "$ROOT/../shared/vm" "${common:+$(dirname "$common")/../shared/vm}"; do
    if [ -n "$d" ] && [ -x "$d/run-in-vm.sh" ]; then VM_DIR=$d; break; fi
  done
fi
if [ -z "$VM_DIR" ] || [ ! -x "$VM_DIR/run-in-vm.sh" ]; then
  echo "skipped: no VM kit (set LONGSHORE_VM_DIR)"
  exit 0
fi
STORAGE=${LONGSHORE_REGISTRY_DIR:-/tmp/longshore-registry}/storage
if [ ! -d "$STORAGE/docker" ]; then
  echo "skipped: no registry storage at $STORAGE (run scripts/setup-test-host.sh)"
  exit 0
fi
RUNNER=$VM_DIR/run-in-vm.sh
if [ "${1:-}" = "--systemd" ]; then
  RUNNER=$ROOT/tests/vm/run-in-systemd-vm.sh
  export LONGSHORE_VM_DIR=$VM_DIR
  shift
fi
RUNNER_ARGS=()
EXT4_TMP=0
if [ "${1:-}" = "--ext4-tmp" ]; then
  RUNNER_ARGS=(-d 512M)
  EXT4_TMP=1
  shift
fi
TEST=stats
if [ "${1:-}" = "--test" ]; then
  TEST=$2
  shift 2
fi
FILTERS=("$@")
if [ ${#FILTERS[@]} -eq 0 ] && [ "$TEST" = stats ]; then
  FILTERS=(a_busy_loop shm_writes pod_stats_and update_pod)
fi

echo "building the $TEST test binary on the host" >&2
BIN=$(cd "$ROOT" && cargo test -p longshore --test "$TEST" --no-run --message-format=json \
  | jq -r --arg t "$TEST" 'select(.reason == "compiler-artifact" and .executable != null
    and .profile.test and .target.name == $t) | .executable')
if [ -z "$BIN" ]; then
  echo "$TEST test binary not found in cargo's output" >&2
  exit 1
fi

# Runs in the guest: $1 = registry storage, $2 = test binary, the rest = test filters.
GUEST='set -euo pipefail
if [ "$EXT4_TMP" = 1 ]; then
  modprobe ext4
  mkfs.ext4 -q /dev/vda
  mkdir -p /tmp/ext4 && mount /dev/vda /tmp/ext4 && chmod 1777 /tmp/ext4
  export TMPDIR=/tmp/ext4
fi
"$0" "$1"
echo "guest cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
"$2" --test-threads=1 "${@:3}"'

echo "running in a cgroup v2 guest: $(basename "$BIN") ${FILTERS[*]}" >&2
cd "$ROOT"
exec env EXT4_TMP=$EXT4_TMP "$RUNNER" "${RUNNER_ARGS[@]}" -t "${LONGSHORE_VM_TIMEOUT:-1200}" -w "$STORAGE" \
  bash -c "$GUEST" "$ROOT/tests/vm/guest-registry.sh" "$STORAGE" "$BIN" "${FILTERS[@]}"
