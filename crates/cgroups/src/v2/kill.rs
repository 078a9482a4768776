//! v2 killing: `cgroup.kill` (Linux 5.14+) SIGKILLs every process in the cgroup and below, then
//! `populated 0` in `cgroup.events` says they are gone. Older kernels: freeze, kill each, thaw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs::{self, FsError};
use crate::parse;
use crate::procs;
use crate::v2::freezer::{self, CGROUP_EVENTS, FreezerError};
use crate::wait;

/// Write 1 to SIGKILL the whole subtree.
const CGROUP_KILL: &str = "cgroup.kill";

/// Killing failed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The fallback's freeze or thaw failed.
    #[error(transparent)]
    Freezer(#[from] FreezerError),
    /// Processes remained after the timeout.
    #[error("{} still reports populated processes after {timeout:?}", path.display())]
    Timeout {
        /// The events file.
        path: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },
}

/// SIGKILL everything in the cgroup at `dir` and below, and wait until it is empty.
pub(crate) fn kill_all(dir: &Path, timeout: Duration) -> Result<(), KillError> {
    // A cgroup that is gone is empty: under the systemd driver systemd removes a scope's
    // directory as soon as its last process has exited.
    let kill_file = dir.join(CGROUP_KILL);
    if kill_file.exists() {
        match fs::write(&kill_file, "1") {
            Err(_) if !dir.exists() => return Ok(()),
            other => other?,
        }
    } else {
        freezer::set(dir, true, timeout)?;
        let mut pids = Vec::new();
        procs::list_recursive(dir, &mut pids)?;
        procs::kill(&pids);
        freezer::set(dir, false, timeout)?;
    }
    let events = dir.join(CGROUP_EVENTS);
    let empty = wait::poll_until(timeout, || {
        let text = match fs::read(&events) {
            Err(_) if !dir.exists() => return Ok(true),
            other => other?,
        };
        Ok::<_, FsError>(parse::keyed(&text, "populated") == Some(0))
    })?;
    if !empty {
        return Err(KillError::Timeout {
            path: events,
            timeout,
        });
    }
    Ok(())
}
