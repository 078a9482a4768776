//! Pod networking through standard CNI plugins, the way containerd (go-cni/libcni) and CRI-O
//! (ocicni) do it, so a cluster's existing `/etc/cni/net.d` works unchanged.
//!
//! - The pod network is the lexically first `.conflist`/`.conf`/`.json` in the config dir,
//!   re-read on every call, so [`Cni::status`] follows the directory without a restart.
//! - Every pod also gets the `loopback` plugin on `lo` (containerd's built-in `cni-loopback`
//!   network), so no `99-loopback.conf` is needed.
//! - Plugins run as child processes per the CNI spec (1.0.0, and 0.1.0 to 0.4.0 when a config
//!   declares them), with `prevResult` chaining and `runtimeConfig` capability arguments.
//! - Each attachment's config, arguments and result are cached on disk before and after ADD;
//!   teardown runs DEL from that cache, so it works after a daemon restart or a config change,
//!   and is a no-op once done.
//!
//! Calls for one sandbox id must not overlap (the daemon serialises a sandbox's lifecycle);
//! calls for different sandboxes may run concurrently.

mod bandwidth;
mod cache;
mod confdir;
mod error;
mod invoke;
mod netconf;
mod netns;
mod ops;
mod orphans;
mod pod;
mod result;
mod version;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

pub use bandwidth::{Bandwidth, EGRESS_ANNOTATION, INGRESS_ANNOTATION};
pub use confdir::{REASON_INVALID_CONFIG, REASON_NO_CONFIG, REASON_PLUGIN_NOT_FOUND};
pub use error::{Error, PluginFailure, Result};
pub use orphans::{plugins_running_for, wait_for_plugins};
pub use pod::{DEFAULT_IFNAME, DnsConfig, PodNetwork, PortMapping, Protocol};
pub use result::{Cidr, Dns, Interface, IpConfig, NetworkResult, Route};

use cache::{Cache, Entry, check_name};
use confdir::{ConfDir, NotReady};
use invoke::PluginDirs;
use netconf::NetworkList;
use netns::NetnsState;
use ops::Attachment;

/// Where kubelet-era tooling installs network configs.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Where plugins are installed upstream, then where Debian's `containernetworking-plugins` puts them.
pub const DEFAULT_BIN_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];
/// The result cache when the daemon names none.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/longshore/cni";

/// The loopback network every pod gets, as containerd's `WithLoNetwork` defines it (0.3.1:
/// understood by every loopback plugin still in use).
const LOOPBACK_NETWORK: &str =
    r#"{"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]}"#;
const LOOPBACK_IFNAME: &str = "lo";
/// Linux interface names hold at most 15 bytes.
const IFNAME_MAX: usize = 15;

/// Where configs, plugins and the result cache live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    /// The network config directory; need not exist yet.
    pub conf_dir: PathBuf,
    /// Plugin directories, searched in order (also passed to plugins as `CNI_PATH`).
    pub bin_dirs: Vec<PathBuf>,
    /// The result cache; must persist across daemon restarts (not tmpfs), e.g. `<root>/cni`.
    pub cache_dir: PathBuf,
}

impl Default for CniConfig {
    fn default() -> Self {
        CniConfig {
            conf_dir: DEFAULT_CONF_DIR.into(),
            bin_dirs: DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: DEFAULT_CACHE_DIR.into(),
        }
    }
}

/// The CRI `NetworkReady` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStatus {
    /// Whether a pod could be networked now.
    pub ready: bool,
    /// Empty when ready; else a CamelCase code: [`REASON_NO_CONFIG`],
    /// [`REASON_INVALID_CONFIG`] or [`REASON_PLUGIN_NOT_FOUND`].
    pub reason: String,
    /// Empty when ready; else the details (the file and its parse error, the missing plugin).
    pub message: String,
}

/// The pod network manager. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Cni {
    conf: ConfDir,
    dirs: PluginDirs,
    cache: Cache,
    loopback: Arc<NetworkList>,
}

impl Cni {
    /// Sets up the manager: creates the cache dir. A missing or broken network config is
    /// not an error here; [`Cni::status`] reports it until it is fixed.
    pub fn new(config: CniConfig) -> Result<Cni> {
        let loopback = NetworkList::from_list_value(loopback_config())
            .map(Arc::new)
            .map_err(|message| Error::NotReady {
                reason: REASON_INVALID_CONFIG.into(),
                message,
            })?;
        Ok(Cni {
            conf: ConfDir::new(config.conf_dir),
            dirs: PluginDirs::new(config.bin_dirs),
            cache: Cache::open(config.cache_dir)?,
            loopback,
        })
    }

