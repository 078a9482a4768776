//! The limits a cgroup can be given, shaped like CRI's `LinuxContainerResources`.

use std::collections::BTreeMap;

/// Resource limits, field for field as CRI's `LinuxContainerResources` (plus `pids_limit` and
/// `oom_group`).
///
/// A zero number, an empty string or `None` means "leave this alone". For
/// `memory_limit_in_bytes`, `memory_swap_limit_in_bytes` and `pids_limit` a negative value means
/// "unlimited". `cpu_quota <= 0` with a non-zero `cpu_period` means "no quota", as runc reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CFS period in microseconds (v1 `cpu.cfs_period_us`, second field of v2 `cpu.max`).
    pub cpu_period: i64,
    /// CFS quota in microseconds per period (v1 `cpu.cfs_quota_us`, first field of v2 `cpu.max`).
    pub cpu_quota: i64,
    /// Relative CPU weight, v1 scale 2..=262144 (v2 `cpu.weight` is converted from it).
    pub cpu_shares: i64,
    /// CPUs the cgroup may run on, in the kernel's list format (`0-3,7`).
    pub cpuset_cpus: String,
    /// Memory nodes the cgroup may allocate from, in list format.
    pub cpuset_mems: String,
    /// Memory limit in bytes.
    pub memory_limit_in_bytes: i64,
    /// Memory plus swap limit in bytes, as v1 counts it (v2 `memory.swap.max` gets the
    /// difference from the memory limit).
    pub memory_swap_limit_in_bytes: i64,
    /// Maximum number of tasks (`pids.max`).
    pub pids_limit: i64,
    /// Huge page limits per page size.
    pub hugepage_limits: Vec<HugepageLimit>,
    /// v2 files written verbatim (`"memory.high" => "1G"`). An error on cgroup v1.
    pub unified: BTreeMap<String, String>,
    /// Kill the whole cgroup on OOM instead of one process (v2 `memory.oom.group`). v1 has no
    /// equivalent: ignored there.
    pub oom_group: Option<bool>,
}

/// A huge page limit for one page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugepageLimit {
    /// The page size as the kernel names it in `hugetlb.<size>.*`: `"2MB"`, `"1GB"`.
    pub page_size: String,
    /// The limit in bytes.
    pub limit: u64,
}

impl Resources {
    /// Whether nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// Whether `size` has the kernel's page size form: digits then `KB`, `MB`, `GB` or `TB`.
pub(crate) fn valid_page_size(size: &str) -> bool {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB" | "TB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        for ok in ["2MB", "1GB", "64KB", "16GB"] {
            assert!(valid_page_size(ok), "{ok}");
        }
        for bad in ["", "MB", "2mb", "2M", "../2MB", "2MB/x", "2 MB", "2MB.max"] {
            assert!(!valid_page_size(bad), "{bad}");
        }
    }

    #[test]
    fn empty_means_nothing_to_write() {
        assert!(Resources::default().is_empty());
        let r = Resources {
            pids_limit: 10,
            ..Default::default()
        };
        assert!(!r.is_empty());
    }
}
