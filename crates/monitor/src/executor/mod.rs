//! Executors create, start and delete the container and start exec processes in it. Two sit
//! behind one trait: [`embedded::Embedded`] (youki's libcontainer, no binary needed) and
//! [`external::External`] (an OCI runtime CLI such as runc, crun or youki).
//!
//! The process model is the same for both: the work happens in a short-lived child of the
//! monitor (a fork running libcontainer, or the runtime binary). The container's init, or the exec
//! process, ends up as that child's child; when the child exits the kernel re-parents it to the
//! monitor, which is a child subreaper, so the monitor reaps it and learns its exit status.
//! Doing libcontainer's work in a fork also keeps its memory out of the long-lived monitor.

pub(crate) mod embedded;
mod embedded_restore;
pub(crate) mod external;
mod tenant_seccomp;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::child_reaper::ChildExit;
use crate::config::{EMBEDDED_ROOT_DIR, ExecutorConfig, MonitorConfig};

/// The process's ends of its stdio pipes.
pub(crate) struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// How a new process gets its stdio.
pub(crate) enum ProcessIo<'a> {
    /// Pipes (or /dev/null for stdin) set up by the monitor.
    Pipes(Stdio),
    /// A pty the runtime creates; it sends the master to this console socket.
    Terminal { console_socket: &'a Path },
}

/// Why an executor could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecutorError {
    /// The runtime's own explanation (what the daemon shows the user).
    #[error("{0}")]
    Runtime(String),
    /// The runtime binary could not be run.
    #[error("failed to run {binary:?}: {source}")]
    Spawn { binary: PathBuf, source: io::Error },
    /// A file the executor works with.
    #[error("{what} {path:?}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// fork, pipe or waitpid failed.
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
}

/// An exec process being started by a child of the monitor (the creator).
pub(crate) trait PendingExec {
    /// The creator's pid; the monitor calls [`PendingExec::finish`] when it reaps it.
    fn creator(&self) -> Pid;
    /// The exec process's pid, or why it did not start.
    fn finish(self: Box<Self>, creator_exit: ChildExit) -> Result<Pid, ExecutorError>;
}

/// CRIU's work folder for a restore, in the state dir.
pub(crate) const RESTORE_WORK_DIR: &str = "restore-work";

/// The log CRIU writes in the work directory of a dump (libcontainer's and runc's name).
pub(crate) const CRIU_DUMP_LOG: &str = "dump.log";

/// The log CRIU writes in the work directory of a restore.
pub(crate) const CRIU_RESTORE_LOG: &str = "restore.log";

/// CRIU's own error lines (the last few `Error (...)` lines of these logs) as ` (criu: ...)`, to
/// add to a failure's message; empty when there are none.
pub(crate) fn criu_errors(logs: &[PathBuf]) -> String {
    let lines: Vec<String> = logs
        .iter()
        .filter_map(|log| std::fs::read_to_string(log).ok())
        .flat_map(|text| error_lines(&text))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (criu: {})", lines.join("; "))
    }
}

/// The `Error (...)` lines of a CRIU log, the last few.
fn error_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter(|l| l.contains("Error (") || l.starts_with("Error"))
        .map(|l| l.trim().to_owned())
        .collect();
    let keep = lines.len().saturating_sub(4);
    lines.drain(..keep);
    lines
}

/// A checkpoint to make of the running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointRequest {
    /// Where CRIU writes its images.
    pub image_path: PathBuf,
    /// CRIU's work directory (its logs).
    pub work_path: PathBuf,
    /// Keep the container running after the dump (kubelet's checkpoints do).
    pub leave_running: bool,
}

/// Creates, starts and deletes one container, and starts exec processes in it.
pub(crate) trait Executor {
    /// Creates and starts the container (or restores it, when the config says so); returns its
    /// init pid once it runs the user's command.
    fn start(&self, io: ProcessIo<'_>) -> Result<Pid, ExecutorError>;
    /// Begins starting an exec process described by the OCI process JSON file.
    fn begin_exec(
        &self,
        process_json: &Path,
        io: ProcessIo<'_>,
    ) -> Result<Box<dyn PendingExec>, ExecutorError>;
    /// Removes the runtime's state for the exited container (errors are logged).
    fn delete(&self);
    /// Dumps the running container with CRIU.
    fn checkpoint(&self, request: &CheckpointRequest) -> Result<(), ExecutorError>;
}

/// The executor the config asks for.
pub(crate) fn from_config(cfg: &MonitorConfig) -> Box<dyn Executor> {
    match &cfg.executor {
        ExecutorConfig::Embedded => Box::new(embedded::Embedded::new(
            &cfg.container_id,
            &cfg.bundle,
            &cfg.state_dir.join(EMBEDDED_ROOT_DIR),
            cfg.restore_from.as_ref().map(|images| embedded::Restore {
                images: images.clone(),
                work: cfg.state_dir.join(RESTORE_WORK_DIR),
                cgroup_dirs: cfg.cgroup_dirs.clone(),
            }),
        )),
        ExecutorConfig::External { binary, root } => Box::new(external::External::new(
            &cfg.container_id,
            &cfg.bundle,
            binary,
            root,
            &cfg.state_dir,
            cfg.restore_from.as_deref(),
        )),
    }
}

/// An error and its causes on one line: libcontainer wraps the interesting part deep inside.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_error_lines_are_the_last_errors() {
        let log = "(00.001) ok\n(00.002) Error (criu/vdso.c:381): vdso: bad\nx\n\
                   (00.003) Error (criu/kerndat.c:1615): failed\n";
        assert_eq!(
            error_lines(log),
            vec![
                "(00.002) Error (criu/vdso.c:381): vdso: bad",
                "(00.003) Error (criu/kerndat.c:1615): failed"
            ]
        );
        assert!(error_lines("all good\n").is_empty());
    }
}
