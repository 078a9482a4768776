//! A pod's user namespace (`hostUsers: false`): what kubelet asked for, checked before anything
//! is made, and the host ids of the pod's root that the runtime's own files are given.

use std::os::fd::AsFd;
use std::path::Path;

use longshore_namespaces::{IdMap, PinRequest, UserNamespaceRequest};

use crate::api::{IdMapping, NamespaceMode, PodSandboxConfig};
use crate::server::RpcError;

/// The kernel's limit on lines in a uid_map or gid_map.
const MAX_MAP_LINES: usize = 340;

const FIELD: &str = "config.linux.security_context.namespace_options.userns_options";

/// The pod's user namespace request, if it asks for its own (mode POD); `None` for the host's.
/// Refuses what cannot be served: other modes, missing or unsafe maps, host namespaces beside it.
pub(crate) fn request(config: &PodSandboxConfig) -> Result<Option<UserNamespaceRequest>, RpcError> {
    let Some(options) = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
    else {
        return Ok(None);
    };
    let Some(userns) = options.userns_options.as_ref() else {
        return Ok(None);
    };
    match userns.mode() {
        NamespaceMode::Node => return Ok(None),
        NamespaceMode::Pod => {}
        other => {
            return Err(RpcError::invalid_argument(format!(
                "{FIELD}.mode {} is not supported for a pod (POD or NODE)",
                other.as_str_name()
            )));
        }
    }
    for (what, mode) in [
        ("network", options.network()),
        ("ipc", options.ipc()),
        ("pid", options.pid()),
    ] {
        if mode == NamespaceMode::Node {
            return Err(RpcError::invalid_argument(format!(
                "a pod with its own user namespace cannot use the host's {what} namespace"
            )));
        }
    }
    Ok(Some(UserNamespaceRequest {
        uids: maps("uids", &userns.uids)?,
        gids: maps("gids", &userns.gids)?,
    }))
}

/// Checks one map list: not empty, not too long, no empty or wrapping range, no overlap, the
/// container's root mapped, and the host's root never mapped (that would make the pod's root
/// the node's).
fn maps(what: &str, list: &[IdMapping]) -> Result<Vec<IdMap>, RpcError> {
    let bad = |why: String| RpcError::invalid_argument(format!("{FIELD}.{what}: {why}"));
    if list.is_empty() {
        return Err(bad("a POD user namespace needs mappings".into()));
    }
    if list.len() > MAX_MAP_LINES {
        return Err(bad(format!("more than {MAX_MAP_LINES} mappings")));
    }
    let mut out: Vec<IdMap> = Vec::with_capacity(list.len());
    for m in list {
        let fits = |start: u32| start.checked_add(m.length - 1).is_some();
        if m.length == 0 || !fits(m.host_id) || !fits(m.container_id) {
            return Err(bad(format!(
                "mapping {}:{}:{} is empty or runs past 2^32",
                m.container_id, m.host_id, m.length
            )));
        }
        if m.host_id == 0 {
            return Err(bad("the host's root (id 0) must not be mapped".into()));
        }
        let overlaps = |a: u32, b: u32, len_b: u32| {
            let (a, b) = (u64::from(a), u64::from(b));
            a < b + u64::from(len_b) && b < a + u64::from(m.length)
        };
        if out.iter().any(|o| {
            overlaps(m.host_id, o.host_id, o.size)
                || overlaps(m.container_id, o.container_id, o.size)
        }) {
            return Err(bad(format!(
                "mapping {}:{}:{} overlaps another",
                m.container_id, m.host_id, m.length
            )));
        }
        out.push(IdMap {
            container_id: m.container_id,
            host_id: m.host_id,
            size: m.length,
        });
    }
    if IdMap::to_host(&out, 0).is_none() {
        return Err(bad("the container's root (id 0) is not mapped".into()));
    }
    Ok(out)
}

/// The host uid and gid of the pod's root, for a pod with its own user namespace.
pub(crate) fn root_ids(config: &PodSandboxConfig) -> Option<(u32, u32)> {
    let req = request(config).ok()??;
    Some((IdMap::to_host(&req.uids, 0)?, IdMap::to_host(&req.gids, 0)?))
}

