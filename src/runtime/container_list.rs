//! `ListContainers` and `StreamContainers`: containers matching a filter.

use std::sync::Arc;

use tonic::Status;

use super::{RpcStream, container_status};
use crate::api::{
    Container as CriContainer, ContainerFilter, ImageSpec, ListContainersRequest,
    ListContainersResponse, StreamContainersRequest, StreamContainersResponse,
};
use crate::daemon::Daemon;
use crate::state::Container;

const STREAM_CHUNK: usize = 512;

pub(super) async fn list_containers(
    d: &Arc<Daemon>,
    req: ListContainersRequest,
) -> Result<ListContainersResponse, Status> {
    Ok(ListContainersResponse {
        containers: matching(d, req.filter.as_ref()),
    })
}

pub(super) async fn stream_containers(
    d: &Arc<Daemon>,
    req: StreamContainersRequest,
) -> Result<RpcStream<StreamContainersResponse>, Status> {
    let items = matching(d, req.filter.as_ref());
    let chunks: Vec<Result<StreamContainersResponse, Status>> = items
        .chunks(STREAM_CHUNK)
        .map(|c| {
            Ok(StreamContainersResponse {
                containers: c.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Containers matching the filter, newest first.
pub(crate) fn matching_entries(
    d: &Daemon,
    filter: Option<&ContainerFilter>,
) -> Vec<Arc<Container>> {
    let mut out: Vec<Arc<Container>> = d
        .all_containers()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| matches(c, f)))
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.snapshot().created_at));
    out
}

fn matching(d: &Daemon, filter: Option<&ContainerFilter>) -> Vec<CriContainer> {
    matching_entries(d, filter)
        .iter()
        .map(|c| summary(c))
        .collect()
}

fn matches(c: &Container, filter: &ContainerFilter) -> bool {
    if !filter.id.is_empty() && !c.id.starts_with(&filter.id) {
        return false;
    }
    if !filter.pod_sandbox_id.is_empty() && !c.pod_id.starts_with(&filter.pod_sandbox_id) {
        return false;
    }
    if let Some(state) = &filter.state {
        if container_status::state_value(c.state()) as i32 != state.state {
            return false;
        }
    }
    filter
        .label_selector
        .iter()
        .all(|(k, v)| c.config.labels.get(k) == Some(v))
}

fn summary(c: &Container) -> CriContainer {
    let record = c.snapshot();
    let image_ref = if record.image_ref.is_empty() {
        record.image_id.clone()
    } else {
        record.image_ref.clone()
    };
    CriContainer {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_id.clone(),
        metadata: c.config.metadata.clone(),
        image: Some(ImageSpec {
            image: record.image_name.clone(),
            ..Default::default()
        }),
        image_ref,
        state: container_status::state_value(record.state) as i32,
        created_at: record.created_at,
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        image_id: record.image_id,
    }
}
