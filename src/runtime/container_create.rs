//! `CreateContainer`: an overlay root of the image's shared layers plus a writable upper layer,
//! and an OCI bundle built from the whole `ContainerConfig`. The process starts at StartContainer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::server::status::RpcContext;
use crate::server::{RpcError, blocking};
use prost::Message;
use tracing::{Instrument, Span, info};

use super::container::restore::Source as Restore;
use super::{container_events, lookup, validate};
use crate::api::{ContainerEventType, CreateContainerRequest, CreateContainerResponse};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerRecord, ContainerState, Pod, PodState, new_id, now_nanos};
use longshore_spec::{self as spec, PodContext, SpecInput};

pub(super) async fn create_container(
    d: &Arc<Daemon>,
    req: CreateContainerRequest,
) -> Result<CreateContainerResponse, RpcError> {
    let mut config = req
        .config
        .ok_or_else(|| RpcError::invalid_argument("config is required"))?;
    validate::container_config(&config)?;
    super::container::image_volumes::resolve_refs(d, &mut config)?;
    let restore = super::container::restore::from_config(d, &mut config).await?;
    let pod = lookup::pod(d, &req.pod_sandbox_id)?;
    // Its own task: a client that gives up (a timeout, a dropped connection) cannot leave the
    // container half made; it is finished, or undone.
    let task =
        tokio::spawn(create_in_pod(d.clone(), pod, config, restore).instrument(Span::current()));
    task.await
        .map_err(|e| RpcError::internal(format!("CreateContainer task: {e}")))?
}

async fn create_in_pod(
    d: Arc<Daemon>,
    pod: Arc<Pod>,
    config: crate::api::ContainerConfig,
    restore: Option<Restore>,
) -> Result<CreateContainerResponse, RpcError> {
    let _pod_guard = pod.lifecycle.lock().await;
    if pod.state() != PodState::Ready {
        return Err(RpcError::failed_precondition(format!(
            "pod sandbox {} is not ready; containers can only be created in a ready pod",
            pod.id
        )));
    }
    let id = new_id();
    let full_name = Container::full_name(&config, &pod.config);
    d.state.reserve_name(&full_name, &id).map_err(|holder| {
        RpcError::already_exists(format!(
            "container name {full_name:?} is reserved for {holder}"
        ))
    })?;
    match make_container(&d, &pod, &id, config, restore).await {
        Ok(()) => {
            info!(container = %id, pod = %pod.id, name = %full_name, "container created");
            Ok(CreateContainerResponse { container_id: id })
        }
        Err(status) => {
            d.state.release_name(&full_name, &id);
            Err(status)
        }
    }
}

