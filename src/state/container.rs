//! A container: its record (what is persisted) and its live entry.

use std::path::PathBuf;
use std::sync::RwLock;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::api::{ContainerConfig, PodSandboxConfig};

/// CRI's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ContainerState {
    /// Made, not started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process ended.
    Exited,
    /// The daemon lost track of it (its monitor vanished without an exit record).
    Unknown,
}

/// How a container's process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitInfo {
    /// Exit code; 128 + signal when killed by a signal.
    pub code: i32,
    /// When it ended, ns since the epoch.
    pub finished_at: i64,
    /// `Completed`, `Error`, `OOMKilled`, or why it never ran.
    pub reason: String,
    /// Extra words for the user.
    pub message: String,
}

/// What the daemon remembers of a container across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// The pod it belongs to.
    pub pod_id: String,
    /// Its state.
    pub state: ContainerState,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Start time, 0 until started.
    pub started_at: i64,
    /// How it ended, once it has.
    pub exit: Option<ExitInfo>,
    /// The `ContainerConfig` kubelet sent, protobuf-encoded.
    #[serde(with = "super::proto_bytes")]
    pub config: Vec<u8>,
    /// The image id (`sha256:<config digest>`).
    pub image_id: String,
    /// The image as the user named it.
    pub image_name: String,
    /// The image's repo digest when known, for `image_ref`.
    pub image_ref: String,
    /// Absolute path of the CRI log file; empty when kubelet gave none.
    pub log_path: PathBuf,
    /// `<state>/containers/<id>`: bundle, rootfs mount point, monitor socket, exit record.
    pub state_dir: PathBuf,
    /// The container's cgroup (absolute path inside the hierarchy).
    pub cgroup: String,
    /// Host PID of its process while running.
    pub pid: i32,
    /// True from before the first part is made until the RPC that makes it finishes: a record
    /// still creating at start was cut short by a crash, and recovery undoes what it names.
    pub creating: bool,
    /// The handler that runs it ("" for the embedded executor).
    pub runtime_handler: String,
    /// The uid its process runs as.
    pub uid: i64,
    /// The gid its process runs as.
    pub gid: i64,
    /// Its supplemental groups.
    pub supplemental_groups: Vec<i64>,
    /// Signal that asks it to stop (from the config or the image), as a number.
    pub stop_signal: i32,
    /// Current resources (after UpdateContainerResources), protobuf-encoded
    /// `LinuxContainerResources`; empty means as created.
    #[serde(with = "super::proto_bytes")]
    pub resources: Vec<u8>,
}

/// A container as the daemon holds it in memory.
pub struct Container {
    /// The container's id.
    pub id: String,
    /// Its pod's id.
    pub pod_id: String,
    /// The config kubelet sent; never changes.
    pub config: ContainerConfig,
    /// The mutable record; changed only through [`super::Store`], which persists each change.
    pub(super) record: RwLock<ContainerRecord>,
    /// Serialises lifecycle operations on this container.
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Flips to `true` once the container's exit is recorded; StopContainer waits on it.
    pub exited: tokio::sync::watch::Sender<bool>,
}

impl Container {
    /// Builds the in-memory container from its record.
    pub fn from_record(record: ContainerRecord) -> Result<Container, super::StoreError> {
        let config = ContainerConfig::decode(record.config.as_slice()).map_err(|e| {
            super::StoreError::Corrupt {
                id: record.id.clone(),
                reason: format!("config: {e}"),
            }
        })?;
        let (exited, _) = tokio::sync::watch::channel(record.state == ContainerState::Exited);
        Ok(Container {
            id: record.id.clone(),
            pod_id: record.pod_id.clone(),
            config,
            record: RwLock::new(record),
            lifecycle: tokio::sync::Mutex::new(()),
            exited,
        })
    }

    /// A copy of the current record.
    pub fn snapshot(&self) -> ContainerRecord {
        self.record
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads fields of the current record under its lock, without copying the whole record.
    pub fn read<R>(&self, read: impl FnOnce(&ContainerRecord) -> R) -> R {
        read(&self.record.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The container's state.
    pub fn state(&self) -> ContainerState {
        self.record.read().unwrap_or_else(|p| p.into_inner()).state
    }

    /// The reserved name: `<name>_<pod name>_<namespace>_<uid>_<attempt>`, as containerd makes it.
    pub fn full_name(config: &ContainerConfig, pod: &PodSandboxConfig) -> String {
        let c = config.metadata.clone().unwrap_or_default();
        let p = pod.metadata.clone().unwrap_or_default();
        format!(
            "{}_{}_{}_{}_{}",
            c.name, p.name, p.namespace, p.uid, c.attempt
        )
    }
}
