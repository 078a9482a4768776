use std::path::PathBuf;

/// What went wrong while making, pinning or releasing namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// A syscall on a path failed.
    #[error("{op} {path}: {source}")]
    Path {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The errno.
        source: nix::Error,
    },
    /// A syscall failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The errno.
        source: nix::Error,
    },
    /// A sysctl is not namespaced, or not in a namespace the pod owns.
    #[error("sysctl {name:?} {reason}")]
    Sysctl {
        /// The sysctl name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The pod init helper did not start.
    #[error("pod init: {0}")]
    PodInit(String),
    /// The pinning thread could not be started or died.
    #[error("namespace pinning thread: {0}")]
    Thread(String),
}

impl longshore_error::Classify for NamespaceError {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::{Kind, kind_of_errno};
        match self {
            NamespaceError::Path { source, .. } | NamespaceError::Sys { source, .. } => {
                kind_of_errno(*source as i32)
            }
            NamespaceError::Sysctl { .. } => Kind::InvalidArgument,
            NamespaceError::PodInit(_) | NamespaceError::Thread(_) => Kind::Internal,
        }
    }
}
