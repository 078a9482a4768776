//! The configuration directory: which file is the pod network, and whether it parses.
//!
//! The network is the lexically first `.conflist`, `.conf` or `.json` file, as in containerd
//! and kubelet's old dockershim. We do not keep a watcher thread: every [`ConfDir::current`]
//! lists the directory and reads that one file (a few microseconds; kubelet asks for the
//! status every few seconds, and each pod start asks once), and parses it again only when its
//! path or bytes changed. So a file that appears, breaks or is fixed takes effect on the next
//! call, with no restart and no missed or coalesced inotify event to reason about.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::netconf::NetworkList;

/// File name extensions that hold network configurations.
const CONFIG_EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

/// Reason code when the directory holds no configuration.
pub const REASON_NO_CONFIG: &str = "NoNetworkConfig";
/// Reason code when the chosen configuration does not parse or validate.
pub const REASON_INVALID_CONFIG: &str = "InvalidNetworkConfig";
/// Reason code when a plugin the configuration names is not installed.
pub const REASON_PLUGIN_NOT_FOUND: &str = "PluginNotFound";

/// Why there is no usable network right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// A CamelCase code (`NoNetworkConfig`, `InvalidNetworkConfig`, `PluginNotFound`).
    pub reason: &'static str,
    /// The details: the directory, the file and its parse error, the missing plugin.
    pub message: String,
}

/// The last file read and what it parsed to, so an unchanged file is not parsed again.
struct Loaded {
    path: PathBuf,
    bytes: Vec<u8>,
    outcome: Result<Arc<NetworkList>, NotReady>,
}

/// Finds and parses the default network configuration on demand.
pub struct ConfDir {
    dir: PathBuf,
    last: Mutex<Option<Loaded>>,
}

impl ConfDir {
    /// Watches `dir`, which need not exist yet.
    pub fn new(dir: PathBuf) -> Self {
        ConfDir {
            dir,
            last: Mutex::new(None),
        }
    }

    /// The network configured right now, or why there is none.
    pub fn current(&self) -> Result<Arc<NetworkList>, NotReady> {
        let path = self.first_file()?;
        let bytes = fs::read(&path).map_err(|e| NotReady {
            reason: REASON_NO_CONFIG,
            message: format!("cannot read network config {}: {e}", path.display()),
        })?;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(loaded) = last.as_ref() {
            if loaded.path == path && loaded.bytes == bytes {
                return loaded.outcome.clone();
            }
        }
        let outcome = NetworkList::from_file(&path, &bytes)
            .map(Arc::new)
            .map_err(|e| NotReady {
                reason: REASON_INVALID_CONFIG,
                message: format!("invalid network config {}: {e}", path.display()),
            });
        match &outcome {
            Ok(list) => tracing::info!(path = %path.display(), network = %list.name,
                version = %list.version_str, "loaded CNI network config"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e.message,
                "CNI network config is invalid"),
        }
        *last = Some(Loaded {
            path,
            bytes,
            outcome: outcome.clone(),
        });
        outcome
    }

    /// The lexically first regular file (or link to one) with a config extension.
    fn first_file(&self) -> Result<PathBuf, NotReady> {
        let entries = fs::read_dir(&self.dir).map_err(|e| self.no_config(Some(e)))?;
        let mut names: Vec<OsString> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name())
            .filter(|name| has_config_extension(Path::new(name)))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| self.dir.join(name))
            .find(|path| fs::metadata(path).is_ok_and(|m| m.is_file()))
            .ok_or_else(|| self.no_config(None))
    }

    fn no_config(&self, err: Option<io::Error>) -> NotReady {
        let message = match err {
            Some(e) => format!("cannot list network config dir {}: {e}", self.dir.display()),
            None => format!(
                "no network config (*.conflist, *.conf, *.json) found in {}",
                self.dir.display()
            ),
        };
        NotReady {
            reason: REASON_NO_CONFIG,
            message,
        }
    }
}

fn has_config_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CONFIG_EXTENSIONS.contains(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"}]}"#;

    #[test]
    fn picks_the_lexically_first_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ConfDir::new(dir.path().to_path_buf());
        assert_eq!(conf.current().unwrap_err().reason, REASON_NO_CONFIG);

        fs::write(dir.path().join("README"), "not a config").unwrap();
        fs::create_dir(dir.path().join("00-dir.conf")).unwrap();
        fs::write(
            dir.path().join("20-b.conflist"),
            GOOD.replace("\"a\"", "\"b\""),
        )
        .unwrap();
        assert_eq!(conf.current().unwrap().name, "b");
        fs::write(dir.path().join("10-a.conflist"), GOOD).unwrap();
        assert_eq!(conf.current().unwrap().name, "a");
    }

    #[test]
    fn a_broken_file_reports_its_parse_error_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ConfDir::new(dir.path().join("net.d"));
        let err = conf.current().unwrap_err();
        assert!(err.message.contains("net.d"), "{err:?}");

        fs::create_dir(dir.path().join("net.d")).unwrap();
        let file = dir.path().join("net.d/10-a.conflist");
        fs::write(&file, "{\"cniVersion\": \"1.0.0\", \"name\": ").unwrap();
        let err = conf.current().unwrap_err();
        assert_eq!(err.reason, REASON_INVALID_CONFIG);
        assert!(
            err.message.contains("10-a.conflist") && err.message.contains("EOF"),
            "{err:?}"
        );

        fs::write(&file, GOOD).unwrap();
        assert_eq!(conf.current().unwrap().name, "a");
    }
}
