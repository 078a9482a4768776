//! The reader task: decodes frames from the connection and applies them to the shared state.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncRead;
use tokio_util::codec::FramedRead;

use super::IncomingStream;
use super::state::{STREAM_BUFFER_LIMIT, Shared, State, StreamState};
use crate::error::SessionError;
use crate::frame::{
    FLAG_FIN, FLAG_UNIDIRECTIONAL, Frame, FrameDecoder, SETTINGS_INITIAL_WINDOW_SIZE, Setting,
    rst_status,
};
use crate::headers::Headers;

/// How long the reader keeps draining the connection after we closed it, so the kernel does not
/// answer the peer's late frames with a TCP reset that could destroy data still in flight to it.
const LINGER: Duration = Duration::from_secs(5);

/// Reads frames until EOF, an error, or the linger time after `Session::close`.
pub(crate) async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, io: R) {
    let mut frames = FramedRead::new(io, FrameDecoder::new());
    let mut closing = shared.closing.subscribe();
    loop {
        wait_for_buffer_space(&shared).await;
        let next = tokio::select! {
            next = frames.next() => next,
            _ = linger(&mut closing) => break,
        };
        match next {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "SPDY reader stopped");
                break;
            }
            Some(Ok(frame)) => shared.with(|st| apply(&shared, st, frame)),
        }
    }
    shared.with(finish);
    shared.reader_done.send_replace(true);
}

async fn linger(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(LINGER).await;
}

/// Pauses reading while a stream's unread buffer is over the limit (a peer ignoring windows).
async fn wait_for_buffer_space(shared: &Shared) {
    poll_fn(|cx| {
        shared.with(|st| {
            let Some(id) = st.blocked_on else {
                return Poll::Ready(());
            };
            let full = st
                .streams
                .get(&id)
                .is_some_and(|s| s.reader_alive && s.recv_buffered > STREAM_BUFFER_LIMIT);
            if full {
                st.reader_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            st.blocked_on = None;
            Poll::Ready(())
        })
    })
    .await
}

/// The connection ended: every reader sees EOF, waiters fail.
fn finish(st: &mut State) {
    st.read_closed = true;
    st.incoming = None;
    st.pings.clear();
    for s in st.streams.values_mut() {
        if let Some(reply) = s.reply.take() {
            let _ = reply.send(Err(SessionError::Closed));
        }
        s.wake_all();
    }
}

fn apply(shared: &Arc<Shared>, st: &mut State, frame: Frame) {
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => syn_stream(shared, st, stream_id, flags, headers),
        Frame::SynReply {
            stream_id, flags, ..
        } => {
            if let Some(s) = st.streams.get_mut(&stream_id) {
                if let Some(reply) = s.reply.take() {
                    let _ = reply.send(Ok(()));
                }
                if flags & FLAG_FIN != 0 {
                    s.recv_fin = true;
                    s.wake_all();
                }
            }
        }
        Frame::RstStream { stream_id, status } => {
            if let Some(s) = st.streams.get_mut(&stream_id) {
                s.reset = true;
                s.send_fin = true;
                if let Some(reply) = s.reply.take() {
                    let _ = reply.send(Err(SessionError::StreamRefused { stream_id, status }));
                }
                s.wake_all();
            }
        }
        Frame::Settings { entries, .. } => settings(st, &entries),
        Frame::Ping { id } => {
            if id & 1 == shared.role.first_id() & 1 {
                if let Some(waiter) = st.pings.remove(&id) {
                    let _ = waiter.send(());
                }
            } else {
                st.push(Frame::Ping { id });
            }
        }
        Frame::GoAway { .. } => {
            st.goaway_received = true;
            st.incoming = None;
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0
                && let Some(s) = st.streams.get_mut(&stream_id)
            {
                s.recv_fin = true;
                s.wake_all();
            }
        }
        Frame::WindowUpdate { stream_id, delta } => {
            st.peer_flow_control = true;
            if stream_id == 0 {
                st.session_send_window += i64::from(delta);
            } else if let Some(s) = st.streams.get_mut(&stream_id) {
                s.send_window += i64::from(delta);
            }
            st.wake_writers();
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let len = data.len();
            let accepted = match st.streams.get_mut(&stream_id) {
                Some(s) if s.reader_alive && !s.reset && !s.recv_fin => {
                    if len > 0 {
                        s.recv_buffered += len;
                        s.recv.push_back(data);
                    }
                    if flags & FLAG_FIN != 0 {
                        s.recv_fin = true;
                    }
                    if let Some(w) = s.read_waker.take() {
                        w.wake();
                    }
                    s.recv_buffered > STREAM_BUFFER_LIMIT
                }
                _ => {
                    // Unknown, reset or unread stream: drop the bytes but keep windows moving.
                    st.credit(stream_id, len);
                    false
                }
            };
            if accepted {
                st.blocked_on = Some(stream_id);
            }
        }
    }
}

fn syn_stream(shared: &Arc<Shared>, st: &mut State, id: u32, flags: u8, headers: Headers) {
    let peer_parity = shared.role.first_id() & 1 ^ 1;
    if id & 1 != peer_parity || id <= st.last_peer_stream_id {
        tracing::debug!(stream_id = id, "SPDY stream id out of order");
        st.push(Frame::RstStream {
            stream_id: id,
            status: rst_status::PROTOCOL_ERROR,
        });
        return;
    }
    st.last_peer_stream_id = id;
    let Some(incoming) = st.incoming.clone() else {
        st.push(Frame::RstStream {
            stream_id: id,
            status: rst_status::REFUSED_STREAM,
        });
        return;
    };
    let mut state = StreamState::new(st.initial_send_window);
    state.recv_fin = flags & FLAG_FIN != 0;
    state.send_fin = flags & FLAG_UNIDIRECTIONAL != 0;
    st.streams.insert(id, state);
    let stream = IncomingStream::new(shared.clone(), id, headers);
    if let Err(rejected) = incoming.send(stream) {
        // Nobody accepts streams any more; dropping the IncomingStream refuses it, but we hold
        // the lock here, so refuse inline instead.
        rejected.0.forget();
        st.streams.remove(&id);
        st.push(Frame::RstStream {
            stream_id: id,
            status: rst_status::REFUSED_STREAM,
        });
    }
}

fn settings(st: &mut State, entries: &[Setting]) {
    st.peer_flow_control = true;
    for e in entries {
        if e.id == SETTINGS_INITIAL_WINDOW_SIZE {
            let new = i64::from(e.value);
            let delta = new - st.initial_send_window;
            st.initial_send_window = new;
            for s in st.streams.values_mut() {
                s.send_window += delta;
            }
        }
    }
    st.wake_writers();
}
