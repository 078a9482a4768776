#!/bin/bash
# Installs Longshore on this machine: build dependencies, a release build, the binary, a default
# configuration, the default CNI bridge network (when none is configured) and the systemd unit.
# Needs root and a Rust toolchain >= 1.85 (rustup). Re-running it upgrades in place.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null; then
  # A fresh machine (or image) may have no package lists, or week-old ones that name versions the
  # mirror no longer has: refresh them first.
  lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)
  [ -n "$lists" ] || apt-get update -qq -o DPkg::Lock::Timeout=600
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 \
    gcc libc6-dev pkg-config libseccomp-dev containernetworking-plugins iptables >/dev/null
fi
command -v cargo >/dev/null || { echo "install Rust (>= 1.85) first: https://rustup.rs" >&2; exit 1; }

cargo build --release --locked -p longshore -p longshore-monitor --bins
install -D -m 0755 target/release/longshore /usr/local/bin/longshore
# The per-container monitor; the daemon finds it next to its own binary.
install -D -m 0755 target/release/longshore-monitor /usr/local/bin/longshore-monitor

install -d -m 0755 /etc/longshore /etc/longshore/certs.d
[ -f /etc/longshore/config.toml ] || /usr/local/bin/longshore config default > /etc/longshore/config.toml

install -d -m 0755 /etc/cni/net.d
if [ -z "$(ls -A /etc/cni/net.d 2>/dev/null)" ]; then
  install -m 0644 deploy/cni/10-longshore-bridge.conflist /etc/cni/net.d/
fi

install -D -m 0644 deploy/systemd/longshore.service /etc/systemd/system/longshore.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable longshore >/dev/null
  echo "installed; start it with: systemctl start longshore"
else
  echo "installed; no systemd here, start it with: longshore serve"
fi
