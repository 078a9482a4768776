//! `ReopenContainerLog`: kubelet rotated the log file (renamed it); the monitor opens a new one.

use std::sync::Arc;

use crate::server::RpcError;
use crate::server::status::RpcContext;

use super::{container, lookup};
use crate::api::{ReopenContainerLogRequest, ReopenContainerLogResponse};
use crate::daemon::Daemon;
use crate::state::ContainerState;

pub(super) async fn reopen_container_log(
    d: &Arc<Daemon>,
    req: ReopenContainerLogRequest,
) -> Result<ReopenContainerLogResponse, RpcError> {
    let container = lookup::container(d, &req.container_id)?;
    if container.state() != ContainerState::Running {
        return Err(RpcError::failed_precondition(format!(
            "container {} is not running; only a running container's log can be reopened",
            container.id
        )));
    }
    let client = container::monitor::client(&container).await?;
    client
        .reopen_log()
        .await
        .with_context(|| format!("reopening the log of {}", container.id))?;
    Ok(ReopenContainerLogResponse {})
}
