#!/bin/bash
# run-in-systemd-vm.sh [options] [--] CMD [ARGS...]
#
# Longshore's own copy of ../shared/vm/run-in-vm.sh (the project's test kit for systemd nodes):
# the same QEMU guest (Debian's kernel, pure cgroup v2, the host's / read-only with a throw-away
# overlay), but PID 1 is systemd (/lib/systemd/systemd, from the host's systemd package) with
# dbus, as on a kubeadm/kind/minikube node. CMD runs as the oneshot service vmtest.service once
# the system bus is up, as root, in the host's current directory; its stdout+stderr come back here
# and the VM powers off with CMD's exit status.
#
# The kernel, initramfs and initramfs builder come from the shared kit (LONGSHORE_VM_DIR, default
# ../shared/vm next to the checkout); only the init differs (tests/vm/systemd-init.sh).
#
# Options as run-in-vm.sh: -w DIR (share read-write), -m MEM, -c N, -t SECS, -v (console).
# Exit status: CMD's status; 124 on timeout; 125 if the VM failed before CMD finished.
set -euo pipefail
OWN=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HERE=${LONGSHORE_VM_DIR:-$OWN/../../../shared/vm}
HERE=$(cd "$HERE" && pwd)
CACHE=${VMTEST_CACHE:-/var/cache/vmtest}; mkdir -p "$CACHE"
MEM=2G CPUS=2 TIMEOUT=900 DISK= ACCEL=${VMTEST_ACCEL:-tcg} KERNEL= MACHINE=${VMTEST_MACHINE:-microvm} CGEN=1 VERBOSE=0
RW=()
while getopts "w:m:c:t:d:a:k:M:nvh" o; do
  case $o in
    w) RW+=("$(realpath "$OPTARG")");; m) MEM=$OPTARG;; c) CPUS=$OPTARG;; t) TIMEOUT=$OPTARG;;
    d) DISK=$OPTARG;; a) ACCEL=$OPTARG;; k) KERNEL=$OPTARG;; M) MACHINE=$OPTARG;; n) CGEN=0;; v) VERBOSE=1;;
    h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) exit 2;;
  esac
done
shift $((OPTIND-1))
[ $# -ge 1 ] || { echo "usage: $0 [options] CMD [ARGS...]  (-h for help)" >&2; exit 2; }

# --- kernel + initramfs (built once, cached next to this script) ---
KVER=$(ls /lib/modules | sort -V | tail -1)
if [ -z "$KERNEL" ]; then
  KERNEL=$CACHE/vmlinux-$KVER
  if [ ! -s "$KERNEL" ]; then   # uncompressed ELF: PVH direct boot, no in-guest decompression
    off=$(LC_ALL=C grep -aobUP '\xfd7zXZ\x00' "/boot/vmlinuz-$KVER" | head -1 | cut -d: -f1)
    tail -c +$((off+1)) "/boot/vmlinuz-$KVER" | xz -dc 2>/dev/null > "$KERNEL.tmp$$" || true
    [ "$(head -c4 "$KERNEL.tmp$$" | od -An -c | tr -d ' ')" = '177ELF' ] || { rm -f "$KERNEL.tmp$$"; echo "cannot extract vmlinux" >&2; exit 125; }
    mv "$KERNEL.tmp$$" "$KERNEL"
  fi
fi
INITRD=$CACHE/initramfs-$KVER.cpio.gz
if [ ! -s "$INITRD" ] || [ "$HERE/init" -nt "$INITRD" ] || [ "$HERE/build-initramfs.sh" -nt "$INITRD" ]; then
  KVER=$KVER "$HERE/build-initramfs.sh" "$INITRD.tmp$$" >/dev/null && mv "$INITRD.tmp$$" "$INITRD"
fi

# --- per-run control directory, shared read-write as 9p tag vmctl ---
RUN=$(mktemp -d /tmp/vmtest.XXXXXX)
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
{
  printf 'VMTEST_CWD=%q\n' "$PWD"
  printf 'VMTEST_ARGV=('; printf '%q ' "$@"; printf ')\n'
} > "$RUN/config"
i=0; for d in "${RW[@]}"; do echo "rw$i $d"; i=$((i+1)); done > "$RUN/rw"
export -p | grep -vE '^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|BASH_[A-Z_]*|HOSTNAME|SSH_[A-Z_]*|DISPLAY|TMUX[A-Z_]*)(=|$)' > "$RUN/env" || true

case $MACHINE in
  microvm) M=(-M microvm); VD=device ;;
  pc)      M=(-M pc); VD=pci ;;
  *) echo "unknown machine $MACHINE" >&2; exit 2;;
