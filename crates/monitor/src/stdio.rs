//! The container's stdio as the monitor holds it, and the small fd helpers around it.
//!
//! Without a terminal the container gets one pipe per stream: the monitor keeps the read ends of
//! stdout and stderr and, when stdin is open, the write end of stdin. With a terminal it keeps the
//! pty master, which carries both directions (all output is logged as stdout).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::executor::Stdio;

/// The monitor's ends of the container's stdio.
pub(crate) struct ContainerIo {
    /// Readable ends: `[stdout, stderr]`, or `[master, None]` with a terminal; `None` once at EOF.
    pub out: [Option<OwnedFd>; 2],
    /// Where attach clients write: the stdin pipe's write end, or the master; `None` when the
    /// container has no stdin or `stdin_once` closed it.
    pub stdin: Option<OwnedFd>,
    /// The pty master, for window size changes.
    pub master: Option<OwnedFd>,
}

impl ContainerIo {
    /// Pipes for a container without a terminal: the container's ends and the monitor's.
    pub(crate) fn pipes(with_stdin: bool) -> io::Result<(Stdio, ContainerIo)> {
        let (stdin_r, stdin_w) = if with_stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (dev_null()?, None)
        };
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        set_nonblocking(stdout_r.as_fd())?;
        set_nonblocking(stderr_r.as_fd())?;
        let theirs = Stdio {
            stdin: stdin_r,
            stdout: stdout_w,
            stderr: stderr_w,
        };
        let ours = ContainerIo {
            out: [Some(stdout_r), Some(stderr_r)],
            stdin: stdin_w,
            master: None,
        };
        Ok((theirs, ours))
    }

    /// The monitor's view of a container with a terminal.
    pub(crate) fn terminal(master: OwnedFd, with_stdin: bool) -> io::Result<ContainerIo> {
        set_nonblocking(master.as_fd())?;
        Ok(ContainerIo {
            out: [Some(master.try_clone()?), None],
            stdin: if with_stdin {
                Some(master.try_clone()?)
            } else {
                None
            },
            master: Some(master),
        })
    }

    /// Whether every output stream has reached EOF.
    pub(crate) fn outputs_closed(&self) -> bool {
        self.out.iter().all(Option::is_none)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// `/dev/null` opened read-write: stdin for a process that gets none.
pub(crate) fn dev_null() -> io::Result<OwnedFd> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

pub(crate) use longshore_monitor_client::fd::set_nonblocking;

/// The result of one non-blocking read.
pub(crate) enum ReadOutcome {
    Data(usize),
    /// EOF; for a pty master also EIO, which is how it reports that every slave fd is closed.
    Eof,
    WouldBlock,
}

pub(crate) fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        return match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(0) | Err(Errno::EIO) => Ok(ReadOutcome::Eof),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(Errno::EAGAIN) => Ok(ReadOutcome::WouldBlock),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}
