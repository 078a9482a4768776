//! The spec directories as they are now: which file defines which device, which files were
//! refused, read again whenever a file in them changed.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use container_device_interface::container_edits::ContainerEdits;
use container_device_interface::device::Device;
use container_device_interface::spec::{Spec, read_spec};
use oci_spec::runtime::Spec as OciSpec;

use crate::CdiError;

/// The CDI specification's directories: static specs, then generated ones (which win).
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// The CDI devices the spec directories define. Cheap to ask: a lookup first compares the
/// directories' listings (names, sizes, change times) with the last read, and reads the files
/// again only when something changed.
#[derive(Debug)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    loaded: Mutex<Loaded>,
}

/// One read of the directories.
#[derive(Debug, Default)]
struct Loaded {
    /// What the directories held when read; `None` before the first read.
    fingerprint: Option<Vec<FileStamp>>,
    devices: BTreeMap<String, Defined>,
    /// Names two files of the same directory define, with both files and that directory's
    /// priority.
    conflicts: BTreeMap<String, (PathBuf, PathBuf, usize)>,
    /// Files that did not parse or validate, and why.
    refused: Vec<(PathBuf, String)>,
}

/// A device and the spec (file) that defines it.
#[derive(Debug, Clone)]
struct Defined {
    device: Device,
    spec: Spec,
    file: PathBuf,
    priority: usize,
}

/// A spec file as listed: enough to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    size: u64,
    ctime_ns: i128,
    mtime_ns: i128,
    ino: u64,
}

