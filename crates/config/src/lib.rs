//! Longshore's configuration: one TOML file, every key optional.
//!
//! [`Config::load`] reads `/etc/longshore/config.toml` (or the file given), refusing unknown keys and
//! bad values with the file, the key and the reason. [`DEFAULT_CONFIG`] is the full default file with
//! comments, printed by `longshore config default`; a test keeps it equal to [`Config::default`].

mod duration;
mod error;
mod size;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use error::ConfigError;
pub use size::ByteSize;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/longshore/config.toml";

/// The full default configuration, with comments. Parsing it gives [`Config::default`].
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The whole configuration of the daemon.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Persistent data: the database, image content, layer snapshots, writable layers.
    pub root: PathBuf,
    /// Volatile state: socket, pinned namespaces, bundles, monitor sockets. Gone at reboot.
    pub state: PathBuf,
    /// The CRI gRPC endpoint.
    pub grpc: GrpcConfig,
    /// Logging of the daemon itself.
    pub log: LogConfig,
    /// Registries, mirrors and pulls.
    pub registry: RegistryConfig,
    /// Pod networking through CNI.
    pub cni: CniConfig,
    /// cgroup driver and where pod cgroups live.
    pub cgroups: CgroupsConfig,
    /// How containers are run: the embedded executor and external OCI runtimes.
    pub runtime: RuntimeConfig,
    /// Defaults applied to every container.
    pub containers: ContainersConfig,
    /// The exec/attach/port-forward streaming server.
    pub streaming: StreamingConfig,
    /// The daemon's own Prometheus metrics.
    pub metrics: MetricsConfig,
}

/// The CRI gRPC endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Unix socket path; empty means `<state>/longshore.sock`.
    pub socket: PathBuf,
    /// Largest request or response message, in bytes (kubelet sends up to 16 MiB).
    pub max_message_size: ByteSize,
    /// Group that may use the socket besides root (socket mode is 0660); empty keeps root's group.
    pub group: String,
}

/// Logging of the daemon itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `longshore=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// How the daemon writes its own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Registries, mirrors and pulls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Folder of per-host `hosts.toml` files in containerd's layout (`<dir>/<host>/hosts.toml`).
    pub config_path: PathBuf,
    /// A docker-style `config.json` with registry credentials; missing file is fine.
    pub docker_config: PathBuf,
    /// Layers fetched at the same time, per pull.
    pub max_concurrent_downloads: usize,
    /// Largest uncompressed size of one layer; larger layers are refused (decompression bombs).
    pub max_layer_size: ByteSize,
    /// Largest uncompressed/compressed ratio of a layer above `layer_ratio_floor`: a layer may
    /// expand to this many times its compressed size (decompression bombs); 0 turns it off.
    pub max_layer_ratio: u64,
    /// Uncompressed size every layer may have whatever its ratio, so ordinary images are never
    /// refused by the ratio.
    pub layer_ratio_floor: ByteSize,
    /// A pull that moves no byte for this long is cancelled.
    #[serde(with = "duration")]
    pub pull_progress_timeout: Duration,
}

/// Pod networking through CNI.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CniConfig {
    /// Folder of network configurations; the lexically first `.conflist`/`.conf` is used.
    pub conf_dir: PathBuf,
    /// Folders searched for plugin binaries, in order.
    pub bin_dirs: Vec<PathBuf>,
    /// Cached ADD results, so DEL works after a restart; empty means `<root>/cni`.
    pub cache_dir: PathBuf,
}

/// cgroup driver and where pod cgroups live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupsConfig {
    /// `cgroupfs` (paths like `/kubepods/burstable/pod<uid>`) or `systemd`
    /// (slices like `kubepods-burstable-pod<uid>.slice`). Must match kubelet's `cgroupDriver`.
    pub driver: CgroupDriver,
    /// The cgroup under which every pod's `cgroup_parent` is resolved. `/` on a node.
    pub root: String,
    /// Parent used when a pod names none (crictl without `cgroup_parent`).
    pub default_parent: String,
}

/// The cgroup driver kubelet and the runtime agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// Plain cgroupfs paths.
    Cgroupfs,
    /// systemd units: transient scopes and slices through systemd's D-Bus API on a host systemd
    /// booted (slice naming on cgroupfs where systemd does not run).
    Systemd,
}

/// How containers are run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Handler used when a pod names none (RuntimeClass empty). `""` is the embedded executor.
    pub default_handler: String,
    /// Extra handlers by RuntimeClass name.
    pub handlers: BTreeMap<String, HandlerConfig>,
    /// Binary run as each container's monitor (`longshore-monitor`); empty means the one next
    /// to the daemon's binary, or the daemon's own `monitor` subcommand.
    pub monitor_path: PathBuf,
}

