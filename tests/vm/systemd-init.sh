#!/bin/bash
# PID 1 of the systemd test VM until it execs systemd (exec'd by the shared kit's initramfs once
# the host root, a pure cgroup v2 hierarchy and the shares are mounted). It writes the job as a
# runtime unit, vmtest.service, and boots systemd with that as its only goal: basic.target and
# the system bus (dbus.socket) come up first, as on a node, then the job runs.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDEV=/dev/console
for p in /sys/class/virtio-ports/*; do
  [ "$(< "$p/name")" = vmtest.out ] 2>/dev/null && OUTDEV=/dev/${p##*/}
done
mkdir -p /run/systemd/system /etc/systemd/system
# No machine id in the host image: systemd makes a transient one; a fixed one keeps the journal quiet.
[ -s /etc/machine-id ] || echo 0123456789abcdef0123456789abcdef > /etc/machine-id
cat > /run/systemd/system/vmtest.service <<UNIT
[Unit]
Description=vmtest job
Wants=dbus.socket dbus.service
After=basic.target dbus.socket dbus.service
[Service]
Type=oneshot
Environment=VMTEST_OUTDEV=$OUTDEV
ExecStart=/bin/bash $HERE/systemd-job.sh
TimeoutStartSec=infinity
UNIT
echo "VMTEST_SYSTEMD_EXEC uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
exec /lib/systemd/systemd --unit=vmtest.service --log-target=console --log-level=warning
