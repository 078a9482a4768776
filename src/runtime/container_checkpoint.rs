//! `CheckpointContainer` (kubelet's checkpoint API, KEP-2008): dumps a running container with
//! CRIU and writes a checkpoint archive at `location`, laid out as CRI-O's (crates/checkpoint).
//! The container keeps running.
//!
//! The dump itself is `longshore-monitor checkpoint` (crates/monitor's `checkpoint` module), run
//! as a child of the daemon with the container's own executor: libcontainer's checkpoint for the
//! embedded executor, `<rt> checkpoint` for a runtime handler. It is killed at the request's
//! timeout. The work happens in a folder beside the archive (on its file system, not in /run's
//! memory: CRIU's images are as large as the container's memory) that is removed either way.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use longshore_checkpoint::{self as archive, ContainerMetadata};
use tracing::info;

use super::lookup;
use crate::api::{CheckpointContainerRequest, CheckpointContainerResponse};
use crate::daemon::Daemon;
use crate::server::{RpcError, blocking};
use crate::state::{Container, ContainerRecord, ContainerState};

/// The timeout when the request gives none (CRI: zero means the runtime's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) async fn checkpoint_container(
    d: &Arc<Daemon>,
    req: CheckpointContainerRequest,
) -> Result<CheckpointContainerResponse, RpcError> {
    let location = archive_location(&req.location)?;
    let timeout = match req.timeout {
        t if t < 0 => {
            return Err(RpcError::invalid_argument(format!(
                "timeout {t} is negative"
            )));
        }
        0 => DEFAULT_TIMEOUT,
        t => Duration::from_secs(t.unsigned_abs()),
    };
    let container = lookup::container(d, &req.container_id)?;
    let _lifecycle = container.lifecycle.lock().await;
    if container.state() != ContainerState::Running {
        return Err(RpcError::failed_precondition(format!(
            "container {} is not running; only a running container can be checkpointed",
            container.id
        )));
    }
    let record = container.snapshot();
    let work = work_dir(&location);
    let made = make_archive(d, &container, &record, &work, &location, timeout).await;
    let cleanup = work.clone();
    blocking("removing the checkpoint's work folder", move || {
        let _ = std::fs::remove_dir_all(&cleanup);
    })
    .await?;
    made?;
    info!(container = %container.id, archive = %location.display(), "checkpointed");
    Ok(CheckpointContainerResponse {})
}

/// `location` must be an absolute file path in an existing folder.
fn archive_location(location: &str) -> Result<PathBuf, RpcError> {
    if location.is_empty() {
        return Err(RpcError::invalid_argument(
            "location is required: the path of the checkpoint archive to write",
        ));
    }
    if location.contains('\0') {
        return Err(RpcError::invalid_argument("location holds a NUL byte"));
    }
    let path = PathBuf::from(location);
    if !path.is_absolute() {
        return Err(RpcError::invalid_argument(format!(
            "location {location:?} is not an absolute path"
        )));
    }
    if path.is_dir() {
        return Err(RpcError::invalid_argument(format!(
            "location {location:?} is a folder; name the archive file to write"
        )));
    }
    match path.parent() {
        Some(parent) if parent.is_dir() => Ok(path),
        _ => Err(RpcError::invalid_argument(format!(
            "the folder of location {location:?} does not exist"
        ))),
    }
}

/// `<folder>/.<archive name>.work`, beside the archive.
fn work_dir(location: &Path) -> PathBuf {
    let name = location
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    location.with_file_name(format!(".{name}.work"))
}

