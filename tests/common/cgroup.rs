//! Test cgroups: everything lives under `P/longshore-e2e-<rand>`, where P is the deepest cgroup
//! that contains this test process in every controller (on a hybrid host the memory controller
//! puts us deeper than the others). That keeps the house rule: cgroups only under our own.

use std::path::{Path, PathBuf};

const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

fn mounts() -> Vec<PathBuf> {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if unified {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    let mut out: Vec<PathBuf> = V1_CONTROLLERS
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c))
        .filter(|p| p.exists())
        .collect();
    if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        out.push(PathBuf::from("/sys/fs/cgroup/unified"));
    }
    out
}

/// The deepest own cgroup path across controllers.
fn own_root() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut deepest = String::from("/");
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("/");
        if path.len() > deepest.len() {
            deepest = path.to_string();
        }
    }
    deepest
}

/// Makes a fresh test root in every hierarchy and returns its path.
pub fn make_test_root() -> String {
    let root = format!(
        "{}/longshore-e2e-{}",
        own_root().trim_end_matches('/'),
        super::rand_suffix()
    );
    for m in mounts() {
        let dir = m.join(root.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        if m.ends_with("cpuset") {
            // A new cpuset cgroup takes no tasks until cpus and mems are set (copy from parent).
            inherit_cpuset(&m, &dir);
        }
    }
    root
}

fn inherit_cpuset(mount: &Path, dir: &Path) {
    let mut chain = Vec::new();
    let mut d = dir.to_path_buf();
    while d != mount {
        chain.push(d.clone());
        if !d.pop() {
            break;
        }
    }
    for d in chain.into_iter().rev() {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let current = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            if current.trim().is_empty() {
                let parent =
                    std::fs::read_to_string(d.parent().unwrap().join(f)).unwrap_or_default();
                let _ = std::fs::write(d.join(f), parent.trim());
            }
        }
    }
}

/// Sub-cgroups left under the test root, in any hierarchy.
pub fn children(root: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in mounts() {
        let dir = m.join(root.trim_start_matches('/'));
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
            }
        }
    }
    out
}

/// Sub-cgroups directly under one cgroup directory.
pub fn children_of(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect()
}

/// The v1 `name=systemd` hierarchy, where runc (the runc handler's tests) also makes the
/// container's cgroup and its missing parents; runc removes only the container's own.
const NAMED_SYSTEMD: &str = "/sys/fs/cgroup/systemd";

/// Kills every process in the test root (they are all ours) and removes it bottom-up, also
/// from the `name=systemd` hierarchy when a test made it there.
pub fn kill_and_remove(root: &str) {
    let named = Path::new(NAMED_SYSTEMD);
    let named = (!Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && named.join("cgroup.procs").exists())
    .then(|| named.to_path_buf());
    for m in mounts().into_iter().chain(named) {
        let dir = m.join(root.trim_start_matches('/'));
        remove_tree(&dir);
    }
}

fn remove_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path());
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on a process inside our own test cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
