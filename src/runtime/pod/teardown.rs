//! Taking a pod apart, step by step, each step safe to repeat and safe on a half-made pod.

use std::path::Path;
use std::sync::Arc;

use crate::server::status::RpcContext;
use crate::server::{RpcError, blocking};
use longshore_namespaces::PodInit;
use nix::mount::{MntFlags, umount2};

use crate::daemon::Daemon;
use crate::runtime::pod;
use crate::state::PodRecord;

/// What `StopPodSandbox` releases: the network and the pod's PID 1. The namespaces stay pinned
/// (kubelet may still ask for status, PortForward may still enter the netns) until the pod is
/// removed.
pub(crate) async fn stop(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    if record.network_attached {
        pod::network::detach(d, record).await?;
    }
    stop_init(record).await
}

/// Everything: network, PID 1, /dev/shm, pinned namespaces, cgroup, state folder. CNI DEL runs
/// before the netns is unpinned, so plugins still see the pod's interface and addresses.
pub(crate) async fn release(d: &Arc<Daemon>, record: &PodRecord) -> Result<(), RpcError> {
    if record.network_attached || record.netns.is_some() {
        // Again after a stop: a no-op unless a DEL was left undone (an ADD cut short by a
        // crash, an undo that failed), which the CNI cache still knows about.
        pod::network::detach(d, record).await?;
    }
    stop_init(record).await?;
    let (d, record) = (d.clone(), record.clone());
    blocking("releasing the pod", move || release_local(&d, &record)).await?
}

/// Everything [`release`] does, each step tried even when an earlier one failed: what
/// RemovePodSandbox uses, so that a pod whose teardown keeps failing (a CNI plugin that was
/// uninstalled, a network config that cannot be read any more) can still be removed. Returns
/// what could not be released, each already logged.
pub(crate) async fn release_best_effort(d: &Arc<Daemon>, record: &PodRecord) -> Vec<String> {
    let mut left = Vec::new();
    if record.network_attached || record.netns.is_some() {
        if let Err(e) = pod::network::detach(d, record).await {
            left.push(format!(
                "the pod network (CNI DEL failed: {e}; its CNI cache entry stays for a later DEL)"
            ));
        }
    }
    if let Err(e) = stop_init(record).await {
        left.push(format!("the pod's PID 1 ({e})"));
    }
    let (d, record2) = (d.clone(), record.clone());
    let local = blocking("releasing the pod", move || {
        let mut left = Vec::new();
        if let Some(shm) = &record2.shm
            && let Err(e) = unmount(shm)
        {
            left.push(format!("its /dev/shm ({e})"));
        }
        if let Err(e) = longshore_namespaces::unpin(&record2.state_dir.join("ns")) {
            left.push(format!("its pinned namespaces ({e})"));
        }
        if let Err(e) = pod::cgroup::remove(&d, &record2) {
            left.push(format!("its cgroup ({e})"));
        }
        match std::fs::remove_dir_all(&record2.state_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => left.push(format!(
                "its state folder {} ({e})",
                record2.state_dir.display()
            )),
        }
        left
    })
    .await;
    match local {
        Ok(more) => left.extend(more),
        Err(e) => left.push(e.to_string()),
    }
    for what in &left {
        tracing::warn!(pod = %record.id, left = %what, "removing the pod left something behind");
    }
    left
}

/// The local parts, on the blocking pool: /dev/shm, pins, cgroup, state folder.
fn release_local(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    if let Some(shm) = &record.shm {
        unmount(shm)?;
    }
    longshore_namespaces::unpin(&record.state_dir.join("ns"))
        .context("releasing pod namespaces")?;
    pod::cgroup::remove(d, record)?;
    match std::fs::remove_dir_all(&record.state_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RpcError::internal(format!(
            "removing {}: {e}",
            record.state_dir.display()
        ))),
    }
}

/// Releases what a pod with no record left in its state folder `dir` (a crash between making
/// something and recording it): network, PID 1, /dev/shm, pins, the folder. Logs what fails.
pub(crate) async fn release_orphan(d: &Arc<Daemon>, dir: std::path::PathBuf) {
    let id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let ns = dir.join("ns");
    let pinned = |name: &str| Some(ns.join(name)).filter(|p| p.exists());
    let record = PodRecord {
        id: id.clone(),
        netns: pinned("net"),
        ipcns: pinned("ipc"),
        utsns: pinned("uts"),
        pidns: pinned("pid"),
        shm: Some(dir.join("shm")).filter(|p| p.exists()),
        state_dir: dir,
        ..Default::default()
    };
    if let Err(e) = release(d, &record).await {
        tracing::warn!(pod = %id, error = %e, "cannot release what a pod with no record left");
    }
}

/// Stops the pod's PID 1, if it has one: by its recorded PID, or, when a crash lost the PID,
/// by finding every process of the PID namespace pinned in the pod's folder.
async fn stop_init(record: &PodRecord) -> Result<(), RpcError> {
    let dir = record.state_dir.join("ns");
    match record.pod_init_pid {
        Some(pid) => blocking("stopping pod init", move || PodInit::stop(pid, &dir))
            .await?
            .context("stopping the pod's PID 1")?,
        None => {
            blocking("stopping pod init", move || PodInit::stop_pinned(&dir))
                .await?
                .context("stopping the pod's PID namespace")?;
        }
    }
    Ok(())
}

/// Unmounts a mount point; not mounted or missing is fine.
pub(crate) fn unmount(path: &Path) -> Result<(), RpcError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(RpcError::internal(format!(
            "unmounting {}: {e}",
            path.display()
        ))),
    }
}
