//! The processes of a cgroup: listing (`cgroup.procs`), moving one in, and signalling them all.

use std::fs as stdfs;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::fs::{self, FsError};

/// The thread-group ids in a cgroup (not its descendants); writing one moves that process in.
pub(crate) const CGROUP_PROCS: &str = "cgroup.procs";

/// Move process `pid` into the cgroup at `dir`.
pub(crate) fn add(dir: &Path, pid: u32) -> Result<(), FsError> {
    fs::write(&dir.join(CGROUP_PROCS), &pid.to_string())
}

/// The processes directly in the cgroup at `dir`.
pub(crate) fn list(dir: &Path) -> Result<Vec<u32>, FsError> {
    let path = dir.join(CGROUP_PROCS);
    let text = fs::read(&path)?;
    text.lines()
        .map(|line| fs::parse_with(&path, line, parse_pid))
        .collect()
}

fn parse_pid(line: &str) -> Result<u32, String> {
    let t = line.trim();
    t.parse()
        .map_err(|_| format!("expected a pid, found {t:?}"))
}

/// The processes in the cgroup at `dir` and every cgroup below it. A cgroup that vanishes
/// while we walk counts as empty; a missing `dir` gives an empty list.
pub(crate) fn list_recursive(dir: &Path, out: &mut Vec<u32>) -> Result<(), FsError> {
    match list(dir) {
        Ok(pids) => out.extend(pids),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    for child in subdirs(dir)? {
        list_recursive(&child, out)?;
    }
    Ok(())
}

/// The child cgroup directories of `dir` (none if `dir` is gone).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<std::path::PathBuf>, FsError> {
    let entries = match stdfs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(FsError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| FsError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Send SIGKILL to each pid; ones that already exited are skipped.
pub(crate) fn kill(pids: &[u32]) {
    for &pid in pids {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match signal::kill(Pid::from_raw(raw), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid, error = %e, "cannot SIGKILL cgroup member"),
        }
    }
}
