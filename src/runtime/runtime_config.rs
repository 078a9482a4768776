//! `RuntimeConfig` (the cgroup driver kubelet must match) and `UpdateRuntimeConfig` (the pod CIDR,
//! which CNI plugins get from their own configuration, so there is nothing to keep).

use crate::server::RpcError;

use crate::api::{
    CgroupDriver, LinuxRuntimeConfiguration, RuntimeConfigRequest, RuntimeConfigResponse,
    UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse,
};
use crate::daemon::Daemon;

pub(super) async fn runtime_config(
    d: &Daemon,
    _req: RuntimeConfigRequest,
) -> Result<RuntimeConfigResponse, RpcError> {
    let driver = match d.config.cgroups.driver {
        longshore_config::CgroupDriver::Cgroupfs => CgroupDriver::Cgroupfs,
        longshore_config::CgroupDriver::Systemd => CgroupDriver::Systemd,
    };
    Ok(RuntimeConfigResponse {
        linux: Some(LinuxRuntimeConfiguration {
            cgroup_driver: driver as i32,
        }),
    })
}

pub(super) async fn update_runtime_config(
    _d: &Daemon,
    req: UpdateRuntimeConfigRequest,
) -> Result<UpdateRuntimeConfigResponse, RpcError> {
    let cidr = req
        .runtime_config
        .and_then(|c| c.network_config)
        .map(|n| n.pod_cidr);
    tracing::info!(pod_cidr = ?cidr, "kubelet sent the pod CIDR; CNI configuration owns addressing");
    Ok(UpdateRuntimeConfigResponse {})
}
