//! A pod sandbox: its record (what is persisted) and its live entry.

use std::path::PathBuf;
use std::sync::RwLock;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::api::PodSandboxConfig;

/// Whether a pod's namespaces and network are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PodState {
    /// Namespaces pinned, network set up.
    Ready,
    /// Stopped (or half-made): containers killed, network released.
    #[default]
    NotReady,
}

/// What the daemon remembers of a pod across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodRecord {
    /// 64 hex digits.
    pub id: String,
    /// Ready or not.
    pub state: PodState,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// The `PodSandboxConfig` kubelet sent, protobuf-encoded.
    #[serde(with = "super::proto_bytes")]
    pub config: Vec<u8>,
    /// The RuntimeClass handler ("" for the default).
    pub runtime_handler: String,
    /// `<state>/pods/<id>`.
    pub state_dir: PathBuf,
    /// Pinned network namespace; `None` for host-network pods.
    pub netns: Option<PathBuf>,
    /// Pinned IPC namespace; `None` for host-IPC pods.
    pub ipcns: Option<PathBuf>,
    /// Pinned UTS namespace; `None` for host-network pods.
    pub utsns: Option<PathBuf>,
    /// Pinned PID namespace, when the pod shares one.
    pub pidns: Option<PathBuf>,
    /// Pinned user namespace, for a `hostUsers: false` pod (`userns_options` mode POD); its
    /// net, IPC, UTS (and shared PID) namespaces belong to it.
    pub userns: Option<PathBuf>,
    /// Host PID of the pod's PID 1 (`longshore pod-init`), when it shares a PID namespace.
    pub pod_init_pid: Option<i32>,
    /// The pod's cgroup (absolute path inside the hierarchy).
    pub cgroup: String,
    /// True from before the first part is made until the RPC that makes it finishes: a record
    /// still creating at start was cut short by a crash, and recovery undoes what it names.
    pub creating: bool,
    /// Whether Longshore created the pod cgroup (and so removes it).
    pub owns_cgroup: bool,
    /// Pod IPs, primary first.
    pub ips: Vec<String>,
    /// Whether CNI ADD ran and DEL has not yet.
    pub network_attached: bool,
    /// The pod's /dev/shm tmpfs, when it has its own.
    pub shm: Option<PathBuf>,
}

/// A pod as the daemon holds it in memory.
pub struct Pod {
    /// The pod's id.
    pub id: String,
    /// The config kubelet sent; never changes.
    pub config: PodSandboxConfig,
    /// The mutable record; changed only through [`super::Store`], which persists each change.
    pub(super) record: RwLock<PodRecord>,
    /// Serialises lifecycle operations (stop, remove, container create) on this pod.
    pub lifecycle: tokio::sync::Mutex<()>,
}

impl Pod {
    /// Builds the in-memory pod from its record.
    pub fn from_record(record: PodRecord) -> Result<Pod, super::StoreError> {
        let config = PodSandboxConfig::decode(record.config.as_slice()).map_err(|e| {
            super::StoreError::Corrupt {
                id: record.id.clone(),
                reason: format!("config: {e}"),
            }
        })?;
        Ok(Pod {
            id: record.id.clone(),
            config,
            record: RwLock::new(record),
            lifecycle: tokio::sync::Mutex::new(()),
        })
    }

    /// A copy of the current record.
    pub fn snapshot(&self) -> PodRecord {
        self.record
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The pod's state.
    pub fn state(&self) -> PodState {
        self.record.read().unwrap_or_else(|p| p.into_inner()).state
    }

    /// The name kubelet reserves for this pod: `<name>_<namespace>_<uid>_<attempt>`.
    pub fn full_name(config: &PodSandboxConfig) -> String {
        let m = config.metadata.clone().unwrap_or_default();
        format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
    }
}
