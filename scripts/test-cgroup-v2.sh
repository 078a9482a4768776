#!/bin/bash
# Run longshore-cgroups' tests, and the daemon's cgroup stats path, on a pure cgroup v2 kernel.
#
# Builds the test binaries on the host (the guest's CPU is 6-20x slower), then boots the QEMU kit
# (run-in-vm.sh) once and runs, inside it, the v2-only tests (tests/cgroup_v2.rs, marked
# #[ignore] so the hybrid host skips them), the version-independent ones (tests/cgroup.rs), and
# the daemon library's stats tests that read a real cgroup and convert it to CRI's stats
# (`runtime::stats_sample`: CPU rate, working set, available bytes, PSI). The whole daemon is
# not booted in the guest: it cannot reach the host's test registry.
#
# The kit is found at $LONGSHORE_VM_DIR, else at ../shared/vm next to the repository root (for a
# git worktree, next to the main checkout). Without a kit this prints "skipped: no VM kit" and
# exits 0; any other failure exits non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

find_vm_dir() {
  if [ -n "${LONGSHORE_VM_DIR:-}" ]; then
    echo "$LONGSHORE_VM_DIR"
    return
  fi
  local dir=$ROOT/../shared/vm common
  if [ ! -e "$dir/run-in-vm.sh" ]; then
    # In a worktree, the shared folder sits next to the main checkout.
    common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    if [ -n "$common" ] && [ -e "$(dirname "$common")/../shared/vm/run-in-vm.sh" ]; then
      dir=$(dirname "$common")/../shared/vm
    fi
  fi
  echo "$dir"
}

VM_DIR=$(find_vm_dir)
if [ ! -x "$VM_DIR/run-in-vm.sh" ]; then
  echo "skipped: no VM kit (no run-in-vm.sh in $VM_DIR; set LONGSHORE_VM_DIR)"
  exit 0
fi
VM_DIR=$(cd "$VM_DIR" && pwd)

echo "building test binaries on the host" >&2
BINS=$(cd "$ROOT" && cargo test -p longshore-cgroups --test cgroup_v2 --test cgroup --no-run \
  --message-format=json | jq -r 'select(.reason == "compiler-artifact" and .executable != null
    and .profile.test) | "\(.target.name) \(.executable)"')
V2_BIN=$(awk '$1 == "cgroup_v2" { print $2 }' <<<"$BINS")
ALL_BIN=$(awk '$1 == "cgroup" { print $2 }' <<<"$BINS")
STATS_BIN=$(cd "$ROOT" && cargo test -p longshore --lib --no-run --message-format=json \
  | jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test
    and .target.name == "longshore") | .executable')
if [ -z "$V2_BIN" ] || [ -z "$ALL_BIN" ] || [ -z "$STATS_BIN" ]; then
  echo "test binaries not found in cargo's output:" >&2
  echo "$BINS" >&2
  echo "longshore lib tests: ${STATS_BIN:-none}" >&2
  exit 1
fi

echo "running in a cgroup v2 guest: $(basename "$V2_BIN") --ignored, $(basename "$ALL_BIN")," \
  "$(basename "$STATS_BIN") runtime::stats_sample" >&2
cd "$ROOT"
exec "$VM_DIR/run-in-vm.sh" -t "${LONGSHORE_VM_TIMEOUT:-900}" \
  sh -c '"$1" --ignored && "$2" && "$3" runtime::stats_sample' sh "$V2_BIN" "$ALL_BIN" "$STATS_BIN"
