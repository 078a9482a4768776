//! Taking a pod apart, step by step, each step safe to repeat and safe on a half-made pod.

use std::path::Path;

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
pub(crate) async fn release(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    if record.network_attached || record.netns.is_some() {
        // Again after a stop: a no-op unless a DEL was left undone (an ADD cut short by a
        // crash, an undo that failed), which the CNI cache still knows about.
        pod::network::detach(d, record).await?;
    }
    stop_init(record).await?;
    if let Some(shm) = &record.shm {
        unmount(shm)?;
    }
    let ns_dir = record.state_dir.join("ns");
    blocking("unpinning", move || longshore_namespaces::unpin(&ns_dir))
        .await?
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

/// Stops the pod's PID 1, if it has one.
async fn stop_init(record: &PodRecord) -> Result<(), RpcError> {
    if let Some(pid) = record.pod_init_pid {
        let dir = record.state_dir.join("ns");
        blocking("stopping pod init", move || PodInit::stop(pid, &dir))
            .await?
            .context("stopping the pod's PID 1")?;
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
