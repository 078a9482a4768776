//! `Version`: the runtime's name and versions.

use crate::server::RpcError;

use crate::api::{VersionRequest, VersionResponse};
use crate::daemon::Daemon;
use crate::version::{CRI_API_VERSION, KUBELET_API_VERSION, RUNTIME_NAME, VERSION};

pub(super) async fn version(
    _d: &Daemon,
    _req: VersionRequest,
) -> Result<VersionResponse, RpcError> {
    Ok(VersionResponse {
        version: KUBELET_API_VERSION.into(),
        runtime_name: RUNTIME_NAME.into(),
        runtime_version: VERSION.into(),
        runtime_api_version: CRI_API_VERSION.into(),
    })
}
