//! `ReopenContainerLog`: kubelet rotated the log file (renamed it); the monitor opens a new one.

use std::sync::Arc;

use tonic::Status;

use super::{container, lookup};
use crate::api::{ReopenContainerLogRequest, ReopenContainerLogResponse};
use crate::daemon::Daemon;
use crate::state::ContainerState;

pub(super) async fn reopen_container_log(
    d: &Arc<Daemon>,
    req: ReopenContainerLogRequest,
) -> Result<ReopenContainerLogResponse, Status> {
    let container = lookup::container(d, &req.container_id)?;
    if container.state() != ContainerState::Running {
        return Err(Status::failed_precondition(format!(
            "container {} is not running; only a running container's log can be reopened",
            container.id
        )));
    }
    let client = container::monitor::client(&container).await?;
    client
        .reopen_log()
        .await
        .map_err(|e| Status::internal(format!("reopening the log of {}: {e}", container.id)))?;
    Ok(ReopenContainerLogResponse {})
}
