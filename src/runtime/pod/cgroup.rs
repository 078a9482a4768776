//! The pod's cgroup: kubelet's `cgroup_parent` resolved under `[cgroups] root`, or, for pods that
//! name none, `<default_parent>/pod-<id>`. Containers get child cgroups of it. Under the systemd
//! driver on a systemd host these are units (`runtime::systemd_units`): the pod's a slice, its PID
//! 1's a scope.

use crate::server::RpcError;
use crate::server::status::RpcContext;
use longshore_cgroups::{Cgroup, CgroupPath, Driver};

use crate::api::PodSandboxConfig;
use crate::daemon::Daemon;
use crate::runtime::systemd_units as units;
use crate::state::PodRecord;

/// The leaf holding the pod's own processes (its PID 1): on cgroup v2 a cgroup with children may
/// not hold processes itself.
const POD_INIT_LEAF: &str = "pod-init";

/// Resolves the pod's cgroup into the record, and whether Longshore will make it (kubelet
/// makes the ones it names first). Makes nothing: the record is persisted before anything is.
pub(crate) fn plan(
    d: &Daemon,
    config: &PodSandboxConfig,
    record: &mut PodRecord,
) -> Result<(), RpcError> {
    let parent = config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.as_str())
        .unwrap_or("");
    let path = pod_path(d, parent, &record.id)?;
    super::super::systemd_units::check_pod_path(d, &path)?;
    let exists = Cgroup::open(&d.hierarchy, &path)
        .map(|c| c.exists())
        .unwrap_or(false);
    record.cgroup = path.as_str().to_string();
    record.owns_cgroup = !exists;
    Ok(())
}

/// Makes the pod's cgroup that [`plan`] resolved.
pub(crate) fn create(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    let path = CgroupPath::new(&record.cgroup)?;
    if let Some(sd) = &d.systemd {
        if record.owns_cgroup {
            units::block_on(units::start_pod_slice(sd, &record.cgroup, &record.id))?;
        }
        return Ok(());
    }
    Cgroup::create(&d.hierarchy, &path)
        .with_context(|| format!("creating pod cgroup {}", path.as_str()))?;
    Ok(())
}

fn pod_path(d: &Daemon, parent: &str, pod_id: &str) -> Result<CgroupPath, RpcError> {
    let driver = d.cgroup_driver();
    if parent.is_empty() && d.systemd.is_some() {
        // `<default>-pod<id>.slice`: a slice's name says where it is (`a-b.slice` in `a.slice`).
        let default = d.default_pod_slice();
        let name = format!("{}-pod{pod_id}.slice", default.trim_end_matches(".slice"));
        return CgroupPath::resolve(&d.cgroup_root, &name, driver).map_err(RpcError::from);
    }
    if parent.is_empty() {
        let base = CgroupPath::resolve(&d.cgroup_root, &d.config.cgroups.default_parent, driver)
            .context("[cgroups] default_parent")?;
        let name = match driver {
            Driver::Cgroupfs => format!("pod-{pod_id}"),
            Driver::Systemd => format!("longshore-pod-{pod_id}.slice"),
        };
        return base.child(&name).map_err(RpcError::from);
    }
    CgroupPath::resolve(&d.cgroup_root, parent, driver).map_err(|e| {
        RpcError::invalid_argument(format!("config.linux.cgroup_parent {parent:?}: {e}"))
    })
}

/// Puts one of the pod's own processes (its PID 1) in the pod's leaf cgroup.
pub(crate) fn add_process(d: &Daemon, record: &PodRecord, pid: i32) -> Result<(), RpcError> {
    let leaf = leaf_path(d, record)?;
    if let Some(sd) = &d.systemd {
        let description = format!("Longshore pod {} PID 1", record.id);
        return units::block_on(units::start_scope(
            d,
            sd,
            leaf.as_str(),
            pid as u32,
            &description,
            &Default::default(),
        ));
    }
    let cgroup = Cgroup::create(&d.hierarchy, &leaf)
        .with_context(|| format!("creating {}", leaf.as_str()))?;
    cgroup
        .add_process(pid as u32)
        .with_context(|| format!("moving pod init {pid} to {}", leaf.as_str()))
}

/// The cgroup of the pod's own PID 1: a leaf, or under systemd the scope `longshore-<pod id>.scope`.
fn leaf_path(d: &Daemon, record: &PodRecord) -> Result<CgroupPath, RpcError> {
    let leaf = match d.systemd {
        Some(_) => d.cgroup_driver().container_name(&record.id),
        None => POD_INIT_LEAF.to_string(),
    };
    CgroupPath::new(&record.cgroup)
        .and_then(|p| p.child(&leaf))
        .map_err(RpcError::from)
}

/// Removes the pod's leaf, and the pod cgroup itself when Longshore made it.
pub(crate) fn remove(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    if record.cgroup.is_empty() {
        return Ok(());
    }
    let leaf = leaf_path(d, record)?;
    if let Some(sd) = &d.systemd {
        units::block_on(units::stop(sd, leaf.as_str()))?;
        if record.owns_cgroup {
            units::block_on(units::stop(sd, &record.cgroup))?;
        }
    }
    if let Ok(cgroup) = Cgroup::open(&d.hierarchy, &leaf) {
        cgroup
            .delete()
            .with_context(|| format!("removing {}", leaf.as_str()))?;
    }
    if !record.owns_cgroup {
        return Ok(());
    }
    let path = CgroupPath::new(&record.cgroup).map_err(RpcError::from)?;
    if let Ok(cgroup) = Cgroup::open(&d.hierarchy, &path) {
        cgroup
            .delete()
            .with_context(|| format!("removing pod cgroup {}", path.as_str()))?;
    }
    remove_named_systemd(d, &path);
    Ok(())
}

/// runc (the runc handler on a v1/hybrid host) also makes each container's cgroup in the
/// `name=systemd` hierarchy, with the pod's as its parent; it removes only the container's.
/// The pod's directory there is ours when the pod cgroup is, so it goes too (empty by now).
fn remove_named_systemd(d: &Daemon, path: &CgroupPath) {
    let Some(dir) = d.hierarchy.named_systemd_dir(path) else {
        return;
    };
    for dir in [dir.join(POD_INIT_LEAF), dir] {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the pod's name=systemd cgroup")
            }
        }
    }
}
