//! The errors this crate returns; each names the path, plugin, network or id at fault.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong setting up, checking or tearing down a pod's network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable network configuration right now; `reason` and `message` are what
    /// [`crate::Cni::status`] reports.
    #[error("pod network is not ready ({reason}): {message}")]
    NotReady {
        /// A CamelCase code, e.g. `NoNetworkConfig`.
        reason: String,
        /// The human-readable cause, e.g. the parse error of the config file.
        message: String,
    },

    /// A plugin named by the configuration is in none of the plugin directories.
    #[error("CNI plugin {plugin:?} not found in {dirs:?}")]
    PluginNotFound {
        /// The plugin `type`.
        plugin: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },

    /// A plugin ran and reported failure (boxed: it is the largest variant by far).
    #[error("{0}")]
    Plugin(Box<PluginFailure>),

    /// A plugin binary could not be started or waited for.
    #[error("cannot run CNI plugin {path}: {source}")]
    Spawn {
        /// The plugin binary.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },

    /// A plugin succeeded but its result cannot be read.
    #[error("CNI plugin {plugin:?} on network {network:?} returned an unreadable result: {reason}")]
    BadResult {
        /// The network (config list) name.
        network: String,
        /// The plugin `type`.
        plugin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The path given as the pod's network namespace is not one.
    #[error("{path} is not a network namespace: {reason}")]
    Netns {
        /// The path given.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },

    /// An id or interface name that cannot be used (it names files in the cache).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// `container id` or `interface name`.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Reading or writing the result cache failed.
    #[error("CNI result cache {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },

    /// A cache file exists but cannot be understood.
    #[error("CNI result cache entry {path} is corrupt: {reason}")]
    CacheCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// CHECK was asked for a sandbox whose network was never set up (no cache entry).
    #[error("no pod network was set up for sandbox {0}")]
    NotSetUp(String),

    /// A bandwidth annotation cannot be parsed or is out of range.
    #[error("invalid bandwidth annotation {key}={value:?}: {reason}")]
    Bandwidth {
        /// The annotation key.
        key: String,
        /// The annotation value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a failing plugin reported: `msg` and `details` come from its JSON error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFailure {
    /// The network (config list) name.
    pub network: String,
    /// The plugin `type`.
    pub plugin: String,
    /// `ADD`, `DEL` or `CHECK`.
    pub command: &'static str,
    /// The CNI error code, when the plugin printed one.
    pub code: Option<u64>,
    /// The plugin's `msg` (or its raw output when it printed no JSON error).
    pub msg: String,
    /// The plugin's `details`, possibly empty.
    pub details: String,
    /// What the plugin wrote to stderr, possibly empty.
    pub stderr: String,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CNI plugin {:?} failed ({}) on network {:?}: {}",
            self.plugin, self.command, self.network, self.msg
        )?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        if !self.stderr.is_empty() {
            write!(f, "; stderr: {}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

impl longshore_error::Classify for Error {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::{Kind, kind_of_io};
        match self {
            Error::NotReady { .. } | Error::PluginNotFound { .. } => Kind::FailedPrecondition,
            Error::InvalidName { .. } | Error::Bandwidth { .. } => Kind::InvalidArgument,
            Error::NotSetUp(_) => Kind::NotFound,
            // kubelet retries a pod whose network failed; the plugins' own failures count as
            // passing, as containerd and CRI-O answer them.
            Error::Plugin(_) | Error::BadResult { .. } | Error::Netns { .. } => Kind::Unavailable,
            Error::Spawn { source, .. } => match kind_of_io(source) {
                Kind::InvalidArgument => Kind::InvalidArgument,
                _ => Kind::Unavailable,
            },
            Error::Cache { .. } | Error::CacheCorrupt { .. } => Kind::Internal,
        }
    }
}
