//! `RemovePodSandbox`: stop it if needed, remove its containers, then everything it held.
//! Idempotent: removing an unknown pod succeeds.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::info;

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
    sandbox_stop::stop(d, &pod).await?;
    let _guard = pod.lifecycle.lock().await;
    for container in lookup::containers_of(d, &pod.id) {
        container_remove::remove(d, &container).await?;
    }
    let record = pod.snapshot();
    pod::teardown::release(d, &record).await?;
    d.state.remove_pod(&pod).await?;
    info!(pod = %pod.id, "pod sandbox removed");
    Ok(RemovePodSandboxResponse {})
}
