#!/bin/bash
# Builds the Debian package longshore_<version>_<arch>.deb: the daemon and monitor binaries, the
# systemd unit, the default configuration (a conffile), the default CNI bridge network (put in
# /etc/cni/net.d at install only when nothing is configured there, as deploy/install.sh does) and
# an /etc/crictl.yaml example. Install it with `apt install ./longshore_*.deb`.
#
# dpkg-deb rather than cargo-deb: it is on every Debian machine already, needs no second tool
# built from crates.io, and the package is a handful of files; the control file below is the
# whole recipe.
#
#   deploy/deb/build.sh [--bin-dir DIR] [--out DIR]
#     --bin-dir  where longshore and longshore-monitor are (default: a fresh release build)
#     --out      where the .deb goes (default: target/deb)
#   LONGSHORE_DEB_COMPRESSION: xz (default), gzip or none (the tests' debug builds)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN_DIR= OUT=$ROOT/target/deb
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    *) echo "usage: $0 [--bin-dir DIR] [--out DIR]" >&2; exit 2;;
  esac
done
if [ -z "$BIN_DIR" ]; then
  (cd "$ROOT" && cargo build --release --locked -p longshore -p longshore-monitor --bins)
  BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
for b in longshore longshore-monitor; do
  [ -x "$BIN_DIR/$b" ] || { echo "no $BIN_DIR/$b" >&2; exit 1; }
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"

install -D -m 0755 "$BIN_DIR/longshore" "$STAGE/usr/bin/longshore"
install -D -m 0755 "$BIN_DIR/longshore-monitor" "$STAGE/usr/bin/longshore-monitor"
install -d -m 0755 "$STAGE/etc/longshore/certs.d" "$STAGE/lib/systemd/system"
"$BIN_DIR/longshore" config default > "$STAGE/etc/longshore/config.toml"
sed 's|^ExecStart=/usr/local/bin/longshore |ExecStart=/usr/bin/longshore |' \
  "$ROOT/deploy/systemd/longshore.service" > "$STAGE/lib/systemd/system/longshore.service"
grep -q '^ExecStart=/usr/bin/longshore serve' "$STAGE/lib/systemd/system/longshore.service" \
  || { echo "the unit's ExecStart is not /usr/local/bin/longshore serve any more" >&2; exit 1; }
install -D -m 0644 "$ROOT/deploy/cni/10-longshore-bridge.conflist" \
  "$STAGE/usr/share/longshore/cni/10-longshore-bridge.conflist"
install -d -m 0755 "$STAGE/usr/share/doc/longshore/examples"
cat > "$STAGE/usr/share/doc/longshore/examples/crictl.yaml" <<'YAML'
# Copy to /etc/crictl.yaml so that crictl talks to Longshore.
runtime-endpoint: unix:///run/longshore/longshore.sock
image-endpoint: unix:///run/longshore/longshore.sock
timeout: 10
YAML
install -m 0644 "$ROOT/README.md" "$STAGE/usr/share/doc/longshore/README.md"

install -d -m 0755 "$STAGE/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: longshore
Version: $VERSION
Architecture: $ARCH
Maintainer: Longshore developers <longshore@localhost>
Installed-Size: $SIZE
Depends: libc6, libseccomp2, iptables
Recommends: containernetworking-plugins
Suggests: runc, cri-tools
Section: admin
Priority: optional
Homepage: https://github.com/longshore/longshore
Description: Kubernetes CRI container runtime
 Longshore is a CRI server for kubelet and crictl: pods and containers on the kernel's
 namespaces, cgroups (cgroupfs or systemd) and overlayfs, with an embedded OCI executor,
 so no other runtime binary is needed.
CONTROL
echo /etc/longshore/config.toml > "$STAGE/DEBIAN/conffiles"
cat > "$STAGE/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  mkdir -p /etc/cni/net.d
  if [ -z "$(ls -A /etc/cni/net.d 2>/dev/null)" ]; then
    cp /usr/share/longshore/cni/10-longshore-bridge.conflist /etc/cni/net.d/
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl enable longshore.service >/dev/null 2>&1 || true
  fi
fi
POSTINST
cat > "$STAGE/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
# Only the daemon stops (KillMode=process): running containers keep running.
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl disable --now longshore.service >/dev/null 2>&1 || true
fi
PRERM
cat > "$STAGE/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
POSTRM
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DEB=$OUT/longshore_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"${LONGSHORE_DEB_COMPRESSION:-xz}" --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
