//! Finding pods and containers by id or by an unambiguous id prefix (crictl users type short
//! ids, as they do with containerd).

use std::sync::Arc;

use crate::server::RpcError;

use crate::daemon::Daemon;
use crate::state::{Container, Pod};

/// The pod with this id or unique id prefix.
pub(crate) fn pod(d: &Daemon, id: &str) -> Result<Arc<Pod>, RpcError> {
    if id.is_empty() {
        return Err(RpcError::invalid_argument("pod_sandbox_id is required"));
    }
    if let Some(pod) = d.pod(id) {
        return Ok(pod);
    }
    let matches: Vec<_> = d
        .all_pods()
        .into_iter()
        .filter(|p| p.id.starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches[0].clone()),
        0 => Err(RpcError::not_found(format!("pod sandbox {id:?} not found"))),
        n => Err(RpcError::invalid_argument(format!(
            "pod sandbox id prefix {id:?} matches {n} pods"
        ))),
    }
}

/// The pod, or `None` when it does not exist (for idempotent stop/remove).
pub(crate) fn pod_if_exists(d: &Daemon, id: &str) -> Result<Option<Arc<Pod>>, RpcError> {
    match pod(d, id) {
        Ok(p) => Ok(Some(p)),
        Err(s) if s.kind() == longshore_error::Kind::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

/// The container with this id or unique id prefix.
pub(crate) fn container(d: &Daemon, id: &str) -> Result<Arc<Container>, RpcError> {
    if id.is_empty() {
        return Err(RpcError::invalid_argument("container_id is required"));
    }
    if let Some(c) = d.container(id) {
        return Ok(c);
    }
    let matches: Vec<_> = d
        .all_containers()
        .into_iter()
        .filter(|c| c.id.starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches[0].clone()),
        0 => Err(RpcError::not_found(format!("container {id:?} not found"))),
        n => Err(RpcError::invalid_argument(format!(
            "container id prefix {id:?} matches {n} containers"
        ))),
    }
}

/// The container, or `None` when it does not exist (for idempotent stop/remove).
pub(crate) fn container_if_exists(
    d: &Daemon,
    id: &str,
) -> Result<Option<Arc<Container>>, RpcError> {
    match container(d, id) {
        Ok(c) => Ok(Some(c)),
        Err(s) if s.kind() == longshore_error::Kind::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

/// The containers of a pod.
pub(crate) fn containers_of(d: &Daemon, pod_id: &str) -> Vec<Arc<Container>> {
    d.all_containers()
        .into_iter()
        .filter(|c| c.pod_id == pod_id)
        .collect()
}
