//! A client for the streaming URLs, speaking what client-go (and so crictl and kubectl) speak:
//! SPDY/3.1 with the remotecommand and port-forward subprotocols, WebSocket with the
//! `channel.k8s.io` family, and SPDY tunnelled through WebSocket for port-forward.
//! Plain `http://` URLs only.

mod connect;
mod portforward;
mod remotecommand;

pub use crate::ws::ChannelWriter;
pub use portforward::{ForwardedConnection, PortForwarder, WsForwardedPort, WsPortForward};
pub use remotecommand::{CommandOutcome, RemoteCommandIo, run_remote_command};

use crate::protocol;

/// How to talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// SPDY/3.1, offering v5..v1 like client-go's SPDY executor.
    Spdy,
    /// WebSocket with one subprotocol.
    WebSocket(WsProtocol),
}

/// WebSocket subprotocols the client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsProtocol {
    /// `v5.channel.k8s.io` (client-go's WebSocket executor): binary, stdin close signal.
    V5,
    /// `v4.channel.k8s.io`: binary, JSON status.
    V4,
    /// `v4.base64.channel.k8s.io`: base64 text frames, JSON status.
    V4Base64,
    /// `channel.k8s.io`: binary, text errors.
    V1,
}

impl WsProtocol {
    /// The subprotocol name.
    pub fn name(self) -> &'static str {
        match self {
            WsProtocol::V5 => protocol::STREAM_PROTOCOL_V5,
            WsProtocol::V4 => protocol::STREAM_PROTOCOL_V4,
            WsProtocol::V4Base64 => protocol::STREAM_PROTOCOL_V4_BASE64,
            WsProtocol::V1 => protocol::STREAM_PROTOCOL_V1,
        }
    }

    fn codec(self) -> protocol::Codec {
        match self {
            WsProtocol::V4Base64 => protocol::Codec::Base64,
            _ => protocol::Codec::Binary,
        }
    }
}
