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
    if pod::userns::request(&config)?.is_some()
        && let Err(why) = &d.userns_support
    {
        return Err(RpcError::failed_precondition(format!(
            "this node cannot give pods their own user namespace: {why}"
        )));
    }
    let id = new_id();
    let full_name = Pod::full_name(&config);
    d.state.reserve_name(&full_name, &id).map_err(|holder| {
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
                d.state.release_name(&full_name, &id);
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
        creating: true,
        created_at: now_nanos(),
        config: config.encode_to_vec(),
        runtime_handler,
        state_dir,
        ..Default::default()
    };
    pod::cgroup::plan(&d, &config, &mut record)?;
    // The intent: durable before the first namespace, mount, process or cgroup exists, so a
    // crash at any later point leaves a record that says what to undo.
    d.state.record_pod(&record).await?;
    let made = match build_pod(&d, &config, &mut record).await {
        Ok(()) => {
            let mut ready = record.clone();
            ready.state = PodState::Ready;
            ready.creating = false;
            d.state
                .add_pod(ready)
                .await
                .map(drop)
                .map_err(RpcError::from)
        }
        Err(e) => Err(e),
    };
    if let Err(e) = made {
        undo(&d, record).await;
        return Err(e);
    }
    Ok(())
}

/// Undoes whatever a failed RunPodSandbox made, in reverse (every step is safe on a half-made
/// pod), and forgets the record. If something cannot be undone, the pod is kept as NotReady so
/// kubelet's StopPodSandbox/RemovePodSandbox can retry instead of it leaking.
pub(crate) async fn undo(d: &Arc<Daemon>, mut record: PodRecord) {
    let id = record.id.clone();
    match pod::teardown::release(d, &record).await {
        Ok(()) => {
            if let Err(e) = d.state.forget_pod(&id).await {
                warn!(pod = %id, error = %e, "cannot forget the record of a failed pod");
            }
        }
        Err(e) => {
            warn!(pod = %id, error = %e, "cleaning up a failed pod left something behind; keeping it NotReady");
            record.creating = false;
            record.state = PodState::NotReady;
            if let Err(e) = d.state.add_pod(record).await {
                warn!(pod = %id, error = %e, "cannot keep the failed pod");
            }
        }
    }
}

/// Makes each part of the pod, noting it in `record` as soon as it exists so a failure can be
/// undone precisely: the local parts in one go on the blocking pool, then the network.
async fn build_pod(
    d: &Arc<Daemon>,
    config: &PodSandboxConfig,
    record: &mut PodRecord,
) -> Result<(), RpcError> {
    // Checked before anything is made; `None` for host-network pods, which skip CNI.
    let network = (!PodNamespaces::of(config).host_network)
        .then(|| pod::network::request(config, &record.id))
        .transpose()?;
    let (d2, config2, mut local) = (d.clone(), config.clone(), record.clone());
    let (local, made) = blocking("making the pod", move || {
        let made = make_local(&d2, &config2, &mut local);
        (local, made)
    })
    .await?;
    *record = local;
    made?;
    if let Some(network) = network {
        pod::network::attach(d, network, record).await?;
    }
    crate::crash_point::crash_point("run_pod_sandbox:network");
    Ok(())
}

/// The pod's state folder, pinned namespaces, PID 1, /dev/shm, files and cgroup.
fn make_local(
    d: &Daemon,
    config: &PodSandboxConfig,
    record: &mut PodRecord,
) -> Result<(), RpcError> {
    let ns = PodNamespaces::of(config);
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
    let userns = pod::userns::request(config)?;
    let pinned = match &userns {
        Some(user) => {
            longshore_namespaces::pin_with_user_namespace(&d.helper_exe, &ns_dir, &request, user)
        }
        None => longshore_namespaces::pin(&ns_dir, &request),
    };
    let pinned = pinned.map_err(|e| {
        let context = match e {
            longshore_namespaces::NamespaceError::Sysctl { .. } => "linux.sysctls",
            _ => "making pod namespaces",
        };
        RpcError::from(e).context(context)
    })?;
    record.netns = pinned.net;
    record.ipcns = pinned.ipc;
    record.utsns = pinned.uts;
    record.userns = pinned.user;
    let root_ids = pod::userns::root_ids(config);

    if ns.pid == NamespaceMode::Pod {
        let init = PodInit::start(&d.helper_exe, &ns_dir, record.userns.as_deref())
            .context("starting the pod's PID 1")?;
        record.pod_init_pid = Some(init.pid);
        record.pidns = Some(init.pin);
    }

    crate::crash_point::crash_point("run_pod_sandbox:namespaces");
    if !ns.host_ipc {
        let shm = record.state_dir.join("shm");
        mount_shm(&shm, d.config.containers.shm_size.0, root_ids)?;
        record.shm = Some(shm);
    }
    pod::files::write(&record.state_dir, config, &hostname, ns.host_network)
        .context("writing pod files")?;
    if let Some(ids) = root_ids {
        // The pod's root may change them, as it could without a user namespace.
        for file in pod::files::NAMES {
            let path = record.state_dir.join(file);
            pod::userns::chown_to_root(&path, ids)
                .with_context(|| format!("giving {} to the pod's root", path.display()))?;
        }
    }

    pod::cgroup::create(d, record)?;
    if let Some(pid) = record.pod_init_pid {
        pod::cgroup::add_process(d, record, pid)?;
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
/// In a pod with its own user namespace, the tmpfs belongs to the pod's root (`root_ids`).
fn mount_shm(dir: &PathBuf, size: u64, root_ids: Option<(u32, u32)>) -> Result<(), RpcError> {
    use nix::mount::{MsFlags, mount};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut data = format!("mode=1777,size={size}");
    if let Some((uid, gid)) = root_ids {
        data.push_str(&format!(",uid={uid},gid={gid}"));
    }
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
