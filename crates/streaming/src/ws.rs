//! WebSocket plumbing shared by the server and the client: kubelet's channel framing
//! (`wsstream`), and a byte-stream view of binary messages for SPDY tunnelled over WebSocket.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::PollSender;

use crate::protocol::Codec;

/// v5's half-close signal: `[255, channel]`.
pub(crate) const STREAM_CLOSE: u8 = 255;
/// Largest payload per message (client-go reads with 32 KiB buffers).
const MAX_MESSAGE_PAYLOAD: usize = 32 * 1024;
/// Room for inbound data of one channel before the reader stops reading the socket.
const CHANNEL_BUFFER: usize = 64 * 1024;
/// Outgoing messages queued before channel writers wait.
const OUTGOING_QUEUE: usize = 16;
/// How long to keep reading after sending our close frame, for the peer's reply.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// How many channels a codec can number: a binary message's first byte is the channel; a
/// base64 message's first character is `'0' + channel`, which must stay one ASCII byte.
pub(crate) fn max_channels(codec: Codec) -> usize {
    match codec {
        Codec::Binary => 256,
        Codec::Base64 => usize::from(0x80 - b'0'),
    }
}

/// Builds one channel message. A base64 channel beyond [`max_channels`] cannot be read back.
pub(crate) fn channel_message(codec: Codec, channel: u8, data: &[u8]) -> Message {
    match codec {
        Codec::Binary => {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(data);
            Message::Binary(frame.into())
        }
        Codec::Base64 => {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            // Wrapping like kubelet's `'0' + byte(channel)`, never an overflow panic.
            text.push(char::from(b'0'.wrapping_add(channel)));
            STANDARD.encode_string(data, &mut text);
            Message::text(text)
        }
    }
}

/// What one inbound message means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Data for a channel.
    Data(u8, Bytes),
    /// v5 half-close of a channel.
    Close(u8),
    /// Nothing to do (empty message, ping, pong).
    Skip,
    /// The peer closed the connection.
    End,
}

/// Decodes a message with the negotiated codec; `stream_close` enables v5's close signal.
pub(crate) fn parse_message(
    codec: Codec,
    stream_close: bool,
    msg: Message,
) -> Result<Inbound, String> {
    let raw: Bytes = match msg {
        Message::Binary(b) => b,
        Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
        Message::Close(_) => return Ok(Inbound::End),
        _ => return Ok(Inbound::Skip),
    };
    if raw.is_empty() {
        return Ok(Inbound::Skip);
    }
    if stream_close && raw[0] == STREAM_CLOSE {
        if raw.len() != 2 {
            return Err(format!("close signal with {} channel bytes", raw.len() - 1));
        }
        return Ok(Inbound::Close(raw[1]));
    }
    match codec {
        Codec::Binary => Ok(Inbound::Data(raw[0], raw.slice(1..))),
        Codec::Base64 => {
            let channel = raw[0].wrapping_sub(b'0');
            let data = STANDARD
                .decode(&raw[1..])
                .map_err(|e| format!("bad base64: {e}"))?;
            Ok(Inbound::Data(channel, data.into()))
        }
    }
}

/// A WebSocket connection split into numbered channels, kubelet style.
///
/// Readable channels deliver their inbound data through a pipe whose other end is returned by
/// [`WsChannels::start`]; writable channels are written through [`ChannelWriter`]s.
pub(crate) struct WsChannels {
    codec: Codec,
    tx: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl WsChannels {
    /// Starts the reader and writer tasks. `readable` lists the channels whose inbound data
    /// matters; data for other channels is dropped. Returns the read ends of those channels.
    pub fn start<S>(
        ws: WebSocketStream<S>,
        codec: Codec,
        stream_close: bool,
        readable: &[u8],
    ) -> (WsChannels, HashMap<u8, DuplexStream>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sink, stream) = ws.split();
        let mut inbound = HashMap::new();
        let mut read_ends = HashMap::new();
        for ch in readable {
            let (ours, theirs) = tokio::io::duplex(CHANNEL_BUFFER);
            inbound.insert(*ch, ours);
            read_ends.insert(*ch, theirs);
        }
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let writer = tokio::spawn(write_loop(sink, rx));
        let reader = tokio::spawn(read_loop(stream, codec, stream_close, inbound));
        (
            WsChannels {
                codec,
                tx,
                writer,
                reader,
            },
            read_ends,
        )
    }

