//! A container's cgroup, a child of its pod's: made at start with the requested resources,
//! killed at stop, removed at exit or removal.

use longshore_cgroups::{Cgroup, CgroupPath, HugepageLimit, Resources};
use tonic::Status;

use crate::api::LinuxContainerResources;
use crate::daemon::Daemon;
use crate::state::{ContainerRecord, PodRecord};

/// The container's cgroup path inside its pod's.
pub(crate) fn path_for(d: &Daemon, pod: &PodRecord, container_id: &str) -> Result<String, Status> {
    let pod_path = CgroupPath::new(&pod.cgroup)
        .map_err(|e| Status::internal(format!("pod cgroup {:?}: {e}", pod.cgroup)))?;
    let name = d.cgroup_driver().container_name(container_id);
    pod_path
        .child(&name)
        .map(|p| p.as_str().to_string())
        .map_err(|e| Status::internal(e.to_string()))
}

fn open(d: &Daemon, record: &ContainerRecord) -> Result<Option<Cgroup>, Status> {
    if record.cgroup.is_empty() {
        return Ok(None);
    }
    let path = CgroupPath::new(&record.cgroup).map_err(|e| Status::internal(e.to_string()))?;
    Cgroup::open(&d.hierarchy, &path)
        .map(Some)
        .map_err(|e| Status::internal(format!("opening cgroup {}: {e}", record.cgroup)))
}

/// CRI resources in the cgroups crate's terms.
pub(crate) fn resources(r: &LinuxContainerResources) -> Resources {
    Resources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
        pids_limit: 0,
        hugepage_limits: r
            .hugepage_limits
            .iter()
            .map(|h| HugepageLimit {
                page_size: h.page_size.clone(),
                limit: h.limit,
            })
            .collect(),
        unified: r
            .unified
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        oom_group: None,
    }
}

/// Makes the container's cgroup and applies its resources.
pub(crate) fn create(
    d: &Daemon,
    record: &ContainerRecord,
    r: Option<&LinuxContainerResources>,
) -> Result<(), Status> {
    let path = CgroupPath::new(&record.cgroup).map_err(|e| Status::internal(e.to_string()))?;
    let cgroup = Cgroup::create(&d.hierarchy, &path)
        .map_err(|e| Status::internal(format!("creating cgroup {}: {e}", path.as_str())))?;
    if let Some(r) = r {
        cgroup
            .apply(&resources(r))
            .map_err(|e| Status::invalid_argument(format!("config.linux.resources: {e}")))?;
    }
    Ok(())
}

/// Applies new resources to a live cgroup.
pub(crate) fn update(
    d: &Daemon,
    record: &ContainerRecord,
    r: &LinuxContainerResources,
) -> Result<(), Status> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    if !cgroup.exists() {
        return Ok(());
    }
    cgroup
        .apply(&resources(r))
        .map_err(|e| Status::invalid_argument(format!("linux resources: {e}")))
}

/// SIGKILLs every process in the container's cgroup.
pub(crate) fn kill_all(d: &Daemon, record: &ContainerRecord) -> Result<(), Status> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    if !cgroup.exists() {
        return Ok(());
    }
    cgroup
        .kill_all()
        .map_err(|e| Status::internal(format!("killing cgroup {}: {e}", record.cgroup)))
}

/// Removes the container's cgroup; a missing one is fine.
pub(crate) fn remove(d: &Daemon, record: &ContainerRecord) -> Result<(), Status> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    cgroup
        .delete()
        .map_err(|e| Status::internal(format!("removing cgroup {}: {e}", record.cgroup)))
}

/// The file a monitor polls for the container's OOM kills.
pub(crate) fn memory_events_path(
    d: &Daemon,
    record: &ContainerRecord,
) -> Option<std::path::PathBuf> {
    open(d, record)
        .ok()
        .flatten()
        .and_then(|c| c.memory_events_path())
}
