//! `StopPodSandbox`: kill every container of the pod, release its network and PID 1. Idempotent:
//! an unknown or already stopped pod is not an error (kubelet retries it freely).

use std::sync::Arc;

use crate::server::RpcError;
use tracing::info;

use super::{container_stop, lookup, pod};
use crate::api::{StopPodSandboxRequest, StopPodSandboxResponse};
use crate::daemon::Daemon;
use crate::state::{Pod, PodState};

pub(super) async fn stop_pod_sandbox(
    d: &Arc<Daemon>,
    req: StopPodSandboxRequest,
) -> Result<StopPodSandboxResponse, RpcError> {
    let Some(pod) = lookup::pod_if_exists(d, &req.pod_sandbox_id)? else {
        return Ok(StopPodSandboxResponse {});
    };
    stop(d, &pod).await?;
    Ok(StopPodSandboxResponse {})
}

/// Where a pod stop failed.
pub(crate) enum StopFailure {
    /// A container would not stop: the pod is not stopped.
    Containers(RpcError),
    /// Its containers stopped, but the pod's own teardown (network, PID 1) failed.
    Teardown(RpcError),
}

impl From<StopFailure> for RpcError {
    fn from(f: StopFailure) -> RpcError {
        match f {
            StopFailure::Containers(e) | StopFailure::Teardown(e) => e,
        }
    }
}

/// Stops a pod; shared with RemovePodSandbox, which needs to know which part failed.
pub(crate) async fn stop(d: &Arc<Daemon>, pod: &Arc<Pod>) -> Result<(), StopFailure> {
    let _guard = pod.lifecycle.lock().await;
    for container in lookup::containers_of(d, &pod.id) {
        // A pod stop gives containers no grace period beyond what kubelet already spent.
        container_stop::stop(d, &container, 0)
            .await
            .map_err(StopFailure::Containers)?;
    }
    let record = pod.snapshot();
    pod::teardown::stop(d, &record)
        .await
        .map_err(StopFailure::Teardown)?;
    d.state
        .update_pod(pod, |r| {
            r.state = PodState::NotReady;
            r.network_attached = false;
            r.pod_init_pid = None;
        })
        .await
        .map_err(|e| StopFailure::Teardown(e.into()))?;
    info!(pod = %pod.id, "pod sandbox stopped");
    Ok(())
}