/// An external OCI runtime (runc, crun, youki) used for one RuntimeClass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// Path of the runtime binary; `embedded` selects the built-in executor under another name.
    pub path: PathBuf,
    /// `--root` given to the runtime; empty means `<state>/runtimes/<handler>`.
    #[serde(default)]
    pub root: PathBuf,
}

/// Defaults applied to every container.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    /// Longest log line written as one record; longer lines are split into partial (`P`) records.
    pub max_log_line_size: ByteSize,
    /// Never set an oom_score_adj lower than the daemon's own (containerd's restrict_oom_score_adj).
    pub restrict_oom_score_adj: bool,
    /// Capabilities of a non-privileged container unless it adds or drops some.
    pub default_capabilities: Vec<String>,
    /// Size of each pod's `/dev/shm`.
    pub shm_size: ByteSize,
    /// Seccomp profile for `RuntimeDefault`: `builtin` or a path to an OCI seccomp JSON file.
    pub seccomp_default_profile: String,
    /// Apply `RuntimeDefault` seccomp when a pod asks for nothing (kubelet's SeccompDefault).
    pub seccomp_default_for_unconfined: bool,
    /// CDI spec directories, lowest priority first (containerd's `cdi_spec_dirs`).
    pub cdi_spec_dirs: Vec<PathBuf>,
}

/// The exec/attach/port-forward streaming server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingConfig {
    /// Address to listen on; port 0 picks a free port.
    pub address: String,
    /// PEM certificate for TLS; empty serves plain HTTP (fine on loopback).
    pub tls_cert: PathBuf,
    /// PEM private key for TLS.
    pub tls_key: PathBuf,
    /// How long a returned URL stays valid.
    #[serde(with = "duration")]
    pub token_ttl: Duration,
}

/// The daemon's own Prometheus metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct MetricsConfig {
    /// `host:port` to serve `/metrics` on; empty turns metrics off.
    pub address: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("/var/lib/longshore"),
            state: PathBuf::from("/run/longshore"),
            grpc: GrpcConfig::default(),
            log: LogConfig::default(),
            registry: RegistryConfig::default(),
            cni: CniConfig::default(),
            cgroups: CgroupsConfig::default(),
            runtime: RuntimeConfig::default(),
            containers: ContainersConfig::default(),
            streaming: StreamingConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            socket: PathBuf::new(),
            max_message_size: ByteSize(16 << 20),
            group: String::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            config_path: PathBuf::from("/etc/longshore/certs.d"),
            docker_config: PathBuf::from("/root/.docker/config.json"),
            max_concurrent_downloads: 4,
            max_layer_size: ByteSize(16 << 30),
            max_layer_ratio: 100,
            layer_ratio_floor: ByteSize(256 << 20),
            pull_progress_timeout: Duration::from_secs(300),
        }
    }
}

impl Default for CniConfig {
    fn default() -> Self {
        CniConfig {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            cache_dir: PathBuf::new(),
        }
    }
}

impl Default for CgroupsConfig {
    fn default() -> Self {
        CgroupsConfig {
            driver: CgroupDriver::Cgroupfs,
            root: "/".into(),
            default_parent: "/longshore".into(),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_handler: String::new(),
            handlers: BTreeMap::new(),
            monitor_path: PathBuf::new(),
        }
    }
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            max_log_line_size: ByteSize(16 << 10),
            restrict_oom_score_adj: true,
            default_capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            shm_size: ByteSize(64 << 20),
            seccomp_default_profile: "builtin".into(),
            seccomp_default_for_unconfined: false,
            cdi_spec_dirs: vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")],
        }
    }
}