/// Gives `path` (not following a symlink) to the pod's root.
pub(crate) fn chown_to_root(path: &std::path::Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// The host id the start-up probe maps a throw-away namespace's root to (nothing is owned by it).
const PROBE_HOST_ID: u32 = 0x7fff_0000;

/// Whether pods can have user namespaces here: a user namespace can be made with the helper,
/// and the filesystem of the layers (`layers`) takes idmapped mounts, on a kernel whose
/// overlayfs takes idmapped layers (5.19+). Run once at start; the reason when not.
pub(crate) fn probe(exe: &Path, scratch: &Path, layers: &Path) -> Result<(), String> {
    if let Some(parent) = scratch.parent() {
        searchable_by_others(parent)?;
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if !kernel_at_least(&release, (5, 19)) {
        return Err(format!(
            "kernel {release} is older than 5.19 (overlayfs idmapped layers)"
        ));
    }
    let map = IdMap {
        container_id: 0,
        host_id: PROBE_HOST_ID,
        size: 1,
    };
    let maps = UserNamespaceRequest {
        uids: vec![map],
        gids: vec![map],
    };
    let pinned =
        longshore_namespaces::pin_with_user_namespace(exe, scratch, &PinRequest::default(), &maps)
            .map_err(|e| format!("making a user namespace: {e}"))?;
    let tried = pinned
        .user
        .as_ref()
        .ok_or_else(|| "no user namespace was pinned".to_string())
        .and_then(|user| std::fs::File::open(user).map_err(|e| e.to_string()))
        .and_then(|ns| {
            longshore_snapshot::idmapped_tree(layers, ns.as_fd(), false)
                .map(drop)
                .map_err(|e| format!("idmapped mount of {}: {e}", layers.display()))
        });
    let _ = longshore_namespaces::unpin(scratch);
    tried
}

/// A container's root filesystem, its volumes and its pod's files live under the state folder
/// `dir`; a pod's root is not the host's root, so it can reach them only if every folder on the
/// way lets others search it (`o+x`, as `/run` and `/var/lib` do; containerd asks the same).
fn searchable_by_others(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for folder in dir.ancestors() {
        let mode = std::fs::metadata(folder)
            .map_err(|e| format!("{}: {e}", folder.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(format!(
                "{} (mode {:o}) does not let others search it: the root of a pod's user \
                 namespace could not reach its root filesystem under {} (chmod o+x it)",
                folder.display(),
                mode & 0o7777,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Whether a `uname -r` release is at least `(major, minor)`.
fn kernel_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceOption, UserNamespace,
    };

    fn pod(mode: NamespaceMode, uids: Vec<IdMapping>, network: NamespaceMode) -> PodSandboxConfig {
        let userns = UserNamespace {
            mode: mode as i32,
            uids: uids.clone(),
            gids: uids,
        };
        PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: network as i32,
                        userns_options: Some(userns),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn map(container_id: u32, host_id: u32, length: u32) -> IdMapping {
        IdMapping {
            host_id,
            container_id,
            length,
        }
    }

    #[test]
    fn state_folders_must_be_searchable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let set =
            |mode| std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode));
        set(0o700).unwrap();
        let why = searchable_by_others(&state).unwrap_err();
        assert!(why.contains("mode 700"), "{why}");
        set(0o711).unwrap();
        searchable_by_others(&state).unwrap();
    }

    #[test]
    fn kernel_releases_compare() {
        assert!(kernel_at_least("6.18.0-1-amd64", (5, 19)));
        assert!(kernel_at_least("5.19.0", (5, 19)));
        assert!(!kernel_at_least("5.15.0-91-generic", (5, 19)));
        assert!(!kernel_at_least("garbage", (5, 19)));
    }

    #[test]
    fn kubelets_shape_is_taken() {
        let c = pod(
            NamespaceMode::Pod,
            vec![map(0, 65536, 65536)],
            NamespaceMode::Pod,
        );
        let req = request(&c).unwrap().unwrap();
        assert_eq!(req.uids[0].host_id, 65536);
        assert_eq!(root_ids(&c), Some((65536, 65536)));
        let node = pod(NamespaceMode::Node, vec![], NamespaceMode::Pod);
        assert!(request(&node).unwrap().is_none());
        assert!(request(&PodSandboxConfig::default()).unwrap().is_none());
    }

    #[test]
    fn unsafe_or_impossible_requests_are_refused() {
        let refused = |c: PodSandboxConfig| {
            let e = request(&c).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        };
        let good = vec![map(0, 65536, 65536)];
        refused(pod(NamespaceMode::Pod, good.clone(), NamespaceMode::Node));
        refused(pod(NamespaceMode::Container, good, NamespaceMode::Pod));
        refused(pod(NamespaceMode::Pod, vec![], NamespaceMode::Pod));
        refused(pod(
            NamespaceMode::Pod,
            vec![map(0, 0, 65536)],
            NamespaceMode::Pod,
        ));
        refused(pod(
            NamespaceMode::Pod,
            vec![map(1, 65536, 10)],
            NamespaceMode::Pod,
        ));
        refused(pod(
            NamespaceMode::Pod,
            vec![map(0, u32::MAX, 2)],
            NamespaceMode::Pod,
        ));
        refused(pod(
            NamespaceMode::Pod,
            vec![map(0, 65536, 100), map(50, 70000, 10)],
            NamespaceMode::Pod,
        ));
    }
}
