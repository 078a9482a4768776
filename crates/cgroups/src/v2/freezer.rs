//! v2 freezing: `cgroup.freeze`, confirmed by `frozen` in `cgroup.events`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::{self, FsError};
use crate::parse;
use crate::wait;

/// Write 1 to freeze the cgroup and its descendants, 0 to thaw.
const CGROUP_FREEZE: &str = "cgroup.freeze";
/// `populated` and `frozen` flags.
pub(crate) const CGROUP_EVENTS: &str = "cgroup.events";

/// Freezing or thawing failed.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The kernel did not report the wanted state in time.
    #[error("{} did not report frozen={want} within {timeout:?}", path.display())]
    Timeout {
        /// The events file.
        path: PathBuf,
        /// The awaited `frozen` value.
        want: u64,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Freeze (`frozen = true`) or thaw the cgroup at `dir` and wait until the kernel says so.
pub(crate) fn set(dir: &Path, frozen: bool, timeout: Duration) -> Result<(), FreezerError> {
    let want = u64::from(frozen);
    fs::write(&dir.join(CGROUP_FREEZE), &want.to_string())?;
    let events = dir.join(CGROUP_EVENTS);
    let reached = wait::poll_until(timeout, || {
        let text = fs::read(&events)?;
        Ok::<_, FsError>(parse::keyed(&text, "frozen") == Some(want))
    })?;
    if !reached {
        return Err(FreezerError::Timeout {
            path: events,
            want,
            timeout,
        });
    }
    Ok(())
}
