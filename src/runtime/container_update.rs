//! `UpdateContainerResources`: new limits applied to the live cgroup and remembered for status.

use std::sync::Arc;

use crate::server::{RpcError, blocking};
use prost::Message;
use tracing::info;

use super::{container, lookup};
use crate::api::{UpdateContainerResourcesRequest, UpdateContainerResourcesResponse};
use crate::daemon::Daemon;
use crate::state::ContainerState;

pub(super) async fn update_container_resources(
    d: &Arc<Daemon>,
    req: UpdateContainerResourcesRequest,
) -> Result<UpdateContainerResourcesResponse, RpcError> {
    let container = lookup::container(d, &req.container_id)?;
    let Some(resources) = req.linux else {
        return Ok(UpdateContainerResourcesResponse {});
    };
    let _guard = container.lifecycle.lock().await;
    let state = container.state();
    if state == ContainerState::Exited || state == ContainerState::Unknown {
        return Err(RpcError::failed_precondition(format!(
            "container {} is {state:?}; only created or running containers can be updated",
            container.id
        )));
    }
    let record = container.snapshot();
    if state == ContainerState::Running {
        let d2 = d.clone();
        let r2 = resources.clone();
        blocking("updating the cgroup", move || {
            container::cgroup::update(&d2, &record, &r2)
        })
        .await??;
    }
    d.state
        .update_container(&container, |r| r.resources = resources.encode_to_vec())
        .await?;
    info!(container = %container.id, "resources updated");
    Ok(UpdateContainerResourcesResponse {})
}
