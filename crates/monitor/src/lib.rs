//! Longshore's container monitor: one small process per container that runs it, holds its
//! stdio, writes its CRI log, records its exit and serves exec and attach. It outlives daemon
//! restarts (it runs detached, re-parented to init) and the daemon finds it again through the
//! socket in the container's state dir.
//!
//! This crate is the monitor process: [`monitor_main`] (`longshore-monitor --state-dir D`) is
//! single-threaded, with no async runtime, one poll loop; it must be called before any other
//! thread starts. What the daemon uses to start and talk to it (config, protocol, records, the
//! tokio client) is `crates/monitor-client`.
//!
//! State dir layout: `monitor.json` (the config), `monitor.sock`, `monitor.log` (its
//! diagnostics), `pid` and `started.json` (at start), `exit.json` (written last, atomically),
//! `runtime/` (the embedded executor's libcontainer state).

#![warn(missing_docs)]
// The monitor is single-threaded with no async runtime: sleeping there blocks no async worker.
#![allow(clippy::disallowed_methods)]

mod attach;
mod checkpoint;
mod child_reaper;
mod connection;
mod container_log;
mod detach;
mod exec;
mod executor;
mod oom;
mod server;
mod signals;
mod stdio;
mod terminal;

use std::ffi::OsString;
use std::fs;
use std::os::fd::AsFd;
use std::path::PathBuf;

pub(crate) use longshore_monitor_client::{config, fd_passing, protocol, records, sockpath};

use crate::config::{CONFIG_FILE, MonitorConfig};
use crate::detach::Detached;

/// Environment variable setting the monitor's log level (error, warn, info, debug, trace) when
/// the config does not.
pub const LOG_LEVEL_ENV: &str = "LONGSHORE_MONITOR_LOG";
const STATE_DIR_FLAG: &str = "--state-dir";
pub use longshore_monitor_client::CHECKPOINT_SUBCOMMAND;

/// The monitor process: `args` are the arguments after the subcommand (`--state-dir <dir>`),
/// or `checkpoint ...` (see [`CHECKPOINT_SUBCOMMAND`]).
/// Reads `<dir>/monitor.json`, forks away from the caller (the caller's process returns 0 at
/// once; the detached monitor returns its own exit code when the container is done).
///
/// Call it from a plain `main` before any thread or async runtime starts: it forks, and a fork
/// of a multi-threaded process is unsafe (it refuses if it finds other threads).
pub fn monitor_main<I, S>(args: I) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into).peekable();
    if args.peek().is_some_and(|a| a == CHECKPOINT_SUBCOMMAND) {
        args.next();
        return checkpoint::main(args);
    }
    let state_dir = match parse_args(args) {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!(
                "longshore-monitor: {message}\nusage: longshore-monitor {STATE_DIR_FLAG} <dir>"
            );
            return 2;
        }
    };
    let cfg = match load_config(&state_dir) {
        Ok(cfg) => cfg,
        Err(message) => {
            eprintln!("longshore-monitor: {message}");
            return 1;
        }
    };
    init_tracing(cfg.log_level.as_deref());
    signals::reset_dispositions();
    signals::ignore_sigpipe();
    match detach::detach() {
        Ok(Detached::Parent) => 0,
        Ok(Detached::Monitor(reporter)) => server::run(cfg, reporter),
        Err(e) => {
            tracing::error!(error = %e, "cannot detach");
            1
        }
    }
}

fn parse_args<I, S>(args: I) -> Result<PathBuf, String>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut state_dir = None;
    while let Some(arg) = args.next() {
        if arg == STATE_DIR_FLAG {
            state_dir = args.next().map(PathBuf::from);
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    state_dir.ok_or_else(|| format!("{STATE_DIR_FLAG} is required"))
}

fn load_config(state_dir: &std::path::Path) -> Result<MonitorConfig, String> {
    let path = state_dir.join(CONFIG_FILE);
    let bytes = fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// Plain-text tracing to the monitor's stderr (the daemon points it at `monitor.log`), through
/// a close-on-exec duplicate: libcontainer's container processes are forks of the monitor that
/// put the container's stderr on fd 2, and their diagnostics must not end up in its CRI log.
fn init_tracing(configured: Option<&str>) {
    let level = configured
        .map(str::to_owned)
        .or_else(|| std::env::var(LOG_LEVEL_ENV).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(tracing::Level::INFO);
    let Ok(log) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(fs::File::from(log)))
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_need_a_state_dir() {
        assert_eq!(
            parse_args(["--state-dir", "/run/x"]).unwrap(),
            PathBuf::from("/run/x")
        );
        assert!(parse_args(Vec::<String>::new()).is_err());
        assert!(parse_args(["--bogus"]).is_err());
    }
}
