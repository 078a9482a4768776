//! The embedded executor: youki's `libcontainer` 0.7, linked into Longshore.
//!
//! Why libcontainer: it is the only maintained OCI runtime written as a Rust library (youki's
//! core), so a container starts without exec'ing a runtime binary, without a Go runtime's
//! start-up cost, and with one less thing to install and version. It speaks plain OCI bundles,
//! so it and the external executor take the same `config.json`. Features: cgroup v1 and v2
//! managers and libseccomp; no systemd (Longshore drives cgroupfs paths itself).
//!
//! Process model. libcontainer's create runs in the calling process and blocks on handshakes
//! with the processes it clones: it clones an intermediate process, which clones the container
//! init with CLONE_PARENT so that init is the *caller's* child (we keep `as_sibling(false)`; with
//! `true` init would become the caller's sibling and the monitor could not reap it). The caller
//! here is a fork of the monitor (the creator). When the creator exits, init is re-parented to
//! the monitor because the monitor is a child subreaper, and the kernel gives it SIGCHLD as its
//! exit signal again. Exec (libcontainer's tenant builder) works the same way. Working in a fork
//! also keeps libcontainer's side effects on the calling process (`PR_SET_DUMPABLE` off, the
//! spec's `oom_score_adj`, chdir for long socket paths) and its heap out of the monitor.

use std::fs::{self, DirBuilder};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{CheckpointOptions, Container};
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use serde::{Deserialize, Serialize};

use super::{CheckpointRequest, ExecutorError, PendingExec, ProcessIo, error_chain};
use crate::child_reaper::{ChildExit, wait_for};
use crate::signals;

/// libcontainer's state directory is private to root.
const ROOT_DIR_MODE: u32 = 0o700;

/// What the creator child tells the monitor through its report pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CreatorReport {
    Created { pid: i32 },
    Failed { message: String },
}

/// Runs containers with libcontainer, keeping its state under `root` (in the state dir).
pub(crate) struct Embedded {
    id: String,
    bundle: PathBuf,
    root: PathBuf,
    restore: Option<Restore>,
}

/// A checkpoint to restore instead of starting afresh.
pub(crate) struct Restore {
    /// The CRIU images.
    pub images: PathBuf,
    /// CRIU's work folder.
    pub work: PathBuf,
    /// The container's cgroup folders, joined before CRIU runs.
    pub cgroup_dirs: Vec<PathBuf>,
}

impl Embedded {
    pub(crate) fn new(id: &str, bundle: &Path, root: &Path, restore: Option<Restore>) -> Self {
        Embedded {
            id: id.to_owned(),
            bundle: bundle.to_path_buf(),
            root: root.to_path_buf(),
            restore,
        }
    }

    fn builder(&self, io: ProcessIo<'_>) -> Result<ContainerBuilder, String> {
        let builder = ContainerBuilder::new(self.id.clone(), SyscallType::default())
            .with_root_path(&self.root)
            .map_err(|e| error_chain(&e))?
            .validate_id()
            .map_err(|e| error_chain(&e))?;
        Ok(match io {
            ProcessIo::Pipes(stdio) => builder
                .with_stdin(stdio.stdin)
                .with_stdout(stdio.stdout)
                .with_stderr(stdio.stderr),
            ProcessIo::Terminal { console_socket } => {
                builder.with_console_socket(Some(console_socket))
            }
        })
    }

    /// Runs in the creator child: create, then start (delete again if start fails).
    fn create_and_start(&self, io: ProcessIo<'_>) -> Result<i32, String> {
        let mut container = self
            .builder(io)?
            .as_init(&self.bundle)
            .with_systemd(false)
            .with_detach(true)
            .as_sibling(false)
            .build()
            .map_err(|e| error_chain(&e))?;
        if let Err(e) = container.start() {
            let message = error_chain(&e);
            if let Err(e) = container.delete(true) {
                tracing::warn!(error = %error_chain(&e), "failed to delete container after failed start");
            }
            return Err(message);
        }
        container
            .pid()
            .map(Pid::as_raw)
            .ok_or_else(|| "libcontainer started the container but recorded no pid".to_owned())
    }

    /// Runs in the creator child: restore the container from its checkpoint.
    fn restore(&self, restore: &Restore, io: ProcessIo<'_>) -> Result<i32, String> {
        let ProcessIo::Pipes(stdio) = io else {
            return Err("a container with a terminal cannot be restored".into());
        };
        let input = super::embedded_restore::RestoreInput {
            id: &self.id,
            bundle: &self.bundle,
            root: &self.root,
            images: &restore.images,
            work: &restore.work,
            cgroup_dirs: &restore.cgroup_dirs,
        };
        super::embedded_restore::restore(&input, stdio)
    }

    /// Runs in the creator child: start the process from `process_json` in the container.
    fn exec(&self, process_json: &Path, io: ProcessIo<'_>) -> Result<i32, String> {
        let config = self.bundle.join("config.json");
        let spec = libcontainer::oci_spec::runtime::Spec::load(&config)
            .map_err(|e| format!("reading {}: {e}", config.display()))?;
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        if let Some(userns) = joined_user_namespace(&spec) {
            enter_user_namespace(&userns)?;
        }
        self.builder(io)?
            .with_executor(super::tenant_seccomp::TenantSeccomp { seccomp })
            .as_tenant()
            .with_process(Some(process_json))
            .with_detach(true)
            .as_sibling(false)
            .build()
            .map(Pid::as_raw)
            .map_err(|e| error_chain(&e))
    }
}

