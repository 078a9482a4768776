//! `PodSandboxStats`, `ListPodSandboxStats` and `StreamPodSandboxStats`: the pod cgroup's CPU,
//! memory and task count, the pod's network counters (read inside its network namespace), and
//! the stats of its running containers.

use std::sync::Arc;

use crate::server::RpcError;
use tracing::warn;

use super::container_stats::pod_container_stats;
use super::stats;
use super::stats::convert::{cpu_usage, io_usage, memory_usage, nanos, value};
use super::stats::net_dev::InterfaceCounters;
use super::stats::sample::{Sample, blocking};
use super::{RpcStream, lookup};
use crate::api::{
    LinuxPodSandboxStats, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse,
    PodSandboxAttributes, PodSandboxStats, PodSandboxStatsFilter, PodSandboxStatsRequest,
    PodSandboxStatsResponse, ProcessUsage, StreamPodSandboxStatsRequest,
    StreamPodSandboxStatsResponse,
};
use crate::daemon::Daemon;
use crate::state::{Pod, PodState, now_nanos};

/// Pods per `StreamPodSandboxStats` message.
const STREAM_CHUNK: usize = 512;

pub(super) async fn pod_sandbox_stats(
    d: &Arc<Daemon>,
    req: PodSandboxStatsRequest,
) -> Result<PodSandboxStatsResponse, RpcError> {
    let pod = lookup::pod(d, &req.pod_sandbox_id)?;
    let d = d.clone();
    let stats = blocking(move || {
        let network = network_of(std::slice::from_ref(&pod)).pop().flatten();
        stats_of(&d, &pod, network)
    })
    .await?
    .map_err(RpcError::internal)?;
    Ok(PodSandboxStatsResponse { stats: Some(stats) })
}

pub(super) async fn list_pod_sandbox_stats(
    d: &Arc<Daemon>,
    req: ListPodSandboxStatsRequest,
) -> Result<ListPodSandboxStatsResponse, RpcError> {
    let d = d.clone();
    let stats = blocking(move || ready_stats(&d, req.filter.as_ref())).await?;
    Ok(ListPodSandboxStatsResponse { stats })
}

pub(super) async fn stream_pod_sandbox_stats(
    d: &Arc<Daemon>,
    req: StreamPodSandboxStatsRequest,
) -> Result<RpcStream<StreamPodSandboxStatsResponse>, RpcError> {
    let d = d.clone();
    let stats = blocking(move || ready_stats(&d, req.filter.as_ref())).await?;
    let chunks: Vec<Result<StreamPodSandboxStatsResponse, tonic::Status>> = stats
        .chunks(STREAM_CHUNK)
        .map(|c| {
            Ok(StreamPodSandboxStatsResponse {
                pod_sandbox_stats: c.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Stats of every ready pod matching `filter` (a stopped pod has nothing running to measure,
/// as containerd also leaves such pods out). A pod that cannot be read is left out and logged.
fn ready_stats(d: &Daemon, filter: Option<&PodSandboxStatsFilter>) -> Vec<PodSandboxStats> {
    stats::sample::forget_the_gone(d);
    let pods = ready_pods(d, filter);
    let networks = network_of(&pods);
    pods.iter()
        .zip(networks)
        .filter_map(|(pod, network)| match stats_of(d, pod, network) {
            Ok(stats) => Some(stats),
            Err(e) => {
                warn!(pod = %pod.id, error = %e, "pod stats left out");
                None
            }
        })
        .collect()
}

/// Ready pods matching the filter.
pub(crate) fn ready_pods(d: &Daemon, filter: Option<&PodSandboxStatsFilter>) -> Vec<Arc<Pod>> {
    d.all_pods()
        .into_iter()
        .filter(|p| p.state() == PodState::Ready && filter.is_none_or(|f| matches(p, f)))
        .collect()
}

fn matches(p: &Pod, f: &PodSandboxStatsFilter) -> bool {
    p.id.starts_with(&f.id)
        && f.label_selector
            .iter()
            .all(|(k, v)| p.config.labels.get(k) == Some(v))
}

/// The pod cgroup's reading; `None` when the pod has no cgroup (any more).
pub(crate) fn sample_of(d: &Daemon, pod: &Pod) -> Result<Option<Sample>, String> {
    let record = pod.snapshot();
    stats::sample::read(d, &record.cgroup, &pod.id, record.created_at)
}

/// Interface counters of each pod, read in its network namespace; `None` for pods on the host
/// network, not ready, or whose namespace could not be read (logged).
pub(crate) fn network_of(pods: &[Arc<Pod>]) -> Vec<Option<(i64, Vec<InterfaceCounters>)>> {
    let netns: Vec<Option<std::path::PathBuf>> = pods
        .iter()
        .map(|p| {
            let record = p.snapshot();
            record.netns.filter(|_| record.state == PodState::Ready)
        })
        .collect();
    let wanted: Vec<_> = netns.iter().flatten().cloned().collect();
    let timestamp = now_nanos();
    let mut read = stats::net_dev::read_all(wanted).into_iter();
    pods.iter()
        .zip(netns)
        .map(|(pod, ns)| {
            ns.as_ref()?;
            match read.next()? {
                Ok(counters) => Some((timestamp, counters)),
                Err(e) => {
                    warn!(pod = %pod.id, error = %e, "pod network stats left out");
                    None
                }
            }
        })
        .collect()
}

fn stats_of(
    d: &Daemon,
    pod: &Pod,
    network: Option<(i64, Vec<InterfaceCounters>)>,
) -> Result<PodSandboxStats, String> {
    let sample = sample_of(d, pod)?;
    let linux = LinuxPodSandboxStats {
        cpu: sample.as_ref().map(|s| cpu_usage(&s.stats, s.nano_cores)),
        memory: sample.as_ref().map(|s| memory_usage(&s.stats)),
        network: network.map(|(at, counters)| stats::net_dev::network_usage(at, counters)),
        process: sample.as_ref().map(|s| ProcessUsage {
            timestamp: nanos(s.stats.timestamp),
            process_count: value(s.stats.pids.current),
        }),
        containers: pod_container_stats(d, &pod.id),
        io: sample.as_ref().and_then(|s| io_usage(&s.stats)),
    };
    Ok(PodSandboxStats {
        attributes: Some(attributes(pod)),
        linux: Some(linux),
        windows: None,
    })
}

fn attributes(pod: &Pod) -> PodSandboxAttributes {
    PodSandboxAttributes {
        id: pod.id.clone(),
        metadata: pod.config.metadata.clone(),
        labels: pod.config.labels.clone(),
        annotations: pod.config.annotations.clone(),
    }
}
