//! Picking up after a daemon restart: pods and containers come back from the database, running
//! containers are matched with their still-running monitors, containers that ended while the
//! daemon was away get the exit their monitor recorded, work a crash cut short is undone, and
//! a sweep removes what no record owns.

mod sweep;

use std::sync::Arc;

use futures::future::join_all;
use tracing::{info, warn};

use crate::daemon::Daemon;
use crate::runtime::{recover_container, undo_container_create, undo_pod_create};
use crate::state::{Container, ContainerRecord, Pod, PodRecord, PodState};

/// Loads every record and reconciles it with what is running.
pub async fn recover(d: &Arc<Daemon>) -> anyhow::Result<()> {
    let (pods, containers) = d.state.load()?;
    let (pods, cut_short_pods): (Vec<_>, Vec<_>) = pods.into_iter().partition(|p| !p.creating);
    let (containers, cut_short_containers): (Vec<_>, Vec<_>) =
        containers.into_iter().partition(|c| !c.creating);
    let ready = restore_pods(d, pods).await;
    let restored = restore_containers(d, containers);
    // Reattach to monitors concurrently: each reads its state folder and maybe a socket.
    let running = join_all(restored.iter().map(|c| recover_container(d, c)))
        .await
        .into_iter()
        .filter(|running| *running)
        .count();
    // Undoing and sweeping may wait on CNI plugins: in the background, with the socket up.
    let d2 = d.clone();
    tokio::spawn(async move {
        clean_up(&d2, cut_short_pods, cut_short_containers).await;
    });
    info!(
        pods = d.all_pods().len(),
        ready,
        containers = d.all_containers().len(),
        running,
        "state recovered"
    );
    Ok(())
}

/// How long a cut-short pod's teardown waits for the plugins of its interrupted ADD.
const ORPHAN_PLUGIN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Undoes what a crash cut short, then sweeps what no record owns.
async fn clean_up(d: &Arc<Daemon>, pods: Vec<PodRecord>, containers: Vec<ContainerRecord>) {
    for record in containers {
        warn!(container = %record.id, "undoing a CreateContainer a crash cut short");
        undo_container_create(d, &record).await;
    }
    join_all(pods.into_iter().map(|record| async move {
        warn!(pod = %record.id, "undoing a RunPodSandbox a crash cut short");
        if record.network_attached
            && !longshore_cni::wait_for_plugins(&record.id, ORPHAN_PLUGIN_WAIT).await
        {
            warn!(pod = %record.id, "CNI plugins of the crashed ADD still run; tearing down anyway");
        }
        undo_pod_create(d, record).await
    }))
    .await;
    sweep::sweep(d).await;
    info!("start-up clean-up done");
}

/// Lists the pods again; a Ready pod whose namespaces are gone (a reboot) becomes NotReady.
async fn restore_pods(d: &Arc<Daemon>, records: Vec<PodRecord>) -> usize {
    let mut ready = 0;
    for record in records {
        let id = record.id.clone();
        let pod = match Pod::from_record(record) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                warn!(pod = %id, error = %e, "skipping an unreadable pod record");
                continue;
            }
        };
        d.state.restore_pod(pod.clone());
        if pod.state() == PodState::Ready && !pins_present(&pod) {
            let not_ready = d
                .state
                .update_pod(&pod, |r| r.state = PodState::NotReady)
                .await;
            if let Err(e) = not_ready {
                warn!(pod = %id, error = %e, "cannot persist the pod's state");
            }
        }
        if pod.state() == PodState::Ready {
            ready += 1;
        }
    }
    ready
}

fn restore_containers(d: &Arc<Daemon>, records: Vec<ContainerRecord>) -> Vec<Arc<Container>> {
    let mut restored = Vec::new();
    for record in records {
        let id = record.id.clone();
        match Container::from_record(record) {
            Ok(c) => {
                let c = Arc::new(c);
                d.state.restore_container(c.clone());
                restored.push(c);
            }
            Err(e) => warn!(container = %id, error = %e, "skipping an unreadable container record"),
        }
    }
    restored
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
