//! `ListContainers` and `StreamContainers`: containers matching a filter.

use std::sync::Arc;

use crate::server::RpcError;

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
) -> Result<ListContainersResponse, RpcError> {
    Ok(ListContainersResponse {
        containers: matching(d, req.filter.as_ref()),
    })
}

pub(super) async fn stream_containers(
    d: &Arc<Daemon>,
    req: StreamContainersRequest,
) -> Result<RpcStream<StreamContainersResponse>, RpcError> {
    let items = matching(d, req.filter.as_ref());
    let chunks: Vec<Result<StreamContainersResponse, tonic::Status>> = items
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
    // Read each creation time once: sorting on `snapshot()` copied whole records per comparison.
    let mut out: Vec<(i64, Arc<Container>)> = d
        .all_containers()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| matches(c, f)))
        .map(|c| (c.read(|r| r.created_at), c))
        .collect();
    out.sort_unstable_by_key(|(created_at, _)| std::cmp::Reverse(*created_at));
    out.into_iter().map(|(_, c)| c).collect()
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
    let (image_name, image_ref, image_id, state, created_at) = c.read(|r| {
        let image_ref = if r.image_ref.is_empty() {
            &r.image_id
        } else {
            &r.image_ref
        };
        (
            r.image_name.clone(),
            image_ref.clone(),
            r.image_id.clone(),
            r.state,
            r.created_at,
        )
    });
    CriContainer {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_id.clone(),
        metadata: c.config.metadata.clone(),
        image: Some(ImageSpec {
            image: image_name,
            ..Default::default()
        }),
        image_ref,
        state: container_status::state_value(state) as i32,
        created_at,
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        image_id,
    }
}
