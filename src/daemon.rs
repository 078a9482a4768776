//! The daemon's parts, made once at start and shared by every RPC.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use longshore_config::Config;
use longshore_monitor_client::{MONITOR_BINARY, MonitorCommand};

use crate::events::EventBus;
use crate::state::{Container, Pod, Store};

/// Everything an RPC handler may need.
pub struct Daemon {
    /// The configuration in force.
    pub config: Config,
    /// Pods, containers and their names: in memory, and durable through one writer.
    pub state: Store,
    /// Container lifecycle events for GetContainerEvents subscribers.
    pub events: EventBus,
    /// The daemon's own binary, run as `longshore pod-init` for pods with a shared PID namespace.
    pub helper_exe: PathBuf,
    /// How a container's monitor is run (see [`monitor_command`]).
    pub monitor: MonitorCommand,
    /// Pod networking through CNI plugins.
    pub cni: Arc<longshore_cni::Cni>,
    /// The cgroup hierarchy of this host (v1, hybrid or v2).
    pub hierarchy: longshore_cgroups::Hierarchy,
    /// `[cgroups] root`: where every pod's cgroup_parent is resolved.
    pub cgroup_root: longshore_cgroups::CgroupPath,
    /// Images: content store, pulls, metadata.
    pub images: Arc<longshore_image::ImageStore>,
    /// Layer snapshots and containers' writable layers (owned by the image store).
    pub snapshots: Arc<longshore_snapshot::Snapshotter>,
    /// Background layer garbage collection (asked for by removals).
    pub layer_gc: crate::layer_gc::LayerGc,
    /// Node-wide settings for every container's OCI spec.
    pub spec_settings: longshore_spec::SpecSettings,
    /// CDI devices: the spec directories' devices, read again when a file changes.
    pub cdi: longshore_cdi::Registry,
    /// systemd's manager, when the `systemd` cgroup driver runs on a host systemd booted: cgroups
    /// are then transient units (`runtime::systemd_units`). `None` otherwise.
    pub systemd: Option<Arc<longshore_systemd::Systemd>>,
    /// Whether pods may have their own user namespace here, or why not (probed once at start).
    pub userns_support: Result<(), String>,
    /// The exec/attach/port-forward server, set once at start (`crate::streaming_backend::start`).
    pub streaming: OnceLock<longshore_streaming::StreamingServer>,
}

/// Probes user namespace support (`runtime::pod::userns::probe`) and says the outcome.
async fn probe_user_namespaces(
    exe: &std::path::Path,
    config: &Config,
    snapshots: &longshore_snapshot::Snapshotter,
) -> Result<(), String> {
    let (exe, scratch, layers) = (
        exe.to_path_buf(),
        config.state.join("userns-probe"),
        snapshots.snapshots_dir(),
    );
    let probed = tokio::task::spawn_blocking(move || {
        crate::runtime::probe_user_namespaces(&exe, &scratch, &layers)
    })
    .await
    .unwrap_or_else(|e| Err(format!("probe task: {e}")));
    match &probed {
        Ok(()) => tracing::info!("pods may have their own user namespace (hostUsers: false)"),
        Err(why) => tracing::warn!(reason = %why, "pods cannot have their own user namespace here"),
    }
    probed
}

