//! The state a session's tasks and stream handles share under one lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::IncomingStream;
use crate::error::SessionError;
use crate::frame::Frame;

/// Initial flow-control window of every stream and of the session (SPDY/3.1: 64 KiB).
pub(crate) const INITIAL_WINDOW: u32 = 64 * 1024;
/// Consumed bytes after which a WINDOW_UPDATE is sent.
pub(crate) const WINDOW_UPDATE_THRESHOLD: u32 = INITIAL_WINDOW / 2;
/// Largest DATA payload one write produces (client-go copies with 32 KiB buffers too).
pub(crate) const MAX_DATA_CHUNK: usize = 32 * 1024;
/// Bytes of queued outgoing frames above which stream writers wait.
pub(crate) const OUT_QUEUE_LIMIT: usize = 256 * 1024;
/// Buffered unread bytes of one stream above which the reader task stops reading the
/// connection. Flow-controlled peers never get here (their window is 64 KiB); Go's spdystream
/// ignores windows, so this is what pushes back on it, through TCP, as spdystream itself does.
pub(crate) const STREAM_BUFFER_LIMIT: usize = 1024 * 1024;

/// Which end of the connection this session is; it fixes the parity of stream and ping ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens odd-numbered streams and pings.
    Client,
    /// Opens even-numbered streams and pings.
    Server,
}

impl Role {
    /// The first id this side uses for streams and pings.
    pub(crate) fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }
}

/// An item of the outgoing queue.
pub(crate) enum Outbound {
    /// A frame to encode and write.
    Frame(Frame),
    /// Shut the write half down after everything before it.
    Shutdown,
}

/// Per-stream state.
pub(crate) struct StreamState {
    pub recv: VecDeque<Bytes>,
    pub recv_buffered: usize,
    pub recv_fin: bool,
    pub reset: bool,
    pub read_waker: Option<Waker>,
    pub recv_consumed: u32,
    pub reader_alive: bool,
    pub writer_alive: bool,
    pub send_window: i64,
    pub send_fin: bool,
    pub write_waker: Option<Waker>,
    pub reply: Option<oneshot::Sender<Result<(), SessionError>>>,
}

impl StreamState {
    pub fn new(send_window: i64) -> Self {
        StreamState {
            recv: VecDeque::new(),
            recv_buffered: 0,
            recv_fin: false,
            reset: false,
            read_waker: None,
            recv_consumed: 0,
            reader_alive: true,
            writer_alive: true,
            send_window,
            send_fin: false,
            write_waker: None,
            reply: None,
        }
    }

    pub fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// Connection-wide state.
pub(crate) struct State {
    pub streams: HashMap<u32, StreamState>,
    pub out: VecDeque<Outbound>,
    pub out_bytes: usize,
    pub queue_waiters: Vec<Waker>,
    pub wake_writer: bool,
    pub next_stream_id: u32,
    pub last_peer_stream_id: u32,
    pub next_ping_id: u32,
    pub pings: HashMap<u32, oneshot::Sender<()>>,
    pub peer_flow_control: bool,
    pub initial_send_window: i64,
    pub session_send_window: i64,
    pub session_recv_consumed: u32,
    pub write_closed: bool,
    pub read_closed: bool,
    pub goaway_received: bool,
    pub incoming: Option<mpsc::UnboundedSender<IncomingStream>>,
    pub blocked_on: Option<u32>,
    pub reader_waker: Option<Waker>,
}

impl State {
    pub fn new(role: Role, incoming: mpsc::UnboundedSender<IncomingStream>) -> Self {
        State {
            streams: HashMap::new(),
            out: VecDeque::new(),
            out_bytes: 0,
            queue_waiters: Vec::new(),
            wake_writer: false,
            next_stream_id: role.first_id(),
            last_peer_stream_id: 0,
            next_ping_id: role.first_id(),
            pings: HashMap::new(),
            peer_flow_control: false,
            initial_send_window: i64::from(INITIAL_WINDOW),
            session_send_window: i64::from(INITIAL_WINDOW),
            session_recv_consumed: 0,
            write_closed: false,
            read_closed: false,
            goaway_received: false,
            incoming: Some(incoming),
            blocked_on: None,
            reader_waker: None,
        }
    }

    /// Queues a frame unless the write side is closed.
    pub fn push(&mut self, frame: Frame) {
        if self.write_closed {
            return;
        }
        self.out_bytes += frame.queued_len();
        self.out.push_back(Outbound::Frame(frame));
        self.wake_writer = true;
    }

    /// Records that `n` bytes of `stream_id` were consumed (read or discarded) and sends the
    /// WINDOW_UPDATEs that are due, for the stream and for the session.
    pub fn credit(&mut self, stream_id: u32, n: usize) {
        let n = n as u32;
        let mut stream_update = None;
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.recv_consumed += n;
            if s.recv_consumed >= WINDOW_UPDATE_THRESHOLD {
                if !s.recv_fin && !s.reset {
                    stream_update = Some(s.recv_consumed);
                }
                s.recv_consumed = 0;
            }
        }
        if let Some(delta) = stream_update {
            self.push(Frame::WindowUpdate { stream_id, delta });
        }
        self.session_recv_consumed += n;
        if self.session_recv_consumed >= WINDOW_UPDATE_THRESHOLD {
            let delta = self.session_recv_consumed;
            self.session_recv_consumed = 0;
            self.push(Frame::WindowUpdate {
                stream_id: 0,
                delta,
            });
        }
    }

    /// Wakes the reader task if it waits on `stream_id`'s buffer and that has drained.
    pub fn release_reader(&mut self, stream_id: u32) {
        if self.blocked_on != Some(stream_id) {
            return;
        }
        let drained = self
            .streams
            .get(&stream_id)
            .is_none_or(|s| s.recv_buffered <= STREAM_BUFFER_LIMIT || !s.reader_alive);
        if drained {
            self.blocked_on = None;
            if let Some(w) = self.reader_waker.take() {
                w.wake();
            }
        }
    }

    /// Drops a stream's state once neither half has a handle.
    pub fn maybe_remove(&mut self, stream_id: u32) {
        let gone = self
            .streams
            .get(&stream_id)
            .is_some_and(|s| !s.reader_alive && !s.writer_alive);
        if gone {
            self.streams.remove(&stream_id);
            self.release_reader(stream_id);
        }
    }

    /// Wakes every stream writer (a window grew or the connection failed).
    pub fn wake_writers(&mut self) {
        for s in self.streams.values_mut() {
            if let Some(w) = s.write_waker.take() {
                w.wake();
            }
        }
        for w in self.queue_waiters.drain(..) {
            w.wake();
        }
    }
}

/// What the session handle, stream handles and the two tasks share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub role: Role,
    pub writer_wake: Notify,
    pub closing: watch::Sender<bool>,
    pub reader_done: watch::Sender<bool>,
    pub writer_done: watch::Sender<bool>,
    /// Set when `close` gave up waiting for the peer to take our last frames.
    pub abort: watch::Sender<bool>,
}

impl Shared {
    pub fn new(role: Role, incoming: mpsc::UnboundedSender<IncomingStream>) -> Self {
        Shared {
            state: Mutex::new(State::new(role, incoming)),
            role,
            writer_wake: Notify::new(),
            closing: watch::Sender::new(false),
            reader_done: watch::Sender::new(false),
            writer_done: watch::Sender::new(false),
            abort: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for shutdown paths.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` under the lock and wakes the writer task if `f` queued anything.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        if std::mem::take(&mut st.wake_writer) {
            self.writer_wake.notify_one();
        }
        r
    }
}
