//! What the daemon tells a monitor: one container, its bundle, where its state and log go.
//!
//! The daemon writes this as JSON to `<state_dir>/monitor.json` before spawning the monitor, so the
//! command line stays short and a human can see what a monitor was asked to do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File in the state dir holding the [`MonitorConfig`] a monitor was started with.
pub const CONFIG_FILE: &str = "monitor.json";
/// The monitor's unix socket in the state dir.
pub const SOCKET_FILE: &str = "monitor.sock";
/// The exit record, written last, atomically.
pub const EXIT_FILE: &str = "exit.json";
/// The container's pid, as decimal text.
pub const PID_FILE: &str = "pid";
/// The start record: pid, monitor pid, started_at.
pub const START_FILE: &str = "started.json";
/// The monitor's own diagnostics (its stderr).
pub const MONITOR_LOG_FILE: &str = "monitor.log";
/// Directory under the state dir that the embedded executor uses as libcontainer's root.
pub const EMBEDDED_ROOT_DIR: &str = "runtime";

/// The monitor's executable name (crates/monitor); the daemon looks for it next to itself.
pub const MONITOR_BINARY: &str = "longshore-monitor";

/// Default longest log line before it is split into `P` parts (kubelet's 16 KiB).
pub const DEFAULT_MAX_LOG_LINE: usize = 16 * 1024;

/// Everything a monitor needs to run one container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The container id; also the id the executor knows it by.
    pub container_id: String,
    /// The OCI bundle: `config.json` written and the rootfs mounted by the daemon.
    pub bundle: PathBuf,
    /// Directory for the socket, the pid and exit records and the executor's state.
    pub state_dir: PathBuf,
    /// CRI log file; `None` discards output (CRI allows an empty log path).
    pub log_path: Option<PathBuf>,
    /// Whether the container has a terminal (must match `process.terminal` in the bundle).
    pub tty: bool,
    /// Whether the container's stdin is kept open for attach.
    pub stdin: bool,
    /// Close the container's stdin when the first attach session ends.
    pub stdin_once: bool,
    /// Which executor creates the container.
    pub executor: ExecutorConfig,
    /// The container cgroup's memory events file (v2 `memory.events`, v1 `memory.oom_control`),
    /// compared before start and after exit to tell an OOM kill.
    pub memory_events: Option<PathBuf>,
    /// The container cgroup's directories, one per hierarchy. Everything left in them is
    /// SIGKILLed the moment the container's main process exits: without a PID namespace of its
    /// own (a pod sharing one, or the host's) no kernel does it, and a leftover child holding the
    /// stdout pipe would keep the exit from being reported.
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// Lines longer than this many bytes are logged as `P` parts.
    pub max_log_line: usize,
    /// The monitor's own log level (error, warn, info, debug, trace) for `monitor.log`;
    /// `LONGSHORE_MONITOR_LOG`, else info, when unset.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Restore the container's process from the CRIU images in this folder (a checkpoint
    /// archive's `checkpoint/`) instead of starting it afresh; only runtime handlers can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<PathBuf>,
    /// How the daemon runs the monitor; not part of the file the monitor reads.
    #[serde(skip)]
    pub command: MonitorCommand,
}

impl MonitorConfig {
    /// A config with the defaults: embedded executor, no stdin, no tty, no log file.
    pub fn new(container_id: impl Into<String>, bundle: &Path, state_dir: &Path) -> Self {
        MonitorConfig {
            container_id: container_id.into(),
            bundle: bundle.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            log_path: None,
            tty: false,
            stdin: false,
            stdin_once: false,
            executor: ExecutorConfig::Embedded,
            memory_events: None,
            cgroup_dirs: Vec::new(),
            max_log_line: DEFAULT_MAX_LOG_LINE,
            log_level: None,
            restore_from: None,
            command: MonitorCommand::default(),
        }
    }
}

/// The executor that creates and starts the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorConfig {
    /// youki's libcontainer, in-process (in a forked child of the monitor).
    Embedded,
    /// An OCI runtime CLI (runc, crun, youki), from the daemon's runtime handlers.
    External {
        /// Path of the runtime binary.
        binary: PathBuf,
        /// The runtime's `--root` state directory.
        root: PathBuf,
    },
}

/// The program and leading arguments that run a monitor (`longshore-monitor`, crates/monitor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the monitor's own `--state-dir D`.
    pub args: Vec<OsString>,
}

impl Default for MonitorCommand {
    /// `longshore-monitor`, looked up on `PATH`.
    fn default() -> Self {
        MonitorCommand::new(MONITOR_BINARY)
    }
}

impl MonitorCommand {
    /// Runs `program` with no leading arguments.
    pub fn new(program: impl Into<PathBuf>) -> MonitorCommand {
        MonitorCommand {
            program: program.into(),
            args: Vec::new(),
        }
    }
}
