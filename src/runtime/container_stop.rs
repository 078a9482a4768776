//! `StopContainer`: the stop signal, a grace period, then SIGKILL to every process of the
//! container's cgroup. Idempotent: stopping a stopped or unknown container succeeds.

use std::sync::Arc;
use std::time::Duration;

use crate::server::RpcError;
use tracing::{info, warn};

use super::{container, lookup};
use crate::api::{StopContainerRequest, StopContainerResponse};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState};

/// How long to wait for a SIGKILLed container's exit to be recorded.
const KILL_WAIT: Duration = Duration::from_secs(10);

pub(super) async fn stop_container(
    d: &Arc<Daemon>,
    req: StopContainerRequest,
) -> Result<StopContainerResponse, RpcError> {
    let Some(container) = lookup::container_if_exists(d, &req.container_id)? else {
        return Ok(StopContainerResponse {});
    };
    stop(d, &container, req.timeout).await?;
    Ok(StopContainerResponse {})
}

/// Stops a container; `timeout_secs` 0 kills at once. Shared with StopPodSandbox.
pub(crate) async fn stop(
    d: &Arc<Daemon>,
    container: &Arc<Container>,
    timeout_secs: i64,
) -> Result<(), RpcError> {
    let _guard = container.lifecycle.lock().await;
    if container.state() != ContainerState::Running {
        return Ok(());
    }
    let mut exited = container.exited.subscribe();
    if timeout_secs > 0 {
        let signal = container.snapshot().stop_signal;
        container::monitor::signal(container, signal).await?;
        let grace = Duration::from_secs(timeout_secs as u64);
        if tokio::time::timeout(grace, exited.wait_for(|e| *e))
            .await
            .is_ok()
        {
            info!(container = %container.id, "container stopped by its stop signal");
            return Ok(());
        }
    }
    let record = container.snapshot();
    if let Err(e) = container::cgroup::kill_all(d, &record).await {
        warn!(container = %container.id, error = %e, "killing the cgroup failed; signalling the process");
    }
    container::monitor::signal(container, libc::SIGKILL).await?;
    match tokio::time::timeout(KILL_WAIT, exited.wait_for(|e| *e)).await {
        Ok(_) => {
            info!(container = %container.id, "container killed");
            Ok(())
        }
        Err(_) => Err(RpcError::deadline_exceeded(format!(
            "container {} did not exit {}s after SIGKILL",
            container.id,
            KILL_WAIT.as_secs()
        ))),
    }
}