async fn make_archive(
    d: &Arc<Daemon>,
    container: &Container,
    record: &ContainerRecord,
    work: &Path,
    location: &Path,
    timeout: Duration,
) -> Result<(), RpcError> {
    let content = work.join("archive");
    let images = content.join(archive::CHECKPOINT_DIR);
    let criu_work = work.join("criu");
    {
        let (images, criu_work) = (images.clone(), criu_work.clone());
        blocking("making the checkpoint's work folder", move || {
            std::fs::create_dir_all(&images)?;
            std::fs::create_dir_all(&criu_work)
        })
        .await?
        .map_err(|e| {
            RpcError::internal(format!("making the work folder {}: {e}", work.display()))
        })?;
    }
    dump(d, record, &images, &criu_work, timeout).await?;

    let meta = metadata(container, record);
    let upper = d
        .snapshots
        .upper_dir(&record.id)
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let bundle_spec = record.state_dir.join("bundle").join("config.json");
    let location = location.to_path_buf();
    blocking("writing the checkpoint archive", move || {
        write_archive(&content, &criu_work, &meta, &bundle_spec, &upper, &location)
    })
    .await?
}

/// Runs `longshore-monitor checkpoint` for the container; CRIU's words on failure.
async fn dump(
    d: &Daemon,
    record: &ContainerRecord,
    images: &Path,
    criu_work: &Path,
    timeout: Duration,
) -> Result<(), RpcError> {
    let mut cmd = tokio::process::Command::new(&d.monitor.program);
    cmd.args(&d.monitor.args)
        .arg(longshore_monitor_client::CHECKPOINT_SUBCOMMAND)
        .arg("--state-dir")
        .arg(&record.state_dir)
        .arg("--image-path")
        .arg(images)
        .arg("--work-path")
        .arg(criu_work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        RpcError::internal(format!(
            "running {} checkpoint: {e}",
            d.monitor.program.display()
        ))
    })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(RpcError::internal(format!(
                "waiting for the checkpoint: {e}"
            )));
        }
        Err(_) => {
            return Err(RpcError::deadline_exceeded(format!(
                "checkpointing {} did not finish within {} s",
                record.id,
                timeout.as_secs()
            )));
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(RpcError::failed_precondition(format!(
        "checkpointing {} failed: {why}",
        record.id
    )))
}

fn metadata(container: &Container, record: &ContainerRecord) -> ContainerMetadata {
    let name = container
        .config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    ContainerMetadata {
        id: record.id.clone(),
        name,
        rootfs_image: record.image_name.clone(),
        rootfs_image_ref: record.image_id.clone(),
        rootfs_image_name: record.image_name.clone(),
        runtime: if record.runtime_handler.is_empty() {
            "longshore".into()
        } else {
            record.runtime_handler.clone()
        },
        created_time: DateTime::from_timestamp_nanos(record.created_at),
        checkpointed_time: Utc::now(),
    }
}

/// Everything but the CRIU images (already in `content/checkpoint`), then the tar.
fn write_archive(
    content: &Path,
    criu_work: &Path,
    meta: &ContainerMetadata,
    bundle_spec: &Path,
    upper: &Path,
    location: &Path,
) -> Result<(), RpcError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        RpcError::internal(format!("writing the checkpoint's {what}: {e}"))
    };
    archive::write_metadata(content, meta).map_err(|e| fail("metadata", &e))?;
    std::fs::copy(bundle_spec, content.join(archive::SPEC_DUMP))
        .map_err(|e| fail("spec", &format!("{}: {e}", bundle_spec.display())))?;
    let log = criu_work.join(archive::DUMP_LOG);
    if log.exists() {
        std::fs::copy(&log, content.join(archive::DUMP_LOG)).map_err(|e| fail("CRIU log", &e))?;
    }
    archive::write_rootfs_diff(upper, content).map_err(|e| fail("writable layer", &e))?;
    archive::pack(content, location).map_err(|e| fail("archive", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_is_an_absolute_file_in_a_folder_that_exists() {
        assert!(archive_location("").is_err());
        assert!(archive_location("relative.tar").is_err());
        assert!(archive_location("/no/such/folder/c.tar").is_err());
        assert!(archive_location("/tmp").is_err());
        assert!(archive_location("/tmp/a\0b").is_err());
        assert_eq!(
            archive_location("/tmp/c.tar").unwrap(),
            PathBuf::from("/tmp/c.tar")
        );
        assert_eq!(
            work_dir(Path::new("/var/lib/kubelet/checkpoints/c.tar")),
            PathBuf::from("/var/lib/kubelet/checkpoints/.c.tar.work")
        );
    }
}