    /// A writer for `channel`.
    pub fn writer(&self, channel: u8) -> ChannelWriter {
        ChannelWriter {
            channel,
            codec: self.codec,
            tx: PollSender::new(self.tx.clone()),
        }
    }

    /// Sends one message on `channel` (possibly empty: kubelet's "connected" notice).
    pub async fn send(&self, channel: u8, data: &[u8]) -> io::Result<()> {
        self.tx
            .send(channel_message(self.codec, channel, data))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed"))
    }

    /// Sends a normal close frame after everything queued, then waits briefly for the peer's
    /// close reply so the connection ends cleanly.
    pub async fn close(self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = self.tx.send(Message::Close(Some(frame))).await;
        drop(self.tx);
        let _ = self.writer.await;
        let mut reader = self.reader;
        if tokio::time::timeout(CLOSE_LINGER, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
}

async fn write_loop<K>(mut sink: K, mut rx: mpsc::Receiver<Message>)
where
    K: Sink<Message, Error = WsError> + Unpin,
{
    while let Some(msg) = rx.recv().await {
        let closing = matches!(msg, Message::Close(_));
        if let Err(e) = sink.send(msg).await {
            tracing::debug!(error = %e, "websocket write failed");
            return;
        }
        if closing {
            return;
        }
    }
}

async fn read_loop<T>(
    mut stream: T,
    codec: Codec,
    stream_close: bool,
    mut inbound: HashMap<u8, DuplexStream>,
) where
    T: Stream<Item = Result<Message, WsError>> + Unpin,
{
    while let Some(msg) = stream.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "websocket read failed");
                break;
            }
        };
        match parse_message(codec, stream_close, msg) {
            Ok(Inbound::Data(ch, data)) => {
                let Some(pipe) = inbound.get_mut(&ch) else {
                    continue;
                };
                if pipe.write_all(&data).await.is_err() {
                    // The consumer went away; drop what else arrives for it.
                    inbound.remove(&ch);
                }
            }
            Ok(Inbound::Close(ch)) => {
                if let Some(mut pipe) = inbound.remove(&ch) {
                    let _ = pipe.shutdown().await;
                }
            }
            Ok(Inbound::Skip) => {}
            Ok(Inbound::End) => break,
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                break;
            }
        }
    }
    // Dropping the pipes gives every consumer EOF.
}

/// Writes to one WebSocket channel; each write becomes one channel message.
pub struct ChannelWriter {
    channel: u8,
    codec: Codec,
    tx: PollSender<Message>,
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed");
        ready!(self.tx.poll_reserve(cx)).map_err(|_| closed())?;
        let n = buf.len().min(MAX_MESSAGE_PAYLOAD);
        let msg = channel_message(self.codec, self.channel, &buf[..n]);
        self.tx.send_item(msg).map_err(|_| closed())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // kubelet sends nothing when a server-side channel ends; the close frame ends them all.
        Poll::Ready(Ok(()))
    }
}

/// Binary WebSocket messages seen as one byte stream in each direction (client-go's
/// `TunnelingConnection`): what SPDY runs over for `SPDY/3.1+portforward.k8s.io`.
pub(crate) struct WsByteStream<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
}

impl<S> WsByteStream<S> {
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsByteStream {
            ws,
            pending: Bytes::new(),
        }
    }
}

