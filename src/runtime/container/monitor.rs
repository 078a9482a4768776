//! Talking to a container's monitor process (`longshore-monitor`): start it, signal it, learn
//! how the container ended.

use std::time::Duration;

use crate::server::RpcError;
use crate::server::status::RpcContext;
use longshore_monitor_client::{
    ExecutorConfig, ExitReason, ExitRecord, Monitor, MonitorClient, MonitorConfig,
    read_exit_record, read_start_record,
};
use tracing::{debug, warn};

use crate::daemon::Daemon;
use crate::runtime::container;
use crate::state::{Container, ExitInfo, now_nanos};

/// What a started container reports.
pub(crate) struct Started {
    pub pid: i32,
    pub started_at: i64,
    /// It was restored from a checkpoint (whose unpacked copy can go now).
    pub restored: bool,
}

/// The executor for a RuntimeClass handler: "" is the embedded one.
pub(crate) fn executor(d: &Daemon, handler: &str) -> Result<ExecutorConfig, RpcError> {
    if handler.is_empty() {
        return Ok(ExecutorConfig::Embedded);
    }
    let h = d.config.runtime.handlers.get(handler).ok_or_else(|| {
        RpcError::failed_precondition(format!(
            "runtime handler {handler:?} is no longer configured"
        ))
    })?;
    if h.path.as_os_str() == "embedded" {
        return Ok(ExecutorConfig::Embedded);
    }
    let root = if h.root.as_os_str().is_empty() {
        d.config.state.join("runtimes").join(handler)
    } else {
        h.root.clone()
    };
    Ok(ExecutorConfig::External {
        binary: h.path.clone(),
        root,
    })
}

/// Starts the container's monitor and waits until the container's process runs.
pub(crate) async fn spawn(d: &Daemon, container: &Container) -> Result<Started, RpcError> {
    let record = container.snapshot();
    let config = &container.config;
    let mut mc = MonitorConfig::new(
        &container.id,
        &record.state_dir.join("bundle"),
        &record.state_dir,
    );
    mc.log_path = (!record.log_path.as_os_str().is_empty()).then(|| record.log_path.clone());
    mc.tty = config.tty;
    mc.stdin = config.stdin;
    mc.stdin_once = config.stdin_once;
    mc.executor = executor(d, &record.runtime_handler)?;
    mc.memory_events = container::cgroup::memory_events_path(d, &record);
    mc.cgroup_dirs = container::cgroup::dirs(d, &record);
    mc.max_log_line = d.config.containers.max_log_line_size.0 as usize;
    mc.command = d.monitor.clone();
    mc.restore_from = container::restore::images(&record.state_dir);
    let started = Monitor::spawn(&mc)
        .await
        .with_context(|| format!("starting container {}", container.id))?;
    Ok(Started {
        pid: started.pid,
        started_at: started.started_at,
        restored: mc.restore_from.is_some(),
    })
}

/// Connects to a container's monitor.
pub(crate) async fn client(container: &Container) -> Result<MonitorClient, RpcError> {
    let state_dir = container.snapshot().state_dir;
    MonitorClient::connect(&state_dir)
        .await
        .with_context(|| format!("container {} monitor", container.id))
}

/// Sends a signal to the container's process. A monitor that is already gone means the
/// container has exited, which is fine for a stop.
pub(crate) async fn signal(container: &Container, signal: i32) -> Result<(), RpcError> {
    match client(container).await {
        Ok(client) => {
            if let Err(e) = client.signal(signal).await {
                debug!(container = %container.id, error = %e, "signal not delivered; the container is exiting");
            }
            Ok(())
        }
        Err(e) => {
            debug!(container = %container.id, error = %e, "no monitor to signal");
            Ok(())
        }
    }
}

/// Waits for the container's exit: over the monitor socket while it lives, then from the exit
/// record it leaves behind.
pub(crate) async fn wait_exit(container: &Container) -> ExitInfo {
    let state_dir = container.snapshot().state_dir;
    loop {
        if let Ok(client) = MonitorClient::connect(&state_dir).await {
            if let Ok(record) = client.wait_exit().await {
                return exit_info(&record);
            }
        }
        match read_exit_record(&state_dir) {
            Ok(Some(record)) => return exit_info(&record),
            Ok(None) => {}
            Err(e) => warn!(container = %container.id, error = %e, "unreadable exit record"),
        }
        if !monitor_alive(&state_dir) {
            // Give the monitor's last write a moment, then call it lost.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(Some(record)) = read_exit_record(&state_dir) {
                return exit_info(&record);
            }
            return ExitInfo {
                code: 255,
                finished_at: now_nanos(),
                reason: "Unknown".into(),
                message: "the container's monitor exited without recording an exit".into(),
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the monitor process recorded in the state dir still runs (and is that monitor: its
/// command line names the state dir, so a reused PID does not count).
pub(crate) fn monitor_alive(state_dir: &std::path::Path) -> bool {
    let Ok(Some(start)) = read_start_record(state_dir) else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", start.monitor_pid)) else {
        return false;
    };
    String::from_utf8_lossy(&cmdline).contains(&*state_dir.to_string_lossy())
}

/// The record the monitor wrote, in CRI's terms.
pub(crate) fn exit_info(record: &ExitRecord) -> ExitInfo {
    let reason = match record.reason {
        ExitReason::Completed => "Completed",
        ExitReason::Error => "Error",
        ExitReason::OomKilled => "OOMKilled",
    };
    ExitInfo {
        code: record.exit_code,
        finished_at: record.finished_at,
        reason: reason.into(),
        message: String::new(),
    }
}
