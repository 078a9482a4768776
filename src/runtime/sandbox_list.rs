//! `ListPodSandbox` and `StreamPodSandboxes`: pods matching a filter of id, state and labels.

use std::sync::Arc;

use crate::server::RpcError;

use super::{RpcStream, sandbox_status};
use crate::api::{
    ListPodSandboxRequest, ListPodSandboxResponse, PodSandbox, PodSandboxFilter,
    StreamPodSandboxesRequest, StreamPodSandboxesResponse,
};
use crate::daemon::Daemon;
use crate::state::Pod;

/// How many pods one streamed message carries.
const STREAM_CHUNK: usize = 512;

pub(super) async fn list_pod_sandbox(
    d: &Arc<Daemon>,
    req: ListPodSandboxRequest,
) -> Result<ListPodSandboxResponse, RpcError> {
    Ok(ListPodSandboxResponse {
        items: matching(d, req.filter.as_ref()),
    })
}

pub(super) async fn stream_pod_sandboxes(
    d: &Arc<Daemon>,
    req: StreamPodSandboxesRequest,
) -> Result<RpcStream<StreamPodSandboxesResponse>, RpcError> {
    let items = matching(d, req.filter.as_ref());
    let chunks: Vec<Result<StreamPodSandboxesResponse, tonic::Status>> = items
        .chunks(STREAM_CHUNK)
        .map(|c| {
            Ok(StreamPodSandboxesResponse {
                pod_sandboxes: c.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

fn matching(d: &Daemon, filter: Option<&PodSandboxFilter>) -> Vec<PodSandbox> {
    let mut pods: Vec<PodSandbox> = d
        .all_pods()
        .iter()
        .filter(|p| filter.is_none_or(|f| matches(p, f)))
        .map(|p| summary(p))
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    pods
}

fn matches(pod: &Pod, filter: &PodSandboxFilter) -> bool {
    if !filter.id.is_empty() && !pod.id.starts_with(&filter.id) {
        return false;
    }
    if let Some(state) = &filter.state {
        if sandbox_status::state_value(pod.state()) as i32 != state.state {
            return false;
        }
    }
    filter
        .label_selector
        .iter()
        .all(|(k, v)| pod.config.labels.get(k) == Some(v))
}

fn summary(pod: &Pod) -> PodSandbox {
    let record = pod.snapshot();
    PodSandbox {
        id: pod.id.clone(),
        metadata: pod.config.metadata.clone(),
        state: sandbox_status::state_value(record.state) as i32,
        created_at: record.created_at,
        labels: pod.config.labels.clone(),
        annotations: pod.config.annotations.clone(),
        runtime_handler: record.runtime_handler,
    }
}