impl Daemon {
    /// Opens the database, makes the folders and recovers the state left by an earlier run.
    pub async fn open(config: Config) -> Result<Daemon> {
        for dir in [&config.root, &config.state] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db_path = config.root.join("longshore.db");
        let db = redb::Database::create(&db_path)
            .with_context(|| format!("opening state database {}", db_path.display()))?;
        let db = Arc::new(db);
        let state = Store::open(db.clone())?;
        let helper_exe = std::env::current_exe().context("finding the daemon's own binary")?;
        let monitor = monitor_command(&config.runtime.monitor_path, &helper_exe)?;
        tracing::info!(program = %monitor.program.display(), "container monitors");
        let cni = longshore_cni::Cni::new(longshore_cni::CniConfig {
            conf_dir: config.cni.conf_dir.clone(),
            bin_dirs: config.cni.bin_dirs.clone(),
            cache_dir: config.cni_cache_dir(),
        })
        .context("setting up CNI")?;
        let hierarchy = longshore_cgroups::Hierarchy::detect().context("detecting cgroups")?;
        let images =
            longshore_image::ImageStore::open(&config.root, db.clone(), image_config(&config))
                .context("opening the image store")?;
        let snapshots = images.snapshotter().clone();
        let spec_settings = longshore_spec::SpecSettings::from_config(
            &config.containers,
            longshore_spec::HostFacts::detect(),
        )
        .map_err(|e| anyhow::anyhow!("[containers]: {e}"))?;
        let cgroup_root =
            longshore_cgroups::CgroupPath::new(&config.cgroups.root).context("[cgroups] root")?;
        let systemd = systemd_driver(&config, &cgroup_root).await?;
        let userns_support = probe_user_namespaces(&helper_exe, &config, &snapshots).await;
        let daemon = Daemon {
            cni: Arc::new(cni),
            images: Arc::new(images),
            snapshots,
            layer_gc: Default::default(),
            spec_settings,
            cdi: longshore_cdi::Registry::new(config.containers.cdi_spec_dirs.clone()),
            hierarchy,
            cgroup_root,
            systemd,
            config,
            state,
            events: EventBus::new(),
            helper_exe,
            monitor,
            streaming: OnceLock::new(),
            userns_support,
        };
        Ok(daemon)
    }

    /// Stops background work at shutdown: the streaming server takes no new connections
    /// (sessions under way end with their command). Containers and their monitors keep running.
    pub async fn shutdown(&self) {
        if let Some(server) = self.streaming.get() {
            server.shutdown();
        }
    }

    /// A pod by id.
    pub fn pod(&self, id: &str) -> Option<Arc<Pod>> {
        self.state.pod(id)
    }

    /// A container by id.
    pub fn container(&self, id: &str) -> Option<Arc<Container>> {
        self.state.container(id)
    }

    /// Every pod.
    pub fn all_pods(&self) -> Vec<Arc<Pod>> {
        self.state.all_pods()
    }

    /// Every container.
    pub fn all_containers(&self) -> Vec<Arc<Container>> {
        self.state.all_containers()
    }
}

/// The image store's settings from `[registry]`.
fn image_config(config: &Config) -> longshore_image::ImageStoreConfig {
    let optional = |p: &PathBuf| (!p.as_os_str().is_empty()).then(|| p.clone());
    longshore_image::ImageStoreConfig {
        registry_config_path: optional(&config.registry.config_path),
        docker_config_path: optional(&config.registry.docker_config),
        max_layer_bytes: config.registry.max_layer_size.0,
        max_layer_ratio: config.registry.max_layer_ratio,
        layer_ratio_floor: config.registry.layer_ratio_floor.0,
        pull_progress_timeout: config.registry.pull_progress_timeout,
        max_concurrent_downloads: config.registry.max_concurrent_downloads,
        ..Default::default()
    }
}

/// The network condition `Status` reports.
#[derive(Debug, Clone, Default)]
pub struct NetworkStatus {
    /// NetworkReady.
    pub ready: bool,
    /// A CamelCase reason when not ready.
    pub reason: String,
    /// Human words when not ready.
    pub message: String,
}

/// The default `[cgroups] default_parent`, a path; under systemd it stands for `longshore.slice`.
const DEFAULT_PARENT_PATH: &str = "/longshore";

