//! kubelet's one cgroup chore the bench must do itself: after a pod is removed, remove the
//! `pod<uid>` cgroup it named as the pod's parent (runtimes remove only what they made inside it).
//! Only cgroups under the bench's own are ever touched.

use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";
const OWN_CGROUP: &str = "/proc/self/cgroup";

/// How often a busy (not yet empty) cgroup is retried: runtimes may still be reaping.
const RMDIR_TRIES: usize = 20;
const RMDIR_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Removes the pod cgroup `path` (a cgroupfs path such as `/kubepods/besteffort/pod<uid>`) from
/// every hierarchy, when it lies under this process's own cgroup. Missing is fine.
pub fn remove_pod_cgroup(path: &str) {
    let own = own_cgroup();
    if !is_strictly_under(path, &own) {
        return;
    }
    for mount in cgroup_mounts() {
        let dir = mount.join(path.trim_start_matches('/'));
        for _ in 0..RMDIR_TRIES {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(RMDIR_PAUSE),
            }
        }
    }
}

/// The deepest of this process's cgroup paths across hierarchies (on a hybrid host the memory
/// controller puts us deeper than the others; every hierarchy has room under that path).
pub fn own_cgroup() -> String {
    let text = std::fs::read_to_string(OWN_CGROUP).unwrap_or_default();
    deepest(&text)
}

fn deepest(proc_cgroup: &str) -> String {
    proc_cgroup
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap_or("/")
        .to_string()
}

fn is_strictly_under(path: &str, own: &str) -> bool {
    let own = own.trim_end_matches('/');
    path.strip_prefix(own)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

/// Mount points of every cgroup (v1) and cgroup2 hierarchy.
pub(crate) fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(MOUNTINFO).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let fstype = after.split_whitespace().next()?;
            let mount_point = before.split_whitespace().nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| Path::new(mount_point).to_path_buf())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepest_path_across_hierarchies() {
        assert_eq!(deepest("4:memory:/a/b\n1:cpu:/\n0::/\n"), "/a/b");
        assert_eq!(deepest("0::/\n"), "/");
    }

    #[test]
    fn only_strictly_below_our_own() {
        assert!(is_strictly_under("/a/b/kubepods/pod1", "/a/b"));
        assert!(!is_strictly_under("/a/b", "/a/b"));
        assert!(!is_strictly_under("/a/bc/pod1", "/a/b"));
        assert!(is_strictly_under("/kubepods/pod1", "/"));
    }

    #[test]
    fn finds_cgroup_mounts() {
        assert!(!cgroup_mounts().is_empty());
    }
}