impl Registry {
    /// A registry over `dirs`, lowest priority first. Nothing is read until a device is asked for.
    pub fn new(dirs: Vec<PathBuf>) -> Registry {
        Registry {
            dirs,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// The spec directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Every device the directories define now, by qualified name.
    pub fn devices(&self) -> Vec<String> {
        self.with_current(|l| l.devices.keys().cloned().collect())
    }

    /// The spec files refused at the last read, and why.
    pub fn refused(&self) -> Vec<(PathBuf, String)> {
        self.with_current(|l| l.refused.clone())
    }

    /// Edits `spec` with what the devices' spec files say: each device's own edits, and once per
    /// spec file its spec-wide ones. All devices are resolved before `spec` is touched; on an
    /// error nothing is applied. Blocking (reads files).
    pub fn inject(&self, spec: &mut OciSpec, devices: &[String]) -> Result<(), CdiError> {
        if devices.is_empty() {
            return Ok(());
        }
        let found = self.with_current(|l| {
            devices
                .iter()
                .map(|name| l.resolve(name, &self.dirs))
                .collect::<Result<Vec<Defined>, CdiError>>()
        })?;
        let mut edits = ContainerEdits::new();
        let mut specs_seen = HashSet::new();
        for (name, defined) in devices.iter().zip(&found) {
            let failed = |e: String| CdiError::Edits {
                device: name.clone(),
                file: defined.file.clone(),
                reason: e,
            };
            if specs_seen.insert(defined.file.clone()) {
                if let Some(spec_edits) = defined.spec.clone().edits() {
                    edits
                        .append(spec_edits)
                        .map_err(|e| failed(format!("{e:#}")))?;
                }
            }
            edits
                .append(defined.device.edits())
                .map_err(|e| failed(format!("{e:#}")))?;
        }
        let mut edited = spec.clone();
        edits.apply(&mut edited).map_err(|e| CdiError::Edits {
            device: devices.join(","),
            file: found.first().map(|d| d.file.clone()).unwrap_or_default(),
            reason: format!("{e:#}"),
        })?;
        *spec = edited;
        tracing::debug!(?devices, "CDI devices injected");
        Ok(())
    }

    /// Runs `f` on the directories' current contents, reading them again if they changed.
    fn with_current<T>(&self, f: impl FnOnce(&Loaded) -> T) -> T {
        let stamps = stamps(&self.dirs);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.fingerprint.as_ref() != Some(&stamps) {
            *loaded = load(&self.dirs, stamps);
        }
        f(&loaded)
    }
}

impl Loaded {
    fn resolve(&self, name: &str, dirs: &[PathBuf]) -> Result<Defined, CdiError> {
        if !is_qualified(name) {
            return Err(CdiError::BadName {
                device: name.to_string(),
            });
        }
        if let Some((first, second, _)) = self.conflicts.get(name) {
            return Err(CdiError::Ambiguous {
                device: name.to_string(),
                first: first.clone(),
                second: second.clone(),
            });
        }
        self.devices
            .get(name)
            .cloned()
            .ok_or_else(|| CdiError::Unknown {
                device: name.to_string(),
                dirs: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                refused: self.refused.clone(),
            })
    }
}

/// `vendor.com/class=name`: a vendor with a dot-free or dotted name, a class and a device name,
/// all non-empty (the spec's own checks run on the files; this is the request's side).
fn is_qualified(name: &str) -> bool {
    let Some((kind, device)) = name.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    ok(vendor, &['.', '-', '_']) && ok(class, &['.', '-', '_']) && ok(device, &['.', '-', '_', ':'])
}

/// The spec files of `dirs`, in priority order, each directory's sorted by name.
fn stamps(dirs: &[PathBuf]) -> Vec<FileStamp> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<FileStamp> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_spec_file(p))
            .filter_map(|path| {
                let m = fs::metadata(&path).ok()?;
                m.is_file().then(|| FileStamp {
                    size: m.len(),
                    ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
                    mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                    ino: m.ino(),
                    path,
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        out.extend(files);
    }
    out
}

/// `.json` and `.yaml` files, as the specification says.
fn is_spec_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml")
    )
}

/// Reads every spec file; a file that does not parse is recorded and skipped, so one vendor's
/// broken file costs only its own devices.
fn load(dirs: &[PathBuf], stamps: Vec<FileStamp>) -> Loaded {
    let mut loaded = Loaded::default();
    for stamp in &stamps {
        let priority = dirs
            .iter()
            .position(|d| stamp.path.parent() == Some(d.as_path()))
            .unwrap_or(0);
        match read_spec(&stamp.path, priority as i32) {
            Ok(spec) => loaded.add(spec, &stamp.path, priority),
            Err(e) => {
                let why = format!("{e:#}");
                tracing::warn!(file = %stamp.path.display(), error = %why, "CDI spec refused");
                loaded.refused.push((stamp.path.clone(), why));
            }
        }
    }
    tracing::info!(
        devices = loaded.devices.len(),
        refused = loaded.refused.len(),
        "CDI specs read"
    );
    loaded.fingerprint = Some(stamps);
    loaded
}

impl Loaded {
    /// Records `spec`'s devices. Files come in priority order; a device of a later directory
    /// replaces one of an earlier directory, two of the same directory are a conflict.
    fn add(&mut self, spec: Spec, file: &Path, priority: usize) {
        for device in spec.get_devices().into_values() {
            let name = device.get_qualified_name();
            if let Some(&(_, _, at)) = self.conflicts.get(&name) {
                if priority <= at {
                    continue;
                }
                self.conflicts.remove(&name);
            }
            if let Some(old) = self.devices.get(&name) {
                if priority < old.priority {
                    continue;
                }
                if priority == old.priority {
                    let first = old.file.clone();
                    self.devices.remove(&name);
                    self.conflicts
                        .insert(name, (first, file.to_path_buf(), priority));
                    continue;
                }
            }
            let defined = Defined {
                device,
                spec: spec.clone(),
                file: file.to_path_buf(),
                priority,
            };
            self.devices.insert(name, defined);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json(kind: &str, device: &str, env: &str) -> String {
        format!(
            r#"{{"cdiVersion": "0.6.0", "kind": "{kind}",
                "devices": [{{"name": "{device}", "containerEdits": {{"env": ["{env}"]}}}}],
                "containerEdits": {{"env": ["SPEC_WIDE=1"]}}}}"#
        )
    }

    fn env_of(spec: &OciSpec) -> Vec<String> {
        spec.process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
    }

