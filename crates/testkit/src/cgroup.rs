//! Test cgroups that keep the house rule: made only under this process's own cgroup, removed
//! with everything in them when the test ends.
//!
//! A [`TestCgroupRoot`] is `P/<prefix>-<random>` in every hierarchy, where `P` is the deepest
//! cgroup this process is in across controllers (on a hybrid host the memory controller puts
//! it deeper than the others). One absolute path then names the same cgroup in every v1
//! controller and in the unified hierarchy, as kubelet's cgroup parents do.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const CGROUP_FS: &str = "/sys/fs/cgroup";

/// Parent directories this process had to make (a shallower controller than the deepest one):
/// removed once no test root of this process is below them.
static MADE_PARENTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A test's own cgroup subtree, in every hierarchy. Dropping it kills what runs in it and
/// removes it.
#[derive(Debug)]
pub struct TestCgroupRoot {
    path: String,
}

impl TestCgroupRoot {
    /// Makes `<own>/<prefix>-<random>` in every hierarchy.
    pub fn new(prefix: &str) -> TestCgroupRoot {
        let path = format!(
            "{}/{prefix}-{}",
            own_deepest_path().trim_end_matches('/'),
            crate::random_suffix()
        );
        let mut made = MADE_PARENTS.lock().unwrap_or_else(|e| e.into_inner());
        for hierarchy in hierarchies() {
            make_path(&hierarchy, &path, &mut made);
        }
        TestCgroupRoot { path }
    }

    /// Its absolute cgroup path (`/process_api/abc/longshore-e2e-1f2e3d4c`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The absolute cgroup path of `name` below it.
    pub fn child_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// Its directory in the hierarchy mounted at `mount` (`/sys/fs/cgroup/memory`).
    pub fn dir_in(&self, mount: &Path) -> PathBuf {
        mount.join(self.path.trim_start_matches('/'))
    }

    /// Sub-cgroups directly under it, in any hierarchy.
    pub fn children(&self) -> Vec<PathBuf> {
        hierarchies()
            .iter()
            .flat_map(|h| children_of(&self.dir_in(h)))
            .collect()
    }

    /// Kills every process in it (they are all the test's) and removes it bottom-up.
    pub fn remove(&self) {
        for hierarchy in hierarchies() {
            kill_and_remove_tree(&self.dir_in(&hierarchy));
        }
        let mut made = MADE_PARENTS.lock().unwrap_or_else(|e| e.into_inner());
        made.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        made.retain(|dir| std::fs::remove_dir(dir).is_err() && dir.exists());
    }
}

impl Drop for TestCgroupRoot {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Every mounted hierarchy: `/sys/fs/cgroup` on a pure v2 host; else each v1 hierarchy
/// (`name=systemd` too: runc makes cgroups there) and the unified one.
pub fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_FS);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Combined controllers (`cpu,cpuacct`) appear as symlinks too; each hierarchy once.
    dirs.retain(|d| !d.is_symlink() && d.join("cgroup.procs").exists());
    dirs.sort();
    dirs
}

/// The deepest cgroup path this process is in, across its `/proc/self/cgroup` lines.
pub fn own_deepest_path() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap_or("/")
        .to_string()
}

/// Sub-cgroups directly under one cgroup directory.
pub fn children_of(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Kills every process below `dir` and removes the directories, deepest first; never panics.
pub fn kill_and_remove_tree(dir: &Path) {
    for child in children_of(dir) {
        kill_and_remove_tree(&child);
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) takes no pointers; the process is in the test's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("warning: could not remove test cgroup {}", dir.display());
}

fn make_path(hierarchy: &Path, path: &str, made: &mut Vec<PathBuf>) {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut dir = hierarchy.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        let parent = dir.clone();
        dir.push(part);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        inherit_cpuset(&parent, &dir);
        if i + 1 < parts.len() && !made.contains(&dir) {
            made.push(dir.clone());
        }
    }
}

/// A new v1 cpuset cgroup takes no tasks until it has CPUs and memory nodes: its parent's.
fn inherit_cpuset(parent: &Path, dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Ok(current) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        if current.trim().is_empty()
            && let Ok(value) = std::fs::read_to_string(parent.join(file))
        {
            let _ = std::fs::write(dir.join(file), value.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_made_under_our_own_cgroup_and_removed() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let root = TestCgroupRoot::new("testkit");
        assert!(
            root.path()
                .starts_with(own_deepest_path().trim_end_matches('/'))
        );
        let dirs: Vec<PathBuf> = hierarchies().iter().map(|h| root.dir_in(h)).collect();
        assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");
        std::fs::create_dir(dirs[0].join("child")).unwrap();
        assert_eq!(root.children().len(), 1);
        drop(root);
        assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    }
}