async fn make_container(
    d: &Arc<Daemon>,
    pod: &Arc<Pod>,
    id: &str,
    config: crate::api::ContainerConfig,
    restore: Option<Restore>,
) -> Result<(), RpcError> {
    let image_name = config
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    let image = d.images.resolve(&image_name)?.ok_or_else(|| {
        RpcError::not_found(format!("image {image_name:?} not found; pull it first"))
    })?;
    let pod_record = pod.snapshot();
    if restore.is_some() {
        super::container::restore::check(d, &image_name)?;
    }
    let state_dir = d.config.state.join("containers").join(id);
    let rootfs = state_dir.join("rootfs");
    let log_path = log_path(&pod.config.log_directory, &config.log_path);
    let cgroup = super::container::cgroup::path_for(d, &pod_record, id)?;
    let record = ContainerRecord {
        id: id.to_string(),
        pod_id: pod.id.clone(),
        state: ContainerState::Created,
        created_at: now_nanos(),
        config: config.encode_to_vec(),
        image_id: image.id.clone(),
        image_name: display_image_name(&image_name, &image),
        image_ref: image.repo_digests.first().cloned().unwrap_or_default(),
        log_path,
        state_dir: state_dir.clone(),
        cgroup: cgroup.clone(),
        runtime_handler: pod_record.runtime_handler.clone(),
        creating: true,
        ..Default::default()
    };
    // The intent, durable before the writable layer's lease and the mount exist.
    d.state.record_container(&record).await?;
    let (d2, pod2) = (d.clone(), pod.clone());
    let (record, prepared) = blocking("preparing the container", move || {
        let mut record = record;
        let prepared = prepare(
            &d2,
            &pod2,
            &config,
            &image,
            &mut record,
            &rootfs,
            restore.as_ref(),
        );
        (record, prepared)
    })
    .await?;
    let made = match prepared {
        Ok(()) => {
            let mut created = record.clone();
            created.creating = false;
            d.state.add_container(created).await.map_err(RpcError::from)
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(container) => {
            container_events::emit(d, &container, ContainerEventType::ContainerCreatedEvent);
            Ok(())
        }
        Err(e) => {
            undo(d, &record).await;
            Err(e)
        }
    }
}

/// Undoes a CreateContainer that failed or that a crash cut short: the mount, the writable
/// layer and its lease, the state folder, then the record.
pub(crate) async fn undo(d: &Arc<Daemon>, record: &ContainerRecord) {
    super::container_remove::release_storage(d, record).await;
    if let Err(e) = d.state.forget_container(&record.id).await {
        tracing::warn!(container = %record.id, error = %e, "cannot forget a failed container");
    }
}

/// Snapshot (with a checkpoint's changes when restoring), mount, spec, bundle: file system
/// work, on the blocking pool.
fn prepare(
    d: &Arc<Daemon>,
    pod: &Arc<Pod>,
    config: &crate::api::ContainerConfig,
    image: &longshore_image::Image,
    record: &mut ContainerRecord,
    rootfs: &Path,
    restore: Option<&Restore>,
) -> Result<(), RpcError> {
    std::fs::create_dir_all(record.state_dir.join("bundle"))
        .with_context(|| format!("creating {}", record.state_dir.display()))?;
    let layers = d
        .snapshots
        .prepare(&record.id, &image.chain_ids)
        .context("preparing the writable layer")?;
    crate::crash_point::crash_point("create_container:layer");
    if let Some(source) = restore {
        // Into the upper layer before it is mounted: overlayfs forbids changing a layer under a
        // mounted overlay.
        super::container::restore::unpack(d, &record.id, &record.state_dir, source)?;
    }
    std::fs::create_dir_all(rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    let pod_record = pod.snapshot();
    let root_ids = super::pod::userns::root_ids(&pod.config);
    let mounted = match (&pod_record.userns, root_ids) {
        // The pod's user namespace: the shared layers seen through it, nothing copied.
        (Some(userns), Some(ids)) => d.snapshots.mount_idmapped(&layers, rootfs, userns, ids),
        _ => d.snapshots.mount(&layers, rootfs),
    };
    mounted.context("mounting the container's root")?;

    let target_pid = super::container::namespaces::target_pid(d, config)?;
    let pod_ctx = PodContext {
        sandbox_id: pod.id.clone(),
        userns: pod_record.userns.clone(),
        userns_options: pod_record.userns.as_ref().and_then(|_| {
            pod.config
                .linux
                .as_ref()?
                .security_context
                .as_ref()?
                .namespace_options
                .as_ref()?
                .userns_options
                .clone()
        }),
        netns: pod_record.netns.clone(),
        ipcns: pod_record.ipcns.clone(),
        utsns: pod_record.utsns.clone(),
        pidns: pod_record.pidns.clone(),
        host_pid: super::sandbox_run::PodNamespaces::of(&pod.config).pid
            == crate::api::NamespaceMode::Node,
        target_pid,
        hostname: std::fs::read_to_string(pod_record.state_dir.join("hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        hostname_file: Some(pod_record.state_dir.join("hostname")),
        hosts_file: Some(pod_record.state_dir.join("hosts")),
        resolv_conf: Some(pod_record.state_dir.join("resolv.conf")),
        shm: pod_record.shm.clone(),
    };
    // Image volumes become read-only binds of the images' mounted layers.
    let config =
        super::container::image_volumes::mount_all(d, &record.id, &record.state_dir, config)?;
    // Volumes kubelet asks to see through the pod's user namespace.
    let config = &super::container::idmapped_mounts::mount_all(
        &record.state_dir,
        &pod.config,
        pod_record.userns.as_deref(),
        config,
    )?;
    let image_view = super::container::spec_inputs::image_view(image, &record.image_name);
    let settings = super::container::spec_inputs::settings(d);
    let input = SpecInput {
        container_id: &record.id,
        config,
        pod_config: &pod.config,
        pod: &pod_ctx,
        image: &image_view,
        rootfs,
        cgroups_path: &record.cgroup,
        settings,
    };
    let mut built = spec::build(&input).map_err(crate::server::RpcError::from)?;
    let devices = longshore_cdi::requested(
        config.cdi_devices.iter().map(|d| d.name.as_str()),
        &config.annotations,
    );
    d.cdi.inject(&mut built.spec, &devices)?;
    if restore.is_some() {
        super::container::restore::configure_criu(
            &mut built.spec,
            &record.state_dir,
            &record.cgroup,
        )?;
    }
    record.uid = built.user.uid as i64;
    record.gid = built.user.gid as i64;
    record.supplemental_groups = built
        .user
        .additional_gids
        .iter()
        .map(|g| *g as i64)
        .collect();
    let json = serde_json::to_vec_pretty(&built.spec)
        .map_err(|e| RpcError::internal(format!("encoding the OCI spec: {e}")))?;
    let bundle_config = record.state_dir.join("bundle").join("config.json");
    std::fs::write(&bundle_config, json)
        .with_context(|| format!("writing {}", bundle_config.display()))?;
    record.stop_signal = built.stop_signal;
    if !record.log_path.as_os_str().is_empty() {
        if let Some(dir) = record.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RpcError::internal(format!("creating log folder {}: {e}", dir.display()))
            })?;
        }
    }
    Ok(())
}

/// `<log_directory>/<log_path>`, or nothing when kubelet gave no folder.
fn log_path(log_directory: &str, relative: &str) -> PathBuf {
    if log_directory.is_empty() || relative.is_empty() {
        return PathBuf::new();
    }
    Path::new(log_directory).join(relative)
}

/// The image name a status shows: what the user asked for, or a tag when they gave an id.
fn display_image_name(requested: &str, image: &longshore_image::Image) -> String {
    if requested.starts_with("sha256:") || image.id.contains(requested) {
        if let Some(tag) = image.repo_tags.first() {
            return tag.clone();
        }
    }
    requested.to_string()
}
