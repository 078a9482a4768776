//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use longshore_error::Kind;

use crate::controller::Controller;
use crate::fs::FsError;
use crate::hierarchy::HierarchyError;
use crate::path::{CgroupPath, PathError};
use crate::{v1, v2};

/// Any failure of this crate. Every variant names the path, file, key or value it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The hierarchy could not be detected or a path does not fit it.
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    /// A cgroup path or name was invalid.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A cgroupfs file or directory operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A v1 controller failed.
    #[error(transparent)]
    V1(#[from] v1::Error),
    /// A v2 controller failed.
    #[error(transparent)]
    V2(#[from] v2::Error),
    /// A controller needed for the request is not mounted on this host.
    #[error("the {controller} controller is not available for cgroup {path}")]
    ControllerMissing {
        /// The controller.
        controller: Controller,
        /// The cgroup.
        path: CgroupPath,
    },
    /// `Resources::unified` was given on a cgroup v1 (or hybrid) host.
    #[error("unified key {key:?} needs cgroup v2, but this host drives resources through v1")]
    UnifiedOnV1 {
        /// The first key.
        key: String,
    },
    /// Processes were still there after SIGKILL.
    #[error("cgroup {} still has processes {pids:?} after {timeout:?}", dir.display())]
    KillTimeout {
        /// A directory of the cgroup.
        dir: PathBuf,
        /// What was left.
        pids: Vec<u32>,
        /// How long we waited.
        timeout: Duration,
    },
}

impl Error {
    /// Whether the failure is a missing file or directory: the cgroup was removed (or never
    /// made), for callers that treat "gone" differently from "broken" (stats of a container
    /// that has just exited).
    pub fn is_not_found(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::NotFound;
            }
            next = e.source();
        }
        false
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl longshore_error::Classify for Error {
    /// The kernel's answer decides when there is one (EINVAL for a limit is the request's
    /// fault, EBUSY is passing, EIO the machine's); otherwise the variant does.
    fn kind(&self) -> Kind {
        if let Some(kind) = longshore_error::os_kind_in_chain(self) {
            return kind;
        }
        match self {
            Error::Path(_) | Error::UnifiedOnV1 { .. } | Error::V1(_) | Error::V2(_) => {
                Kind::InvalidArgument
            }
            Error::ControllerMissing { .. } => Kind::FailedPrecondition,
            Error::KillTimeout { .. } => Kind::DeadlineExceeded,
            Error::Hierarchy(_) | Error::Fs(_) => Kind::Internal,
        }
    }
}

impl longshore_error::Classify for PathError {
    fn kind(&self) -> Kind {
        Kind::InvalidArgument
    }
}
