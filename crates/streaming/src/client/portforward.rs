//! port-forward from the client side: SPDY (client-go's `PortForwarder`), SPDY tunnelled in
//! WebSocket, and kubelet's WebSocket channel framing.

use std::sync::atomic::{AtomicU32, Ordering};

use longshore_spdy::{Headers, Session, Stream, StreamReader};
use tokio::io::{AsyncReadExt, DuplexStream, Join};

use super::{WsProtocol, connect};
use crate::error::ClientError;
use crate::protocol::{
    PORT_FORWARD_PROTOCOL_V1, PORT_FORWARD_SPDY_TUNNEL, port_header, stream_type,
};
use crate::ws::{ChannelWriter, WsByteStream, WsChannels};

/// A port-forward connection over SPDY; each [`PortForwarder::open`] is one forwarded TCP
/// connection inside the pod.
pub struct PortForwarder {
    session: Session,
    next_request_id: AtomicU32,
}

/// One forwarded connection: `data` carries the bytes; the error stream reports failures.
pub struct ForwardedConnection {
    /// Read and write the pod's side of the connection; `shutdown()` half-closes it.
    pub data: Stream,
    error: StreamReader,
}

impl ForwardedConnection {
    /// Waits for the server to finish this request and returns its error message, if any
    /// (kubelet writes a JSON `{"closeConnection":..,"message":..}`).
    pub async fn error(mut self) -> Result<Option<String>, ClientError> {
        let mut message = Vec::new();
        self.error.read_to_end(&mut message).await?;
        Ok((!message.is_empty()).then(|| String::from_utf8_lossy(&message).into_owned()))
    }
}

impl PortForwarder {
    /// Connects over SPDY (`X-Stream-Protocol-Version: portforward.k8s.io`).
    pub async fn connect(url: &str) -> Result<PortForwarder, ClientError> {
        let (session, _incoming, chosen) = connect::spdy(url, &[PORT_FORWARD_PROTOCOL_V1]).await?;
        if chosen != PORT_FORWARD_PROTOCOL_V1 {
            session.close().await;
            return Err(ClientError::Protocol(chosen));
        }
        Ok(PortForwarder {
            session,
            next_request_id: AtomicU32::new(0),
        })
    }

    /// Connects with SPDY inside WebSocket (`SPDY/3.1+portforward.k8s.io`), as
    /// `crictl port-forward --transport websocket`.
    pub async fn connect_tunneled(url: &str) -> Result<PortForwarder, ClientError> {
        let ws = connect::websocket(url, PORT_FORWARD_SPDY_TUNNEL).await?;
        let (session, _incoming) =
            Session::new(WsByteStream::new(ws), longshore_spdy::Role::Client);
        Ok(PortForwarder {
            session,
            next_request_id: AtomicU32::new(0),
        })
    }

    /// Opens a forwarded connection to `port`: an error stream (closed for writing at once)
    /// and a data stream, both tagged with a fresh `requestID`, like client-go.
    pub async fn open(&self, port: u16) -> Result<ForwardedConnection, ClientError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let mut h = Headers::new();
        h.set(stream_type::HEADER, stream_type::ERROR);
        h.set(port_header::PORT, port.to_string());
        h.set(port_header::REQUEST_ID, id.to_string());
        let (error, _w) = self.session.open_stream(h.clone()).await?.into_split();
        h.set(stream_type::HEADER, stream_type::DATA);
        let data = self.session.open_stream(h).await?;
        Ok(ForwardedConnection { data, error })
    }

    /// Sends GOAWAY and closes the connection.
    pub async fn close(&self) {
        self.session.close().await;
    }
}

/// One port of a WebSocket port-forward.
pub struct WsForwardedPort {
    /// The port the server announced on the channel.
    pub port: u16,
    /// The connection's bytes both ways.
    pub data: Join<DuplexStream, ChannelWriter>,
    /// The error channel (text messages from the server).
    pub error: DuplexStream,
}

/// A WebSocket port-forward with kubelet's channel framing; ports come from the CRI request.
pub struct WsPortForward {
    channels: WsChannels,
    /// One entry per requested port, in order.
    pub ports: Vec<WsForwardedPort>,
}

impl WsPortForward {
    /// Connects with `protocol` (`V4` or `V4Base64`) and reads each channel's port prefix;
    /// `ports` is how many ports the CRI request named.
    pub async fn connect(
        url: &str,
        protocol: WsProtocol,
        ports: usize,
    ) -> Result<WsPortForward, ClientError> {
        let ws = connect::websocket(url, protocol.name()).await?;
        let all: Vec<u8> = (0..2 * ports).map(|c| c as u8).collect();
        let (channels, mut reads) = WsChannels::start(ws, protocol.codec(), false, &all);
        let mut out = Vec::new();
        for i in 0..ports {
            let data_ch = (2 * i) as u8;
            let (Some(mut data), Some(mut error)) =
                (reads.remove(&data_ch), reads.remove(&(data_ch + 1)))
            else {
                return Err(ClientError::Protocol("missing channel".into()));
            };
            let port = read_port(&mut data).await?;
            if read_port(&mut error).await? != port {
                return Err(ClientError::Protocol("data and error ports differ".into()));
            }
            let writer = channels.writer(data_ch);
            out.push(WsForwardedPort {
                port,
                data: tokio::io::join(data, writer),
                error,
            });
        }
        Ok(WsPortForward {
            channels,
            ports: out,
        })
    }

    /// Sends a close frame and ends the connection.
    pub async fn close(self) {
        drop(self.ports);
        self.channels.close().await;
    }
}

async fn read_port(r: &mut DuplexStream) -> Result<u16, ClientError> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b).await?;
    Ok(u16::from_le_bytes(b))
}