/// With the `systemd` driver on a host systemd booted: a client of systemd's manager, checked
/// now, and a configuration that fits systemd (cgroups from the root, slices for pods).
async fn systemd_driver(
    config: &Config,
    root: &longshore_cgroups::CgroupPath,
) -> Result<Option<Arc<longshore_systemd::Systemd>>> {
    if config.cgroups.driver != longshore_config::CgroupDriver::Systemd {
        return Ok(None);
    }
    if !longshore_systemd::booted() {
        tracing::warn!(
            "cgroups driver systemd, but systemd did not boot this host (no /run/systemd/system): \
             cgroups get systemd's names and are made on cgroupfs, with no units"
        );
        return Ok(None);
    }
    if *root != longshore_cgroups::CgroupPath::root() {
        anyhow::bail!(
            "[cgroups] root = {:?}: with the systemd driver, systemd owns the hierarchy from its root; set root = \"/\"",
            root.as_str()
        );
    }
    let parent = &config.cgroups.default_parent;
    if parent != DEFAULT_PARENT_PATH && !parent.ends_with(".slice") {
        anyhow::bail!(
            "[cgroups] default_parent = {parent:?}: the systemd driver needs a slice name (such as longshore.slice)"
        );
    }
    let systemd = longshore_systemd::Systemd::new();
    let version = systemd
        .check()
        .await
        .context("cgroups driver systemd: connecting to systemd")?;
    tracing::info!(systemd = %version, "cgroups are systemd units (transient scopes and slices over D-Bus)");
    Ok(Some(Arc::new(systemd)))
}

impl Daemon {
    /// The slice pods without a kubelet `cgroup_parent` go in, under the systemd driver.
    pub fn default_pod_slice(&self) -> &str {
        let parent = self.config.cgroups.default_parent.as_str();
        if parent == DEFAULT_PARENT_PATH {
            "longshore.slice"
        } else {
            parent
        }
    }

    /// The cgroup naming the configuration asks for.
    pub fn cgroup_driver(&self) -> longshore_cgroups::Driver {
        match self.config.cgroups.driver {
            longshore_config::CgroupDriver::Cgroupfs => longshore_cgroups::Driver::Cgroupfs,
            longshore_config::CgroupDriver::Systemd => longshore_cgroups::Driver::Systemd,
        }
    }

    /// Whether pods can get a network now.
    pub fn network_status(&self) -> NetworkStatus {
        let s = self.cni.status();
        NetworkStatus {
            ready: s.ready,
            reason: s.reason,
            message: s.message,
        }
    }
}

/// How monitors are run: the configured `monitor_path`; else `longshore-monitor` next to the
/// daemon's binary; else `longshore-monitor` on `PATH`.
///
/// The monitor is a separate small binary (crates/monitor) because one lives as long as each
/// container: it links none of the daemon's gRPC, registry, TLS and database code, and the daemon
/// links none of its libcontainer (see docs/benchmarks.md, memory per pod).
pub fn monitor_command(configured: &Path, daemon_exe: &Path) -> Result<MonitorCommand> {
    if !configured.as_os_str().is_empty() {
        return Ok(MonitorCommand::new(configured));
    }
    let sibling = daemon_exe.parent().map(|dir| dir.join(MONITOR_BINARY));
    if let Some(sibling) = sibling.filter(|p| p.is_file()) {
        return Ok(MonitorCommand::new(sibling));
    }
    on_path(MONITOR_BINARY).map(MonitorCommand::new).with_context(|| {
        format!(
            "{MONITOR_BINARY} is neither next to {} nor on PATH; install it (deploy/install.sh) \
             or set [runtime] monitor_path",
            daemon_exe.display()
        )
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_use_the_binary_next_to_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = dir.path().join("longshore");
        std::fs::write(&daemon, b"").unwrap();
        std::fs::write(dir.path().join(MONITOR_BINARY), b"").unwrap();
        let sibling = monitor_command(Path::new(""), &daemon).unwrap();
        assert_eq!(sibling.program, dir.path().join(MONITOR_BINARY));
        assert!(sibling.args.is_empty());
    }

    #[test]
    fn a_configured_monitor_wins() {
        let daemon = Path::new("/usr/local/bin/longshore");
        let configured = monitor_command(Path::new("/opt/m/longshore-monitor"), daemon).unwrap();
        assert_eq!(configured.program, Path::new("/opt/m/longshore-monitor"));
        assert!(configured.args.is_empty());
    }
}
