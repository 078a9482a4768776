//! Attach sessions. The monitor already reads all of the container's output (to log it), so an
//! attached client gets a copy: one fresh pipe per stream, whose read end is passed to the client.
//! For input the client gets a dup of the monitor's stdin write end (or the pty master) and
//! writes to the container directly. A session lasts as long as its connection.
//!
//! A client that stops reading must not stall the container or the log: each stream buffers up
//! to `MAX_BUFFERED` bytes, then that client's stream is cut off (it sees EOF).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;

use crate::connection::{peer_closed, send_fds};
use crate::protocol::Response;
use crate::stdio::{ContainerIo, pipe, set_nonblocking};

/// Output held for one slow attach stream before it is cut off.
const MAX_BUFFERED: usize = 1 << 20;

/// One stream's copy going to one client.
struct OutPipe {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl OutPipe {
    /// Queues and writes what the pipe takes; `false` if the stream is done for.
    fn push(&mut self, data: &[u8]) -> bool {
        if self.buf.is_empty() {
            match write_nowait(self.fd.as_fd(), data) {
                Ok(n) => self.buf.extend_from_slice(&data[n..]),
                Err(_) => return false,
            }
        } else {
            self.buf.extend_from_slice(data);
        }
        self.buf.len() <= MAX_BUFFERED
    }

    /// Writes queued bytes; `false` if the reader is gone.
    fn flush(&mut self) -> bool {
        match write_nowait(self.fd.as_fd(), &self.buf) {
            Ok(n) => {
                self.buf.drain(..n);
                true
            }
            Err(_) => false,
        }
    }
}

fn write_nowait(fd: BorrowedFd<'_>, data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < data.len() {
        match nix::unistd::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One attached client.
pub(crate) struct Session {
    pub id: u64,
    conn: UnixStream,
    outs: [Option<OutPipe>; 2],
    uses_stdin: bool,
}

/// Which streams a client asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// All attached clients.
#[derive(Default)]
pub(crate) struct Attaches {
    next_id: u64,
    sessions: Vec<Session>,
}

impl Attaches {
    /// Sets up a session and sends the client its fds.
    pub(crate) fn add(
        &mut self,
        conn: UnixStream,
        want: Want,
        io: &ContainerIo,
        tty: bool,
    ) -> std::io::Result<()> {
        let stdin = match (&io.stdin, want.stdin) {
            (Some(fd), true) => Some(fd.try_clone()?),
            _ => None,
        };
        let stdout = if want.stdout { Some(pipe()?) } else { None };
        // With a terminal everything arrives on the master and is logged as stdout.
        let stderr = if want.stderr && !tty {
            Some(pipe()?)
        } else {
            None
        };
        let mut fds: Vec<RawFd> = Vec::new();
        fds.extend(stdin.as_ref().map(AsRawFd::as_raw_fd));
        fds.extend(stdout.as_ref().map(|(r, _)| r.as_raw_fd()));
        fds.extend(stderr.as_ref().map(|(r, _)| r.as_raw_fd()));
        let reply = Response::Attached {
            stdin: stdin.is_some(),
            stdout: stdout.is_some(),
            stderr: stderr.is_some(),
            tty,
        };
        send_fds(&conn, &reply, &fds)?;
        // Our copies of the client's ends close here; the write ends stay with us.
        let out = |p: Option<(OwnedFd, OwnedFd)>| -> std::io::Result<Option<OutPipe>> {
            p.map(|(_, w)| {
                set_nonblocking(w.as_fd())?;
                Ok(OutPipe {
                    fd: w,
                    buf: Vec::new(),
                })
            })
            .transpose()
        };
        self.next_id += 1;
        self.sessions.push(Session {
            id: self.next_id,
            conn,
            outs: [out(stdout)?, out(stderr)?],
            uses_stdin: stdin.is_some(),
        });
        Ok(())
    }

    /// Copies output from stream `index` (0 stdout, 1 stderr) to every session that wants it.
    pub(crate) fn broadcast(&mut self, index: usize, data: &[u8]) {
        for session in &mut self.sessions {
            if let Some(out) = &mut session.outs[index]
                && !out.push(data)
            {
                tracing::warn!(
                    session = session.id,
                    "attach client too slow or gone; cutting its stream"
                );
                session.outs[index] = None;
            }
        }
    }

    /// Writes queued output after the pipe became writable again.
    pub(crate) fn flush(&mut self, id: u64, index: usize) {
        if let Some(session) = self.sessions.iter_mut().find(|s| s.id == id)
            && let Some(out) = &mut session.outs[index]
            && !out.flush()
        {
            session.outs[index] = None;
        }
    }

    /// Ends the session if its client hung up; returns whether it had stdin.
    pub(crate) fn check_hangup(&mut self, id: u64) -> Option<bool> {
        let pos = self.sessions.iter().position(|s| s.id == id)?;
        if !peer_closed(&self.sessions[pos].conn) {
            return None;
        }
        Some(self.sessions.swap_remove(pos).uses_stdin)
    }

    /// Polls wanted: each session's connection (for hang-up) and its streams with queued bytes.
    pub(crate) fn poll_fds(&self) -> Vec<(AttachFd, BorrowedFd<'_>)> {
        let mut fds = Vec::new();
        for s in &self.sessions {
            fds.push((AttachFd::Conn(s.id), s.conn.as_fd()));
            for (index, out) in s.outs.iter().enumerate() {
                if let Some(out) = out
                    && !out.buf.is_empty()
                {
                    fds.push((AttachFd::Out(s.id, index), out.fd.as_fd()));
                }
            }
        }
        fds
    }

    /// Ends every session (the container is gone): last try at queued bytes, then EOF.
    pub(crate) fn close_all(&mut self) {
        for mut s in self.sessions.drain(..) {
            for out in s.outs.iter_mut().flatten() {
                out.flush();
            }
        }
    }
}

/// What an attach fd in the poll set is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttachFd {
    Conn(u64),
    Out(u64, usize),
}