esac
case $ACCEL in
  tcg) A=(-accel tcg,thread=multi -cpu "${VMTEST_CPU:-max}")
       # TCG's guest TSC ticks at the host TSC rate; microvm has no HPET/PM timer to calibrate
       # against, and PIT calibration fails on a busy host, so hand the kernel the frequency.
       KHZ=$(awk -F: '/^cpu MHz/{printf "%d", $2*1000; exit}' /proc/cpuinfo)
       [ -n "$KHZ" ] && XAPPEND="tsc_early_khz=$KHZ tsc=reliable";;
  kvm) A=(-accel kvm -cpu host,-arch-capabilities);;
  *) echo "unknown accel $ACCEL" >&2; exit 2;;
esac
DEVS=(
  -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap
  -device virtio-9p-$VD,fsdev=hostroot,mount_tag=hostroot
  -fsdev local,id=vmctl,path="$RUN",security_model=passthrough
  -device virtio-9p-$VD,fsdev=vmctl,mount_tag=vmctl
  -device virtio-serial-$VD -chardev file,id=jobout,path="$RUN/out.fifo"
  -device virtserialport,chardev=jobout,name=vmtest.out
  -device virtio-rng-$VD
)
i=0; for d in "${RW[@]}"; do
  DEVS+=(-fsdev local,id=rw$i,path="$d",security_model=passthrough,multidevs=remap -device virtio-9p-$VD,fsdev=rw$i,mount_tag=rw$i)
  i=$((i+1)); done
if [ -n "$DISK" ]; then
  truncate -s "$DISK" "$RUN/disk.img"
  DEVS+=(-drive file="$RUN/disk.img",format=raw,if=none,id=scratch,cache=unsafe -device virtio-blk-$VD,drive=scratch)
fi
APPEND="console=ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 psi=1 mitigations=off random.trust_cpu=on vmtest.mode=hostroot vmtest.cgenable=$CGEN vmtest.init=$OWN/systemd-init.sh ${XAPPEND:-}"

mkfifo "$RUN/out.fifo"
cat "$RUN/out.fifo" &                       # job stdout+stderr (virtio serial port)
if [ $VERBOSE = 1 ]; then mkfifo "$RUN/console.fifo"; tee "$RUN/console.log" < "$RUN/console.fifo" >&2 & CON="$RUN/console.fifo"
else CON="$RUN/console.log"; fi
T0=$(date +%s.%N)
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 "${M[@]}" "${A[@]}" -m "$MEM" -smp "$CPUS" \
  -nodefaults -no-user-config -nographic -no-reboot -serial file:"$CON" \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" "${DEVS[@]}" </dev/null &
QPID=$!
set +e
wait $QPID; qrc=$?
QPID=
wait   # drain output readers
set -e
T1=$(date +%s.%N)
[ -n "${VMTEST_TIMING:-}" ] && awk -v a="$T0" -v b="$T1" 'BEGIN{printf "vmtest: VM wall time %.2fs\n", b-a}' >&2
if [ -s "$RUN/rc" ]; then exit "$(cat "$RUN/rc")"; fi
[ $qrc = 124 ] && { echo "vmtest: timed out after ${TIMEOUT}s" >&2; tail -20 "$RUN/console.log" >&2 2>/dev/null; exit 124; }
echo "vmtest: VM ended (qemu rc=$qrc) without a job exit status; console tail:" >&2
tail -30 "$RUN/console.log" >&2 2>/dev/null || true
exit 125
