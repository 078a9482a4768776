//! `StartContainer`: make the container's cgroup, then hand the bundle to a new monitor process
//! that runs it (embedded executor or an external OCI runtime) and outlives this daemon.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::{info, warn};

use super::{container, container_events, lookup};
use crate::api::{ContainerEventType, StartContainerRequest, StartContainerResponse};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState, ExitInfo, PodState, now_nanos};

pub(super) async fn start_container(
    d: &Arc<Daemon>,
    req: StartContainerRequest,
) -> Result<StartContainerResponse, RpcError> {
    let container = lookup::container(d, &req.container_id)?;
    let _guard = container.lifecycle.lock().await;
    let state = container.state();
    if state != ContainerState::Created {
        return Err(RpcError::failed_precondition(format!(
            "container {} is {state:?}, only a created container can be started",
            container.id
        )));
    }
    let pod = lookup::pod(d, &container.pod_id)?;
    if pod.state() != PodState::Ready {
        return Err(RpcError::failed_precondition(format!(
            "pod sandbox {} is not ready",
            pod.id
        )));
    }
    match start(d, &container).await {
        Ok(()) => Ok(StartContainerResponse {}),
        Err(status) => {
            record_start_failure(d, &container, &status).await;
            Err(status)
        }
    }
}

async fn start(d: &Arc<Daemon>, container: &Arc<Container>) -> Result<(), RpcError> {
    let record = container.snapshot();
    let resources = super::container_status::current_resources(container);
    container::cgroup::create(d, &record, resources.as_ref()).await?;
    let started = container::monitor::spawn(d, container).await;
    let started = match started {
        Ok(s) => s,
        Err(status) => {
            let _ = container::cgroup::remove(d, &record).await;
            return Err(status);
        }
    };
    if started.restored {
        container::restore::clean_up(&record.state_dir).await;
    }
    // Under the systemd driver, systemd's job for the container's scope and the durable record
    // of the start run side by side: the limits are in the cgroup's files already.
    let (unit, recorded) = tokio::join!(
        container::cgroup::start_unit(d, &record, started.pid, resources.as_ref()),
        d.state.update_container(container, |r| {
            r.state = ContainerState::Running;
            r.pid = started.pid;
            r.started_at = started.started_at;
        })
    );
    unit?;
    recorded?;
    info!(container = %container.id, pid = started.pid, "container started");
    container_events::emit(d, container, ContainerEventType::ContainerStartedEvent);
    container::exit::watch(d.clone(), container.clone());
    Ok(())
}

/// A container that failed to start is exited with reason StartError, as containerd reports it.
async fn record_start_failure(d: &Daemon, container: &Container, status: &RpcError) {
    let exit = ExitInfo {
        code: 128,
        finished_at: now_nanos(),
        reason: "StartError".into(),
        message: status.message().to_string(),
    };
    let recorded = d
        .state
        .update_container(container, |r| {
            r.state = ContainerState::Exited;
            r.exit = Some(exit);
        })
        .await;
    container.exited.send_replace(true);
    if let Err(e) = recorded {
        warn!(container = %container.id, error = %e, "cannot record the start failure");
    }
    container_events::emit(d, container, ContainerEventType::ContainerStoppedEvent);
}
