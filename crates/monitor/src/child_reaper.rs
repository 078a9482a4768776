//! Reaping. The monitor is a child subreaper, so the container's init (once the runtime's create
//! process has exited) and every orphan below it become its children. SIGCHLD is blocked and read
//! from a signalfd in the poll loop; each wake-up reaps every exited child with
//! `waitpid(-1, WNOHANG | __WALL)` (`__WALL` also catches children whose exit signal is not
//! SIGCHLD, as libcontainer clones them).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildExit {
    /// It called exit with this code.
    Exited(i32),
    /// This signal killed it.
    Signaled(i32),
}

impl ChildExit {
    /// The shell's convention: the code, or 128 + signal.
    pub(crate) fn code(self) -> i32 {
        match self {
            ChildExit::Exited(code) => code,
            ChildExit::Signaled(sig) => 128 + sig,
        }
    }

    pub(crate) fn success(self) -> bool {
        self == ChildExit::Exited(0)
    }

    fn from_status(status: WaitStatus) -> Option<(Pid, ChildExit)> {
        match status {
            WaitStatus::Exited(pid, code) => Some((pid, ChildExit::Exited(code))),
            WaitStatus::Signaled(pid, sig, _) => Some((pid, ChildExit::Signaled(sig as i32))),
            _ => None,
        }
    }
}

/// SIGCHLD as a pollable fd.
pub(crate) struct ChildReaper {
    signals: SignalFd,
}

impl ChildReaper {
    /// Blocks SIGCHLD and opens a signalfd for it. Children forked later must unblock it
    /// (`std::process::Command` does; the embedded executor's fork does it by hand).
    pub(crate) fn new() -> nix::Result<Self> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(ChildReaper { signals })
    }

    /// Readable when a child may have exited.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    /// Drains the signalfd and reaps every child that has exited.
    pub(crate) fn reap(&mut self) -> Vec<(Pid, ChildExit)> {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        let mut exited = Vec::new();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(status) => exited.extend(ChildExit::from_status(status)),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    break;
                }
            }
        }
        exited
    }
}

/// Waits for one child (used while starting, before the poll loop runs).
pub(crate) fn wait_for(pid: Pid) -> nix::Result<ChildExit> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(status) => {
                if let Some((_, exit)) = ChildExit::from_status(status) {
                    return Ok(exit);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shell_convention() {
        assert_eq!(ChildExit::Exited(3).code(), 3);
        assert_eq!(ChildExit::Signaled(15).code(), 143);
        assert!(ChildExit::Exited(0).success());
        assert!(!ChildExit::Signaled(9).success());
    }
}
