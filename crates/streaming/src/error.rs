//! Errors of the streaming server and client.

use std::io;
use std::path::PathBuf;

/// Starting the server or minting a URL failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A TLS file could not be read or parsed.
    #[error("cannot load TLS {what} from {path}: {reason}")]
    Tls {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The CRI request is invalid (the CRI layer answers InvalidArgument).
    #[error("invalid streaming request: {0}")]
    InvalidRequest(&'static str),
    /// Too many URLs are outstanding (kubelet caps its cache at 1000).
    #[error("too many outstanding streaming requests ({0})")]
    TooManyRequests(usize),
}

impl longshore_error::Classify for StreamingError {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::Kind;
        match self {
            StreamingError::InvalidRequest(_) => Kind::InvalidArgument,
            StreamingError::TooManyRequests(_) => Kind::ResourceExhausted,
            StreamingError::Bind { .. } | StreamingError::Tls { .. } => Kind::Internal,
        }
    }
}

/// The streaming client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port/...`.
    #[error("unsupported streaming URL {0}")]
    BadUrl(String),
    /// Connecting or talking to the server failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The HTTP exchange failed.
    #[error("http error: {0}")]
    Http(String),
    /// The server did not upgrade; carries its status and body.
    #[error("upgrade refused: {status} {body}")]
    UpgradeRefused {
        /// HTTP status code.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The server picked a protocol we did not offer, or none.
    #[error("server negotiated unexpected protocol {0:?}")]
    Protocol(String),
    /// A SPDY stream could not be opened.
    #[error("spdy: {0}")]
    Spdy(#[from] longshore_spdy::SessionError),
    /// The WebSocket layer failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The error stream held something we cannot parse.
    #[error("error stream protocol error: {0}")]
    ErrorStream(String),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
