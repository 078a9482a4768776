//! What [`Cgroup::stats`](crate::Cgroup::stats) reports: figures read straight from the kernel's
//! own accounting files, in the units CRI's `ContainerStats` wants.

use std::time::SystemTime;

/// One sample of a cgroup's accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// When the sample was taken (before the first file was read).
    pub timestamp: SystemTime,
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// Memory usage and faults.
    pub memory: MemoryStats,
    /// Process count.
    pub pids: PidsStats,
    /// Processes killed by the OOM killer in this cgroup (cumulative).
    pub oom_kills: u64,
    /// Pressure stall information, when the kernel has PSI files for this cgroup.
    pub pressure: Option<Pressure>,
}

/// Cumulative CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time used.
    pub usage_ns: u64,
    /// Time spent in user mode.
    pub user_ns: u64,
    /// Time spent in kernel mode.
    pub system_ns: u64,
    /// CFS bandwidth enforcement periods that elapsed while the cgroup was runnable.
    pub periods: u64,
    /// Periods in which the cgroup hit its quota.
    pub throttled_periods: u64,
    /// Total time the cgroup spent throttled.
    pub throttled_ns: u64,
}

/// Memory figures, in bytes unless named otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Memory charged to the cgroup, page cache included.
    pub usage_bytes: u64,
    /// `usage - inactive_file` (never below 0), the figure kubelet evicts on, as cAdvisor does.
    pub working_set_bytes: u64,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub rss_bytes: u64,
    /// Page faults (cumulative).
    pub page_faults: u64,
    /// Major page faults (cumulative).
    pub major_page_faults: u64,
    /// The memory limit; `None` when unlimited.
    pub limit_bytes: Option<u64>,
    /// Swap in use; `None` when the kernel does not account swap.
    pub swap_usage_bytes: Option<u64>,
    /// The swap limit (v2 `memory.swap.max`; v1 memsw limit minus memory limit); `None` when
    /// unlimited or not accounted.
    pub swap_limit_bytes: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub cache_bytes: u64,
    /// Mapped files (v2 `file_mapped`, v1 `total_mapped_file`).
    pub mapped_file_bytes: u64,
    /// Kernel memory (v2 `kernel`, or its parts on kernels before 5.18; v1 `kmem` usage).
    pub kernel_bytes: u64,
    /// The highest usage seen (v2 `memory.peak`, Linux 5.19+, else the usage now; v1
    /// `max_usage_in_bytes`).
    pub max_usage_bytes: u64,
    /// Times the limit was hit (v2 `max` in `memory.events`, v1 `failcnt`).
    pub failcnt: u64,
}

impl MemoryStats {
    /// Bytes left before the limit, measured against the working set (CRI `available_bytes`);
    /// `None` when there is no limit.
    pub fn available_bytes(&self) -> Option<u64> {
        self.limit_bytes
            .map(|limit| limit.saturating_sub(self.working_set_bytes))
    }
}

/// Process count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    /// Tasks in the cgroup and its descendants.
    pub current: u64,
    /// `pids.max`; `None` when unlimited.
    pub limit: Option<u64>,
}

/// Pressure stall information for the three resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pressure {
    /// `cpu.pressure`.
    pub cpu: Option<Psi>,
    /// `memory.pressure`.
    pub memory: Option<Psi>,
    /// `io.pressure`.
    pub io: Option<Psi>,
}

/// One PSI file: the share of time some (or all) tasks stalled on a resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Psi {
    /// Some tasks stalled.
    pub some: PsiLine,
    /// All non-idle tasks stalled at once (absent in older kernels' `cpu.pressure`).
    pub full: Option<PsiLine>,
}

/// Averages (percent) over 10, 60 and 300 seconds, and the total stall time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PsiLine {
    /// Percent of the last 10 s.
    pub avg10: f64,
    /// Percent of the last 60 s.
    pub avg60: f64,
    /// Percent of the last 300 s.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_us: u64,
}

/// `usage - inactive_file`, floored at 0, as kubelet and cAdvisor compute the working set.
pub(crate) fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_and_available() {
        assert_eq!(working_set(100, 30), 70);
        assert_eq!(working_set(10, 30), 0);
        let m = MemoryStats {
            working_set_bytes: 70,
            limit_bytes: Some(100),
            ..Default::default()
        };
        assert_eq!(m.available_bytes(), Some(30));
        let over = MemoryStats {
            working_set_bytes: 170,
            limit_bytes: Some(100),
            ..Default::default()
        };
        assert_eq!(over.available_bytes(), Some(0));
        assert_eq!(MemoryStats::default().available_bytes(), None);
    }
}
