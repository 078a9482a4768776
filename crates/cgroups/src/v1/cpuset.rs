//! v1 `cpuset` controller: `cpuset.cpus` / `cpuset.mems`, which a new v1 cgroup starts with
//! empty (and then accepts no process) unless copied from its parent.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::resources::Resources;

/// Allowed CPUs.
const CPUSET_CPUS: &str = "cpuset.cpus";
/// Allowed memory nodes.
const CPUSET_MEMS: &str = "cpuset.mems";

/// A v1 cpuset setting that failed.
#[derive(Debug, thiserror::Error)]
pub enum CpusetError {
    /// The kernel refused the list (not a subset of the parent's, or no such CPU/node).
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Write the lists that are set.
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), CpusetError> {
    if !r.cpuset_cpus.is_empty() {
        fs::write(&dir.join(CPUSET_CPUS), &r.cpuset_cpus)?;
    }
    if !r.cpuset_mems.is_empty() {
        fs::write(&dir.join(CPUSET_MEMS), &r.cpuset_mems)?;
    }
    Ok(())
}

/// Copy the parent's lists into `dir` where `dir`'s are empty.
pub(crate) fn inherit(dir: &Path, parent: &Path) -> Result<(), CpusetError> {
    for name in [CPUSET_CPUS, CPUSET_MEMS] {
        let own = dir.join(name);
        if !fs::read(&own)?.trim().is_empty() {
            continue;
        }
        let from_parent = fs::read(&parent.join(name))?;
        let value = from_parent.trim();
        if !value.is_empty() {
            fs::write(&own, value)?;
        }
    }
    Ok(())
}
