//! The pod's network through CNI (wired to `longshore-cni` next).

use tonic::Status;

use crate::api::PodSandboxConfig;
use crate::daemon::Daemon;
use crate::state::PodRecord;

pub(crate) async fn attach(_d: &Daemon, _config: &PodSandboxConfig, _record: &mut PodRecord) -> Result<(), Status> {
    Ok(())
}

pub(crate) async fn detach(_d: &Daemon, _record: &PodRecord) -> Result<(), Status> {
    Ok(())
}