fn ws_io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsByteStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(self.ws.poll_next_unpin(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(b))) => self.pending = b,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on a binary tunnel",
                    )));
                }
                Some(Ok(_)) => {}
                Some(Err(WsError::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(ws_io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsByteStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.ws.poll_ready_unpin(cx)).map_err(ws_io_error)?;
        let n = buf.len().min(64 * 1024);
        self.ws
            .start_send_unpin(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
            .map_err(ws_io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_flush_unpin(cx).map_err(ws_io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(self.ws.poll_close_unpin(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(ws_io_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_base64_framing() {
        assert_eq!(
            channel_message(Codec::Binary, 1, b"hi"),
            Message::binary(b"\x01hi".to_vec())
        );
        assert_eq!(
            channel_message(Codec::Base64, 2, b"hi"),
            Message::text("2aGk=")
        );
        assert_eq!(
            channel_message(Codec::Binary, 3, b""),
            Message::binary(vec![3u8])
        );
        assert_eq!(
            parse_message(Codec::Base64, false, Message::text("0aGk=")).unwrap(),
            Inbound::Data(0, Bytes::from_static(b"hi"))
        );
        assert_eq!(
            parse_message(Codec::Binary, false, Message::binary(b"\x04{}".to_vec())).unwrap(),
            Inbound::Data(4, Bytes::from_static(b"{}"))
        );
    }

    #[test]
    fn v5_close_signal_only_with_v5() {
        let close = Message::binary(vec![STREAM_CLOSE, 0]);
        assert_eq!(
            parse_message(Codec::Binary, true, close.clone()).unwrap(),
            Inbound::Close(0)
        );
        assert_eq!(
            parse_message(Codec::Binary, false, close).unwrap(),
            Inbound::Data(255, Bytes::from_static(&[0]))
        );
        assert!(parse_message(Codec::Binary, true, Message::binary(vec![STREAM_CLOSE])).is_err());
        assert_eq!(
            parse_message(Codec::Binary, true, Message::binary(vec![])).unwrap(),
            Inbound::Skip
        );
        assert_eq!(
            parse_message(Codec::Binary, true, Message::Close(None)).unwrap(),
            Inbound::End
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn codec() -> impl Strategy<Value = Codec> {
            prop_oneof![Just(Codec::Binary), Just(Codec::Base64)]
        }

        fn message() -> impl Strategy<Value = Message> {
            let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
            prop_oneof![
                bytes().prop_map(Message::binary),
                // Often a close signal or a channel digit first.
                (
                    prop_oneof![Just(STREAM_CLOSE), 0u8..10, any::<u8>()],
                    bytes()
                )
                    .prop_map(|(first, rest)| Message::binary([&[first][..], &rest].concat())),
                "\\PC{0,40}".prop_map(Message::text),
                "[0-9][A-Za-z0-9+/=]{0,40}".prop_map(Message::text),
                bytes().prop_map(|b| Message::Ping(b.into())),
                bytes().prop_map(|b| Message::Pong(b.into())),
                Just(Message::Close(None)),
            ]
        }

        proptest! {
            /// Whatever a client sends: no panic, and data is exactly what followed the
            /// channel byte.
            #[test]
            fn arbitrary_messages_parse_or_fail_cleanly(
                msg in message(),
                codec in codec(),
                stream_close in any::<bool>(),
            ) {
                let raw = match &msg {
                    Message::Binary(b) => Some(b.to_vec()),
                    Message::Text(t) => Some(t.as_bytes().to_vec()),
                    _ => None,
                };
                match parse_message(codec, stream_close, msg) {
                    Ok(Inbound::Data(ch, data)) => {
                        let raw = raw.unwrap();
                        prop_assert!(!(stream_close && raw[0] == STREAM_CLOSE));
                        match codec {
                            Codec::Binary => {
                                prop_assert_eq!(ch, raw[0]);
                                prop_assert_eq!(&data[..], &raw[1..]);
                            }
                            Codec::Base64 => {
                                prop_assert_eq!(ch, raw[0].wrapping_sub(b'0'));
                                // Base64 of n bytes is at least n * 4 / 3 characters.
                                prop_assert!(data.len() * 4 <= (raw.len() - 1) * 3 + 3);
                            }
                        }
                    }
                    Ok(Inbound::Close(ch)) => {
                        prop_assert!(stream_close);
                        prop_assert_eq!(raw.unwrap(), vec![STREAM_CLOSE, ch]);
                    }
                    Ok(Inbound::Skip) => prop_assert!(raw.is_none_or(|r| r.is_empty())),
                    Ok(Inbound::End) | Err(_) => {}
                }
            }

            /// Every channel number and payload makes a message without panicking, and the
            /// ones the codec can number parse back to the same channel and bytes.
            #[test]
            fn channel_messages_round_trip(
                codec in codec(),
                channel in any::<u8>(),
                data in proptest::collection::vec(any::<u8>(), 0..200),
                stream_close in any::<bool>(),
            ) {
                let msg = channel_message(codec, channel, &data);
                if usize::from(channel) >= max_channels(codec)
                    || (stream_close && codec == Codec::Binary && channel == STREAM_CLOSE)
                {
                    return Ok(());
                }
                prop_assert_eq!(
                    parse_message(codec, stream_close, msg).unwrap(),
                    Inbound::Data(channel, Bytes::from(data))
                );
            }
        }
    }
}
