//! Facts about this host that change what a spec may contain: the cgroup mode, which controllers
//! exist, whether AppArmor and seccomp are usable, the kernel's capability count and version.
//! Detected once when the daemon starts ([`HostFacts::detect`]); tests build them by hand.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

/// Where every cgroup hierarchy (v1) or the single cgroup2 tree (v2) is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Present in a v1 memory cgroup only when swap accounting is on.
const MEMORY_MEMSW_LIMIT: &str = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
/// The v1 hugetlb hierarchy.
const HUGETLB_V1: &str = "/sys/fs/cgroup/hugetlb";
/// Controllers the cgroup2 root offers.
const CGROUP_CONTROLLERS: &str = "/sys/fs/cgroup/cgroup.controllers";
/// The calling process's cgroup membership.
const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";
/// The AppArmor module's switch.
const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// Highest capability number the running kernel knows.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";
/// The daemon's own OOM score adjustment.
const PROC_SELF_OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";
/// Carries a `Seccomp:` line only on kernels built with seccomp.
const PROC_SELF_STATUS: &str = "/proc/self/status";
/// The mount table of the daemon's mount namespace.
const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";
/// Highest capability number of Linux 5.9+ (`CAP_CHECKPOINT_RESTORE`), used if the kernel
/// file cannot be read.
const FALLBACK_LAST_CAP: u32 = 40;

/// What the host supports, as far as the spec builder cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// `/sys/fs/cgroup` is a cgroup2 mount (unified mode). Decides the cgroup namespace.
    pub cgroup_v2: bool,
    /// The memory controller accounts swap, so `memory.swap` may be set.
    pub swap_accounting: bool,
    /// The hugetlb controller exists, so hugepage limits may be set.
    pub hugetlb: bool,
    /// AppArmor is enabled in the kernel; profiles are applied only then.
    pub apparmor: bool,
    /// The kernel has seccomp; without it only `Unconfined` profiles are accepted.
    pub seccomp: bool,
    /// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
    /// The daemon's bounding set (`CapBnd`): no container can hold a capability outside it, so
    /// "all capabilities" means these (containerd's WithAllCurrentCapabilities).
    pub bounding_caps: u64,
    /// The daemon's own `oom_score_adj`, the floor when `restrict_oom_score_adj` is on.
    pub daemon_oom_score_adj: i32,
    /// Kernel version `(major, minor)`, for seccomp rules gated by `minKernel`.
    pub kernel: (u32, u32),
    /// `nsdelegate` / `memory_recursiveprot` options of the host's cgroup2 mount, copied to a
    /// container's `/sys/fs/cgroup` when it shares the host cgroup namespace (as containerd does).
    pub cgroup2_mount_options: Vec<String>,
    /// Host device directory walked for privileged containers (normally `/dev`).
    pub dev_dir: PathBuf,
    /// Mount table used to check the propagation of bind-mount sources (normally
    /// `/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
}

impl HostFacts {
    /// Reads the facts of the running host. Never fails: an unreadable fact falls back to the
    /// conservative answer (feature absent).
    pub fn detect() -> HostFacts {
        let cgroup_v2 =
            statfs(CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
        HostFacts {
            cgroup_v2,
            swap_accounting: detect_swap(cgroup_v2),
            hugetlb: detect_hugetlb(cgroup_v2),
            apparmor: fs::read_to_string(APPARMOR_ENABLED).is_ok_and(|s| s.starts_with('Y')),
            seccomp: fs::read_to_string(PROC_SELF_STATUS)
                .is_ok_and(|s| s.lines().any(|l| l.starts_with("Seccomp:"))),
            last_cap: read_number(CAP_LAST_CAP).unwrap_or(FALLBACK_LAST_CAP),
            bounding_caps: own_bounding_set().unwrap_or(u64::MAX),
            daemon_oom_score_adj: read_number(PROC_SELF_OOM_SCORE_ADJ).unwrap_or(0),
            kernel: kernel_version(),
            cgroup2_mount_options: if cgroup_v2 {
                cgroup2_options()
            } else {
                Vec::new()
            },
            dev_dir: PathBuf::from("/dev"),
            mountinfo: PathBuf::from(PROC_SELF_MOUNTINFO),
        }
    }
}

/// `CapBnd` of this process, a hex mask.
fn own_bounding_set() -> Option<u64> {
    let status = fs::read_to_string(PROC_SELF_STATUS).ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn read_number<T: std::str::FromStr>(path: &str) -> Option<T> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// containerd's test: `memory.memsw.limit_in_bytes` on v1, `memory.swap.max` in the daemon's
/// own cgroup on v2 (the root cgroup has no such file).
fn detect_swap(cgroup_v2: bool) -> bool {
    if !cgroup_v2 {
        return Path::new(MEMORY_MEMSW_LIMIT).exists();
    }
    let Ok(membership) = fs::read_to_string(PROC_SELF_CGROUP) else {
        return false;
    };
    membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|own| {
            Path::new(CGROUP_ROOT)
                .join(own.trim_start_matches('/'))
                .join("memory.swap.max")
                .exists()
        })
}

fn detect_hugetlb(cgroup_v2: bool) -> bool {
    if cgroup_v2 {
        fs::read_to_string(CGROUP_CONTROLLERS)
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "hugetlb"))
    } else {
        Path::new(HUGETLB_V1).is_dir()
    }
}

fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.release().to_str().map(parse_kernel_release))
        .unwrap_or((0, 0))
}

/// `"6.18.44-fc-v657"` → `(6, 18)`.
pub(crate) fn parse_kernel_release(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn cgroup2_options() -> Vec<String> {
    let Ok(table) = fs::read_to_string(PROC_SELF_MOUNTINFO) else {
        return Vec::new();
    };
    let Some(entry) = super::mounts::mountinfo_entries(&table)
        .into_iter()
        .rev()
        .find(|e| e.mount_point == Path::new(CGROUP_ROOT))
    else {
        return Vec::new();
    };
    entry
        .super_options
        .split(',')
        .filter(|o| *o == "nsdelegate" || *o == "memory_recursiveprot")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_parses_major_minor() {
        assert_eq!(parse_kernel_release("6.18.44-fc-v657"), (6, 18));
        assert_eq!(parse_kernel_release("4.8"), (4, 8));
        assert_eq!(parse_kernel_release("5"), (5, 0));
    }

    #[test]
    fn detect_reads_this_host() {
        let facts = HostFacts::detect();
        // Every kernel Longshore supports knows at least CAP_AUDIT_READ (37).
        assert!(facts.last_cap >= 37, "{facts:?}");
        assert!(facts.kernel.0 >= 5, "{facts:?}");
        assert!(facts.seccomp, "{facts:?}");
        let v2 = statfs(CGROUP_ROOT).unwrap().filesystem_type() == CGROUP2_SUPER_MAGIC;
        assert_eq!(facts.cgroup_v2, v2);
    }
}
