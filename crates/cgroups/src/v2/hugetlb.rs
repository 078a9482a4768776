//! v2 `hugetlb` controller: `hugetlb.<size>.max` (and its reservation twin when present).
//! Also used on hybrid hosts whose hugetlb controller lives only on the cgroup2 mount.

use std::path::{Path, PathBuf};

use crate::fs::{self, FsError};
use crate::resources::{HugepageLimit, valid_page_size};

/// A v2 hugetlb setting that failed.
#[derive(Debug, thiserror::Error)]
pub enum HugetlbError {
    /// The kernel refused the limit.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The page size is not of the form `2MB`.
    #[error("invalid huge page size {0:?}")]
    BadPageSize(String),
    /// The kernel has no such huge page size.
    #[error("huge page size {size} is not supported here ({} is absent)", path.display())]
    UnsupportedPageSize {
        /// The requested size.
        size: String,
        /// The file that would carry it.
        path: PathBuf,
    },
}

/// Write `hugetlb.<size>.max` (and `hugetlb.<size>.rsvd.max` when the kernel has it, so that
/// reservations obey the same limit) for each limit.
pub(crate) fn apply(dir: &Path, limits: &[HugepageLimit]) -> Result<(), HugetlbError> {
    for l in limits {
        if !valid_page_size(&l.page_size) {
            return Err(HugetlbError::BadPageSize(l.page_size.clone()));
        }
        let max = dir.join(format!("hugetlb.{}.max", l.page_size));
        if !max.exists() {
            return Err(HugetlbError::UnsupportedPageSize {
                size: l.page_size.clone(),
                path: max,
            });
        }
        let value = l.limit.to_string();
        fs::write(&max, &value)?;
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", l.page_size));
        if rsvd.exists() {
            fs::write(&rsvd, &value)?;
        }
    }
    Ok(())
}
