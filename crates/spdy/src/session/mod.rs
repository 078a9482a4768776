//! A SPDY/3.1 session over any byte stream: streams opened by us or by the peer, flow control,
//! pings and GOAWAY, with the behaviour Kubernetes' spdystream expects.
//!
//! Two tasks run per session: a reader that applies incoming frames to shared state and a writer
//! that encodes queued frames in order (so header blocks are compressed in wire order, as the
//! single zlib context per direction requires).
//!
//! Flow control: we send SETTINGS (initial window 64 KiB) first and WINDOW_UPDATE as data is
//! consumed, and we honour the peer's windows once the peer shows it keeps them (it sent SETTINGS
//! or WINDOW_UPDATE). Go's spdystream, which kubelet and client-go use, never sends either and
//! ignores ours; holding it to a 64 KiB window would stall every transfer, so against it the
//! backpressure is TCP's, exactly as between two spdystream peers.

mod reader;
mod state;
mod stream;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

pub use state::Role;
pub use stream::{Stream, StreamReader, StreamWriter};

use crate::error::SessionError;
use crate::frame::{Frame, SETTINGS_INITIAL_WINDOW_SIZE, Setting, rst_status};
use crate::headers::Headers;
use state::{INITIAL_WINDOW, Outbound, Shared, StreamState};

/// Highest stream id SPDY allows.
const MAX_STREAM_ID: u32 = 0x7fff_ffff;
/// How long `close` waits for the peer to take the frames still queued.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle to a SPDY connection. Cheap to clone; the connection lives until the peer closes
/// it, an I/O error occurs, or [`Session::close`] is called.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// Streams the peer opens, in order, until the connection ends or the peer sends GOAWAY.
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<IncomingStream>,
}

impl Incoming {
    /// The next stream the peer opened, or `None` when no more can arrive.
    pub async fn next(&mut self) -> Option<IncomingStream> {
        self.rx.recv().await
    }
}

/// A stream the peer opened and we have not answered yet. Data the peer sends meanwhile is
/// buffered. Dropping it refuses the stream.
pub struct IncomingStream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
    answered: bool,
}

impl IncomingStream {
    fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        IncomingStream {
            shared,
            id,
            headers,
            answered: false,
        }
    }

    /// Marks the stream answered without touching the session (used under the lock).
    fn forget(mut self) {
        self.answered = true;
    }

    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The SYN_STREAM headers (`streamType`, `port`, `requestID`, ...).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Accepts the stream with an empty SYN_REPLY (as kubelet does) and returns it.
    pub fn accept(mut self) -> Stream {
        self.answered = true;
        let id = self.id;
        self.shared.with(|st| {
            st.push(Frame::SynReply {
                stream_id: id,
                flags: 0,
                headers: Headers::new(),
            })
        });
        Stream::new(
            self.shared.clone(),
            self.id,
            std::mem::take(&mut self.headers),
        )
    }

    /// Refuses the stream with RST_STREAM(REFUSED_STREAM).
    pub fn refuse(mut self) {
        self.answered = true;
        refuse(&self.shared, self.id);
    }
}

fn refuse(shared: &Shared, id: u32) {
    shared.with(|st| {
        st.streams.remove(&id);
        st.release_reader(id);
        st.push(Frame::RstStream {
            stream_id: id,
            status: rst_status::REFUSED_STREAM,
        });
    });
}

impl Drop for IncomingStream {
    fn drop(&mut self) {
        if !self.answered {
            refuse(&self.shared, self.id);
        }
    }
}

impl std::fmt::Debug for IncomingStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingStream")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Session {
    /// Starts a session over `io` (after the HTTP upgrade) and spawns its reader and writer
    /// tasks on the current tokio runtime. Sends SETTINGS with the 64 KiB initial window first.
    pub fn new<T>(io: T, role: Role) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(role, tx));
        shared.with(|st| {
            st.push(Frame::Settings {
                flags: 0,
                entries: vec![Setting {
                    flags: 0,
                    id: SETTINGS_INITIAL_WINDOW_SIZE,
                    value: INITIAL_WINDOW,
                }],
            })
        });
        let (read, write) = tokio::io::split(io);
        tokio::spawn(reader::read_loop(shared.clone(), read));
        tokio::spawn(writer::write_loop(shared.clone(), write));
        (Session { shared }, Incoming { rx })
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// Opens a stream with `headers` (SYN_STREAM) and waits for the peer's SYN_REPLY, as
    /// client-go does before using a stream.
    pub async fn open_stream(&self, headers: Headers) -> Result<Stream, SessionError> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.with(|st| {
            if st.write_closed || st.read_closed {
                return Err(SessionError::Closed);
            }
            if st.goaway_received {
                return Err(SessionError::GoneAway);
            }
            let id = st.next_stream_id;
            if id > MAX_STREAM_ID {
                return Err(SessionError::StreamIdsExhausted);
            }
            st.next_stream_id += 2;
            let mut state = StreamState::new(st.initial_send_window);
            state.reply = Some(tx);
            st.streams.insert(id, state);
            st.push(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: headers.clone(),
            });
            Ok(id)
        })?;
        // Built before waiting so that dropping this future releases the stream state.
        let stream = Stream::new(self.shared.clone(), id, headers);
        match rx.await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SessionError::Closed),
        }
    }

    /// Sends a PING and waits for its echo; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration, SessionError> {
        let (tx, rx) = oneshot::channel();
        self.shared.with(|st| {
            if st.write_closed || st.read_closed {
                return Err(SessionError::Closed);
            }
            let id = st.next_ping_id;
            st.next_ping_id = if id > MAX_STREAM_ID - 2 {
                st.next_ping_id & 1
            } else {
                id + 2
            };
            st.pings.insert(id, tx);
            st.push(Frame::Ping { id });
            Ok(())
        })?;
        let start = Instant::now();
        rx.await.map_err(|_| SessionError::Closed)?;
        Ok(start.elapsed())
    }

    /// Sends GOAWAY, writes out everything queued before it, and shuts the write side down.
    /// A peer that does not read for 10 s is given up on (the connection is dropped). The
    /// reader keeps draining the peer for a few seconds so no late frame makes the kernel
    /// reset the connection. Idempotent.
    pub async fn close(&self) {
        self.shared.with(|st| {
            if st.write_closed {
                return;
            }
            let last = st.last_peer_stream_id;
            st.push(Frame::GoAway {
                last_good_stream_id: last,
                status: 0,
            });
            st.out.push_back(Outbound::Shutdown);
            st.write_closed = true;
        });
        self.shared.closing.send_replace(true);
        let mut done = self.shared.writer_done.subscribe();
        if tokio::time::timeout(CLOSE_TIMEOUT, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            tracing::debug!("SPDY peer is not reading; dropping the connection");
            self.shared.abort.send_replace(true);
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Resolves when the peer has closed the connection (or it failed).
    pub async fn closed(&self) {
        let mut done = self.shared.reader_done.subscribe();
        let _ = done.wait_for(|d| *d).await;
    }

    /// True once the peer sent GOAWAY.
    pub fn peer_went_away(&self) -> bool {
        self.shared.with(|st| st.goaway_received)
    }
}

#[cfg(test)]
mod tests;
