//! SPDY/3.1 as Kubernetes uses it for `exec`, `attach` and `port-forward`.
//!
//! kubelet's streaming server, client-go and crictl all speak SPDY through
//! `github.com/moby/spdystream` over an HTTP connection upgraded with `Upgrade: SPDY/3.1`.
//! This crate implements the same wire protocol:
//!
//! - [`frame`]: the frame codec (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY,
//!   HEADERS, WINDOW_UPDATE, DATA), with header blocks compressed by zlib primed with the SPDY/3
//!   dictionary, one compression context per direction for the connection's life.
//! - [`Session`]: a multiplexed connection over any `AsyncRead + AsyncWrite`, yielding the
//!   peer's streams with their headers, opening our own, answering pings, sending GOAWAY, and
//!   keeping SPDY/3.1 flow control with peers that keep it.

#![warn(missing_docs)]

mod compression;
mod dictionary;
pub mod error;
pub mod frame;
mod headers;
mod session;

pub use error::{FrameError, SessionError};
pub use headers::Headers;
pub use session::{Incoming, IncomingStream, Role, Session, Stream, StreamReader, StreamWriter};

/// The `Upgrade` header value that selects this protocol.
pub const UPGRADE_PROTOCOL: &str = "SPDY/3.1";
