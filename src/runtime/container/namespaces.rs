//! Namespace choices that need another container: NamespaceMode::TARGET joins the PID namespace
//! of a running container of the same pod.

use crate::server::RpcError;

use crate::api::{ContainerConfig, NamespaceMode};
use crate::daemon::Daemon;
use crate::runtime::lookup;
use crate::state::ContainerState;

/// The host PID whose PID namespace a TARGET container joins, if it asks for one.
pub(crate) fn target_pid(d: &Daemon, config: &ContainerConfig) -> Result<Option<i32>, RpcError> {
    let options = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let Some(options) = options else {
        return Ok(None);
    };
    if options.pid() != NamespaceMode::Target {
        return Ok(None);
    }
    let target = lookup::container(d, &options.target_id).map_err(|s| {
        RpcError::not_found(format!("namespace_options.target_id: {}", s.message()))
    })?;
    let record = target.snapshot();
    if record.state != ContainerState::Running || record.pid <= 0 {
        return Err(RpcError::failed_precondition(format!(
            "namespace_options.target_id: container {} is not running",
            target.id
        )));
    }
    Ok(Some(record.pid))
}
