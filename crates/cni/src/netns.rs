//! Is a path a live network namespace?
//!
//! A pinned namespace is a bind mount of an nsfs file; once unmounted, the path is left as an
//! empty regular file. Handing such a path to a plugin makes its DEL fail ("not a network
//! namespace") instead of cleaning up, so DEL gets an empty `CNI_NETNS` for it, which the
//! spec allows and which makes plugins release what lives outside the namespace.

use std::path::Path;

use nix::sys::statfs::{NSFS_MAGIC, PROC_SUPER_MAGIC, statfs};

/// What a netns path holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsState {
    /// A namespace file (nsfs, or `/proc/<pid>/ns/net` on old kernels).
    Alive,
    /// Nothing, or not a namespace: why.
    Gone(String),
}

/// Looks at `path` without entering it.
pub fn probe(path: &Path) -> NetnsState {
    if path.as_os_str().is_empty() {
        return NetnsState::Gone("no path given".into());
    }
    match statfs(path) {
        Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => NetnsState::Alive,
        Ok(fs) if fs.filesystem_type() == PROC_SUPER_MAGIC => NetnsState::Alive,
        Ok(fs) => NetnsState::Gone(format!(
            "not on nsfs (filesystem magic {:#x}): nothing is mounted there",
            fs.filesystem_type().0
        )),
        Err(e) => NetnsState::Gone(e.desc().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_namespaces_from_other_paths() {
        assert_eq!(probe(Path::new("/proc/self/ns/net")), NetnsState::Alive);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("net");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(probe(&file), NetnsState::Gone(_)));
        assert!(matches!(
            probe(&dir.path().join("missing")),
            NetnsState::Gone(_)
        ));
        assert!(matches!(probe(Path::new("")), NetnsState::Gone(_)));
    }
}
