//! v1 `cpu` controller: `cpu.shares`, CFS `cpu.cfs_period_us` / `cpu.cfs_quota_us`, and
//! throttling from `cpu.stat`.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse;
use crate::resources::Resources;
use crate::stats::CpuStats;

/// Relative weight.
const CPU_SHARES: &str = "cpu.shares";
/// CFS period (µs).
const CPU_CFS_PERIOD_US: &str = "cpu.cfs_period_us";
/// CFS quota (µs per period; -1 for none).
const CPU_CFS_QUOTA_US: &str = "cpu.cfs_quota_us";
/// Throttling counters (`throttled_time` in ns).
const CPU_STAT: &str = "cpu.stat";

/// A v1 cpu setting or reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Shares must be positive.
    #[error("cpu_shares {0} is negative")]
    NegativeShares(i64),
}

/// Write shares, period and quota for the fields that are set. As on v2, a quota `<= 0` with a
/// period set means "no quota" (-1).
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), CpuError> {
    if r.cpu_shares < 0 {
        return Err(CpuError::NegativeShares(r.cpu_shares));
    }
    if r.cpu_shares > 0 {
        fs::write(&dir.join(CPU_SHARES), &r.cpu_shares.to_string())?;
    }
    if r.cpu_quota == 0 && r.cpu_period == 0 {
        return Ok(());
    }
    let quota = if r.cpu_quota > 0 { r.cpu_quota } else { -1 }.to_string();
    let quota_path = dir.join(CPU_CFS_QUOTA_US);
    if r.cpu_period <= 0 {
        return Ok(fs::write(&quota_path, &quota)?);
    }
    let period_path = dir.join(CPU_CFS_PERIOD_US);
    let period = r.cpu_period.to_string();
    // The kernel checks quota/period against the parent on each write, so a new period with the
    // old quota can be refused; then the new quota goes first.
    match fs::write(&period_path, &period) {
        Ok(()) => fs::write(&quota_path, &quota)?,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            fs::write(&quota_path, &quota)?;
            fs::write(&period_path, &period)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Throttling figures from `cpu.stat` (usage comes from `cpuacct`).
pub(crate) fn throttling(dir: &Path, into: &mut CpuStats) -> Result<(), CpuError> {
    let text = fs::read(&dir.join(CPU_STAT))?;
    into.periods = parse::keyed(&text, "nr_periods").unwrap_or(0);
    into.throttled_periods = parse::keyed(&text, "nr_throttled").unwrap_or(0);
    into.throttled_ns = parse::keyed(&text, "throttled_time").unwrap_or(0);
    Ok(())
}
