//! v2 `pids` controller: `pids.max` and `pids.current` (the same files as v1).

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse::MAX;
use crate::stats::PidsStats;

/// Task limit.
const PIDS_MAX: &str = "pids.max";
/// Tasks in the cgroup and below.
const PIDS_CURRENT: &str = "pids.current";

/// A pids setting or reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum PidsError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Write `pids.max` when `limit` is set (negative: `max`).
pub(crate) fn apply(dir: &Path, limit: i64) -> Result<(), PidsError> {
    if limit == 0 {
        return Ok(());
    }
    let value = if limit < 0 {
        MAX.to_string()
    } else {
        limit.to_string()
    };
    Ok(fs::write(&dir.join(PIDS_MAX), &value)?)
}

/// Read `pids.current` and `pids.max`.
pub(crate) fn stats(dir: &Path) -> Result<PidsStats, PidsError> {
    Ok(PidsStats {
        current: fs::read_u64(&dir.join(PIDS_CURRENT))?,
        limit: fs::read_limit(&dir.join(PIDS_MAX))?,
    })
}
