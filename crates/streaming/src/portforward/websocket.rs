//! port-forward over WebSocket channels, as kubelet's `handleWebSocketStreams`: for the i-th
//! requested port, channel 2i carries data both ways and 2i+1 errors; the first message on
//! each channel is the port as a little-endian u16.

use std::sync::Arc;

use futures::future::join_all;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;

use super::error_message;
use crate::backend::StreamBackend;
use crate::protocol::Codec;
use crate::ws::{WsChannels, max_channels};

/// Serves the ports of the CRI request over one WebSocket connection.
pub(crate) async fn serve<S>(
    ws: WebSocketStream<S>,
    codec: Codec,
    ports: &[u16],
    pod: Arc<str>,
    backend: Arc<dyn StreamBackend>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Two channels per port: past what the codec can number, channels would wrap and collide.
    if ports.len() * 2 > max_channels(codec) {
        tracing::warn!(
            ports = ports.len(),
            max = max_channels(codec) / 2,
            "port-forward over WebSocket channels: too many ports for the channel numbering"
        );
        let (chans, _) = WsChannels::start(ws, codec, false, &[]);
        chans.close().await;
        return;
    }
    let data_channels: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let (chans, mut reads) = WsChannels::start(ws, codec, false, &data_channels);
    for (i, port) in ports.iter().enumerate() {
        let prefix = port.to_le_bytes();
        let data = (2 * i) as u8;
        if chans.send(data, &prefix).await.is_err() || chans.send(data + 1, &prefix).await.is_err()
        {
            return;
        }
    }
    let forwards = ports.iter().enumerate().filter_map(|(i, port)| {
        let data = (2 * i) as u8;
        let read = reads.remove(&data)?;
        let stream = tokio::io::join(read, chans.writer(data));
        let mut error = chans.writer(data + 1);
        let (pod, backend, port) = (pod.clone(), backend.clone(), *port);
        Some(async move {
            if let Err(e) = backend.port_forward(&pod, port, Box::new(stream)).await {
                tracing::warn!(port, pod = &*pod, error = %e, "port-forward failed");
                let _ = error
                    .write_all(error_message(port, &pod, &e).as_bytes())
                    .await;
            }
        })
    });
    join_all(forwards).await;
    chans.close().await;
}
