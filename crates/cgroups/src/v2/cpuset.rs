//! v2 `cpuset` controller: `cpuset.cpus` and `cpuset.mems`.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::resources::Resources;

/// Allowed CPUs.
const CPUSET_CPUS: &str = "cpuset.cpus";
/// Allowed memory nodes.
const CPUSET_MEMS: &str = "cpuset.mems";

/// A v2 cpuset setting that failed.
#[derive(Debug, thiserror::Error)]
pub enum CpusetError {
    /// The kernel refused the list.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Write the lists that are set. An empty v2 list means "inherit the parent's".
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), CpusetError> {
    if !r.cpuset_cpus.is_empty() {
        fs::write(&dir.join(CPUSET_CPUS), &r.cpuset_cpus)?;
    }
    if !r.cpuset_mems.is_empty() {
        fs::write(&dir.join(CPUSET_MEMS), &r.cpuset_mems)?;
    }
    Ok(())
}
