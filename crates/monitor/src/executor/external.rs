//! The external executor: an OCI runtime CLI (runc, crun, youki) from the daemon's runtime
//! handlers, driven the way conmon drives it:
//!
//! - `<rt> --root R --log L --log-format json create --bundle B --pid-file P [--console-socket S] <id>`
//!   with the container's stdio pipes as the runtime's own stdio (runc hands them to the
//!   container when it detaches without a terminal), then `<rt> ... start <id>`;
//! - exec: `<rt> ... exec --detach --pid-file P --process J [--console-socket S] <id>`;
//! - after the exit: `<rt> ... delete --force <id>`.
//!
//! Each call gets its own `--log` file; on failure the last `error` entry in it is the message
//! (e.g. runc's `exec: "/does/not/exist": stat /does/not/exist: no such file or directory`).
//! Signals go straight to the pid with kill(2), not through the runtime.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio as CommandStdio};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::unistd::Pid;
use serde::Deserialize;

use super::{CheckpointRequest, ExecutorError, PendingExec, ProcessIo, Stdio};
use crate::child_reaper::ChildExit;
use crate::signals;

/// Counter that gives each runtime call its own log and pid file names.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// One entry of the runtime's `--log-format json` log.
#[derive(Deserialize)]
struct LogEntry {
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
}

/// Drives an OCI runtime binary.
pub(crate) struct External {
    id: String,
    bundle: PathBuf,
    binary: PathBuf,
    root: PathBuf,
    state_dir: PathBuf,
    restore_from: Option<PathBuf>,
}

/// Per-call files in the state dir: the runtime's log and pid file.
struct CallFiles {
    log: PathBuf,
    pid: PathBuf,
}

impl CallFiles {
    fn new(state_dir: &Path, op: &str) -> Self {
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        CallFiles {
            log: state_dir.join(format!("runtime-{op}-{n}.log")),
            pid: state_dir.join(format!("runtime-{op}-{n}.pid")),
        }
    }

    fn remove(&self) {
        let _ = fs::remove_file(&self.log);
        let _ = fs::remove_file(&self.pid);
    }

    fn read_pid(&self) -> Result<Pid, ExecutorError> {
        let text = fs::read_to_string(&self.pid).map_err(|source| ExecutorError::File {
            what: "reading runtime pid file",
            path: self.pid.clone(),
            source,
        })?;
        text.trim()
            .parse()
            .map(Pid::from_raw)
            .map_err(|_| ExecutorError::File {
                what: "parsing runtime pid file",
                path: self.pid.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, text.clone()),
            })
    }

    /// The runtime's own explanation of a failure, from its JSON log.
    fn failure(&self, binary: &Path, op: &str, status: impl std::fmt::Display) -> ExecutorError {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let message = last_error(&text)
            .unwrap_or_else(|| format!("{} {op} failed with {status}", binary.display()));
        ExecutorError::Runtime(message)
    }
}

/// The last error-level message in a runtime's JSON log.
fn last_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<LogEntry>(line).ok())
        .find(|e| e.level == "error" || e.level == "fatal")
        .map(|e| e.msg)
}

impl External {
    pub(crate) fn new(
        id: &str,
        bundle: &Path,
        binary: &Path,
        root: &Path,
        state_dir: &Path,
        restore_from: Option<&Path>,
    ) -> Self {
        External {
            id: id.to_owned(),
            bundle: bundle.to_path_buf(),
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            restore_from: restore_from.map(Path::to_path_buf),
        }
    }

    /// `<rt> restore --detach --bundle B --image-path I --work-path W --pid-file P`, with the
    /// container's stdio as the runtime's own: runc hands them to CRIU, which puts them where
    /// the checkpointed process had its pipes (`descriptors.json` in the images).
    fn restore(&self, images: &Path, io: ProcessIo<'_>) -> Result<Pid, ExecutorError> {
        let work = self.state_dir.join(super::RESTORE_WORK_DIR);
        fs::create_dir_all(&work).map_err(|source| ExecutorError::File {
            what: "creating the restore work folder",
            path: work.clone(),
            source,
        })?;
        let files = CallFiles::new(&self.state_dir, "restore");
        let mut cmd = self.command(&files);
        cmd.arg("restore")
            .arg("--detach")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--image-path")
            .arg(images)
            .arg("--work-path")
            .arg(&work)
            .arg("--manage-cgroups-mode")
            .arg("soft")
            .arg("--pid-file")
            .arg(&files.pid);
        Self::set_stdio(&mut cmd, io);
        cmd.arg(&self.id);
        let status = self.run(cmd)?;
        let result = if status.success() {
            files.read_pid()
        } else {
            let mut err = files.failure(&self.binary, "restore", status);
            if let ExecutorError::Runtime(message) = &mut err {
                message.push_str(&super::criu_errors(&[work.join(super::CRIU_RESTORE_LOG)]));
            }
            Err(err)
        };
        files.remove();
        result
    }

