//! The systemd cgroup driver for real: on a host that systemd booted, with `[cgroups] driver =
//! "systemd"`, cgroups are systemd's units, made and changed through its D-Bus API
//! (`longshore-systemd`), as runc's and crun's systemd drivers do:
//!
//! - a container's cgroup is the transient scope `longshore-<id>.scope` in its pod's slice, with
//!   `Delegate=yes` and its limits as unit properties, so `systemctl` lists and accounts it and a
//!   `daemon-reload` keeps (rewrites) the very limits it has;
//! - a pod slice kubelet did not name (crictl's pods) is a transient slice
//!   `<default_parent>-pod<id>.slice`;
//! - a shared-PID pod's PID 1 is in the scope `longshore-<pod id>.scope` of its pod's slice.
//!
//! Where Longshore differs from runc: the scope is started for the container's init *after* the
//! executor put it in the cgroup directory Longshore made (with the limits already written), not
//! by the executor itself. systemd adopts the existing directory (it makes the unit's cgroup with
//! "exists is fine" and moves the PIDs, which are there already) and writes the same limits from
//! the properties. That keeps one code path, one unit naming and one job wait (`JobRemoved`) for
//! the embedded executor and for every external OCI runtime alike (runc runs with its cgroupfs
//! manager on the path it is given), and the container is never without its limits.
//!
//! Without systemd (no `/run/systemd/system`), the `systemd` driver only names cgroups the
//! systemd way and makes them on cgroupfs, as before; the daemon says so at start.

use longshore_cgroups::{CgroupPath, Resources};
use longshore_systemd::{Systemd, properties};

use crate::daemon::Daemon;
use crate::server::RpcError;
use crate::server::status::RpcContext;

/// The unit name of the last component of a cgroup path (`longshore-<id>.scope`,
/// `kubepods-pod1.slice`).
pub(crate) fn unit_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The slice a cgroup path is in: its parent's last component, which must be a slice.
fn slice_of(path: &str) -> Result<&str, RpcError> {
    let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let slice = unit_of(parent);
    if slice.ends_with(".slice") {
        Ok(slice)
    } else {
        Err(RpcError::invalid_argument(format!(
            "cgroup {path:?} is not in a systemd slice (the systemd driver needs slice names)"
        )))
    }
}

/// Whether a pod cgroup path fits the systemd driver: it must be a slice.
pub(crate) fn check_pod_path(d: &Daemon, path: &CgroupPath) -> Result<(), RpcError> {
    if d.systemd.is_none() || unit_of(path.as_str()).ends_with(".slice") {
        return Ok(());
    }
    Err(RpcError::invalid_argument(format!(
        "config.linux.cgroup_parent: {} is not a systemd slice, and the systemd cgroup driver \
         needs slices (such as kubepods-burstable-pod<uid>.slice)",
        path.as_str()
    )))
}

fn unified(d: &Daemon) -> bool {
    d.hierarchy.mode() == longshore_cgroups::Mode::Unified
}

/// Starts the transient slice of a pod Longshore makes itself.
pub(crate) async fn start_pod_slice(
    sd: &Systemd,
    pod_cgroup: &str,
    pod_id: &str,
) -> Result<(), RpcError> {
    let name = unit_of(pod_cgroup);
    sd.start_transient_unit(name, &properties::slice(&format!("Longshore pod {pod_id}")))
        .await
        .with_context(|| format!("starting the pod slice {name}"))
}

/// Starts a scope for `pid` at cgroup `path` (its directory made already, the process in it).
pub(crate) async fn start_scope(
    d: &Daemon,
    sd: &Systemd,
    path: &str,
    pid: u32,
    description: &str,
    r: &Resources,
) -> Result<(), RpcError> {
    let name = unit_of(path);
    let slice = slice_of(path)?;
    let props = properties::scope(description, slice, pid, r, unified(d));
    sd.start_transient_unit(name, &props)
        .await
        .with_context(|| format!("starting the scope {name} in {slice}"))
}

/// New limits on a live scope.
pub(crate) async fn update(
    d: &Daemon,
    sd: &Systemd,
    path: &str,
    r: &Resources,
) -> Result<(), RpcError> {
    let name = unit_of(path);
    sd.set_unit_properties(name, &properties::resources(r, unified(d)))
        .await
        .with_context(|| format!("setting the limits of {name}"))
}

/// Stops a unit (scope or slice) and clears its failed state; a unit already gone is fine.
pub(crate) async fn stop(sd: &Systemd, path: &str) -> Result<(), RpcError> {
    let name = unit_of(path);
    sd.stop_unit(name)
        .await
        .with_context(|| format!("stopping {name}"))
}

/// Runs one of the async steps above from the blocking pool (where the pod's parts are made).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_slices_of_paths() {
        let p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/longshore-ab.scope";
        assert_eq!(unit_of(p), "longshore-ab.scope");
        assert_eq!(slice_of(p).ok(), Some("kubepods-burstable-pod1.slice"));
        assert!(slice_of("/longshore/abc").is_err());
        assert!(slice_of("/x.scope").is_err(), "the root is no slice");
    }
}
