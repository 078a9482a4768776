//! Configuration of the streaming server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// kubelet's streaming cache keeps a request token for one minute.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// kubelet waits 30 s for a SPDY client to create its streams (`DefaultStreamCreationTimeout`).
pub const DEFAULT_STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// PEM files for serving `https://` URLs.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
}

/// How the streaming server listens and how long its URLs live.
#[derive(Debug, Clone)]
pub struct StreamingConfig {
    /// Listen address; port 0 picks a free port (the URLs carry the real one).
    pub addr: SocketAddr,
    /// Serve TLS with these files; `None` serves plain HTTP.
    pub tls: Option<TlsConfig>,
    /// How long an exec/attach/port-forward URL stays valid before its first use.
    pub token_ttl: Duration,
    /// How long a SPDY client may take to open the streams it asked for.
    pub stream_creation_timeout: Duration,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            stream_creation_timeout: DEFAULT_STREAM_CREATION_TIMEOUT,
        }
    }
}