    /// Whether pods can be networked now, and if not, why. Reads the config dir each time.
    pub fn status(&self) -> NetworkStatus {
        match self.default_network() {
            Ok(_) => NetworkStatus {
                ready: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(e) => NetworkStatus {
                ready: false,
                reason: e.reason.into(),
                message: e.message,
            },
        }
    }

    /// Attaches the pod to the loopback and the default network (concurrently). On any
    /// failure every attachment made is detached again before the error is returned.
    pub async fn setup(&self, pod: &PodNetwork) -> Result<NetworkResult> {
        let started = Instant::now();
        check_pod_names(pod)?;
        let netns = match netns::probe(&pod.netns_path) {
            NetnsState::Alive => pod.netns_path.to_string_lossy().into_owned(),
            NetnsState::Gone(reason) => {
                return Err(Error::Netns {
                    path: pod.netns_path.clone(),
                    reason,
                });
            }
        };
        let network = self.default_network().map_err(not_ready)?;
        let request = Request {
            pod,
            netns: &netns,
            cni_args: pod.cni_args(),
            caps: pod.capability_args(),
        };
        let (lo, main) = tokio::join!(
            self.attach(&self.loopback, LOOPBACK_IFNAME, &request),
            self.attach(&network, &pod.ifname, &request),
        );
        let outcome = match (lo, main) {
            (Ok(lo), Ok(main)) => self.read_result(&network, pod, lo, main).await,
            (Ok(done), Err(e)) | (Err(e), Ok(done)) => {
                self.undo(&done, &netns).await;
                Err(e)
            }
            // The pod network's own error says more than loopback's.
            (Err(_), Err(e)) => Err(e),
        };
        if let Ok(result) = &outcome {
            tracing::info!(sandbox = %pod.id, network = %network.name, ip = ?result.primary_ip(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "pod network set up");
        }
        outcome
    }

    /// Detaches every network attached to sandbox `pod.id`, using the cached config and
    /// arguments of its ADD. Only `pod.id` and `pod.netns_path` are read. Idempotent: with
    /// nothing cached it does nothing. A namespace that is gone (missing, or an unmounted pin)
    /// is fine: plugins then release what lives outside it (IPs, iptables rules).
    pub async fn teardown(&self, pod: &PodNetwork) -> Result<()> {
        check_name("container id", &pod.id)?;
        let entries = self.cache.list(&pod.id)?;
        let mut first_error = None;
        for entry in &entries {
            let netns = teardown_netns(pod, entry);
            if let Err(e) = self.detach(entry, &netns).await {
                first_error.get_or_insert(e);
            }
        }
        if !entries.is_empty() && first_error.is_none() {
            tracing::info!(sandbox = %pod.id, "pod network torn down");
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs CHECK for each network attached to the sandbox, with its cached ADD result.
    /// Networks whose `cniVersion` predates CHECK (< 0.4.0) or that set `disableCheck` are
    /// skipped, as the spec says.
    pub async fn check(&self, pod: &PodNetwork) -> Result<()> {
        check_name("container id", &pod.id)?;
        if let NetnsState::Gone(reason) = netns::probe(&pod.netns_path) {
            return Err(Error::Netns {
                path: pod.netns_path.clone(),
                reason,
            });
        }
        let netns = pod.netns_path.to_string_lossy();
        let entries = self.cache.list(&pod.id)?;
        if entries.is_empty() {
            return Err(Error::NotSetUp(pod.id.clone()));
        }
        for entry in &entries {
            let list = cached_list(&self.cache, entry)?;
            if !list.version.has_check() || list.disable_check {
                continue;
            }
            let Some(result) = &entry.result else {
                return Err(Error::NotSetUp(pod.id.clone()));
            };
            let args = pod::join_cni_args(&entry.cni_args);
            let att = attachment(entry, &netns, &args);
            ops::check(&self.dirs, &list, &att, result).await?;
        }
        Ok(())
    }

    /// The default network, once its config parses and every plugin it (and loopback)
    /// needs is installed.
    fn default_network(&self) -> Result<Arc<NetworkList>, NotReady> {
        let list = self.conf.current()?;
        for needed in [&self.loopback, &list]
            .into_iter()
            .flat_map(|l| l.plugins.iter())
            .flat_map(|p| std::iter::once(p.kind.as_str()).chain(p.ipam_kind()))
        {
            if let Err(e) = self.dirs.find(needed) {
                return Err(NotReady {
                    reason: confdir::REASON_PLUGIN_NOT_FOUND,
                    message: e.to_string(),
                });
            }
        }
        Ok(list)
    }

    /// ADDs one network, cached before and after. A failed ADD is detached at once.
    async fn attach(&self, list: &NetworkList, ifname: &str, req: &Request<'_>) -> Result<Entry> {
        let mut entry = Entry::new(
            &req.pod.id,
            &list.name,
            ifname,
            req.netns,
            list.source.clone(),
            req.cni_args.clone(),
            req.caps.clone(),
        );
        self.cache.write(&entry)?;
        let args = pod::join_cni_args(&req.cni_args);
        let added = ops::add(&self.dirs, list, &attachment(&entry, req.netns, &args)).await;
        let written = added.and_then(|result| {
            entry.result = Some(result);
            self.cache.write(&entry)
        });
        match written {
            Ok(()) => Ok(entry),
            Err(e) => {
                self.undo(&entry, req.netns).await;
                Err(e)
            }
        }
    }

    /// Detaches after a failed setup; its own failure is logged, and the entry stays cached
    /// so teardown tries again.
    async fn undo(&self, entry: &Entry, netns: &str) {
        if let Err(e) = self.detach(entry, netns).await {
            tracing::warn!(sandbox = %entry.container_id, network = %entry.network, error = %e,
                "could not undo a failed pod network setup; teardown will retry");
        }
    }

    /// DELs one cached attachment and drops it from the cache. If DEL with the cached config
    /// fails and the configured network of the same name has changed since, that one is
    /// tried too: it may be the admin's fix for what made the cached one fail.
    async fn detach(&self, entry: &Entry, netns: &str) -> Result<()> {
        let args = pod::join_cni_args(&entry.cni_args);
        let att = attachment(entry, netns, &args);
        let first = match cached_list(&self.cache, entry) {
            Ok(list) => ops::del(&self.dirs, &list, &att, entry.result.as_ref()).await,
            Err(e) => Err(e),
        };
        let Err(err) = first else {
            return self.cache.remove(entry);
        };
        let current = self
            .conf
            .current()
            .ok()
            .filter(|current| current.name == entry.network && current.source != entry.config);
        if let Some(current) = current {
            if ops::del(&self.dirs, &current, &att, entry.result.as_ref())
                .await
                .is_ok()
            {
                tracing::info!(sandbox = %entry.container_id, network = %entry.network,
                    "DEL with the cached config failed, with the current config it succeeded");
                return self.cache.remove(entry);
            }
        }
        Err(err)
    }

    /// Reads the default network's result; a result we cannot read undoes the setup.
    async fn read_result(
        &self,
        network: &NetworkList,
        pod: &PodNetwork,
        lo: Entry,
        main: Entry,
    ) -> Result<NetworkResult> {
        let raw = main.result.clone().unwrap_or(Value::Null);
        match NetworkResult::from_raw(raw, &pod.ifname) {
            Ok(result) => Ok(result),
            Err(reason) => {
                for entry in [&main, &lo] {
                    self.undo(entry, &entry.netns).await;
                }
                Err(Error::BadResult {
                    network: network.name.clone(),
                    plugin: network
                        .plugins
                        .last()
                        .map(|p| p.kind.clone())
                        .unwrap_or_default(),
                    reason,
                })
            }
        }
    }
}

/// What every network of one setup call shares.
struct Request<'a> {
    pod: &'a PodNetwork,
    netns: &'a str,
    cni_args: Vec<(String, String)>,
    caps: Map<String, Value>,
}

fn loopback_config() -> Value {
    serde_json::from_str(LOOPBACK_NETWORK).unwrap_or(Value::Null)
}

fn not_ready(e: NotReady) -> Error {
    Error::NotReady {
        reason: e.reason.into(),
        message: e.message,
    }
}

fn check_pod_names(pod: &PodNetwork) -> Result<()> {
    check_name("container id", &pod.id)?;
    check_name("interface name", &pod.ifname)?;
    if pod.ifname.len() > IFNAME_MAX || pod.ifname == LOOPBACK_IFNAME {
        return Err(Error::InvalidName {
            what: "interface name",
            value: pod.ifname.clone(),
            reason: "must be at most 15 bytes and not \"lo\"",
        });
    }
    Ok(())
}

/// The netns for DEL: the given path if it is still a namespace, else the one ADD used if
/// that still is, else none.
fn teardown_netns(pod: &PodNetwork, entry: &Entry) -> String {
    let candidates = [pod.netns_path.clone(), PathBuf::from(&entry.netns)];
    for path in candidates.iter().filter(|p| !p.as_os_str().is_empty()) {
        match netns::probe(path) {
            NetnsState::Alive => return path.to_string_lossy().into_owned(),
            NetnsState::Gone(reason) => {
                tracing::debug!(path = %path.display(), %reason, "netns gone; DEL without it")
            }
        }
    }
    String::new()
}

fn attachment<'a>(entry: &'a Entry, netns: &'a str, cni_args: &'a str) -> Attachment<'a> {
    Attachment {
        container_id: &entry.container_id,
        netns,
        ifname: &entry.ifname,
        cni_args,
        capability_args: &entry.capability_args,
    }
}

fn cached_list(cache: &Cache, entry: &Entry) -> Result<NetworkList> {
    NetworkList::from_list_value(entry.config.clone()).map_err(|reason| Error::CacheCorrupt {
        path: cache.entry_path(entry),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    /// The daemon shares one `Cni` between tasks and may spawn its futures.
    #[test]
    fn cni_and_its_futures_can_cross_threads() {
        assert_send_sync::<Cni>();
        let dir = tempfile::tempdir().unwrap();
        let cni = Cni::new(CniConfig {
            conf_dir: dir.path().join("net.d"),
            bin_dirs: vec![],
            cache_dir: dir.path().join("cache"),
        })
        .unwrap();
        let pod = PodNetwork::default();
        assert_send(&cni.setup(&pod));
        assert_send(&cni.teardown(&pod));
        assert_send(&cni.check(&pod));
    }
}
