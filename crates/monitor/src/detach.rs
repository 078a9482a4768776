//! Leaving the daemon. The daemon's direct child forks once and exits at once; the grandchild
//! (the monitor) starts a new session, so it has no controlling terminal and is re-parented to
//! init (or the nearest subreaper) — a daemon restart does not touch it. It becomes a child
//! subreaper itself so that the container's processes are re-parented to it.
//!
//! The monitor reports the start's outcome as one JSON line on the stdout it inherited (a pipe
//! the daemon reads), then points its stdout at /dev/null.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::{ForkResult, dup2, fork, setsid};

use crate::protocol::StartReport;
use crate::stdio::dev_null;

/// `Threads:` in /proc/self/status.
const THREADS_KEY: &str = "Threads:";
const STDOUT_FD: i32 = 1;

/// Which side of the fork we are on.
pub(crate) enum Detached {
    /// The daemon's direct child: exit now.
    Parent,
    /// The monitor, detached.
    Monitor(Reporter),
}

/// Forks away from the daemon. Refuses when other threads exist: after fork only the calling
/// thread survives, and whatever locks the others held stay locked in the child.
pub(crate) fn detach() -> io::Result<Detached> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "monitor must start single-threaded (found {threads} threads)"
        )));
    }
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => Ok(Detached::Parent),
        ForkResult::Child => {
            setsid()?;
            std::env::set_current_dir("/")?;
            // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and no pointers.
            let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            if rc == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(Detached::Monitor(Reporter { _private: () }))
        }
    }
}

fn thread_count() -> io::Result<usize> {
    let status = fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(THREADS_KEY))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no thread count in /proc/self/status"))
}

/// Sends the one start report to the daemon.
pub(crate) struct Reporter {
    _private: (),
}

impl Reporter {
    /// Writes the report line, then detaches stdout from the daemon's pipe.
    pub(crate) fn report(self, report: &StartReport) {
        let mut line = serde_json::to_vec(report).unwrap_or_default();
        line.push(b'\n');
        // SAFETY: fd 1 is the monitor's stdout, open for its whole life; borrowing it for the
        // write does not close it.
        let stdout = unsafe { std::os::fd::BorrowedFd::borrow_raw(STDOUT_FD) };
        let mut done = 0;
        while done < line.len() {
            match nix::unistd::write(stdout, &line[done..]) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    // The daemon gave up waiting; the container runs regardless.
                    tracing::warn!(error = %e, "cannot deliver start report");
                    break;
                }
            }
        }
        match dev_null() {
            Ok(null) => redirect_stdout(null),
            Err(e) => tracing::warn!(error = %e, "cannot open /dev/null for stdout"),
        }
    }
}

fn redirect_stdout(null: OwnedFd) {
    if let Err(e) = dup2(null.as_raw_fd(), STDOUT_FD) {
        tracing::warn!(error = %e, "cannot point stdout at /dev/null");
    }
}
