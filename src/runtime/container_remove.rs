//! `RemoveContainer`: kill it if needed, then free its cgroup and record, and after the answer
//! its root mount, writable layer and state folder.
//! Idempotent: removing an unknown container succeeds.

use std::sync::Arc;

use crate::server::{RpcError, blocking};
use tracing::{Instrument, info, warn};

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
    // Its own task: a client that gives up cannot leave the container half removed.
    let d = d.clone();
    let task = tokio::spawn(async move { remove(&d, &container).await }.in_current_span());
    task.await
        .map_err(|e| RpcError::internal(format!("RemoveContainer task: {e}")))??;
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
    // The answer waits only for what a caller can see: the cgroup and the durable record, freed
    // side by side. The root's unmount, the writable layer and the state folder (together ~8 ms
    // of fsyncs and unlinks) are released after the answer; a crash before they are gone is
    // covered by the start-up sweep (recovery/sweep.rs), which frees what no record owns.
    let (cgroup, removed) = tokio::join!(
        container::cgroup::remove(d, &record),
        d.state.remove_container(container)
    );
    if let Err(e) = cgroup {
        warn!(container = %container.id, error = %e, "cannot remove the container's cgroup");
    }
    removed?;
    info!(container = %container.id, "container removed");
    container_events::emit(d, container, ContainerEventType::ContainerDeletedEvent);
    let d = d.clone();
    tokio::spawn(async move { release_storage(&d, &record).await }.in_current_span());
    Ok(())
}

/// Unmounts the root, frees the writable layer and removes the state folder, on the blocking
/// pool; then asks for a layer collection (layers of images removed while this container used
/// them can go now). Best effort: logs what it cannot do; safe to repeat.
pub(crate) async fn release_storage(d: &Arc<Daemon>, record: &ContainerRecord) {
    let (snapshots, record) = (d.snapshots.clone(), record.clone());
    let released = blocking("releasing the container's storage", move || {
        release_storage_now(&snapshots, &record)
    })
    .await;
    if let Err(e) = released {
        warn!(error = %e, "releasing a container's storage failed");
    }
    d.layer_gc.request();
}

fn release_storage_now(snapshots: &longshore_snapshot::Snapshotter, record: &ContainerRecord) {
    let rootfs = record.state_dir.join("rootfs");
    if let Err(e) = pod::teardown::unmount(&rootfs) {
        warn!(container = %record.id, error = %e, "cannot unmount the container's root");
    }
    super::container::image_volumes::unmount_all(&record.state_dir);
    super::container::idmapped_mounts::unmount_all(&record.state_dir);
    if let Err(e) = snapshots.remove(&record.id) {
        warn!(container = %record.id, error = %e, "cannot remove the writable layer");
    }
    match std::fs::remove_dir_all(&record.state_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(container = %record.id, error = %e, "cannot remove the state folder"),
    }
}
