//! v1 `hugetlb` controller: `hugetlb.<size>.limit_in_bytes`. (Hybrid hosts whose hugetlb lives
//! on the cgroup2 mount use the v2 module instead.)

use std::path::{Path, PathBuf};

use crate::fs::{self, FsError};
use crate::resources::{HugepageLimit, valid_page_size};

/// A v1 hugetlb setting that failed.
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

/// Write `hugetlb.<size>.limit_in_bytes` for each limit.
pub(crate) fn apply(dir: &Path, limits: &[HugepageLimit]) -> Result<(), HugetlbError> {
    for l in limits {
        if !valid_page_size(&l.page_size) {
            return Err(HugetlbError::BadPageSize(l.page_size.clone()));
        }
        let path = dir.join(format!("hugetlb.{}.limit_in_bytes", l.page_size));
        if !path.exists() {
            return Err(HugetlbError::UnsupportedPageSize {
                size: l.page_size.clone(),
                path,
            });
        }
        fs::write(&path, &l.limit.to_string())?;
    }
    Ok(())
}
