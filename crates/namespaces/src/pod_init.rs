//! PID 1 of a pod's shared PID namespace.
//!
//! A PID namespace ends when its first process exits, so a pod that shares one needs a process
//! that lives as long as the pod. `longshore pod-init` is that process: it unshares a PID
//! namespace, forks its PID 1, prints that child's host PID and exits; the child reaps orphans and
//! waits for SIGTERM or SIGKILL. The daemon pins `/proc/<pid>/ns/pid` next to the pod's other pins.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{MntFlags, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, setsid};

use crate::NamespaceError;

/// The file the PID namespace is pinned at, inside the pod's namespace folder.
const PID_PIN: &str = "pid";

/// A running pod init process and its pinned PID namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInit {
    /// Host PID of the namespace's PID 1.
    pub pid: i32,
    /// The pin file of its PID namespace.
    pub pin: PathBuf,
}

impl PodInit {
    /// Runs `<exe> pod-init` (the daemon's own binary), waits for it to report its PID 1, and pins
    /// that process's PID namespace at `<dir>/pid`.
    ///
    /// With `userns` (a pinned user namespace) pod-init runs as root inside it, so that the PID
    /// namespace it makes is owned by it and the pod's containers, which join the user namespace
    /// first, may join the PID namespace too.
    pub fn start(exe: &Path, dir: &Path, userns: Option<&Path>) -> Result<PodInit, NamespaceError> {
        // The folder goes on its command line only so that `ps` shows which pod it serves.
        let mut cmd = Command::new(exe);
        cmd.arg("pod-init")
            .arg(dir)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(path) = userns {
            let ns =
                std::fs::File::open(path).map_err(|e| crate::pin::path_err("open", path, e))?;
            // SAFETY: the closure runs in the forked child before exec and makes only
            // async-signal-safe syscalls (setns, setgroups, setresgid, setresuid).
            unsafe { cmd.pre_exec(move || enter_as_root(&ns)) };
        }
        let output = cmd
            .output()
            .map_err(|e| NamespaceError::PodInit(format!("cannot run {}: {e}", exe.display())))?;
        if !output.status.success() {
            return Err(NamespaceError::PodInit(format!(
                "{} pod-init failed ({}): {}",
                exe.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let pid: i32 = text.trim().parse().map_err(|_| {
            NamespaceError::PodInit(format!("pod-init printed {text:?}, not a pid"))
        })?;
        let pin = dir.join(PID_PIN);
        let pinned = pin_pid_namespace(pid, dir, &pin);
        if let Err(e) = pinned {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            return Err(e);
        }
        Ok(PodInit { pid, pin })
    }

    /// Kills the pod's PID 1 (and so every process of the namespace) if it is still the process
    /// this pin belongs to, then releases the pin. Safe to repeat.
    pub fn stop(pid: i32, dir: &Path) -> Result<(), NamespaceError> {
        let pin = dir.join(PID_PIN);
        if same_namespace(pid, &pin) {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(source) => {
                    return Err(NamespaceError::Sys {
                        op: "kill pod init",
                        source,
                    });
                }
            }
        }
        match umount2(&pin, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(NamespaceError::Path {
                    op: "unmount",
                    path: pin,
                    source,
                });
            }
        }
        let _ = std::fs::remove_file(&pin);
        Ok(())
    }

    /// Kills every process in the PID namespace pinned in `dir` and releases the pin, for a
    /// pod whose PID 1 was never recorded (a daemon that died between starting it and noting
    /// its PID). Returns how many processes were killed; safe when nothing is pinned.
    pub fn stop_pinned(dir: &Path) -> Result<usize, NamespaceError> {
        let pin = dir.join(PID_PIN);
        let Ok(pinned) = std::fs::metadata(&pin) else {
            return Ok(0);
        };
        let mut killed = 0;
        for pid in pids_in_namespace(pinned.dev(), pinned.ino()) {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        // The namespace's PID 1 may be one we did not see start; stop() releases the pin.
        PodInit::stop(0, dir)?;
        Ok(killed)
    }

    /// Whether the pod's PID 1 still runs.
    pub fn is_alive(pid: i32, dir: &Path) -> bool {
        same_namespace(pid, &dir.join(PID_PIN))
    }
}

/// Joins the user namespace `ns` and becomes its root (so exec keeps the capabilities there).
fn enter_as_root(ns: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls on a valid fd and constant arguments, in a single-threaded child.
    unsafe {
        check(libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUSER))?;
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(0, 0, 0))?;
        check(libc::setresuid(0, 0, 0))
    }
}

fn pin_pid_namespace(pid: i32, dir: &Path, pin: &Path) -> Result<(), NamespaceError> {
    std::fs::create_dir_all(dir).map_err(|e| crate::pin::path_err("create", dir, e))?;
    std::fs::File::create(pin).map_err(|e| crate::pin::path_err("create", pin, e))?;
    let source = PathBuf::from(format!("/proc/{pid}/ns/pid"));
    crate::pin::bind_namespace(&source, pin)
}

/// True when `/proc/<pid>/ns/pid` is the namespace pinned at `pin` (so the PID was not reused).
fn same_namespace(pid: i32, pin: &Path) -> bool {
    let live = std::fs::metadata(format!("/proc/{pid}/ns/pid"));
    let pinned = std::fs::metadata(pin);
    match (live, pinned) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Host PIDs of the processes whose PID namespace is the file (`dev`, `ino`).
fn pids_in_namespace(dev: u64, ino: u64) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        })
        .collect()
}

/// The body of `longshore pod-init`. Returns the exit code of the launching process; the PID 1
/// child never returns.
pub fn pod_init_main() -> i32 {
    if let Err(e) = setsid() {
        eprintln!("pod-init: setsid: {e}");
        return 1;
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        eprintln!("pod-init: unshare(CLONE_NEWPID): {e}");
        return 1;
    }
    // SAFETY: pod-init runs single-threaded (it is exec'd fresh), so fork is safe.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            let mut out = std::io::stdout();
            if writeln!(out, "{child}").and_then(|_| out.flush()).is_err() {
                let _ = kill(child, Signal::SIGKILL);
                return 1;
            }
            0
        }
        Ok(ForkResult::Child) => reap_forever(),
        Err(e) => {
            eprintln!("pod-init: fork: {e}");
            1
        }
    }
}

/// PID 1's loop: reap every orphan, leave on SIGTERM or SIGINT.
fn reap_forever() -> ! {
    let _ = nix::unistd::chdir("/");
    redirect_stdio_to_null();
    let mut signals = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(s);
    }
    // Blocked signals stay pending for sigwait, so none is lost between two waits.
    let _ = signals.thread_block();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_all(),
            Ok(_) => std::process::exit(0),
            Err(_) => continue,
        }
    }
}

fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn redirect_stdio_to_null() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this single-threaded process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
