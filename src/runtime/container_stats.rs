//! `ContainerStats`, `ListContainerStats` and `StreamContainerStats`: CPU, memory, swap, I/O
//! pressure and the writable layer of containers, read from the kernel's cgroup files (and the
//! snapshotter's cached walk of the upper dir). kubelet's eviction manager and summary API read
//! these every few seconds, so they must stay cheap.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::warn;

use super::stats;
use super::stats::cache::{LayerUsage, cache};
use super::stats::convert::{cpu_usage, io_usage, memory_usage, swap_usage, value};
use super::stats::sample::{Sample, blocking};
use super::{RpcStream, lookup};
use crate::api::{
    ContainerAttributes, ContainerStats, ContainerStatsFilter, ContainerStatsRequest,
    ContainerStatsResponse, FilesystemIdentifier, FilesystemUsage, ListContainerStatsRequest,
    ListContainerStatsResponse, StreamContainerStatsRequest, StreamContainerStatsResponse,
};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState};

/// Containers per `StreamContainerStats` message.
const STREAM_CHUNK: usize = 512;

pub(super) async fn container_stats(
    d: &Arc<Daemon>,
    req: ContainerStatsRequest,
) -> Result<ContainerStatsResponse, RpcError> {
    let container = lookup::container(d, &req.container_id)?;
    let d = d.clone();
    let stats = blocking(move || {
        let sample = sample_of(&d, &container)?;
        Ok::<_, String>(stats_of(&d, &container, sample.as_ref()))
    })
    .await?
    .map_err(RpcError::internal)?;
    Ok(ContainerStatsResponse { stats: Some(stats) })
}

pub(super) async fn list_container_stats(
    d: &Arc<Daemon>,
    req: ListContainerStatsRequest,
) -> Result<ListContainerStatsResponse, RpcError> {
    let d = d.clone();
    let stats = blocking(move || {
        stats::sample::forget_the_gone(&d);
        running_stats(&d, req.filter.as_ref())
    })
    .await?;
    Ok(ListContainerStatsResponse { stats })
}

pub(super) async fn stream_container_stats(
    d: &Arc<Daemon>,
    req: StreamContainerStatsRequest,
) -> Result<RpcStream<StreamContainerStatsResponse>, RpcError> {
    let d = d.clone();
    let stats = blocking(move || {
        stats::sample::forget_the_gone(&d);
        running_stats(&d, req.filter.as_ref())
    })
    .await?;
    let chunks: Vec<Result<StreamContainerStatsResponse, tonic::Status>> = stats
        .chunks(STREAM_CHUNK)
        .map(|c| {
            Ok(StreamContainerStatsResponse {
                container_stats: c.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Stats of every running container matching `filter`. A container whose cgroup cannot be read
/// is left out (and logged) rather than failing the whole list.
fn running_stats(d: &Daemon, filter: Option<&ContainerStatsFilter>) -> Vec<ContainerStats> {
    d.all_containers()
        .into_iter()
        .filter(|c| c.state() == ContainerState::Running && filter.is_none_or(|f| matches(c, f)))
        .filter_map(|c| match sample_of(d, &c) {
            Ok(Some(sample)) => Some(stats_of(d, &c, Some(&sample))),
            // Exited between the state check and the read.
            Ok(None) => None,
            Err(e) => {
                warn!(container = %c.id, error = %e, "container stats left out");
                None
            }
        })
        .collect()
}

/// The running containers of a pod, with their stats (for `PodSandboxStats`).
pub(crate) fn pod_container_stats(d: &Daemon, pod_id: &str) -> Vec<ContainerStats> {
    let filter = ContainerStatsFilter {
        pod_sandbox_id: pod_id.to_string(),
        ..Default::default()
    };
    running_stats(d, Some(&filter))
}

fn matches(c: &Container, f: &ContainerStatsFilter) -> bool {
    c.id.starts_with(&f.id)
        && (f.pod_sandbox_id.is_empty() || c.pod_id.starts_with(&f.pod_sandbox_id))
        && f.label_selector
            .iter()
            .all(|(k, v)| c.config.labels.get(k) == Some(v))
}

/// The container's cgroup reading; `None` when it has no cgroup (not started, or exited).
pub(crate) fn sample_of(d: &Daemon, c: &Container) -> Result<Option<Sample>, String> {
    let record = c.snapshot();
    stats::sample::read(d, &record.cgroup, &c.id, record.started_at)
}

/// The CRI stats of a container from a cgroup reading (cpu and memory absent without one).
pub(crate) fn stats_of(d: &Daemon, c: &Container, sample: Option<&Sample>) -> ContainerStats {
    let layer = cache().writable_layer(&d.snapshots, &c.id);
    ContainerStats {
        attributes: Some(attributes(c)),
        cpu: sample.map(|s| cpu_usage(&s.stats, s.nano_cores)),
        memory: sample.map(|s| memory_usage(&s.stats)),
        writable_layer: layer.map(|l| writable_layer(d, l)),
        swap: sample.and_then(|s| swap_usage(&s.stats)),
        io: sample.and_then(|s| io_usage(&s.stats)),
    }
}

fn attributes(c: &Container) -> ContainerAttributes {
    ContainerAttributes {
        id: c.id.clone(),
        metadata: c.config.metadata.clone(),
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
    }
}

/// The writable layer on the filesystem `ImageFsInfo` reports (kubelet matches the two by
/// mount point).
fn writable_layer(d: &Daemon, layer: LayerUsage) -> FilesystemUsage {
    FilesystemUsage {
        timestamp: layer.at,
        fs_id: Some(FilesystemIdentifier {
            mountpoint: d.snapshots.snapshots_dir().to_string_lossy().into_owned(),
        }),
        used_bytes: value(layer.bytes),
        inodes_used: value(layer.inodes),
    }
}
