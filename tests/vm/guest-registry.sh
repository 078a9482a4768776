#!/bin/bash
# In a test VM guest: serve the test images on 127.0.0.1:5000 from the host's registry storage
# ($1, shared into the guest with -w), read-only, and bring up what pods need (lo, bridge, veth).
# Used by scripts/test-daemon-v2.sh and scripts/bench-systemd.sh.
set -euo pipefail
mkdir -p /tmp/registry
cat >/tmp/registry/config.yml <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $1
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: true
http:
  addr: 127.0.0.1:5000
  secret: longshore-vm-secret
YAML
ip link set lo up
modprobe bridge 2>/dev/null || true
modprobe veth 2>/dev/null || true
/usr/bin/docker-registry serve /tmp/registry/config.yml >/tmp/registry/log 2>&1 &
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break
  sleep 0.2
done
