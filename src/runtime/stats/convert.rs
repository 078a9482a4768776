//! The cgroups crate's [`Stats`] in CRI's words: `CpuUsage`, `MemoryUsage`, `SwapUsage` and
//! `IoUsage`, as kubelet's eviction manager and summary API read them. Pure functions.

use std::time::{SystemTime, UNIX_EPOCH};

use longshore_cgroups::{Psi, PsiLine, Stats};

use crate::api::{CpuUsage, IoUsage, MemoryUsage, PsiData, PsiStats, SwapUsage, UInt64Value};

/// PSI totals are in microseconds; CRI wants nanoseconds.
const NANOS_PER_MICRO: u64 = 1_000;

/// A CRI timestamp: nanoseconds since the epoch (0 for a clock before 1970).
pub(crate) fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// CRI's wrapper for a counter or gauge.
pub(crate) fn value(v: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value: v })
}

/// Cumulative CPU time, the rate over the last window (computed by the caller, which keeps the
/// previous sample), and CPU pressure.
pub(crate) fn cpu_usage(stats: &Stats, nano_cores: Option<u64>) -> CpuUsage {
    CpuUsage {
        timestamp: nanos(stats.timestamp),
        usage_core_nano_seconds: value(stats.cpu.usage_ns),
        usage_nano_cores: nano_cores.and_then(value),
        psi: psi(stats.pressure.as_ref().and_then(|p| p.cpu.as_ref())),
    }
}

/// Working set (usage − inactive file cache, what kubelet evicts on), usage, anonymous memory,
/// faults, and what is left below the limit when there is one.
pub(crate) fn memory_usage(stats: &Stats) -> MemoryUsage {
    let m = &stats.memory;
    MemoryUsage {
        timestamp: nanos(stats.timestamp),
        working_set_bytes: value(m.working_set_bytes),
        available_bytes: m.available_bytes().and_then(value),
        usage_bytes: value(m.usage_bytes),
        rss_bytes: value(m.rss_bytes),
        page_faults: value(m.page_faults),
        major_page_faults: value(m.major_page_faults),
        psi: psi(stats.pressure.as_ref().and_then(|p| p.memory.as_ref())),
    }
}

/// Swap in use and left below the swap limit; `None` when the kernel does not account swap.
pub(crate) fn swap_usage(stats: &Stats) -> Option<SwapUsage> {
    let usage = stats.memory.swap_usage_bytes?;
    Some(SwapUsage {
        timestamp: nanos(stats.timestamp),
        swap_available_bytes: stats
            .memory
            .swap_limit_bytes
            .map(|limit| limit.saturating_sub(usage))
            .and_then(value),
        swap_usage_bytes: value(usage),
    })
}

/// I/O pressure; `None` when the kernel has no PSI for this cgroup.
pub(crate) fn io_usage(stats: &Stats) -> Option<IoUsage> {
    let io = stats.pressure.as_ref()?.io.as_ref()?;
    Some(IoUsage {
        timestamp: nanos(stats.timestamp),
        psi: psi(Some(io)),
    })
}

fn psi(p: Option<&Psi>) -> Option<PsiStats> {
    let p = p?;
    Some(PsiStats {
        full: p.full.as_ref().map(psi_data),
        some: Some(psi_data(&p.some)),
    })
}

fn psi_data(line: &PsiLine) -> PsiData {
    PsiData {
        total: line.total_us.saturating_mul(NANOS_PER_MICRO),
        avg10: line.avg10,
        avg60: line.avg60,
        avg300: line.avg300,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use longshore_cgroups::{CpuStats, MemoryStats, PidsStats, Pressure};

    use super::*;

    fn sample() -> Stats {
        Stats {
            timestamp: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            cpu: CpuStats {
                usage_ns: 5_000_000_000,
                ..Default::default()
            },
            memory: MemoryStats {
                usage_bytes: 100 << 20,
                working_set_bytes: 80 << 20,
                rss_bytes: 60 << 20,
                page_faults: 1234,
                major_page_faults: 5,
                limit_bytes: Some(256 << 20),
                swap_usage_bytes: Some(4096),
                swap_limit_bytes: Some(1 << 20),
                ..Default::default()
            },
            pids: PidsStats {
                current: 3,
                limit: None,
            },
            oom_kills: 0,
            pressure: Some(Pressure {
                cpu: Some(Psi {
                    some: PsiLine {
                        avg10: 1.5,
                        avg60: 0.5,
                        avg300: 0.1,
                        total_us: 2_000,
                    },
                    full: None,
                }),
                memory: None,
                io: Some(Psi {
                    some: PsiLine {
                        total_us: 7,
                        ..Default::default()
                    },
                    full: Some(PsiLine {
                        total_us: 3,
                        ..Default::default()
                    }),
                }),
            }),
        }
    }

    #[test]
    fn cpu_carries_the_counter_the_rate_and_pressure() {
        let s = sample();
        let cpu = cpu_usage(&s, Some(250_000_000));
        assert_eq!(cpu.timestamp, 1_700_000_000_000_000_000);
        assert_eq!(cpu.usage_core_nano_seconds.unwrap().value, 5_000_000_000);
        assert_eq!(cpu.usage_nano_cores.unwrap().value, 250_000_000);
        let psi = cpu.psi.unwrap();
        assert!(
            psi.full.is_none(),
            "older kernels have no full line for cpu"
        );
        let some = psi.some.unwrap();
        assert_eq!(some.total, 2_000_000, "µs become ns");
        assert_eq!(some.avg10, 1.5);
        assert!(
            cpu_usage(&s, None).usage_nano_cores.is_none(),
            "no rate without a window"
        );
    }

    #[test]
    fn memory_available_only_under_a_limit() {
        let mut s = sample();
        let m = memory_usage(&s);
        assert_eq!(m.working_set_bytes.unwrap().value, 80 << 20);
        assert_eq!(m.available_bytes.unwrap().value, 176 << 20);
        assert_eq!(m.usage_bytes.unwrap().value, 100 << 20);
        assert_eq!(m.rss_bytes.unwrap().value, 60 << 20);
        assert_eq!(m.page_faults.unwrap().value, 1234);
        assert_eq!(m.major_page_faults.unwrap().value, 5);
        assert!(m.psi.is_none());
        s.memory.limit_bytes = None;
        assert!(memory_usage(&s).available_bytes.is_none());
    }

    #[test]
    fn swap_and_io_only_when_the_kernel_has_them() {
        let mut s = sample();
        let swap = swap_usage(&s).unwrap();
        assert_eq!(swap.swap_usage_bytes.unwrap().value, 4096);
        assert_eq!(swap.swap_available_bytes.unwrap().value, (1 << 20) - 4096);
        let io = io_usage(&s).unwrap().psi.unwrap();
        assert_eq!(io.full.unwrap().total, 3_000);
        assert_eq!(io.some.unwrap().total, 7_000);
        s.memory.swap_limit_bytes = None;
        assert!(swap_usage(&s).unwrap().swap_available_bytes.is_none());
        s.memory.swap_usage_bytes = None;
        s.pressure = None;
        assert!(swap_usage(&s).is_none());
        assert!(io_usage(&s).is_none());
    }
}
