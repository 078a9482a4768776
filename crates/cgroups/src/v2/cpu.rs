//! v2 `cpu` controller: `cpu.weight` (from CRI's shares), `cpu.max`, and `cpu.stat`.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse::{self, MAX};
use crate::resources::Resources;
use crate::stats::CpuStats;

/// Relative weight, 1..=10000.
const CPU_WEIGHT: &str = "cpu.weight";
/// Bandwidth: `<quota|max> <period>` in microseconds.
const CPU_MAX: &str = "cpu.max";
/// Usage and throttling counters (microseconds).
const CPU_STAT: &str = "cpu.stat";

/// v1 shares bounds, which the conversion assumes.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// A v2 cpu setting or reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Shares must be positive.
    #[error("cpu_shares {0} is negative")]
    NegativeShares(i64),
}

/// Write `cpu.weight` and `cpu.max` for the fields that are set.
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), CpuError> {
    if r.cpu_shares < 0 {
        return Err(CpuError::NegativeShares(r.cpu_shares));
    }
    if r.cpu_shares > 0 {
        let weight = weight_from_shares(r.cpu_shares.unsigned_abs());
        fs::write(&dir.join(CPU_WEIGHT), &weight.to_string())?;
    }
    if let Some(value) = max_value(r.cpu_quota, r.cpu_period) {
        fs::write(&dir.join(CPU_MAX), &value)?;
    }
    Ok(())
}

/// Read `cpu.stat`. It exists in every v2 cgroup; throttling fields only with `cpu` enabled.
pub(crate) fn stats(dir: &Path) -> Result<CpuStats, CpuError> {
    let text = fs::read(&dir.join(CPU_STAT))?;
    let usec = |key| parse::keyed(&text, key).unwrap_or(0).saturating_mul(1000);
    Ok(CpuStats {
        usage_ns: usec("usage_usec"),
        user_ns: usec("user_usec"),
        system_ns: usec("system_usec"),
        periods: parse::keyed(&text, "nr_periods").unwrap_or(0),
        throttled_periods: parse::keyed(&text, "nr_throttled").unwrap_or(0),
        throttled_ns: usec("throttled_usec"),
    })
}

/// Map v1 shares (2..=262144) onto v2 weight (1..=10000) linearly, as runc and crun do.
pub(crate) fn weight_from_shares(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// The `cpu.max` line for a quota and period, or `None` when both are unset. A quota `<= 0`
/// means `max` (no limit); a zero period keeps the kernel's current one.
pub(crate) fn max_value(quota: i64, period: i64) -> Option<String> {
    if quota == 0 && period == 0 {
        return None;
    }
    let quota = if quota > 0 {
        quota.to_string()
    } else {
        MAX.to_string()
    };
    Some(if period > 0 {
        format!("{quota} {period}")
    } else {
        quota
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(weight_from_shares(2), 1);
        assert_eq!(weight_from_shares(1024), 39);
        assert_eq!(weight_from_shares(262_144), 10_000);
        assert_eq!(weight_from_shares(1), 1, "clamped to 2");
        assert_eq!(weight_from_shares(1 << 30), 10_000, "clamped to 262144");
        assert_eq!(weight_from_shares(512), 1 + (510 * 9999) / 262_142);
    }

    #[test]
    fn cpu_max_lines() {
        assert_eq!(max_value(0, 0), None);
        assert_eq!(max_value(50_000, 100_000).as_deref(), Some("50000 100000"));
        assert_eq!(max_value(0, 100_000).as_deref(), Some("max 100000"));
        assert_eq!(max_value(-1, 100_000).as_deref(), Some("max 100000"));
        assert_eq!(max_value(20_000, 0).as_deref(), Some("20000"));
        assert_eq!(max_value(-1, 0).as_deref(), Some("max"));
    }

    #[test]
    fn stats_from_sample_cpu_stat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CPU_STAT),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\n\
             nr_throttled 4\nthrottled_usec 7000\nnr_bursts 0\nburst_usec 0\n",
        )
        .unwrap();
        let got = stats(dir.path()).unwrap();
        assert_eq!(
            got,
            CpuStats {
                usage_ns: 2_500_000,
                user_ns: 2_000_000,
                system_ns: 500_000,
                periods: 10,
                throttled_periods: 4,
                throttled_ns: 7_000_000,
            }
        );
    }
}
