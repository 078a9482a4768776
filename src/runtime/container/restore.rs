//! Restoring a container from a checkpoint archive, CRI-O's way: a `CreateContainer` whose
//! `image.image` is the absolute path of an archive `CheckpointContainer` wrote (here or by
//! CRI-O), or an OCI image made of one (its layer holds the archive's files; its manifest
//! carries `io.kubernetes.cri-o.annotations.checkpoint.name`, as `buildah config --annotation`
//! sets it). The container is made from the image the checkpoint was taken of (which must be on
//! this node), its writable layer gets the checkpoint's changes, and the archive is unpacked in
//! its state folder (`restore/`); `StartContainer` then has the monitor restore the process from
//! `restore/checkpoint` (`<rt> restore`) instead of starting it, and removes `restore/` after.
//!
//! What the new request says about the container (name, mounts, log path, labels, resources)
//! holds; the process (command, arguments, working directory) is the checkpoint's, since the
//! restored process is the old one. The embedded executor restores by driving CRIU itself
//! (libcontainer 0.7 has no restore; crates/monitor's `embedded_restore`), a runtime handler
//! with `<rt> restore`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use longshore_checkpoint as archive;
use oci_spec::runtime::Spec;

use crate::api::ContainerConfig;
use crate::daemon::Daemon;
use crate::server::{RpcError, blocking};

/// The folder in a container's state dir the archive is unpacked into.
pub(crate) const RESTORE_DIR: &str = "restore";

/// The annotation that marks an OCI image made of a checkpoint archive (CRI-O's; checkpointctl
/// and buildah set it on the manifest).
pub(crate) const CHECKPOINT_IMAGE_ANNOTATION: &str =
    "io.kubernetes.cri-o.annotations.checkpoint.name";

/// Where a checkpoint to restore comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// An archive file (`image.image` was its absolute path).
    Archive(PathBuf),
    /// An OCI image made of an archive: the layer folder holding its files.
    Image(PathBuf),
}

/// When the config's image is a checkpoint (an archive's path, or an image that carries
/// [`CHECKPOINT_IMAGE_ANNOTATION`]): rewrites the config to the checkpointed image and process,
/// and says where the checkpoint is. `None` for an ordinary image.
pub(crate) async fn from_config(
    d: &Arc<Daemon>,
    config: &mut ContainerConfig,
) -> Result<Option<Source>, RpcError> {
    let Some(name) = config.image.as_ref().map(|i| i.image.clone()) else {
        return Ok(None);
    };
    // Cheap first: only a path, or an image that runs nothing of its own, can be a checkpoint.
    let maybe = name.starts_with('/')
        || matches!(d.images.resolve(&name), Ok(Some(i))
            if i.config.entrypoint.is_empty() && i.config.cmd.is_empty());
    if !maybe {
        return Ok(None);
    }
    let d2 = d.clone();
    let found = blocking("reading a checkpoint", move || find(&d2, &name)).await??;
    let Some((source, meta, spec)) = found else {
        return Ok(None);
    };
    let spec: Spec = serde_json::from_slice(&spec)
        .map_err(|e| RpcError::invalid_argument(format!("{source:?}: spec.dump: {e}")))?;
    if let Some(image) = config.image.as_mut() {
        image.image = meta.rootfs_image_ref.clone();
    }
    if let Some(process) = spec.process() {
        config.command = process.args().clone().unwrap_or_default();
        config.args.clear();
        config.working_dir = process.cwd().to_string_lossy().into_owned();
    }
    tracing::info!(
        source = ?source,
        image = %meta.rootfs_image_name,
        checkpointed = %meta.checkpointed_time,
        "creating a container from a checkpoint"
    );
    Ok(Some(source))
}

type Found = Option<(Source, archive::ContainerMetadata, Vec<u8>)>;

