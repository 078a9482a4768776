//! Image volumes (KEP-4639, `Mount.image`): an image's content mounted read-only in a container.
//!
//! The image's already-unpacked layers are mounted read-only (a bind of the one layer, or an
//! overlay of several with no upper layer: no copy) at `<state>/containers/<id>/volumes/<n>`,
//! and the container gets a read-only bind of that folder, or of `image_sub_path` inside it.
//! The layers join the container's lease, so they stay while the container exists even if the
//! image is removed (as for the container's own image); kubelet sees the image in the
//! container's status mounts and counts it as in use.

use std::path::{Component, Path, PathBuf};

use longshore_snapshot::container_lease;

use crate::api::{ContainerConfig, Mount};
use crate::daemon::Daemon;
use crate::server::RpcError;
use crate::server::status::RpcContext;

/// The folder, in a container's state folder, holding its image volumes' mounts.
const VOLUMES_DIR: &str = "volumes";

/// Checks the image mounts of `config` before anything is made, and records in each the id of
/// the image it will show (`ImageSpec.image_ref`, what PullImage answered for it), which the
/// container's status reports. An image mount must be read-only and name a pulled image.
pub(crate) fn resolve_refs(d: &Daemon, config: &mut ContainerConfig) -> Result<(), RpcError> {
    for (i, m) in config.mounts.iter_mut().enumerate() {
        let Some(image) = m.image.as_mut().filter(|s| !s.image.is_empty()) else {
            continue;
        };
        let field = format!("config.mounts[{i}]");
        if !m.readonly {
            return Err(RpcError::invalid_argument(format!(
                "{field}.readonly: an image volume is read-only; readonly must be true"
            )));
        }
        let found = d.images.resolve(&image.image)?.ok_or_else(|| {
            RpcError::not_found(format!(
                "{field}.image: image {:?} not found; pull it first",
                image.image
            ))
        })?;
        image.image_ref = found.id;
    }
    Ok(())
}

/// Mounts the image volumes `config` asks for and returns the config with each image mount
/// turned into a read-only bind of its mount. Blocking (mounts). On an error, what was mounted
/// stays for the caller's undo ([`unmount_all`]).
pub(crate) fn mount_all(
    d: &Daemon,
    container_id: &str,
    state_dir: &Path,
    config: &ContainerConfig,
) -> Result<ContainerConfig, RpcError> {
    let mut resolved = config.clone();
    for (i, m) in resolved.mounts.iter_mut().enumerate() {
        let Some(image) = m.image.as_ref().filter(|s| !s.image.is_empty()) else {
            continue;
        };
        let field = format!("config.mounts[{i}]");
        if !m.host_path.is_empty() {
            return Err(RpcError::invalid_argument(format!(
                "{field}: an image mount has no host_path (it names {:?})",
                m.host_path
            )));
        }
        let name = image.image.clone();
        let found = d.images.resolve(&name)?.ok_or_else(|| {
            RpcError::not_found(format!(
                "{field}.image: image {name:?} not found; pull it first"
            ))
        })?;
        d.snapshots
            .add_lease(&container_lease(container_id), &found.chain_ids)
            .with_context(|| format!("{field}: holding the layers of {name}"))?;
        let target = state_dir.join(VOLUMES_DIR).join(i.to_string());
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        d.snapshots
            .mount_readonly(&found.chain_ids, &target)
            .with_context(|| format!("{field}: mounting image {name}"))?;
        let source = sub_path(&target, &m.image_sub_path)
            .map_err(|why| RpcError::invalid_argument(format!("{field}.image_sub_path: {why}")))?;
        as_bind(m, source);
    }
    Ok(resolved)
}

/// The folder a mount of `image_sub_path` inside `root` shows: relative, no `..`, existing,
/// and (after symlinks) still inside the image.
fn sub_path(root: &Path, sub: &str) -> Result<PathBuf, String> {
    if sub.is_empty() {
        return Ok(root.to_path_buf());
    }
    let relative = Path::new(sub);
    if relative.is_absolute() || relative.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{sub:?} must be a relative path without '..'"));
    }
    let joined = root.join(relative);
    let real = std::fs::canonicalize(&joined)
        .map_err(|e| format!("{sub:?} does not exist in the image ({e})"))?;
    let real_root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if !real.starts_with(&real_root) {
        return Err(format!("{sub:?} leads outside the image"));
    }
    Ok(real)
}

/// The CRI mount as the read-only bind the spec builder knows.
fn as_bind(m: &mut Mount, source: PathBuf) {
    m.image = None;
    m.image_sub_path.clear();
    m.host_path = source.to_string_lossy().into_owned();
    m.readonly = true;
}

/// Unmounts every image volume of the container whose state folder is `state_dir`
/// (idempotent; before the folder is removed).
pub(crate) fn unmount_all(state_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(state_dir.join(VOLUMES_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        if let Err(e) = crate::runtime::unmount(&entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot unmount an image volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_stay_inside_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("image");
        std::fs::create_dir_all(root.join("data/models")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("data", root.join("inside")).unwrap();
        let real = std::fs::canonicalize(&root).unwrap();
        assert_eq!(sub_path(&root, "").unwrap(), root);
        assert_eq!(
            sub_path(&root, "data/models").unwrap(),
            real.join("data/models")
        );
        assert_eq!(
            sub_path(&root, "inside/models").unwrap(),
            real.join("data/models")
        );
        for bad in ["../x", "/data", "data/../../x", "escape", "missing"] {
            assert!(sub_path(&root, bad).is_err(), "{bad}");
        }
    }
}
