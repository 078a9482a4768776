//! `ContainerStatus`: state, times, exit, image, mounts, resources, user.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;

use crate::server::RpcError;

use super::lookup;
use crate::api::{
    ContainerResources, ContainerState as CriState, ContainerStatus, ContainerStatusRequest,
    ContainerStatusResponse, ContainerUser, ImageSpec, LinuxContainerResources, LinuxContainerUser,
};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState};

pub(super) async fn container_status(
    d: &Arc<Daemon>,
    req: ContainerStatusRequest,
) -> Result<ContainerStatusResponse, RpcError> {
    let container = lookup::container(d, &req.container_id)?;
    let info = if req.verbose {
        verbose_info(&container)
    } else {
        HashMap::new()
    };
    Ok(ContainerStatusResponse {
        status: Some(status_of(&container)),
        info,
    })
}

/// CRI's enum for a container state.
pub(crate) fn state_value(state: ContainerState) -> CriState {
    match state {
        ContainerState::Created => CriState::ContainerCreated,
        ContainerState::Running => CriState::ContainerRunning,
        ContainerState::Exited => CriState::ContainerExited,
        ContainerState::Unknown => CriState::ContainerUnknown,
    }
}

/// The resources in force: the last update, else what the container was created with.
pub(crate) fn current_resources(container: &Container) -> Option<LinuxContainerResources> {
    let record = container.snapshot();
    if !record.resources.is_empty() {
        if let Ok(r) = LinuxContainerResources::decode(record.resources.as_slice()) {
            return Some(r);
        }
    }
    container
        .config
        .linux
        .as_ref()
        .and_then(|l| l.resources.clone())
}

/// The `ContainerStatus` of a container.
pub(crate) fn status_of(container: &Container) -> ContainerStatus {
    let record = container.snapshot();
    let config = &container.config;
    let exit = record.exit.clone().unwrap_or_default();
    let image_ref = if record.image_ref.is_empty() {
        record.image_id.clone()
    } else {
        record.image_ref.clone()
    };
    ContainerStatus {
        id: container.id.clone(),
        metadata: config.metadata.clone(),
        state: state_value(record.state) as i32,
        created_at: record.created_at,
        started_at: record.started_at,
        finished_at: exit.finished_at,
        exit_code: exit.code,
        image: Some(ImageSpec {
            image: record.image_name.clone(),
            annotations: config
                .image
                .as_ref()
                .map(|i| i.annotations.clone())
                .unwrap_or_default(),
            ..Default::default()
        }),
        image_ref,
        reason: exit.reason,
        message: exit.message,
        labels: config.labels.clone(),
        annotations: config.annotations.clone(),
        mounts: config.mounts.clone(),
        log_path: record.log_path.to_string_lossy().to_string(),
        resources: current_resources(container).map(|linux| ContainerResources {
            linux: Some(linux),
            windows: None,
        }),
        image_id: record.image_id.clone(),
        stop_signal: config.stop_signal,
        user: Some(ContainerUser {
            linux: Some(LinuxContainerUser {
                uid: record.uid,
                gid: record.gid,
                supplemental_groups: record.supplemental_groups.clone(),
            }),
        }),
    }
}

fn verbose_info(container: &Container) -> HashMap<String, String> {
    let record = container.snapshot();
    let info = serde_json::json!({
        "sandboxID": record.pod_id,
        "pid": record.pid,
        "stateDir": record.state_dir,
        "cgroup": record.cgroup,
        "runtimeHandler": record.runtime_handler,
        "bundle": record.state_dir.join("bundle"),
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