/// The user namespace the container joined by path (its pod's), if any.
fn joined_user_namespace(spec: &libcontainer::oci_spec::runtime::Spec) -> Option<PathBuf> {
    use libcontainer::oci_spec::runtime::LinuxNamespaceType;
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)?
        .path()
        .clone()
}

/// libcontainer 0.7's tenant builder joins the init's ipc, uts, net, pid, mnt, cgroup and time
/// namespaces but not its user namespace, so an exec'd process of a user-namespaced container
/// would run as the host's root. The creator (a single-threaded fork of the monitor) joins it
/// first: everything the tenant is then given (its ids, its capabilities) is inside it, and the
/// other namespaces, all owned by it, can still be joined. The creator keeps its host uid 0 for
/// the files it writes (libcontainer state, the tenant's cgroup.procs), as their owner.
fn enter_user_namespace(path: &Path) -> Result<(), String> {
    let ns = fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("joining the user namespace {}: {e}", path.display()))
}

impl super::Executor for Embedded {
    fn start(&self, io: ProcessIo<'_>) -> Result<Pid, ExecutorError> {
        DirBuilder::new()
            .recursive(true)
            .mode(ROOT_DIR_MODE)
            .create(&self.root)
            .map_err(|source| ExecutorError::File {
                what: "creating libcontainer root",
                path: self.root.clone(),
                source,
            })?;
        let creation = match &self.restore {
            Some(restore) => fork_creator(|| self.restore(restore, io))?,
            None => fork_creator(|| self.create_and_start(io))?,
        };
        let exit = wait_for(creation.pid).map_err(|source| ExecutorError::Sys {
            what: "waiting for the container creator",
            source,
        })?;
        Box::new(creation).finish(exit)
    }

    fn begin_exec(
        &self,
        process_json: &Path,
        io: ProcessIo<'_>,
    ) -> Result<Box<dyn PendingExec>, ExecutorError> {
        Ok(Box::new(fork_creator(|| self.exec(process_json, io))?))
    }

    fn delete(&self) {
        let dir = self.root.join(&self.id);
        if !dir.exists() {
            return;
        }
        match Container::load(dir) {
            Ok(mut container) => {
                if let Err(e) = container.delete(true) {
                    tracing::warn!(error = %error_chain(&e), "libcontainer delete failed");
                }
            }
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot load libcontainer state"),
        }
        let _ = fs::remove_dir(&self.root);
    }

    /// libcontainer's checkpoint (CRIU through its RPC socket, `rust-criu`), with the container
    /// state libcontainer keeps under `root`. Bind mounts, cgroup v1 mounts and the network and
    /// PID namespaces joined by path are declared external, as runc does, so a restore can
    /// bring them from the new pod.
    fn checkpoint(&self, request: &CheckpointRequest) -> Result<(), ExecutorError> {
        let mut container = Container::load(self.root.join(&self.id))
            .map_err(|e| ExecutorError::Runtime(error_chain(&e)))?;
        let options = CheckpointOptions {
            ext_unix_sk: false,
            file_locks: false,
            image_path: request.image_path.clone(),
            leave_running: request.leave_running,
            shell_job: false,
            tcp_established: false,
            work_path: Some(request.work_path.clone()),
            manage_cgroups_mode: rust_criu::CgMode::SOFT,
            link_remap: false,
        };
        container
            .checkpoint(&options)
            .map_err(|e| ExecutorError::Runtime(format!("checkpoint: {}", error_chain(&e))))
    }
}

/// A creator child and the read end of its report pipe.
struct Creation {
    pid: Pid,
    report: OwnedFd,
}

impl PendingExec for Creation {
    fn creator(&self) -> Pid {
        self.pid
    }

    fn finish(self: Box<Self>, creator_exit: ChildExit) -> Result<Pid, ExecutorError> {
        // The creator wrote its report before exiting; the pipe holds it all (it is far below
        // the pipe's capacity), so a non-blocking read finds it.
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.report), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => {
                    return Err(ExecutorError::Sys {
                        what: "reading the creator's report",
                        source,
                    });
                }
            }
        }
        match serde_json::from_slice::<CreatorReport>(&bytes) {
            Ok(CreatorReport::Created { pid }) => Ok(Pid::from_raw(pid)),
            Ok(CreatorReport::Failed { message }) => Err(ExecutorError::Runtime(message)),
            Err(_) => Err(ExecutorError::Runtime(format!(
                "container creator exited with status {} without a report",
                creator_exit.code()
            ))),
        }
    }
}

/// Forks a creator child that runs `work` and reports the pid (or error) it returns.
fn fork_creator<F>(work: F) -> Result<Creation, ExecutorError>
where
    F: FnOnce() -> Result<i32, String>,
{
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|source| ExecutorError::Sys {
            what: "creating the creator's report pipe",
            source,
        })?;
    // SAFETY: the monitor is single-threaded (no async runtime, no helper threads; monitor_main
    // checks this before detaching), so the child can run arbitrary code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(read_end);
            signals::restore_for_child();
            let report = match work() {
                Ok(pid) => CreatorReport::Created { pid },
                Err(message) => CreatorReport::Failed { message },
            };
            let bytes = serde_json::to_vec(&report).unwrap_or_default();
            let _ = nix::unistd::write(write_end.as_fd(), &bytes);
            // SAFETY: _exit ends the child without running the monitor's atexit handlers or
            // flushing buffers it shares with the parent.
            unsafe { libc::_exit(0) }
        }
        // `work` (and with it the process's ends of its stdio) is dropped here in the parent.
        Ok(ForkResult::Parent { child }) => Ok(Creation {
            pid: child,
            report: read_end,
        }),
        Err(source) => Err(ExecutorError::Sys {
            what: "forking the container creator",
            source,
        }),
    }
}
