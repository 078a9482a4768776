//! Watching a running container until its monitor reports the exit, then recording it.

use std::sync::Arc;

use tracing::{info, warn};

use crate::api::ContainerEventType;
use crate::daemon::Daemon;
use crate::runtime::{container, container_events};
use crate::state::{Container, ContainerRecord, ContainerState, ExitInfo};

/// Spawns the task that waits for this container's exit.
pub(crate) fn watch(d: Arc<Daemon>, container: Arc<Container>) {
    tokio::spawn(async move {
        let exit = container::monitor::wait_exit(&container).await;
        record_exit(&d, &container, exit).await;
    });
}

/// Records an exit: state, code, reason; frees the cgroup; tells subscribers.
pub(crate) async fn record_exit(d: &Arc<Daemon>, container: &Container, exit: ExitInfo) {
    if container.state() == ContainerState::Exited {
        return;
    }
    info!(container = %container.id, code = exit.code, reason = %exit.reason, "container exited");
    let change = |r: &mut ContainerRecord| {
        r.state = ContainerState::Exited;
        r.pid = 0;
        r.exit = Some(exit);
    };
    let record = match d.state.update_container(container, change).await {
        Ok(record) => record,
        Err(e) => {
            warn!(container = %container.id, error = %e, "cannot persist the exit");
            container.snapshot()
        }
    };
    if let Err(e) = container::cgroup::remove(d, &record).await {
        warn!(container = %container.id, error = %e, "cannot remove the container's cgroup");
    }
    container.exited.send_replace(true);
    container_events::emit(d, container, ContainerEventType::ContainerStoppedEvent);
}

/// After a restart: re-attaches to a running container's monitor, or records the exit it left.
/// Returns whether the container still runs.
pub async fn recover_container(d: &Arc<Daemon>, container: &Arc<Container>) -> bool {
    if container.state() != ContainerState::Running {
        return false;
    }
    let state_dir = container.snapshot().state_dir;
    if container::monitor::monitor_alive(&state_dir) {
        watch(d.clone(), container.clone());
        return true;
    }
    let exit = match longshore_monitor_client::read_exit_record(&state_dir) {
        Ok(Some(record)) => container::monitor::exit_info(&record),
        _ => ExitInfo {
            code: 255,
            finished_at: crate::state::now_nanos(),
            reason: "Unknown".into(),
            message: "the container's monitor was gone when the daemon restarted".into(),
        },
    };
    record_exit(d, container, exit).await;
    false
}
