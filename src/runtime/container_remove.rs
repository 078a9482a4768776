//! `RemoveContainer`: kill it if needed, then free its writable layer, mount, cgroup and state.
//! Idempotent: removing an unknown container succeeds.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::{info, warn};

use super::{container, container_events, container_stop, lookup, pod};
use crate::api::{ContainerEventType, RemoveContainerRequest, RemoveContainerResponse};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerRecord};

pub(super) async fn remove_container(
    d: &Arc<Daemon>,
    req: RemoveContainerRequest,
) -> Result<RemoveContainerResponse, RpcError> {
    let Some(container) = lookup::container_if_exists(d, &req.container_id)? else {
        return Ok(RemoveContainerResponse {});
    };
    remove(d, &container).await?;
    Ok(RemoveContainerResponse {})
}

/// Removes a container; shared with RemovePodSandbox.
pub(crate) async fn remove(d: &Arc<Daemon>, container: &Arc<Container>) -> Result<(), RpcError> {
    container_stop::stop(d, container, 0).await?;
    let _guard = container.lifecycle.lock().await;
    if d.container(&container.id).is_none() {
        return Ok(()); // removed meanwhile by another call
    }
    let record = container.snapshot();
    release_storage(d, &record).await;
    if let Err(e) = container::cgroup::remove(d, &record) {
        warn!(container = %container.id, error = %e, "cannot remove the container's cgroup");
    }
    d.store
        .delete_container(&container.id)
        .map_err(RpcError::from)?;
    d.containers
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&container.id);
    if let Some(pod) = d.pod(&container.pod_id) {
        d.names.release(
            &Container::full_name(&container.config, &pod.config),
            &container.id,
        );
    }
    info!(container = %container.id, "container removed");
    container_events::emit(d, container, ContainerEventType::ContainerDeletedEvent);
    Ok(())
}

/// Unmounts the root, frees the writable layer and removes the state folder. Best effort: logs
/// what it cannot do; safe to repeat.
pub(crate) async fn release_storage(d: &Daemon, record: &ContainerRecord) {
    let rootfs = record.state_dir.join("rootfs");
    if let Err(e) = pod::teardown::unmount(&rootfs) {
        warn!(container = %record.id, error = %e, "cannot unmount the container's root");
    }
    if let Err(e) = d.snapshots.remove(&record.id) {
        warn!(container = %record.id, error = %e, "cannot remove the writable layer");
    }
    // Layers of images removed while this container used them can go now.
    if let Err(e) = d.snapshots.gc() {
        warn!(container = %record.id, error = %e, "layer garbage collection failed");
    }
    match std::fs::remove_dir_all(&record.state_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(container = %record.id, error = %e, "cannot remove the state folder"),
    }
}
