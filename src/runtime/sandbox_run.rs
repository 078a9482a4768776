//! `RunPodSandbox`: pin the pod's namespaces, write its files, make its cgroup, attach it to the
//! network. No pause container: the namespaces are held by bind mounts (see
//! `longshore-namespaces`), and a shared PID namespace by `longshore pod-init`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::server::status::RpcContext;
use crate::server::{RpcError, blocking};
use longshore_namespaces::{PinRequest, PodInit};
use prost::Message;
use tracing::{Instrument, Span, info, warn};

use super::{pod, validate};
use crate::api::{NamespaceMode, PodSandboxConfig, RunPodSandboxRequest, RunPodSandboxResponse};
use crate::daemon::Daemon;
use crate::state::{Pod, PodRecord, PodState, new_id, now_nanos};

pub(super) async fn run_pod_sandbox(
    d: &Arc<Daemon>,
    req: RunPodSandboxRequest,
) -> Result<RunPodSandboxResponse, RpcError> {
    let config = req
        .config
        .ok_or_else(|| RpcError::invalid_argument("config is required"))?;
    validate::pod_config(&config)?;
    validate::runtime_handler(d, &req.runtime_handler)?;
    let id = new_id();
    let full_name = Pod::full_name(&config);
    d.names.reserve(&full_name, &id).map_err(|holder| {
        RpcError::already_exists(format!(
            "pod sandbox name {full_name:?} is reserved for {holder}"
        ))
    })?;
    // Its own task: if kubelet gives up on the RPC (its timeout, a dropped connection) the
    // pod is still finished or undone, never left half-made with a netns and an IP.
    let task = tokio::spawn(
        make_pod(d.clone(), id.clone(), config, req.runtime_handler).instrument(Span::current()),
    );
    let made = task
        .await
        .map_err(|e| RpcError::internal(format!("pod sandbox task: {e}")))?;
    match made {
        Ok(()) => {
            info!(pod = %id, name = %full_name, "pod sandbox ready");
            Ok(RunPodSandboxResponse { pod_sandbox_id: id })
        }
        Err(status) => {
            // A pod that could not be undone stays listed (NotReady) and keeps its name.
            if d.pod(&id).is_none() {
                d.names.release(&full_name, &id);
            }
            Err(status)
        }
    }
}

/// The namespace choices of a pod.
pub(crate) struct PodNamespaces {
    pub host_network: bool,
    pub host_ipc: bool,
    pub pid: NamespaceMode,
}

impl PodNamespaces {
    pub(crate) fn of(config: &PodSandboxConfig) -> PodNamespaces {
        let opts = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        PodNamespaces {
            host_network: opts.network() == NamespaceMode::Node,
            host_ipc: opts.ipc() == NamespaceMode::Node,
            pid: opts.pid(),
        }
    }
}

async fn make_pod(
    d: Arc<Daemon>,
    id: String,
    config: PodSandboxConfig,
    runtime_handler: String,
) -> Result<(), RpcError> {
    let state_dir = d.config.state.join("pods").join(&id);
    let mut record = PodRecord {
        id: id.clone(),
        state: PodState::NotReady,
        created_at: now_nanos(),
        config: config.encode_to_vec(),
        runtime_handler,
        state_dir: state_dir.clone(),
        ..Default::default()
    };
    let built = build_pod(&d, &config, &mut record).await.and_then(|()| {
        let mut ready = record.clone();
        ready.state = PodState::Ready;
        d.store.put_pod(&ready).map_err(RpcError::from)?;
        Pod::from_record(ready).map_err(RpcError::from)
    });
    match built {
        Ok(pod) => {
            d.pods
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, Arc::new(pod));
            Ok(())
        }
        Err(status) => {
            undo(&d, record).await;
            Err(status)
        }
    }
}

