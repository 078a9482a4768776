//! v1 `pids` controller. Its files (`pids.max`, `pids.current`) are the same as v2's, so the v2
//! module does the work.

pub(crate) use crate::v2::pids::{apply, stats};
