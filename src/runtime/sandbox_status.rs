//! `PodSandboxStatus`: state, IPs, namespaces, and (for the Evented PLEG) its containers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::server::RpcError;

use super::{container_status, lookup};
use crate::api::{
    LinuxPodSandboxStatus, Namespace, NamespaceOption, PodIp, PodSandboxNetworkStatus,
    PodSandboxState, PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse,
};
use crate::daemon::Daemon;
use crate::state::{Pod, PodRecord, PodState, now_nanos};

pub(super) async fn pod_sandbox_status(
    d: &Arc<Daemon>,
    req: PodSandboxStatusRequest,
) -> Result<PodSandboxStatusResponse, RpcError> {
    let pod = lookup::pod(d, &req.pod_sandbox_id)?;
    Ok(status_response(d, &pod, req.verbose))
}

/// The full status answer for a pod; also sent with container events.
pub(crate) fn status_response(d: &Daemon, pod: &Pod, verbose: bool) -> PodSandboxStatusResponse {
    let containers_statuses = lookup::containers_of(d, &pod.id)
        .iter()
        .map(|c| container_status::status_of(c))
        .collect();
    let info = if verbose {
        verbose_info(pod)
    } else {
        HashMap::new()
    };
    PodSandboxStatusResponse {
        status: Some(status_of(pod)),
        info,
        containers_statuses,
        timestamp: now_nanos(),
    }
}

/// The `PodSandboxStatus` of a pod.
pub(crate) fn status_of(pod: &Pod) -> PodSandboxStatus {
    let record = pod.snapshot();
    let config = &pod.config;
    let options: NamespaceOption = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default();
    let network = network_status(&record);
    PodSandboxStatus {
        id: pod.id.clone(),
        metadata: config.metadata.clone(),
        state: state_value(record.state) as i32,
        created_at: record.created_at,
        network: Some(network),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(options),
            }),
        }),
        labels: config.labels.clone(),
        annotations: config.annotations.clone(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// The pod's IPs, primary first (IPv4, then IPv6), while its network is attached. A stopped
/// pod's addresses went back to IPAM and may already be another pod's, so none are reported
/// then (as containerd does once the netns is gone); host-network pods report none either
/// (kubelet uses the node's).
fn network_status(record: &PodRecord) -> PodSandboxNetworkStatus {
    let ips = if record.network_attached {
        record.ips.as_slice()
    } else {
        &[]
    };
    PodSandboxNetworkStatus {
        ip: ips.first().cloned().unwrap_or_default(),
        additional_ips: ips
            .iter()
            .skip(1)
            .map(|ip| PodIp { ip: ip.clone() })
            .collect(),
    }
}

/// CRI's enum for a pod state.
pub(crate) fn state_value(state: PodState) -> PodSandboxState {
    match state {
        PodState::Ready => PodSandboxState::SandboxReady,
        PodState::NotReady => PodSandboxState::SandboxNotready,
    }
}

/// `crictl inspectp` shows this: where the pod's parts live.
fn verbose_info(pod: &Pod) -> HashMap<String, String> {
    let record = pod.snapshot();
    let info = serde_json::json!({
        "pid": record.pod_init_pid.unwrap_or(0),
        "stateDir": record.state_dir,
        "netns": record.netns,
        "ipcns": record.ipcns,
        "utsns": record.utsns,
        "pidns": record.pidns,
        "cgroup": record.cgroup,
        "runtimeHandler": record.runtime_handler,
        "shm": record.shm,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
