//! The pod's cgroup (wired to `longshore-cgroups` next).

use tonic::Status;

use crate::api::PodSandboxConfig;
use crate::daemon::Daemon;
use crate::state::PodRecord;

pub(crate) fn create(_d: &Daemon, _config: &PodSandboxConfig, _record: &mut PodRecord) -> Result<(), Status> {
    Ok(())
}

pub(crate) fn add_process(_d: &Daemon, _record: &PodRecord, _pid: i32) -> Result<(), Status> {
    Ok(())
}

pub(crate) fn remove(_d: &Daemon, _record: &PodRecord) -> Result<(), Status> {
    Ok(())
}
