//! cgroup v2: one module per controller, each with its own error, `apply` and `stats`.

pub(crate) mod controllers;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod kill;
pub(crate) mod memory;
pub(crate) mod pids;
pub(crate) mod pressure;
pub(crate) mod unified;

use std::path::Path;

use crate::resources::Resources;

pub use controllers::ControllersError;
pub use cpu::CpuError;
pub use cpuset::CpusetError;
pub use freezer::FreezerError;
pub use hugetlb::HugetlbError;
pub use kill::KillError;
pub use memory::MemoryError;
pub use pids::PidsError;
pub use pressure::PressureError;
pub use unified::UnifiedError;

/// A cgroup v2 operation that failed, by controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cgroup.subtree_control`.
    #[error(transparent)]
    Controllers(#[from] ControllersError),
    /// `cpu.*`.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// `cpuset.*`.
    #[error(transparent)]
    Cpuset(#[from] CpusetError),
    /// `memory.*`.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// `pids.*`.
    #[error(transparent)]
    Pids(#[from] PidsError),
    /// `hugetlb.*`.
    #[error(transparent)]
    Hugetlb(#[from] HugetlbError),
    /// The `unified` map.
    #[error(transparent)]
    Unified(#[from] UnifiedError),
    /// `cgroup.freeze`.
    #[error(transparent)]
    Freezer(#[from] FreezerError),
    /// `cgroup.kill`.
    #[error(transparent)]
    Kill(#[from] KillError),
    /// `*.pressure`.
    #[error(transparent)]
    Pressure(#[from] PressureError),
}

/// Apply every set field of `r` to the v2 cgroup at `dir`. The `unified` map goes last so it
/// can override what the typed fields wrote.
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), Error> {
    cpu::apply(dir, r)?;
    cpuset::apply(dir, r)?;
    memory::apply(dir, r)?;
    pids::apply(dir, r.pids_limit)?;
    hugetlb::apply(dir, &r.hugepage_limits)?;
    unified::apply(dir, &r.unified)?;
    Ok(())
}
