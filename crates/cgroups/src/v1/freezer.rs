//! v1 `freezer` controller: `freezer.state` goes THAWED → FREEZING → FROZEN.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::{self, FsError};
use crate::wait;

/// The freezer state, read and written.
const FREEZER_STATE: &str = "freezer.state";
const FROZEN: &str = "FROZEN";
const THAWED: &str = "THAWED";

/// Freezing or thawing failed.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The state did not settle in time.
    #[error("{} did not reach {want} within {timeout:?}", path.display())]
    Timeout {
        /// The state file.
        path: PathBuf,
        /// The awaited state.
        want: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Freeze (`frozen = true`) or thaw the cgroup at `dir` and wait until the state settles.
pub(crate) fn set(dir: &Path, frozen: bool, timeout: Duration) -> Result<(), FreezerError> {
    let want = if frozen { FROZEN } else { THAWED };
    let path = dir.join(FREEZER_STATE);
    fs::write(&path, want)?;
    let reached = wait::poll_until(timeout, || {
        if fs::read(&path)?.trim() == want {
            return Ok(true);
        }
        // A task in an uninterruptible sleep can leave the cgroup FREEZING; each write of
        // FROZEN makes the kernel try those tasks again.
        fs::write(&path, want)?;
        Ok::<_, FsError>(false)
    })?;
    if !reached {
        return Err(FreezerError::Timeout {
            path,
            want,
            timeout,
        });
    }
    Ok(())
}
