//! `RemovePodSandbox`: stop it if needed, remove its containers, then everything it held.
//! Idempotent: removing an unknown pod succeeds.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::{info, warn};

use super::sandbox_stop::StopFailure;
use super::{container_remove, lookup, pod, sandbox_stop};
use crate::api::{RemovePodSandboxRequest, RemovePodSandboxResponse};
use crate::daemon::Daemon;

pub(super) async fn remove_pod_sandbox(
    d: &Arc<Daemon>,
    req: RemovePodSandboxRequest,
) -> Result<RemovePodSandboxResponse, RpcError> {
    let Some(pod) = lookup::pod_if_exists(d, &req.pod_sandbox_id)? else {
        return Ok(RemovePodSandboxResponse {});
    };
    match sandbox_stop::stop(d, &pod).await {
        Ok(()) => {}
        Err(StopFailure::Containers(e)) => return Err(e),
        // The pod's own teardown failing must not make it unremovable: every step is tried
        // again below, and what still fails is logged and left.
        Err(StopFailure::Teardown(e)) => {
            warn!(pod = %pod.id, error = %e, "stopping the pod failed; removing it anyway");
        }
    }
    let _guard = pod.lifecycle.lock().await;
    for container in lookup::containers_of(d, &pod.id) {
        container_remove::remove(d, &container).await?;
    }
    let record = pod.snapshot();
    let left = pod::teardown::release_best_effort(d, &record).await;
    d.state.remove_pod(&pod).await?;
    if left.is_empty() {
        info!(pod = %pod.id, "pod sandbox removed");
    } else {
        warn!(pod = %pod.id, left = ?left, "pod sandbox removed; some of it could not be released");
    }
    Ok(RemovePodSandboxResponse {})
}