    fn command(&self, files: &CallFiles) -> Command {
        let mut cmd = Command::new(&self.binary);
        // glibc's posix_spawn (std's fast path) leaves its internal signals 32 and 33 ignored in
        // the child, and the runtime would pass that on to the container. A pre_exec hook makes
        // std fork and exec instead, and resets every disposition on the way.
        // SAFETY: the hook only makes rt_sigaction system calls, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                signals::reset_dispositions();
                Ok(())
            });
        }
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&files.log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Gives the runtime the process's stdio; with a terminal the runtime makes its own.
    fn set_stdio(cmd: &mut Command, io: ProcessIo<'_>) {
        match io {
            ProcessIo::Pipes(Stdio {
                stdin,
                stdout,
                stderr,
            }) => {
                cmd.stdin(stdin).stdout(stdout).stderr(stderr);
            }
            ProcessIo::Terminal { console_socket } => {
                cmd.arg("--console-socket").arg(console_socket);
                cmd.stdin(CommandStdio::null())
                    .stdout(CommandStdio::null())
                    .stderr(CommandStdio::null());
            }
        }
    }

    fn run(&self, mut cmd: Command) -> Result<ExitStatus, ExecutorError> {
        cmd.status().map_err(|source| ExecutorError::Spawn {
            binary: self.binary.clone(),
            source,
        })
    }

    fn quiet(cmd: &mut Command) -> &mut Command {
        cmd.stdin(CommandStdio::null())
            .stdout(CommandStdio::null())
            .stderr(CommandStdio::null())
    }
}

impl super::Executor for External {
    fn start(&self, io: ProcessIo<'_>) -> Result<Pid, ExecutorError> {
        if let Some(images) = &self.restore_from {
            return self.restore(images, io);
        }
        let create = CallFiles::new(&self.state_dir, "create");
        let mut cmd = self.command(&create);
        cmd.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--pid-file")
            .arg(&create.pid);
        Self::set_stdio(&mut cmd, io);
        cmd.arg(&self.id);
        let status = self.run(cmd)?;
        if !status.success() {
            let err = create.failure(&self.binary, "create", status);
            create.remove();
            return Err(err);
        }
        let pid = create.read_pid();
        create.remove();
        let pid = pid?;

        let start = CallFiles::new(&self.state_dir, "start");
        let mut cmd = self.command(&start);
        Self::quiet(&mut cmd).arg("start").arg(&self.id);
        let status = self.run(cmd)?;
        if !status.success() {
            let err = start.failure(&self.binary, "start", status);
            start.remove();
            self.delete();
            return Err(err);
        }
        start.remove();
        Ok(pid)
    }

    fn begin_exec(
        &self,
        process_json: &Path,
        io: ProcessIo<'_>,
    ) -> Result<Box<dyn PendingExec>, ExecutorError> {
        let files = CallFiles::new(&self.state_dir, "exec");
        let mut cmd = self.command(&files);
        cmd.arg("exec")
            .arg("--detach")
            .arg("--pid-file")
            .arg(&files.pid)
            .arg("--process")
            .arg(process_json);
        Self::set_stdio(&mut cmd, io);
        cmd.arg(&self.id);
        // Not waited for here: the monitor's reaper collects it, then calls `finish`.
        let child = cmd.spawn().map_err(|source| ExecutorError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        Ok(Box::new(RuntimeExec {
            creator: Pid::from_raw(child.id() as i32),
            files,
            binary: self.binary.clone(),
        }))
    }

    fn delete(&self) {
        let files = CallFiles::new(&self.state_dir, "delete");
        let mut cmd = self.command(&files);
        Self::quiet(&mut cmd)
            .arg("delete")
            .arg("--force")
            .arg(&self.id);
        match self.run(cmd) {
            Ok(status) if status.success() => {}
            Ok(status) => {
                let err = files.failure(&self.binary, "delete", status);
                tracing::warn!(error = %err, "runtime delete failed");
            }
            Err(e) => tracing::warn!(error = %e, "runtime delete failed"),
        }
        files.remove();
    }

    /// `<rt> checkpoint --image-path I --work-path W [--leave-running] --manage-cgroups-mode soft`.
    fn checkpoint(&self, request: &CheckpointRequest) -> Result<(), ExecutorError> {
        let files = CallFiles::new(&self.state_dir, "checkpoint");
        let mut cmd = self.command(&files);
        Self::quiet(&mut cmd)
            .arg("checkpoint")
            .arg("--image-path")
            .arg(&request.image_path)
            .arg("--work-path")
            .arg(&request.work_path)
            .arg("--manage-cgroups-mode")
            .arg("soft");
        if request.leave_running {
            cmd.arg("--leave-running");
        }
        cmd.arg(&self.id);
        let status = self.run(cmd)?;
        let result = if status.success() {
            Ok(())
        } else {
            Err(files.failure(&self.binary, "checkpoint", status))
        };
        files.remove();
        result
    }
}

/// A running `<rt> exec --detach`.
struct RuntimeExec {
    creator: Pid,
    files: CallFiles,
    binary: PathBuf,
}

impl PendingExec for RuntimeExec {
    fn creator(&self) -> Pid {
        self.creator
    }

    fn finish(self: Box<Self>, creator_exit: ChildExit) -> Result<Pid, ExecutorError> {
        let result = if creator_exit.success() {
            self.files.read_pid()
        } else {
            Err(self.files.failure(
                &self.binary,
                "exec",
                format_args!("exit code {}", creator_exit.code()),
            ))
        };
        self.files.remove();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_picks_the_runtimes_message() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"meh\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"runc create failed: boom\",\"time\":\"t\"}\n",
            "not json\n"
        );
        assert_eq!(last_error(log).as_deref(), Some("runc create failed: boom"));
        assert_eq!(last_error(""), None);
    }
}
