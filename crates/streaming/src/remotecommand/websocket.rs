//! exec/attach over WebSocket with kubelet's channels: 0 stdin, 1 stdout, 2 stderr, 3 error,
//! 4 resize; v5 adds the `[255, channel]` half-close signal from the client.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

use super::{Channels, Command, run};
use crate::backend::{BoxReader, BoxWriter, StreamBackend};
use crate::protocol::{Codec, Version};
use crate::requests::StreamOptions;
use crate::ws::WsChannels;

/// Channel numbers of the remotecommand WebSocket protocol.
pub(crate) mod channel {
    /// Client input.
    pub const STDIN: u8 = 0;
    /// Process output.
    pub const STDOUT: u8 = 1;
    /// Process error output.
    pub const STDERR: u8 = 2;
    /// Final status.
    pub const ERROR: u8 = 3;
    /// Terminal sizes.
    pub const RESIZE: u8 = 4;
}

/// Serves one upgraded WebSocket connection for exec or attach.
pub(crate) async fn serve<S>(
    ws: WebSocketStream<S>,
    protocol: &str,
    codec: Codec,
    opts: StreamOptions,
    backend: &dyn StreamBackend,
    command: Command,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let version = Version::from_name(protocol);
    let mut readable = vec![channel::RESIZE];
    if opts.stdin {
        readable.push(channel::STDIN);
    }
    let (chans, mut reads) = WsChannels::start(ws, codec, version == Version::V5, &readable);
    // kubelet tells the client the connection is up with an empty message on the lowest
    // channel it will write.
    let first = if opts.stdout {
        channel::STDOUT
    } else if opts.stderr {
        channel::STDERR
    } else {
        channel::ERROR
    };
    if chans.send(first, b"").await.is_err() {
        return;
    }
    let writer = |ch: u8| Box::new(chans.writer(ch)) as BoxWriter;
    let channels = Channels {
        stdin: reads
            .remove(&channel::STDIN)
            .map(|r| Box::new(r) as BoxReader),
        stdout: opts.stdout.then(|| writer(channel::STDOUT)),
        stderr: opts.stderr.then(|| writer(channel::STDERR)),
        resize: reads
            .remove(&channel::RESIZE)
            .map(|r| Box::new(r) as BoxReader),
        error: Some(writer(channel::ERROR)),
        version,
    };
    run(backend, &command, opts.tty, channels).await;
    chans.close().await;
}
