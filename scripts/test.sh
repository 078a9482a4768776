#!/bin/bash
# Runs every test, as root, on a host prepared by scripts/setup-test-host.sh:
#   1. unit and integration tests of every crate, and the end-to-end tests in tests/ that start
#      real `longshore serve` daemons against the local registry, real namespaces, overlay mounts,
#      cgroups and CNI plugins;
#   2. the cgroup v2 tests inside a QEMU VM with a pure cgroup v2 kernel (skipped, saying so,
#      when the VM kit is not on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run the tests as root: they make namespaces, mounts and cgroups" >&2; exit 1; }
(exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null || {
  echo "no test registry on 127.0.0.1:5000: run scripts/setup-test-host.sh first" >&2; exit 1; }

cargo build --locked --workspace --all-targets
cargo test --locked --workspace -- --test-threads="${LONGSHORE_TEST_THREADS:-4}"
scripts/test-cgroup-v2.sh
