#!/bin/bash
# The job of the systemd test VM (vmtest.service): runs the command the host asked for, as root in
# the host's current directory with the host's environment, sends its output to the host, records
# its exit status and powers the VM off.
. /run/vmctl/config           # VMTEST_ARGV (array), VMTEST_CWD
read -r UP _ < /proc/uptime; echo "VMTEST_JOB_START uptime=$UP" > /dev/console
(
  . /run/vmctl/env 2>/dev/null
  unset INVOCATION_ID JOURNAL_STREAM
  cd "$VMTEST_CWD" 2>/dev/null || cd /
  exec "${VMTEST_ARGV[@]}"
) > "$VMTEST_OUTDEV" 2>&1 < /dev/null
rc=$?
read -r UP _ < /proc/uptime; echo "VMTEST_JOB_DONE rc=$rc uptime=$UP" > /dev/console
echo $rc > /run/vmctl/rc
sync
echo o > /proc/sysrq-trigger
