//! Signal dispositions. Ignored signals and the signal mask survive exec, so whatever the
//! daemon's process passed down would reach every container: glibc's posix_spawn (behind
//! `std::process::Command`) sets its internal real-time signals 32 and 33 to SIG_IGN in the
//! child, and Rust ignores SIGPIPE. The monitor resets every disposition to the default when it
//! starts, then ignores SIGPIPE for itself only (it wants EPIPE from a gone client, not death);
//! its creator child puts SIGPIPE back before making container processes, caught by a handler
//! that does nothing: libcontainer writes the container state to each OCI hook's stdin and
//! expects EPIPE from a hook that exits without reading it, and a caught signal (unlike an
//! ignored one) is back to its default in every program the creator's children exec.

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};

/// The kernel's highest signal number (`_NSIG - 1` on Linux).
const LAST_SIGNAL: i32 = 64;

/// The kernel's `struct sigaction` for `rt_sigaction(2)` on x86_64 and aarch64.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets every signal's disposition to the default. glibc's `sigaction` refuses its internal
/// signals, so this goes to the kernel directly.
pub(crate) fn reset_dispositions() {
    for sig in 1..=LAST_SIGNAL {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        set_default(sig);
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn set_default(sig: i32) {
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads one kernel sigaction (valid for the call) and, with a null old
    // pointer, writes nothing; SIG_DFL installs no handler code.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        );
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn set_default(sig: i32) {
    if let Ok(sig) = Signal::try_from(sig) {
        // SAFETY: the default disposition installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// The monitor itself ignores SIGPIPE: writing to a client that went away must fail, not kill.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// For a child that will make container processes: nothing blocked, nothing ignored, SIGPIPE
/// caught (EPIPE instead of death while it writes to hooks; the default again after exec).
pub(crate) fn restore_for_child() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    reset_dispositions();
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::Handler(on_sigpipe)) };
}

extern "C" fn on_sigpipe(_: libc::c_int) {}
