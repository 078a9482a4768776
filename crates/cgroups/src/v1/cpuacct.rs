//! v1 `cpuacct` controller: CPU time used, total and split into user and system.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse;
use crate::stats::CpuStats;

/// Total CPU time (ns).
const CPUACCT_USAGE: &str = "cpuacct.usage";
/// User CPU time (ns); not in every kernel.
const CPUACCT_USAGE_USER: &str = "cpuacct.usage_user";
/// System CPU time (ns); not in every kernel.
const CPUACCT_USAGE_SYS: &str = "cpuacct.usage_sys";
/// `user` and `system` in USER_HZ ticks.
const CPUACCT_STAT: &str = "cpuacct.stat";

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A cpuacct reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum CpuacctError {
    /// A file was unreadable or malformed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Fill usage, user and system time.
pub(crate) fn stats(dir: &Path, into: &mut CpuStats) -> Result<(), CpuacctError> {
    into.usage_ns = fs::read_u64(&dir.join(CPUACCT_USAGE))?;
    let user = fs::read_optional(&dir.join(CPUACCT_USAGE_USER))?;
    let system = fs::read_optional(&dir.join(CPUACCT_USAGE_SYS))?;
    if let (Some(user), Some(system)) = (user, system) {
        into.user_ns = fs::parse_with(&dir.join(CPUACCT_USAGE_USER), &user, parse::single_u64)?;
        into.system_ns = fs::parse_with(&dir.join(CPUACCT_USAGE_SYS), &system, parse::single_u64)?;
        return Ok(());
    }
    let stat = fs::read(&dir.join(CPUACCT_STAT))?;
    let per_tick = NANOS_PER_SEC / clock_ticks_per_second();
    into.user_ns = parse::keyed(&stat, "user").unwrap_or(0) * per_tick;
    into.system_ns = parse::keyed(&stat, "system").unwrap_or(0) * per_tick;
    Ok(())
}

/// USER_HZ, the unit of `cpuacct.stat`.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}
