//! The start-up sweep: state folders, pinned namespaces, mounts, pod PID 1s and writable layers
//! that no record owns are removed. They are what a crash leaves when it strikes between a
//! kernel object being made and its record being written, or a record being deleted and the
//! object being removed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use crate::daemon::Daemon;
use crate::runtime::release_orphan_pod;
use crate::server::blocking;

/// Removes everything of pods and containers that have no record.
pub(super) async fn sweep(d: &Arc<Daemon>) {
    let pods: HashSet<String> = d.all_pods().iter().map(|p| p.id.clone()).collect();
    let containers: HashSet<String> = d.all_containers().iter().map(|c| c.id.clone()).collect();
    for dir in orphans(&d.config.state.join("pods"), &pods) {
        info!(dir = %dir.display(), "sweeping the state of a pod with no record");
        release_orphan_pod(d, dir).await;
    }
    for dir in orphans(&d.config.state.join("containers"), &containers) {
        info!(dir = %dir.display(), "sweeping the state of a container with no record");
        sweep_container_dir(d, dir).await;
    }
    sweep_layers(d, containers).await;
}

/// Folders under `parent` named for an id not in `owned`.
fn orphans(parent: &Path, owned: &HashSet<String>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_str().is_some_and(|n| !owned.contains(n)))
        .map(|e| e.path())
        .collect()
}

async fn sweep_container_dir(d: &Arc<Daemon>, dir: PathBuf) {
    let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
        return;
    };
    if longshore_monitor_client::MonitorClient::connect(&dir)
        .await
        .is_ok()
    {
        warn!(container = %id, "a monitor with no record still runs; leaving its state");
        return;
    }
    let snapshots = d.snapshots.clone();
    let swept = blocking("sweeping a container", move || {
        let _ = crate::runtime::unmount(&dir.join("rootfs"));
        crate::runtime::unmount_image_volumes(&dir);
        crate::runtime::unmount_idmapped_mounts(&dir);
        let removed = snapshots.remove(&id);
        let _ = std::fs::remove_dir_all(&dir);
        removed
    })
    .await;
    match swept {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "sweeping a container's writable layer failed"),
        Err(e) => warn!(error = %e, "sweeping a container's writable layer failed"),
    }
}

/// Writable layers and leases of containers that have no record.
async fn sweep_layers(d: &Arc<Daemon>, containers: HashSet<String>) {
    let snapshots = d.snapshots.clone();
    let swept = blocking("sweeping layers", move || -> Result<usize, String> {
        let mut removed = 0;
        for id in snapshots.containers().map_err(|e| e.to_string())? {
            if !containers.contains(&id) {
                snapshots.remove(&id).map_err(|e| e.to_string())?;
                removed += 1;
            }
        }
        Ok(removed)
    })
    .await;
    match swept {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => info!(layers = n, "removed writable layers no container owns"),
        Ok(Err(e)) => warn!(error = %e, "sweeping writable layers failed"),
        Err(e) => warn!(error = %e, "sweeping writable layers failed"),
    }
}
