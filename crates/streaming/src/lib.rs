//! The CRI streaming server for `exec`, `attach` and `port-forward`.
//!
//! CRI's `Exec`, `Attach` and `PortForward` RPCs answer with a URL; kubelet proxies
//! `kubectl exec/attach/port-forward` to it (always over SPDY/3.1) and crictl connects to it
//! directly (SPDY by default, WebSocket with `--transport websocket`). [`StreamingServer`]
//! mints those URLs (single-use, unguessable, expiring tokens) and serves them:
//!
//! - SPDY/3.1 upgrade with `X-Stream-Protocol-Version` negotiation: remotecommand
//!   `v5`/`v4`/`v3`/`v2.channel.k8s.io` and `channel.k8s.io`, port-forward `portforward.k8s.io`;
//! - WebSocket (`Sec-WebSocket-Protocol`): `v5.channel.k8s.io`, `v4.channel.k8s.io`,
//!   `v4.base64.channel.k8s.io`, `channel.k8s.io`, `base64.channel.k8s.io`; port-forward with
//!   kubelet's channel framing or as SPDY tunnelled through WebSocket
//!   (`SPDY/3.1+portforward.k8s.io`, what crictl's WebSocket transport sends).
//!
//! The runtime plugs in through [`StreamBackend`]. The [`client`] module speaks the same
//! protocols from the other side.

#![warn(missing_docs)]

mod backend;
pub mod client;
mod config;
mod error;
mod portforward;
pub mod protocol;
mod remotecommand;
mod requests;
mod resize;
mod server;
mod status;
mod tls;
mod token_cache;
mod ws;

pub use backend::{
    BoxReader, BoxWriter, DuplexStream, ExitStatus, PortStream, StreamBackend, StreamIo,
    TerminalSize,
};
pub use config::{DEFAULT_STREAM_CREATION_TIMEOUT, DEFAULT_TOKEN_TTL, StreamingConfig, TlsConfig};
pub use error::{ClientError, StreamingError};
pub use requests::{AttachRequest, ExecRequest, PortForwardRequest};
pub use server::StreamingServer;
