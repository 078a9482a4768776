//! A container's cgroup, a child of its pod's: made at start with the requested resources,
//! killed at stop, removed at exit or removal.

use std::sync::Arc;

use crate::server::status::RpcContext;
use crate::server::{RpcError, blocking};
use longshore_cgroups::{Cgroup, CgroupPath, HugepageLimit, Resources};

use crate::api::LinuxContainerResources;
use crate::daemon::Daemon;
use crate::runtime::systemd_units as units;
use crate::state::{ContainerRecord, PodRecord};

/// The container's cgroup path inside its pod's.
pub(crate) fn path_for(
    d: &Daemon,
    pod: &PodRecord,
    container_id: &str,
) -> Result<String, RpcError> {
    let pod_path =
        CgroupPath::new(&pod.cgroup).with_context(|| format!("pod cgroup {:?}", pod.cgroup))?;
    let name = d.cgroup_driver().container_name(container_id);
    pod_path
        .child(&name)
        .map(|p| p.as_str().to_string())
        .map_err(RpcError::from)
}

fn open(d: &Daemon, record: &ContainerRecord) -> Result<Option<Cgroup>, RpcError> {
    if record.cgroup.is_empty() {
        return Ok(None);
    }
    let path = CgroupPath::new(&record.cgroup).map_err(RpcError::from)?;
    Cgroup::open(&d.hierarchy, &path)
        .map(Some)
        .with_context(|| format!("opening cgroup {}", record.cgroup))
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

/// Makes the container's cgroup and applies its resources (on the blocking pool).
pub(crate) async fn create(
    d: &Arc<Daemon>,
    record: &ContainerRecord,
    r: Option<&LinuxContainerResources>,
) -> Result<(), RpcError> {
    let (d, record, r) = (d.clone(), record.clone(), r.cloned());
    blocking("creating the container's cgroup", move || {
        create_now(&d, &record, r.as_ref())
    })
    .await?
}

fn create_now(
    d: &Daemon,
    record: &ContainerRecord,
    r: Option<&LinuxContainerResources>,
) -> Result<(), RpcError> {
    let path = CgroupPath::new(&record.cgroup).map_err(RpcError::from)?;
    let cgroup = Cgroup::create(&d.hierarchy, &path)
        .with_context(|| format!("creating cgroup {}", path.as_str()))?;
    if let Some(r) = r {
        cgroup
            .apply(&resources(r))
            .context("config.linux.resources")?;
    }
    Ok(())
}

/// Under the systemd driver, makes the container's cgroup a transient scope for its init `pid`
/// (now in the directory [`create`] made). If systemd refuses, the container is killed and the
/// start fails with systemd's reason; a container that is already gone needs no unit.
pub(crate) async fn start_unit(
    d: &Arc<Daemon>,
    record: &ContainerRecord,
    pid: i32,
    r: Option<&LinuxContainerResources>,
) -> Result<(), RpcError> {
    let Some(sd) = &d.systemd else {
        return Ok(());
    };
    let limits = r.map(resources).unwrap_or_default();
    let description = format!("Longshore container {}", record.id);
    let started =
        units::start_scope(d, sd, &record.cgroup, pid as u32, &description, &limits).await;
    let Err(e) = started else {
        return Ok(());
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        tracing::info!(container = %record.id, error = %e, "the container ended before systemd took its scope");
        return Ok(());
    }
    if let Err(kill) = kill_all(d, record).await {
        tracing::warn!(container = %record.id, error = %kill, "cannot kill the container systemd refused");
    }
    Err(e)
}

/// Applies new resources to a live cgroup (and, under systemd, to its scope's properties).
pub(crate) fn update(
    d: &Daemon,
    record: &ContainerRecord,
    r: &LinuxContainerResources,
) -> Result<(), RpcError> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    if !cgroup.exists() {
        return Ok(());
    }
    let limits = resources(r);
    if let Some(sd) = &d.systemd {
        units::block_on(units::update(d, sd, &record.cgroup, &limits))?;
    }
    cgroup.apply(&limits).context("linux resources")
}

/// SIGKILLs every process in the container's cgroup and waits until none is left (on the
/// blocking pool: the wait polls cgroupfs).
pub(crate) async fn kill_all(d: &Arc<Daemon>, record: &ContainerRecord) -> Result<(), RpcError> {
    let (d, record) = (d.clone(), record.clone());
    blocking("killing the container's cgroup", move || {
        kill_all_now(&d, &record)
    })
    .await?
}

fn kill_all_now(d: &Daemon, record: &ContainerRecord) -> Result<(), RpcError> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    if !cgroup.exists() {
        return Ok(());
    }
    cgroup
        .kill_all()
        .with_context(|| format!("killing cgroup {}", record.cgroup))
}

/// Removes the container's cgroup; a missing one is fine (on the blocking pool: rmdir may
/// wait for the kernel to let go of exiting processes).
pub(crate) async fn remove(d: &Arc<Daemon>, record: &ContainerRecord) -> Result<(), RpcError> {
    if let Some(sd) = &d.systemd
        && !record.cgroup.is_empty()
    {
        units::stop(sd, &record.cgroup).await?;
    }
    let (d, record) = (d.clone(), record.clone());
    blocking("removing the container's cgroup", move || {
        remove_now(&d, &record)
    })
    .await?
}

fn remove_now(d: &Daemon, record: &ContainerRecord) -> Result<(), RpcError> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(());
    };
    cgroup
        .delete()
        .with_context(|| format!("removing cgroup {}", record.cgroup))
}

/// The processes in the container's cgroup (none when it has no cgroup). Blocking.
pub(crate) fn procs(d: &Daemon, record: &ContainerRecord) -> Result<Vec<u32>, RpcError> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(Vec::new());
    };
    cgroup
        .procs()
        .with_context(|| format!("listing cgroup {}", record.cgroup))
}

/// Block I/O of the container's cgroup per device. Blocking.
pub(crate) fn io_stats(
    d: &Daemon,
    record: &ContainerRecord,
) -> Result<Vec<longshore_cgroups::IoDevice>, RpcError> {
    let Some(cgroup) = open(d, record)? else {
        return Ok(Vec::new());
    };
    cgroup
        .io_stats()
        .with_context(|| format!("reading block I/O of cgroup {}", record.cgroup))
}

/// The container cgroup's directories, one per hierarchy, for its monitor.
pub(crate) fn dirs(d: &Daemon, record: &ContainerRecord) -> Vec<std::path::PathBuf> {
    open(d, record)
        .ok()
        .flatten()
        .map(|c| c.dirs())
        .unwrap_or_default()
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