/// Undoes whatever a failed RunPodSandbox made, in reverse (every step is safe on a half-made
/// pod), and forgets the record. If something cannot be undone, the pod is kept as NotReady so
/// kubelet's StopPodSandbox/RemovePodSandbox can retry instead of it leaking.
async fn undo(d: &Arc<Daemon>, record: PodRecord) {
    let id = record.id.clone();
    match pod::teardown::release(d, &record).await {
        Ok(()) => {
            if let Err(e) = d.store.delete_pod(&id) {
                warn!(pod = %id, error = %e, "cannot forget the record of a failed pod");
            }
        }
        Err(e) => {
            warn!(pod = %id, error = %e, "cleaning up a failed pod left something behind; keeping it NotReady");
            if let Err(e) = d.store.put_pod(&record) {
                warn!(pod = %id, error = %e, "cannot persist the failed pod's record");
            }
            match Pod::from_record(record) {
                Ok(pod) => {
                    d.pods
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, Arc::new(pod));
                }
                Err(e) => warn!(pod = %id, error = %e, "cannot keep the failed pod"),
            }
        }
    }
}

/// Makes each part of the pod, noting it in `record` as soon as it exists so a failure can be
/// undone precisely.
async fn build_pod(
    d: &Arc<Daemon>,
    config: &PodSandboxConfig,
    record: &mut PodRecord,
) -> Result<(), RpcError> {
    let ns = PodNamespaces::of(config);
    // Checked before anything is made; `None` for host-network pods, which skip CNI.
    let network = (!ns.host_network)
        .then(|| pod::network::request(config, &record.id))
        .transpose()?;
    std::fs::create_dir_all(&record.state_dir)
        .with_context(|| format!("creating {}", record.state_dir.display()))?;
    let hostname = pod_hostname(config, ns.host_network);
    let sysctls: Vec<(String, String)> = config
        .linux
        .as_ref()
        .map(|l| {
            l.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let request = PinRequest {
        net: !ns.host_network,
        ipc: !ns.host_ipc,
        uts: !ns.host_network,
        hostname: (!ns.host_network && !config.hostname.is_empty()).then(|| hostname.clone()),
        sysctls,
    };
    let ns_dir = record.state_dir.join("ns");
    let pinned = blocking("pinning namespaces", move || {
        longshore_namespaces::pin(&ns_dir, &request)
    })
    .await?
    .map_err(|e| {
        let context = match e {
            longshore_namespaces::NamespaceError::Sysctl { .. } => "linux.sysctls",
            _ => "making pod namespaces",
        };
        RpcError::from(e).context(context)
    })?;
    record.netns = pinned.net;
    record.ipcns = pinned.ipc;
    record.utsns = pinned.uts;

    if ns.pid == NamespaceMode::Pod {
        let exe = d.helper_exe.clone();
        let dir = record.state_dir.join("ns");
        let init = blocking("starting pod init", move || PodInit::start(&exe, &dir))
            .await?
            .context("starting the pod's PID 1")?;
        record.pod_init_pid = Some(init.pid);
        record.pidns = Some(init.pin);
    }

    if !ns.host_ipc {
        let shm = record.state_dir.join("shm");
        mount_shm(&shm, d.config.containers.shm_size.0)?;
        record.shm = Some(shm);
    }
    pod::files::write(&record.state_dir, config, &hostname, ns.host_network)
        .context("writing pod files")?;

    pod::cgroup::create(d, config, record)?;
    if let Some(pid) = record.pod_init_pid {
        pod::cgroup::add_process(d, record, pid)?;
    }
    if let Some(network) = network {
        pod::network::attach(d, network, record).await?;
    }
    Ok(())
}

/// The pod's hostname: kubelet always sends one; without one (crictl) the pod keeps the node's,
/// as with containerd.
fn pod_hostname(config: &PodSandboxConfig, host_network: bool) -> String {
    if host_network || config.hostname.is_empty() {
        return nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_string())
            .unwrap_or_default();
    }
    config.hostname.clone()
}

/// The pod's own /dev/shm: a tmpfs shared by its containers (POSIX shared memory needs that).
fn mount_shm(dir: &PathBuf, size: u64) -> Result<(), RpcError> {
    use nix::mount::{MsFlags, mount};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = format!("mode=1777,size={size}");
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data.as_str()),
    )
    .map_err(|e| {
        RpcError::internal(format!(
            "mounting the pod's /dev/shm at {}: {e}",
            dir.display()
        ))
    })
}
