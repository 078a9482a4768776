//! The snapshotter's error type.

use std::path::PathBuf;

/// Errors of the snapshotter; each names the path, id or chain ID it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mount syscall failed.
    #[error("mount {target}: {reason}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// What failed (the syscall and errno).
        reason: String,
    },
    /// The metadata database failed.
    #[error("snapshot metadata: {0}")]
    Db(#[from] redb::Error),
    /// A chain ID is not `sha256:<64 hex>`.
    #[error("invalid chain ID {0:?}")]
    InvalidChainId(String),
    /// A container ID is not a plain file name.
    #[error("invalid container ID {0:?}")]
    InvalidContainerId(String),
    /// A layer the caller named has not been unpacked.
    #[error("layer {0} does not exist")]
    LayerNotFound(String),
    /// A stored record does not parse.
    #[error("corrupt snapshot record {key}: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The parse error.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Result with the snapshot [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl longshore_error::Classify for Error {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::Kind;
        match self {
            Error::InvalidChainId(_) | Error::InvalidContainerId(_) => Kind::InvalidArgument,
            Error::LayerNotFound(_) => Kind::NotFound,
            Error::Io { .. } | Error::Mount { .. } => {
                longshore_error::os_kind_in_chain(self).unwrap_or(Kind::Internal)
            }
            Error::Db(_) | Error::Corrupt { .. } => Kind::Internal,
        }
    }
}
