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
mod mountinfo;
mod parse;
mod path;
mod procs;
mod resources;
mod stats;
pub mod v1;
pub mod v2;
mod wait;

use std::path::Path;

pub use cgroup::Cgroup;
pub use controller::Controller;
pub use error::{Error, Result};
pub use fs::FsError;
pub use hierarchy::{Hierarchy, HierarchyError, Mode, Version};
pub use path::{CgroupPath, Driver, PathError};
pub use resources::{HugepageLimit, Resources};
pub use stats::{CpuStats, MemoryStats, PidsStats, Pressure, Psi, PsiLine, Stats};

/// Read the `oom_kill` counter from a file given by [`Cgroup::memory_events_path`] (v2
/// `memory.events` or v1 `memory.oom_control`), for a monitor process that holds only the path.
pub fn read_oom_kill_count(path: &Path) -> Result<u64, FsError> {
    fs::read_keyed(path, "oom_kill")
}
