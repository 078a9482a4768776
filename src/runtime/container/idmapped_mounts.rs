//! Idmapped volumes: a CRI `Mount` with `uidMappings`/`gidMappings` (kubelet's way to ask that a
//! volume's host ids appear through the pod's user namespace, as containerd 2.x serves it).
//!
//! The daemon makes the idmapped bind itself, at `<state>/containers/<id>/idmapped/<n>`, and the
//! container gets a plain bind of that: both executors then serve it (youki's libcontainer 0.7
//! and runc 1.1 do not take `uidMappings` on an OCI mount). The maps must be the pod's own:
//! the mount is idmapped through the pod's pinned user namespace.

use std::os::fd::AsFd;
use std::path::Path;

use longshore_namespaces::IdMap;

use crate::api::{ContainerConfig, IdMapping, Mount, PodSandboxConfig};
use crate::server::RpcError;
use crate::server::status::RpcContext;

/// The folder, in a container's state folder, holding its idmapped volumes.
const IDMAPPED_DIR: &str = "idmapped";

/// Makes the idmapped mounts `config` asks for and returns it with each of them turned
/// into a plain bind of its idmapped view. Blocking (mounts). On an error, what was mounted
/// stays for the caller's undo ([`unmount_all`]).
pub(crate) fn mount_all(
    state_dir: &Path,
    pod_config: &PodSandboxConfig,
    userns: Option<&Path>,
    mut config: ContainerConfig,
) -> Result<ContainerConfig, RpcError> {
    for (i, m) in config.mounts.iter_mut().enumerate() {
        if m.uid_mappings.is_empty() && m.gid_mappings.is_empty() {
            continue;
        }
        let field = format!("config.mounts[{i}]");
        let userns = pod_maps_match(&field, m, pod_config, userns)?;
        let source = std::fs::canonicalize(&m.host_path)
            .with_context(|| format!("{field}.host_path {:?}", m.host_path))?;
        let target = state_dir.join(IDMAPPED_DIR).join(i.to_string());
        make_target(&source, &target)?;
        let ns =
            std::fs::File::open(userns).with_context(|| format!("opening {}", userns.display()))?;
        longshore_snapshot::idmapped_bind(&source, &target, ns.as_fd())
            .with_context(|| format!("{field}: idmapped mount of {}", source.display()))?;
        m.host_path = target.to_string_lossy().into_owned();
        m.uid_mappings.clear();
        m.gid_mappings.clear();
    }
    Ok(config)
}

/// The pod's pinned user namespace, if the mount's maps are the pod's; else InvalidArgument.
fn pod_maps_match<'a>(
    field: &str,
    m: &Mount,
    pod_config: &PodSandboxConfig,
    userns: Option<&'a Path>,
) -> Result<&'a Path, RpcError> {
    let pod = crate::runtime::pod::userns::request(pod_config)?;
    let (Some(userns), Some(pod)) = (userns, pod) else {
        return Err(RpcError::invalid_argument(format!(
            "{field}: uid/gid mappings need a pod with its own user namespace"
        )));
    };
    let same = |mine: &[IdMapping], pods: &[IdMap]| {
        mine.len() == pods.len()
            && mine.iter().zip(pods).all(|(a, b)| {
                (a.container_id, a.host_id, a.length) == (b.container_id, b.host_id, b.size)
            })
    };
    if !same(&m.uid_mappings, &pod.uids) || !same(&m.gid_mappings, &pod.gids) {
        return Err(RpcError::invalid_argument(format!(
            "{field}: uid/gid mappings must be the pod's user namespace maps"
        )));
    }
    Ok(userns)
}

/// A mount point of the same kind as `source`: a folder, or an empty file.
fn make_target(source: &Path, target: &Path) -> Result<(), RpcError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let made = if source.is_dir() {
        std::fs::create_dir(target)
    } else {
        std::fs::File::create(target).map(drop)
    };
    made.with_context(|| format!("creating {}", target.display()))
}

/// Where the snapshotter attaches the idmapped views of the layers for the root's mount call
/// (gone right after it; left only by a crash in between).
const IDMAPPED_LAYERS_DIR: &str = "idmapped-layers";

/// Unmounts every idmapped volume (and any idmapped layer view a crash left) of the container
/// whose state folder is `state_dir` (idempotent; before the folder is removed).
pub(crate) fn unmount_all(state_dir: &Path) {
    for dir in [IDMAPPED_DIR, IDMAPPED_LAYERS_DIR] {
        let Ok(entries) = std::fs::read_dir(state_dir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Err(e) = crate::runtime::unmount(&entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot unmount an idmapped view");
            }
        }
    }
}