    fn two_dirs() -> (tempfile::TempDir, Registry) {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().join("etc"), root.path().join("run")];
        for d in &dirs {
            fs::create_dir(d).unwrap();
        }
        (root, Registry::new(dirs))
    }

    #[test]
    fn a_device_brings_its_edits_and_its_specs() {
        let (root, reg) = two_dirs();
        let yaml = "cdiVersion: \"0.5.0\"\nkind: vendor.example/dev\ndevices:\n  - name: two\n    containerEdits:\n      env: [\"TWO=2\"]\n";
        fs::write(
            root.path().join("etc/one.json"),
            spec_json("vendor.example/dev", "one", "ONE=1"),
        )
        .unwrap();
        fs::write(root.path().join("etc/two.yaml"), yaml).unwrap();
        assert_eq!(
            reg.devices(),
            ["vendor.example/dev=one", "vendor.example/dev=two"]
        );
        let mut spec = OciSpec::default();
        let names = [
            "vendor.example/dev=one".to_string(),
            "vendor.example/dev=two".to_string(),
        ];
        reg.inject(&mut spec, &names).unwrap();
        let env = env_of(&spec);
        for want in ["ONE=1", "TWO=2", "SPEC_WIDE=1"] {
            assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
        }
    }

    #[test]
    fn later_directories_win_and_same_directory_is_ambiguous() {
        let (root, reg) = two_dirs();
        fs::write(
            root.path().join("etc/a.json"),
            spec_json("v.example/c", "d", "FROM=etc"),
        )
        .unwrap();
        fs::write(
            root.path().join("run/a.json"),
            spec_json("v.example/c", "d", "FROM=run"),
        )
        .unwrap();
        let mut spec = OciSpec::default();
        reg.inject(&mut spec, &["v.example/c=d".to_string()])
            .unwrap();
        assert!(
            env_of(&spec).contains(&"FROM=run".to_string()),
            "{:?}",
            env_of(&spec)
        );

        fs::write(
            root.path().join("run/b.json"),
            spec_json("v.example/c", "d", "FROM=run2"),
        )
        .unwrap();
        let err = reg
            .inject(&mut OciSpec::default(), &["v.example/c=d".to_string()])
            .unwrap_err();
        assert!(matches!(err, CdiError::Ambiguous { .. }), "{err}");
        assert!(err.to_string().contains("b.json"), "{err}");
    }

    #[test]
    fn a_broken_file_costs_only_itself_and_is_named() {
        let (root, reg) = two_dirs();
        fs::write(
            root.path().join("etc/good.json"),
            spec_json("v.example/c", "ok", "OK=1"),
        )
        .unwrap();
        fs::write(root.path().join("etc/bad.json"), "{not json").unwrap();
        assert_eq!(reg.devices(), ["v.example/c=ok"]);
        let err = reg
            .inject(&mut OciSpec::default(), &["v.example/c=gone".to_string()])
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CdiError::Unknown { .. }), "{text}");
        assert!(
            text.contains("v.example/c=gone") && text.contains("bad.json"),
            "{text}"
        );
        // Nothing is applied when one of several devices is unknown.
        let mut spec = OciSpec::default();
        let before = env_of(&spec);
        let names = ["v.example/c=ok".to_string(), "v.example/c=gone".to_string()];
        assert!(reg.inject(&mut spec, &names).is_err());
        assert_eq!(env_of(&spec), before);
        let err = reg
            .inject(&mut spec, &["not-qualified".to_string()])
            .unwrap_err();
        assert!(matches!(err, CdiError::BadName { .. }), "{err}");
    }

    #[test]
    fn files_are_read_again_when_they_change() {
        let (root, reg) = two_dirs();
        assert!(reg.devices().is_empty());
        let file = root.path().join("run/x.json");
        fs::write(&file, spec_json("v.example/c", "first", "N=1")).unwrap();
        assert_eq!(reg.devices(), ["v.example/c=first"]);
        fs::write(&file, spec_json("v.example/c", "second", "N=2")).unwrap();
        assert_eq!(reg.devices(), ["v.example/c=second"]);
        fs::remove_file(&file).unwrap();
        assert!(reg.devices().is_empty());
    }
}
