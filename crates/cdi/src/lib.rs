//! CDI (Container Device Interface) devices: kubelet's device plugins and DRA drivers name
//! devices as `vendor.com/class=name` (`ContainerConfig.CDI_devices`, or `cdi.k8s.io/*`
//! annotations); vendors describe them in spec files; the runtime edits the container's OCI spec
//! with what the files say (device nodes, mounts, environment, hooks, extra groups, Intel RDT).
//!
//! [`Registry`] reads the spec directories (`/etc/cdi`, then `/var/run/cdi`: a device in a later
//! directory replaces one of the same name in an earlier one), keeps what each file defines and
//! why a file was refused, and reads them again when a file changed. The spec format and the
//! edits themselves are the `container-device-interface` crate's.

mod registry;

pub use registry::{DEFAULT_SPEC_DIRS, Registry};

use std::path::PathBuf;

use longshore_error::{Classify, Kind};

/// The annotation prefix kubelet (and the older device plugins) use to ask for CDI devices: the
/// value is a comma-separated list of device names.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// Why devices could not be given to a container. Every variant names the device.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    /// The name is not `vendor.com/class=name`.
    #[error("CDI device {device:?}: not a qualified device name (vendor.com/class=name)")]
    BadName {
        /// The name as asked for.
        device: String,
    },
    /// No spec file defines the device.
    #[error(
        "CDI device {device:?}: no spec in {dirs} defines it{}",
        refused_files(refused)
    )]
    Unknown {
        /// The name as asked for.
        device: String,
        /// The spec directories, joined for the message.
        dirs: String,
        /// Spec files that were refused, and why: one of them may have meant to define it.
        refused: Vec<(PathBuf, String)>,
    },
    /// Two spec files of the same directory define it.
    #[error("CDI device {device:?}: defined by both {} and {}", first.display(), second.display())]
    Ambiguous {
        /// The name as asked for.
        device: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// The device's edits do not fit together or do not apply.
    #[error("CDI device {device:?} from {}: {reason}", file.display())]
    Edits {
        /// The device.
        device: String,
        /// Its spec file.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn refused_files(refused: &[(PathBuf, String)]) -> String {
    if refused.is_empty() {
        return String::new();
    }
    let list: Vec<String> = refused
        .iter()
        .map(|(file, why)| format!("{}: {why}", file.display()))
        .collect();
    format!(" (spec files refused: {})", list.join("; "))
}

impl Classify for CdiError {
    fn kind(&self) -> Kind {
        // Every one is the request's or its node's spec files' to fix, never a passing failure.
        Kind::InvalidArgument
    }
}

/// The devices a container asks for: `CDI_devices` first, then the `cdi.k8s.io/*`
/// annotations' lists (sorted by key, as containerd reads them), each name once.
pub fn requested<'a>(
    cdi_devices: impl IntoIterator<Item = &'a str>,
    annotations: &std::collections::HashMap<String, String>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    for name in cdi_devices {
        add(name);
    }
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    for key in keys {
        for name in annotations[key].split(',') {
            add(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn fields_then_annotations_each_name_once() {
        let annotations = HashMap::from([
            (
                "cdi.k8s.io/b".to_string(),
                "v.com/c=2, v.com/c=1".to_string(),
            ),
            ("cdi.k8s.io/a".to_string(), "v.com/c=3".to_string()),
            ("other/key".to_string(), "v.com/c=9".to_string()),
        ]);
        let got = requested(["v.com/c=1", ""], &annotations);
        assert_eq!(got, ["v.com/c=1", "v.com/c=3", "v.com/c=2"]);
    }
}
