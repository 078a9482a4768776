//! Stream handles: a read half and a write half, usable together or apart.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::state::{MAX_DATA_CHUNK, OUT_QUEUE_LIMIT, Shared};
use crate::frame::{FLAG_FIN, Frame, rst_status};
use crate::headers::Headers;

/// One SPDY stream: its headers (those of the SYN_STREAM) and both directions.
///
/// Reading yields the peer's DATA until its FIN (or a reset, or the connection's end), then EOF.
/// Writing sends DATA within the peer's window; `shutdown()` sends FIN (a half-close) and
/// dropping the write half does the same.
pub struct Stream {
    headers: Headers,
    reader: StreamReader,
    writer: StreamWriter,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        Stream {
            headers,
            reader: StreamReader {
                shared: shared.clone(),
                id,
            },
            writer: StreamWriter { shared, id },
        }
    }

    /// The stream id.
    pub fn id(&self) -> u32 {
        self.reader.id
    }

    /// The headers the stream was opened with.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Aborts the stream with RST_STREAM(CANCEL), as spdystream's `Reset`.
    pub fn reset(&self) {
        reset_stream(&self.reader.shared, self.reader.id);
    }

    /// Splits into independently owned halves.
    pub fn into_split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id())
            .field("headers", &self.headers)
            .finish()
    }
}

fn reset_stream(shared: &Shared, id: u32) {
    shared.with(|st| {
        let Some(s) = st.streams.get_mut(&id) else {
            return;
        };
        if s.reset {
            return;
        }
        s.reset = true;
        s.send_fin = true;
        s.wake_all();
        st.push(Frame::RstStream {
            stream_id: id,
            status: rst_status::CANCEL,
        });
    });
}

/// The read half of a [`Stream`].
pub struct StreamReader {
    shared: Arc<Shared>,
    id: u32,
}

impl StreamReader {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Aborts the stream with RST_STREAM(CANCEL).
    pub fn reset(&self) {
        reset_stream(&self.shared, self.id);
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        self.shared.with(|st| {
            let read_closed = st.read_closed;
            let Some(s) = st.streams.get_mut(&id) else {
                return Poll::Ready(Ok(()));
            };
            if let Some(front) = s.recv.front_mut() {
                let n = front.len().min(buf.remaining());
                buf.put_slice(&front[..n]);
                front.advance(n);
                if front.is_empty() {
                    s.recv.pop_front();
                }
                s.recv_buffered -= n;
                st.credit(id, n);
                st.release_reader(id);
                return Poll::Ready(Ok(()));
            }
            if s.recv_fin || s.reset || read_closed {
                return Poll::Ready(Ok(()));
            }
            s.read_waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.with(|st| {
            let Some(s) = st.streams.get_mut(&id) else {
                return;
            };
            s.reader_alive = false;
            // Nobody will read what is buffered: count it consumed so windows keep moving.
            let discarded = std::mem::take(&mut s.recv_buffered);
            s.recv.clear();
            st.credit(id, discarded);
            st.release_reader(id);
            st.maybe_remove(id);
        });
    }
}

/// The write half of a [`Stream`]. Dropping it sends FIN if `shutdown` was not called.
pub struct StreamWriter {
    shared: Arc<Shared>,
    id: u32,
}

impl StreamWriter {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Aborts the stream with RST_STREAM(CANCEL).
    pub fn reset(&self) {
        reset_stream(&self.shared, self.id);
    }

    fn send_fin(&self) {
        let id = self.id;
        self.shared.with(|st| {
            let Some(s) = st.streams.get_mut(&id) else {
                return;
            };
            if s.send_fin || s.reset {
                return;
            }
            s.send_fin = true;
            st.push(Frame::Data {
                stream_id: id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            });
        });
    }
}

fn broken(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, msg)
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let id = self.id;
        self.shared.with(|st| {
            if st.write_closed {
                return Poll::Ready(Err(broken("SPDY connection closed")));
            }
            if st.out_bytes >= OUT_QUEUE_LIMIT {
                st.queue_waiters.push(cx.waker().clone());
                return Poll::Pending;
            }
            let flow_control = st.peer_flow_control;
            let session_window = st.session_send_window;
            let Some(s) = st.streams.get_mut(&id) else {
                return Poll::Ready(Err(broken("SPDY stream is gone")));
            };
            if s.reset {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "SPDY stream was reset",
                )));
            }
            if s.send_fin {
                return Poll::Ready(Err(broken("SPDY stream is closed for writing")));
            }
            let mut n = buf.len().min(MAX_DATA_CHUNK);
            if flow_control {
                let window = s.send_window.min(session_window);
                if window <= 0 {
                    s.write_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                n = n.min(window as usize);
            }
            s.send_window -= n as i64;
            st.session_send_window -= n as i64;
            let data = Bytes::copy_from_slice(&buf[..n]);
            st.push(Frame::Data {
                stream_id: id,
                flags: 0,
                data,
            });
            Poll::Ready(Ok(n))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames are handed to the session's writer task in order; `Session::close` drains it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.send_fin();
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        self.send_fin();
        let id = self.id;
        self.shared.with(|st| {
            if let Some(s) = st.streams.get_mut(&id) {
                s.writer_alive = false;
            }
            st.maybe_remove(id);
        });
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