fn find(d: &Daemon, name: &str) -> Result<Found, RpcError> {
    if name.starts_with('/') {
        let path = PathBuf::from(name);
        let head = archive::read_head(&path)
            .map_err(|e| RpcError::invalid_argument(format!("image {name}: {e}")))?;
        let Some((meta, spec)) = head else {
            return Err(RpcError::invalid_argument(format!(
                "image {name} is a path but not a checkpoint archive (no config.dump and \
                 spec.dump)"
            )));
        };
        return Ok(Some((Source::Archive(path), meta, spec)));
    }
    let Ok(Some(image)) = d.images.resolve(name) else {
        return Ok(None);
    };
    // A checkpoint image runs nothing of its own; only such an image's manifest is read.
    if !image.config.entrypoint.is_empty() || !image.config.cmd.is_empty() {
        return Ok(None);
    }
    let Ok(manifest) = d.images.read_blob(&image.manifest_digest) else {
        return Ok(None);
    };
    let annotated = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .is_some_and(|m| m["annotations"][CHECKPOINT_IMAGE_ANNOTATION].is_string());
    if !annotated {
        return Ok(None);
    }
    let dir = image
        .chain_ids
        .iter()
        .rev()
        .filter_map(|id| d.snapshots.layer_dir(id).ok())
        .find(|dir| dir.join(archive::CONFIG_DUMP).is_file())
        .ok_or_else(|| {
            RpcError::invalid_argument(format!(
                "image {name} is marked as a checkpoint but no layer holds its config.dump"
            ))
        })?;
    let meta = archive::read_metadata(&dir)
        .map_err(|e| RpcError::invalid_argument(format!("image {name}: {e}")))?;
    let spec_path = dir.join(archive::SPEC_DUMP);
    let spec = std::fs::read(&spec_path).map_err(|e| {
        RpcError::invalid_argument(format!("image {name}: {}: {e}", spec_path.display()))
    })?;
    Ok(Some((Source::Image(dir), meta, spec)))
}

/// The checkpoint's image must be on this node.
pub(crate) fn check(d: &Daemon, image_ref: &str) -> Result<(), RpcError> {
    match d.images.resolve(image_ref) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(RpcError::not_found(format!(
            "the checkpoint was taken of image {image_ref}, which is not on this node; pull it \
             first"
        ))),
        Err(e) => Err(RpcError::internal(e.to_string())),
    }
}

/// Unpacks the archive into the container's state dir and puts its file changes into the new
/// writable layer (blocking work, inside CreateContainer's preparation).
pub(crate) fn unpack(
    d: &Daemon,
    container_id: &str,
    state_dir: &Path,
    source: &Source,
) -> Result<(), RpcError> {
    let dir = state_dir.join(RESTORE_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| RpcError::internal(format!("creating {}: {e}", dir.display())))?;
    match source {
        Source::Archive(path) => {
            archive::unpack(path, &dir).map_err(|e| RpcError::invalid_argument(e.to_string()))?
        }
        // A copy: CRIU writes into the images folder as it restores, and a layer is shared.
        Source::Image(layer) => archive::copy_tree(layer, &dir)
            .map_err(|e| RpcError::internal(format!("copying the checkpoint: {e}")))?,
    }
    let upper = d
        .snapshots
        .upper_dir(container_id)
        .map_err(|e| RpcError::internal(e.to_string()))?;
    archive::apply_rootfs_diff(&dir, &upper)
        .map_err(|e| RpcError::internal(format!("restoring the writable layer: {e}")))
}

/// CRIU's configuration for the restore, named by the spec's `org.criu.config` annotation (runc
/// hands it to CRIU, whose settings in it win): `cgroup-root`, so the restored process lands in
/// this container's cgroup. runc 1.1 sets that root itself only on cgroup v1; on v2 CRIU would
/// put the process back at the checkpointed container's cgroup path, making it again.
pub(crate) fn configure_criu(
    spec: &mut Spec,
    state_dir: &Path,
    cgroup: &str,
) -> Result<(), RpcError> {
    let conf = state_dir.join(RESTORE_DIR).join("criu.conf");
    std::fs::write(&conf, format!("cgroup-root {cgroup}\n"))
        .map_err(|e| RpcError::internal(format!("writing {}: {e}", conf.display())))?;
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(
        "org.criu.config".into(),
        conf.to_string_lossy().into_owned(),
    );
    spec.set_annotations(Some(annotations));
    Ok(())
}

/// The CRIU images to restore from at start, while the container has not been started yet.
pub(crate) fn images(state_dir: &Path) -> Option<PathBuf> {
    let images = state_dir.join(RESTORE_DIR).join(archive::CHECKPOINT_DIR);
    images.is_dir().then_some(images)
}

/// After the restore: the unpacked archive is not needed any more.
pub(crate) async fn clean_up(state_dir: &Path) {
    let (dir, work) = (state_dir.join(RESTORE_DIR), state_dir.join("restore-work"));
    let _ = blocking("removing a restored checkpoint", move || {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(work);
    })
    .await;
}
