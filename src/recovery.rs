//! Picking up after a daemon restart: pods and containers come back from the database, running
//! containers are matched with their still-running monitors, and containers that ended while the
//! daemon was away get the exit their monitor recorded.

use std::sync::Arc;

use tracing::{info, warn};

use crate::daemon::Daemon;
use crate::runtime::recover_container;
use crate::state::{Container, Pod, PodState};

/// Loads every record and reconciles it with what is running.
pub async fn recover(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let pods = d.store.pods()?;
    let containers = d.store.containers()?;
    let (mut ready, mut running) = (0, 0);
    for record in pods {
        let id = record.id.clone();
        let pod = match Pod::from_record(record) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                warn!(pod = %id, error = %e, "skipping an unreadable pod record");
                continue;
            }
        };
        if pod.state() == PodState::Ready && !pins_present(&pod) {
            // The node rebooted (or someone unmounted the pins): the pod's namespaces are gone.
            let record = pod.update(|r| r.state = PodState::NotReady);
            if let Err(e) = d.store.put_pod(&record) {
                warn!(pod = %id, error = %e, "cannot persist the pod's state");
            }
        }
        if pod.state() == PodState::Ready {
            ready += 1;
        }
        let _ = d.names.reserve(&Pod::full_name(&pod.config), &id);
        d.pods
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, pod);
    }
    for record in containers {
        let id = record.id.clone();
        let container = match Container::from_record(record) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                warn!(container = %id, error = %e, "skipping an unreadable container record");
                continue;
            }
        };
        if let Some(pod) = d.pod(&container.pod_id) {
            let _ = d
                .names
                .reserve(&Container::full_name(&container.config, &pod.config), &id);
        }
        d.containers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, container.clone());
        if recover_container(d, &container) {
            running += 1;
        }
    }
    info!(
        pods = d.all_pods().len(),
        ready,
        containers = d.all_containers().len(),
        running,
        "state recovered"
    );
    Ok(())
}

/// Whether the pod's pinned network namespace (or, for host-network pods, its state folder) is
/// still there.
fn pins_present(pod: &Pod) -> bool {
    let record = pod.snapshot();
    match &record.netns {
        Some(netns) => is_nsfs(netns),
        None => record.state_dir.exists(),
    }
}

fn is_nsfs(path: &std::path::Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == NSFS_MAGIC)
        .unwrap_or(false)
}
