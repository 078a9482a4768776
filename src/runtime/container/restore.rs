//! Restoring a container from a checkpoint archive, CRI-O's way: a `CreateContainer` whose
//! `image.image` is the absolute path of an archive `CheckpointContainer` wrote (here or by
//! CRI-O). The container is made from the image the checkpoint was taken of (which must be on
//! this node), its writable layer gets the checkpoint's changes, and the archive is unpacked in
//! its state folder (`restore/`); `StartContainer` then has the monitor restore the process from
//! `restore/checkpoint` (`<rt> restore`) instead of starting it, and removes `restore/` after.
//!
//! What the new request says about the container (name, mounts, log path, labels, resources)
//! holds; the process (command, arguments, working directory) is the checkpoint's, since the
//! restored process is the old one. Only runtime handlers restore: libcontainer 0.7, the
//! embedded executor, has no restore.

use std::path::{Path, PathBuf};

use longshore_checkpoint as archive;
use oci_spec::runtime::Spec;

use crate::api::ContainerConfig;
use crate::daemon::Daemon;
use crate::server::{RpcError, blocking};
use longshore_monitor_client::ExecutorConfig;

/// The folder in a container's state dir the archive is unpacked into.
pub(crate) const RESTORE_DIR: &str = "restore";

/// When the config's image is a checkpoint archive: rewrites the config to the checkpointed
/// image and process, and returns the archive's path. `None` for an ordinary image.
pub(crate) async fn from_config(config: &mut ContainerConfig) -> Result<Option<PathBuf>, RpcError> {
    let Some(image) = config.image.as_mut() else {
        return Ok(None);
    };
    if !image.image.starts_with('/') {
        return Ok(None);
    }
    let path = PathBuf::from(&image.image);
    let read = path.clone();
    let head = blocking("reading a checkpoint archive", move || {
        archive::read_head(&read)
    })
    .await?
    .map_err(|e| RpcError::invalid_argument(format!("image {}: {e}", path.display())))?;
    let Some((meta, spec)) = head else {
        return Err(RpcError::invalid_argument(format!(
            "image {} is a path but not a checkpoint archive (no config.dump and spec.dump)",
            path.display()
        )));
    };
    let spec: Spec = serde_json::from_slice(&spec)
        .map_err(|e| RpcError::invalid_argument(format!("{}: spec.dump: {e}", path.display())))?;
    image.image = meta.rootfs_image_ref.clone();
    if let Some(process) = spec.process() {
        config.command = process.args().clone().unwrap_or_default();
        config.args.clear();
        config.working_dir = process.cwd().to_string_lossy().into_owned();
    }
    tracing::info!(
        archive = %path.display(),
        image = %meta.rootfs_image_name,
        checkpointed = %meta.checkpointed_time,
        "creating a container from a checkpoint"
    );
    Ok(Some(path))
}

/// The checkpoint's image must be here, and the pod's handler must be able to restore.
pub(crate) fn check(d: &Daemon, handler: &str, image_ref: &str) -> Result<(), RpcError> {
    if let ExecutorConfig::Embedded = super::monitor::executor(d, handler)? {
        return Err(RpcError::failed_precondition(
            "restoring a checkpoint needs a pod on a runtime handler that can restore, such as \
             runc: the embedded executor (youki's libcontainer 0.7) has no restore",
        ));
    }
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
    archive_path: &Path,
) -> Result<(), RpcError> {
    let dir = state_dir.join(RESTORE_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| RpcError::internal(format!("creating {}: {e}", dir.display())))?;
    archive::unpack(archive_path, &dir).map_err(|e| RpcError::invalid_argument(e.to_string()))?;
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
