//! The registry client's error type.

use std::path::PathBuf;

/// What went wrong, coarsely: the daemon maps these to gRPC codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The reference does not parse.
    InvalidReference,
    /// The registry does not know the manifest or blob.
    NotFound,
    /// The registry refused our credentials (or wants some).
    Unauthorized,
    /// The registry served content that is malformed or does not match its digest or size.
    InvalidContent,
    /// Connection, TLS or transfer failure, or an unexpected HTTP status.
    Network,
    /// Local configuration (hosts.toml, docker config.json, CA files) is wrong.
    Config,
}

/// Errors of the registry client. Each says which reference, URL, host or file it was about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference does not follow the distribution grammar.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry answered 404 / MANIFEST_UNKNOWN / BLOB_UNKNOWN.
    #[error("{what} not found at {url}")]
    NotFound {
        /// What was looked for (a reference or a digest).
        what: String,
        /// The URL that answered.
        url: String,
    },
    /// 401/403 after the auth flow, or a token server that refused.
    #[error("unauthorized at {url}: {detail}")]
    Unauthorized {
        /// The URL that refused.
        url: String,
        /// The registry's or token server's reason.
        detail: String,
    },
    /// Content that cannot be used: bad JSON, unknown media type, digest or size mismatch.
    #[error("invalid content {what}: {reason}")]
    InvalidContent {
        /// Which manifest, blob or digest.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The index has no manifest for this node's platform.
    #[error("no manifest for platform {platform} in index {reference}")]
    NoMatchingPlatform {
        /// The reference that resolved to an index.
        reference: String,
        /// The platform we looked for.
        platform: String,
    },
    /// Transport failure: connect, TLS, reset, timeout.
    #[error("request to {url} failed: {source}")]
    Network {
        /// The URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with a status we do not handle.
    #[error("registry {url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (the registry's error JSON).
        body: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("registry configuration {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// hosts.toml lists no host that may do this operation for the registry.
    #[error("no registry host configured to {capability} from {registry}")]
    NoHosts {
        /// The registry name from the reference.
        registry: String,
        /// "pull" or "resolve".
        capability: &'static str,
    },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. } => ErrorKind::InvalidReference,
            Error::NotFound { .. } | Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::InvalidContent { .. } => ErrorKind::InvalidContent,
            Error::Network { .. } | Error::Status { .. } => ErrorKind::Network,
            Error::Config { .. } | Error::NoHosts { .. } => ErrorKind::Config,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidContent {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Result with the registry [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
