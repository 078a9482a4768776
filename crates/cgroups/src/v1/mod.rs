//! cgroup v1: one module per controller, each with its own error, `apply` and `stats`.

pub(crate) mod cpu;
pub(crate) mod cpuacct;
pub(crate) mod cpuset;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod pids;

pub use cpu::CpuError;
pub use cpuacct::CpuacctError;
pub use cpuset::CpusetError;
pub use freezer::FreezerError;
pub use hugetlb::HugetlbError;
pub use memory::MemoryError;

use crate::v2::PidsError;

/// A cgroup v1 operation that failed, by controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cpu.*`.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// `cpuacct.*`.
    #[error(transparent)]
    Cpuacct(#[from] CpuacctError),
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
    /// `freezer.state`.
    #[error(transparent)]
    Freezer(#[from] FreezerError),
}
