#!/bin/bash
# Prepares this machine to run Longshore's tests (Debian 12/13 or Ubuntu, as root):
# packages, the local registries on 127.0.0.1:5000-5003, the test images pushed there, and the
# QEMU kit for the cgroup v2 tests when ../shared/vm is present. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  gcc libc6-dev pkg-config libseccomp-dev   # build (libcontainer links libseccomp)
  docker-registry skopeo openssl python3     # the test registries and images
  busybox-static                             # the test images' userland
  containernetworking-plugins iptables iproute2  # pod networking tests
  runc                                       # the external-runtime handler tests
  jq                                         # scripts/test-cgroup-v2.sh
  systemd dbus                               # the systemd node VM (tests/vm): PID 1 and the bus
  criu                                       # checkpoint/restore (works in the cgroup v2 VM's kernel)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

# Python grpcio for tests/grpc_python.rs: a CRI client on gRPC's C core, beside the Rust one.
if ! python3 -c 'import grpc, grpc_tools' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check grpcio grpcio-tools 2>&1 \
    | grep -v 'Running pip as the .root. user' || true
  python3 -c 'import grpc, grpc_tools' || { echo "cannot install Python grpcio" >&2; exit 1; }
fi

# Debian's dynamic busybox for the test images (it conflicts with busybox-static as an installed
# package, so it is only downloaded and unpacked).
BUSYBOX_ROOT="${LONGSHORE_BUSYBOX_ROOT:-/var/cache/longshore-test/busybox}"
if [ ! -x "$BUSYBOX_ROOT/bin/busybox" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download busybox >/dev/null 2>&1 || { apt-get update -qq && apt-get download busybox >/dev/null 2>&1; }; })
  mkdir -p "$BUSYBOX_ROOT"
  dpkg-deb -x "$tmp"/busybox_*.deb "$BUSYBOX_ROOT"
  rm -rf "$tmp"
fi
export LONGSHORE_BUSYBOX_ROOT="$BUSYBOX_ROOT"

REGISTRY_DIR="${LONGSHORE_REGISTRY_DIR:-/tmp/longshore-registry}"
tests/registry/start.sh "$REGISTRY_DIR"
python3 tests/images/build_images.py --out "$REGISTRY_DIR/images" --registry-storage "$REGISTRY_DIR/storage" ${LONGSHORE_BENCH_IMAGES:+--bench}

VM_DIR="${LONGSHORE_VM_DIR:-$(pwd)/../shared/vm}"
if [ -x "$VM_DIR/setup.sh" ]; then
  KVER=$(ls /lib/modules 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$KVER" ] || [ ! -s "${VMTEST_CACHE:-/var/cache/vmtest}/vmlinux-$KVER" ]; then
    "$VM_DIR/setup.sh" >/dev/null
  fi
  echo "cgroup v2 VM kit ready ($VM_DIR)"
else
  echo "no VM kit at $VM_DIR: the cgroup v2 tests will be skipped"
fi
echo "test host ready: registry on 127.0.0.1:5000, images pushed"
