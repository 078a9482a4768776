//! Longshore's cgroup pillar: pod and container cgroups on cgroup v1, hybrid and v2 hosts.
//!
//! [`Hierarchy::detect`] finds where every controller is mounted; [`CgroupPath::resolve`] maps
//! kubelet's `cgroup_parent` (cgroupfs or systemd naming) under a configured root; a [`Cgroup`]
//! creates the directories, applies CRI-shaped [`Resources`], moves processes in, reads
//! [`Stats`], counts OOM kills, freezes, kills and deletes.
//!
//! The layout follows the kernel: `v1/` and `v2/` hold one module per controller, each with its
//! own error type, `apply` and `stats`, and constants naming the kernel files.

#![warn(missing_docs)]
// Cgroupfs polling runs on the caller's thread (the daemon calls it through its blocking pool): sleeping there blocks no async worker.
#![allow(clippy::disallowed_methods)]

mod cgroup;
mod controller;
mod error;
mod fs;
mod hierarchy;
mod io;
mod mountinfo;
mod parse;
mod path;
mod procs;
mod resources;
mod stats;
pub mod v1;
pub mod v2;
mod wait;

use std::path::{Path, PathBuf};

pub use cgroup::Cgroup;
pub use controller::Controller;
pub use error::{Error, Result};
pub use fs::FsError;
pub use hierarchy::{Hierarchy, HierarchyError, Mode, Version};
pub use io::IoDevice;
pub use path::{CgroupPath, Driver, PathError};
pub use resources::{HugepageLimit, Resources};
pub use stats::{CpuStats, MemoryStats, PidsStats, Pressure, Psi, PsiLine, Stats};

/// Read the `oom_kill` counter from a file given by [`Cgroup::memory_events_path`] (v2
/// `memory.events` or v1 `memory.oom_control`), for a monitor process that holds only the path.
pub fn read_oom_kill_count(path: &Path) -> Result<u64, FsError> {
    fs::read_keyed(path, "oom_kill")
}

/// Rounds of list-and-kill in [`kill_now`]: a process forking while the list is read shows up
/// in the next round.
const KILL_NOW_ROUNDS: usize = 4;

/// SIGKILL every process in the cgroup directories `dirs` (one per hierarchy, from
/// [`Cgroup::dirs`]) and below, without waiting for them to go; returns how many signals were
/// sent. For a monitor process that holds only the paths: once a container's main process has
/// exited, nothing else of the container may run on (the kernel only does this by itself when
/// the container had its own PID namespace).
///
/// `cgroup.kill` is written where the kernel has it (v2, Linux 5.14+); elsewhere every listed
/// pid is signalled, in a few rounds so that children forked meanwhile are caught too. Missing
/// directories are fine.
pub fn kill_now(dirs: &[PathBuf]) -> Result<usize, FsError> {
    let mut sent = 0;
    for dir in dirs {
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            fs::write(&kill_file, "1")?;
        }
    }
    for _ in 0..KILL_NOW_ROUNDS {
        let mut pids = Vec::new();
        for dir in dirs {
            procs::list_recursive(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            break;
        }
        procs::kill(&pids);
        sent += pids.len();
    }
    Ok(sent)
}
