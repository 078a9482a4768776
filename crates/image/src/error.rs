//! The image store's error type.

use std::path::PathBuf;

use longshore_registry::ErrorKind as RegistryKind;

/// What went wrong, coarsely: the daemon maps these to gRPC codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The image or manifest does not exist (NotFound).
    NotFound,
    /// The registry refused our credentials (Unauthenticated / PermissionDenied).
    Unauthorized,
    /// The reference does not parse (InvalidArgument).
    InvalidReference,
    /// The image is malformed or malicious: refused, nothing kept (InvalidArgument / FailedPrecondition).
    Hostile,
    /// The network or registry failed, or the pull stalled (Unavailable / DeadlineExceeded).
    Network,
    /// Local storage or configuration failed (Internal).
    Internal,
}

/// Errors of the image store. Each names the image, layer, digest or path it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry client failed.
    #[error(transparent)]
    Registry(#[from] longshore_registry::Error),
    /// Content that must be refused: path escapes, digest or size mismatch, bombs, bad JSON.
    #[error("refusing image content {what}: {reason}")]
    Hostile {
        /// Which layer, blob or tar entry.
        what: String,
        /// Why.
        reason: String,
    },
    /// No byte arrived for the configured time.
    #[error("pull of {reference} made no progress for {seconds}s")]
    Stalled {
        /// The image being pulled.
        reference: String,
        /// The configured progress timeout.
        seconds: u64,
    },
    /// No image by that name or ID.
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    /// An ID prefix matches more than one image.
    #[error("image ID prefix {0:?} is ambiguous")]
    Ambiguous(String),
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
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] longshore_snapshot::Error),
    /// The metadata database failed.
    #[error("image metadata: {0}")]
    Db(#[from] redb::Error),
    /// A stored record does not parse.
    #[error("corrupt image record {key}: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// A background task died.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Registry(e) => match e.kind() {
                RegistryKind::NotFound => ErrorKind::NotFound,
                RegistryKind::Unauthorized => ErrorKind::Unauthorized,
                RegistryKind::InvalidReference => ErrorKind::InvalidReference,
                RegistryKind::InvalidContent => ErrorKind::Hostile,
                RegistryKind::Network => ErrorKind::Network,
                RegistryKind::Config => ErrorKind::Internal,
            },
            Error::Hostile { .. } => ErrorKind::Hostile,
            Error::Stalled { .. } => ErrorKind::Network,
            Error::ImageNotFound(_) => ErrorKind::NotFound,
            Error::Ambiguous(_) => ErrorKind::InvalidReference,
            Error::Io { .. }
            | Error::Snapshot(_)
            | Error::Db(_)
            | Error::Corrupt { .. }
            | Error::Task(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn hostile(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Hostile {
            what: what.into(),
            reason: reason.into(),
        }
    }

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

/// Result with the image [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl longshore_error::Classify for Error {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::Kind;
        match Error::kind(self) {
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::Unauthorized => Kind::PermissionDenied,
            ErrorKind::InvalidReference => Kind::InvalidArgument,
            ErrorKind::Hostile => Kind::FailedPrecondition,
            ErrorKind::Network => Kind::Unavailable,
            ErrorKind::Internal => Kind::Internal,
        }
    }
}