/// The capabilities containerd and CRI-O give a non-privileged container.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            address: "127.0.0.1:0".into(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            token_ttl: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Reads and validates a configuration file. A missing file at the default path gives the
    /// defaults; a missing file that was asked for by name is an error.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Config::parse(&text, path)
    }

    /// Parses configuration text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                path: origin.to_path_buf(),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// The socket path, defaulting to `<state>/longshore.sock`.
    pub fn socket_path(&self) -> PathBuf {
        if self.grpc.socket.as_os_str().is_empty() {
            self.state.join("longshore.sock")
        } else {
            self.grpc.socket.clone()
        }
    }

    /// The CNI result cache, defaulting to `<root>/cni`.
    pub fn cni_cache_dir(&self) -> PathBuf {
        if self.cni.cache_dir.as_os_str().is_empty() {
            self.root.join("cni")
        } else {
            self.cni.cache_dir.clone()
        }
    }

    /// Checks values that parse but make no sense; returns the key and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, reason: String| Err((key.to_string(), reason));
        for (key, path) in [("root", &self.root), ("state", &self.state)] {
            if !path.is_absolute() {
                return fail(key, format!("{} is not an absolute path", path.display()));
            }
        }
        let socket = self.socket_path();
        if !socket.is_absolute() {
            return fail(
                "grpc.socket",
                format!("{} is not an absolute path", socket.display()),
            );
        }
        // sun_path holds 108 bytes including the terminating NUL.
        if socket.as_os_str().len() > 107 {
            return fail(
                "grpc.socket",
                format!("{} is longer than 107 bytes", socket.display()),
            );
        }
        if self.grpc.max_message_size.0 < 4 << 20 {
            return fail("grpc.max_message_size", "must be at least 4 MiB".into());
        }
        if self.registry.max_concurrent_downloads == 0 {
            return fail(
                "registry.max_concurrent_downloads",
                "must be at least 1".into(),
            );
        }
        if self.registry.max_layer_size.0 == 0 {
            return fail("registry.max_layer_size", "must be more than 0".into());
        }
        if !self.cgroups.root.starts_with('/') {
            return fail(
                "cgroups.root",
                format!("{:?} must start with /", self.cgroups.root),
            );
        }
        if self.cgroups.root.split('/').any(|c| c == "..") {
            return fail(
                "cgroups.root",
                format!("{:?} must not contain ..", self.cgroups.root),
            );
        }
        if self.containers.max_log_line_size.0 < 256 {
            return fail(
                "containers.max_log_line_size",
                "must be at least 256 bytes".into(),
            );
        }
        if !self.streaming.address.is_empty()
            && self
                .streaming
                .address
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return fail(
                "streaming.address",
                format!("{:?} is not an ip:port address", self.streaming.address),
            );
        }
        if self.streaming.tls_cert.as_os_str().is_empty()
            != self.streaming.tls_key.as_os_str().is_empty()
        {
            return fail(
                "streaming.tls_key",
                "tls_cert and tls_key go together".into(),
            );
        }
        if !self.metrics.address.is_empty()
            && self
                .metrics
                .address
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return fail(
                "metrics.address",
                format!("{:?} is not an ip:port address", self.metrics.address),
            );
        }
        for (name, handler) in &self.runtime.handlers {
            if name.is_empty() {
                return fail("runtime.handlers", "a handler needs a name".into());
            }
            if handler.path.as_os_str() != "embedded" && !handler.path.is_absolute() {
                return fail(
                    &format!("runtime.handlers.{name}.path"),
                    format!(
                        "{} is not an absolute path or \"embedded\"",
                        handler.path.display()
                    ),
                );
            }
        }
        if !self.runtime.default_handler.is_empty()
            && !self
                .runtime
                .handlers
                .contains_key(&self.runtime.default_handler)
        {
            return fail(
                "runtime.default_handler",
                format!("no handler named {:?}", self.runtime.default_handler),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_matches_default_struct() {
        let parsed = Config::parse(DEFAULT_CONFIG, Path::new("default.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn empty_file_is_default() {
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let err = Config::parse("[registry]\nmirrors = 1\n", Path::new("/etc/x.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/etc/x.toml"), "{text}");
        assert!(text.contains("mirrors"), "{text}");
    }

    #[test]
    fn bad_value_names_key() {
        let err = Config::parse("root = \"relative\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
        let err =
            Config::parse("[cgroups]\ndriver = \"cgroupv3\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("driver"), "{err}");
    }

    #[test]
    fn sizes_and_durations_parse() {
        let c = Config::parse(
            "[registry]\nmax_layer_size = \"2GiB\"\npull_progress_timeout = \"90s\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.registry.max_layer_size, ByteSize(2 << 30));
        assert_eq!(c.registry.pull_progress_timeout, Duration::from_secs(90));
    }

    #[test]
    fn handler_must_exist() {
        let err = Config::parse(
            "[runtime]\ndefault_handler = \"runc\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("runtime.default_handler"), "{err}");
        let ok = Config::parse(
            "[runtime]\ndefault_handler = \"runc\"\n[runtime.handlers.runc]\npath = \"/usr/bin/runc\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            ok.runtime.handlers["runc"].path,
            PathBuf::from("/usr/bin/runc")
        );
    }

    #[test]
    fn socket_path_too_long_is_refused() {
        let long = format!("[grpc]\nsocket = \"/{}\"\n", "a".repeat(120));
        assert!(Config::parse(&long, Path::new("c.toml")).is_err());
    }
}
