#!/bin/bash
# Runs every test, as root, on a host prepared by scripts/setup-test-host.sh:
#   1. unit and integration tests of every crate, and the end-to-end tests in tests/ that start
#      real `longshore serve` daemons against the local registry, real namespaces, overlay mounts,
#      cgroups and CNI plugins;
#   2. the cgroup v2 tests inside a QEMU VM with a pure cgroup v2 kernel, for the cgroups crate and
#      for the daemon end to end, and on a systemd node (systemd as the guest's PID 1) for the
#      systemd cgroup driver (skipped, saying so, when the VM kit is not on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run the tests as root: they make namespaces, mounts and cgroups" >&2; exit 1; }
(exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null || {
  echo "no test registry on 127.0.0.1:5000: run scripts/setup-test-host.sh first" >&2; exit 1; }

cargo build --locked --workspace --all-targets
cargo test --locked --workspace -- --test-threads="${LONGSHORE_TEST_THREADS:-4}"
# Pure cgroup v2 (QEMU): the cgroups crate, then the daemon end to end (stats, and the pod and
# container cases that depend on cgroups: limits, OOM, live updates, runc, security context).
scripts/test-cgroup-v2.sh
scripts/test-daemon-v2.sh --test stats
scripts/test-daemon-v2.sh --test pods memory_limit resources_update containers_of_a_pod \
  the_runc_handler security_context shared_pid_container
# User namespaces on the guest's 6.1 kernel (its tmpfs takes no idmapped mounts: the tests'
# folders go on an ext4 scratch disk there).
scripts/test-daemon-v2.sh --ext4-tmp --test userns
# Checkpoint/restore: CRIU runs on the guest's 6.1 kernel, not on the hosts' 6.18 (docs/checkpoint.md).
scripts/test-daemon-v2.sh --test checkpoint
# A systemd node (systemd as PID 1 in the guest): the systemd cgroup driver through D-Bus.
# (the Debian package it installs there is built here: the guest's CPU is emulated).
LONGSHORE_TEST_DEB=$(LONGSHORE_DEB_COMPRESSION=none deploy/deb/build.sh --bin-dir target/debug \
  --out target/deb-test) scripts/test-daemon-v2.sh --systemd --test systemd_node \
  containers_are the_debian_package_installs
