//! Terminals. For a tty container or exec the runtime creates the pty inside the container (in
//! its own devpts) and sends the master back over a "console socket" with SCM_RIGHTS; both
//! libcontainer and the OCI runtime CLIs speak this. The monitor listens on that socket, keeps
//! the master, and sets the window size on it with TIOCSWINSZ.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::MsgFlags;

use crate::fd_passing::recv_with_fds;
use crate::sockpath::SocketPath;

/// The terminal's end-of-file character (VEOF, ^D in the default line discipline).
const VEOF_BYTE: u8 = 0x04;

/// A listening console socket; removed from the filesystem when dropped.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
    short: SocketPath,
    /// The runtime's connection, once accepted.
    conn: Option<UnixStream>,
}

impl ConsoleSocket {
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        let _ = fs::remove_file(path);
        let short = SocketPath::new(path)?;
        let listener = UnixListener::bind(short.as_path())?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
            short,
            conn: None,
        })
    }

    /// The path the runtime connects to (short enough for sun_path).
    pub(crate) fn path(&self) -> &Path {
        self.short.as_path()
    }

    /// Accepts the runtime's connection and takes the pty master from it. The runtime sends
    /// it before its create returns, so this normally finds it at once.
    pub(crate) fn receive_master(&mut self, timeout: Duration) -> io::Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(master) = self.try_receive_master()? {
                return Ok(master);
            }
            wait_readable(self.poll_fd(), deadline)?;
        }
    }

    /// What to poll while the master has not arrived: the listener until the runtime
    /// connects, then its connection.
    pub(crate) fn poll_fd(&self) -> BorrowedFd<'_> {
        match &self.conn {
            Some(conn) => conn.as_fd(),
            None => self.listener.as_fd(),
        }
    }

    /// One step towards the master without blocking: accepts the runtime's connection, then
    /// takes the master once it is there. `Ok(None)` means not yet.
    pub(crate) fn try_receive_master(&mut self) -> io::Result<Option<OwnedFd>> {
        if self.conn.is_none() {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true)?;
                    self.conn = Some(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let Some(stream) = &self.conn else {
            return Ok(None);
        };
        let mut buf = [0u8; 256];
        let mut fds = Vec::new();
        loop {
            match recv_with_fds(stream.as_fd(), &mut buf, &mut fds, MsgFlags::empty()) {
                Ok(_) if !fds.is_empty() => return Ok(Some(fds.swap_remove(0))),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "console socket closed without a pty master",
                    ));
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no pty master arrived on the console socket",
        ));
    }
    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) use longshore_monitor_client::fd::set_window_size;

/// Types the EOF character, which ends the reader's input on a terminal in canonical mode:
/// the closest a terminal has to closing stdin (used for `stdin_once`).
pub(crate) fn send_eof(master: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::write(master, &[VEOF_BYTE])?;
    Ok(())
}
