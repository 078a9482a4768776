//! One client connection on the monitor's side. Sockets stay blocking with a send timeout, so a
//! response goes out whole (they are small) and a client that stops reading costs the monitor at
//! most the timeout; reads use MSG_DONTWAIT so the poll loop never waits on a client.

use std::io::{self, Write};
use std::os::fd::{AsFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::fd_passing::{recv_with_fds, send_with_fds};
use crate::protocol::{FrameBuf, Request, Response, encode};

/// How long a response may wait for room in a client's socket buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected client and the bytes of its next request.
pub(crate) struct Conn {
    pub id: u64,
    pub stream: UnixStream,
    frames: FrameBuf,
}

/// What a read from a client produced.
pub(crate) enum Incoming {
    Requests(Vec<Request>),
    /// The client closed the connection (or sent garbage, which ends it too).
    Closed,
}

impl Conn {
    pub(crate) fn new(id: u64, stream: UnixStream) -> io::Result<Self> {
        stream.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Conn {
            id,
            stream,
            frames: FrameBuf::default(),
        })
    }

    /// Reads what is there and returns the whole requests it completes.
    pub(crate) fn read(&mut self) -> Incoming {
        let mut buf = [0u8; 4096];
        let mut requests = Vec::new();
        loop {
            match recv_nowait(&self.stream, &mut buf) {
                Ok(Some(0)) => return Incoming::Closed,
                Ok(Some(n)) => self.frames.push(&buf[..n]),
                Ok(None) => break,
                Err(_) => return Incoming::Closed,
            }
        }
        loop {
            match self.frames.next_message::<Request>() {
                Ok(Some(req)) => requests.push(req),
                Ok(None) => return Incoming::Requests(requests),
                Err(e) => {
                    tracing::warn!(error = %e, "bad request; closing connection");
                    return Incoming::Closed;
                }
            }
        }
    }
}

/// One non-blocking receive: `Some(0)` at EOF, `None` if nothing is waiting.
pub(crate) fn recv_nowait(stream: &UnixStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut ignored = Vec::new();
    loop {
        return match recv_with_fds(stream.as_fd(), buf, &mut ignored, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Whether the peer has closed (reads pending bytes and discards them).
pub(crate) fn peer_closed(stream: &UnixStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match recv_nowait(stream, &mut buf) {
            Ok(Some(0)) | Err(_) => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return false,
        }
    }
}

/// Sends a response.
pub(crate) fn send(stream: &UnixStream, msg: &Response) -> io::Result<()> {
    send_fds(stream, msg, &[])
}

/// Sends a response with file descriptors attached.
pub(crate) fn send_fds(stream: &UnixStream, msg: &Response, fds: &[RawFd]) -> io::Result<()> {
    let frame = encode(msg).map_err(io::Error::other)?;
    let sent = loop {
        match send_with_fds(stream.as_fd(), &frame, fds) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if sent < frame.len() {
        (&*stream).write_all(&frame[sent..])?;
    }
    Ok(())
}

/// Sends a response and logs (rather than fails on) a client that went away.
pub(crate) fn reply(stream: &UnixStream, msg: &Response) {
    if let Err(e) = send(stream, msg) {
        tracing::debug!(error = %e, "client went away before the reply");
    }
}
