//! The on-disk record of each attachment: the config, arguments and result of an ADD, kept
//! until its DEL succeeds, so DEL runs with what ADD ran with after a daemon restart or a
//! config change (libcni keeps the same in `/var/lib/cni/results`).
//!
//! Layout: `<cache_dir>/<container id>/<network>-<ifname>.json`. An entry is written before
//! the first plugin runs (without a result) and again with the result after the last one,
//! so even an ADD cut short by a crash leaves enough behind for DEL.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Marks the file format, so a future format can tell old files apart.
const ENTRY_KIND: &str = "longshore-cni-cache-v1";
const ENTRY_SUFFIX: &str = ".json";
const TMP_SUFFIX: &str = ".tmp";

/// One attachment of one network to one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Always [`ENTRY_KIND`].
    pub kind: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// The network name.
    pub network: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_NETNS` used for ADD; DEL falls back to it when not given one.
    pub netns: String,
    /// The network config list used for ADD (list form).
    pub config: Value,
    /// `CNI_ARGS` pairs used for ADD.
    pub cni_args: Vec<(String, String)>,
    /// Capability arguments used for ADD.
    pub capability_args: Map<String, Value>,
    /// The chain's final result; `None` while ADD runs or after it failed.
    pub result: Option<Value>,
}

impl Entry {
    /// A new entry without a result.
    pub fn new(
        container_id: &str,
        network: &str,
        ifname: &str,
        netns: &str,
        config: Value,
        cni_args: Vec<(String, String)>,
        capability_args: Map<String, Value>,
    ) -> Self {
        Entry {
            kind: ENTRY_KIND.into(),
            container_id: container_id.into(),
            network: network.into(),
            ifname: ifname.into(),
            netns: netns.into(),
            config,
            cni_args,
            capability_args,
            result: None,
        }
    }
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Uses (and creates) `dir`.
    pub fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|source| Error::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(Cache { dir })
    }

    fn container_dir(&self, container_id: &str) -> PathBuf {
        self.dir.join(container_id)
    }

    /// The file holding `entry`.
    pub fn entry_path(&self, entry: &Entry) -> PathBuf {
        self.container_dir(&entry.container_id)
            .join(format!("{}-{}{ENTRY_SUFFIX}", entry.network, entry.ifname))
    }

    /// Writes `entry` atomically (temp file, then rename).
    pub fn write(&self, entry: &Entry) -> Result<()> {
        let dir = self.container_dir(&entry.container_id);
        fs::create_dir_all(&dir).map_err(|source| Error::Cache {
            path: dir.clone(),
            source,
        })?;
        let path = self.entry_path(entry);
        let mut tmp = path.clone().into_os_string();
        tmp.push(TMP_SUFFIX);
        let tmp = PathBuf::from(tmp);
        let bytes = serde_json::to_vec(entry).map_err(|e| Error::CacheCorrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        fs::write(&tmp, bytes).map_err(|source| Error::Cache {
            path: tmp.clone(),
            source,
        })?;
        fs::rename(&tmp, &path).map_err(|source| Error::Cache { path, source })
    }

    /// Removes `entry`, and the container's directory once it is empty. Missing is fine.
    pub fn remove(&self, entry: &Entry) -> Result<()> {
        let path = self.entry_path(entry);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Cache { path, source }),
        }
        // Fails while other entries remain, which is what we want.
        let _ = fs::remove_dir(self.container_dir(&entry.container_id));
        Ok(())
    }

    /// The container's entries, in file name order. None is not an error.
    pub fn list(&self, container_id: &str) -> Result<Vec<Entry>> {
        let dir = self.container_dir(container_id);
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Cache { path: dir, source }),
        };
        let mut paths: Vec<PathBuf> = read
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(ENTRY_SUFFIX))
            .collect();
        paths.sort();
        paths.iter().map(|p| read_entry(p)).collect()
    }
}

fn read_entry(path: &Path) -> Result<Entry> {
    let bytes = fs::read(path).map_err(|source| Error::Cache {
        path: path.into(),
        source,
    })?;
    let corrupt = |reason: String| Error::CacheCorrupt {
        path: path.into(),
        reason,
    };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if entry.kind != ENTRY_KIND {
        return Err(corrupt(format!("unknown kind {:?}", entry.kind)));
    }
    Ok(entry)
}

/// Ids and interface names name files here: keep them to one harmless path component.
pub fn check_name(what: &'static str, value: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        what,
        value: value.into(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.starts_with('.') {
        return Err(invalid("it starts with '.'"));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(invalid(
            "only letters, digits, '_', '.' and '-' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(network: &str, ifname: &str) -> Entry {
        Entry::new(
            "c1",
            network,
            ifname,
            "/run/netns/p",
            json!({"name": network}),
            vec![("IgnoreUnknown".into(), "1".into())],
            Map::new(),
        )
    }

    #[test]
    fn writes_lists_and_removes_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        assert!(cache.list("c1").unwrap().is_empty());

        let mut a = entry("net", "eth0");
        cache.write(&a).unwrap();
        a.result = Some(json!({"ips": []}));
        cache.write(&a).unwrap();
        let lo = entry("cni-loopback", "lo");
        cache.write(&lo).unwrap();
        assert_eq!(cache.list("c1").unwrap(), vec![lo.clone(), a.clone()]);

        cache.remove(&a).unwrap();
        cache.remove(&a).unwrap();
        cache.remove(&lo).unwrap();
        assert!(cache.list("c1").unwrap().is_empty());
        assert!(
            !dir.path().join("cache/c1").exists(),
            "empty container dir removed"
        );
    }

    #[test]
    fn a_corrupt_entry_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().to_path_buf()).unwrap();
        fs::create_dir(dir.path().join("c1")).unwrap();
        fs::write(dir.path().join("c1/net-eth0.json"), "{").unwrap();
        let err = cache.list("c1").unwrap_err();
        assert!(matches!(err, Error::CacheCorrupt { .. }), "{err}");
    }

    #[test]
    fn names_are_single_path_components() {
        for ok in ["abc123", "eth0", "a-b_c.d"] {
            check_name("id", ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", ".hidden"] {
            assert!(check_name("id", bad).is_err(), "{bad:?}");
        }
    }
}
