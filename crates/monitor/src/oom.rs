//! Telling an OOM kill: the container cgroup's memory events file counts the kernel's OOM kills
//! (`oom_kill N` in both v2 `memory.events` and v1 `memory.oom_control`). The monitor reads the
//! count before the container starts and again when it has exited, before the executor removes
//! the cgroup; a higher count means the OOM killer struck inside the container.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// The counter's key in `memory.events` (v2) and `memory.oom_control` (v1, kernel >= 4.13).
const OOM_KILL_KEY: &str = "oom_kill";

/// The `oom_kill` count in `path`; `None` if the file is missing or has no such line.
pub(crate) fn read_oom_kill_count(path: &Path) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    parse_oom_kill_count(&text)
}

fn parse_oom_kill_count(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(OOM_KILL_KEY), Some(n)) => n.parse().ok(),
            _ => None,
        }
    })
}

/// Whether the count rose; a missing "before" (cgroup not created yet) counts as zero.
pub(crate) fn oom_killed(before: Option<u64>, after: Option<u64>) -> bool {
    after.unwrap_or(0) > before.unwrap_or(0)
}

/// The OOM kill count, kept up to date while the container runs: the kernel notifies changes of
/// `memory.events` (inotify `IN_MODIFY`), and each one is read at once. Under the systemd driver
/// systemd removes a scope's cgroup as soon as its last process is gone, which can be before the
/// monitor has reaped the container; the last count seen is the answer then (containerd's shim
/// watches the file the same way). When the file was gone before its change could be read (the
/// OOM kill and systemd's removal came between two polls), the parent cgroup's count decides:
/// v2 counts a child's OOM kills in its ancestors' `memory.events` too. (A sibling's OOM kill in
/// that moment would be counted as this container's; the container's own count, when there is
/// one, always wins.)
pub(crate) struct OomWatch {
    path: PathBuf,
    inotify: Inotify,
    seen: Option<u64>,
    /// The parent cgroup's `memory.events` and its count at the start.
    parent: Option<(PathBuf, u64)>,
    /// Whether the container's own file could be read at the end.
    own_read: bool,
}

impl OomWatch {
    /// Watches `path`; `None` where inotify cannot (the count is then read at exit only).
    pub(crate) fn new(path: &Path) -> Option<OomWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        if let Err(e) = inotify.add_watch(path, AddWatchFlags::IN_MODIFY) {
            tracing::debug!(path = %path.display(), error = %e, "cannot watch memory events");
            return None;
        }
        let parent = parent_events(path).and_then(|p| read_oom_kill_count(&p).map(|n| (p, n)));
        Some(OomWatch {
            path: path.to_path_buf(),
            inotify,
            seen: read_oom_kill_count(path),
            parent,
            own_read: false,
        })
    }

    /// The fd to poll for changes.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Takes the pending notifications and reads the count again.
    pub(crate) fn changed(&mut self) {
        while matches!(self.inotify.read_events(), Ok(events) if !events.is_empty()) {}
        self.own_read = false;
        if let Some(n) = read_oom_kill_count(&self.path) {
            self.own_read = true;
            self.seen = Some(self.seen.map_or(n, |s| s.max(n)));
        }
    }

    /// The count now: read again if the file is still there, else the last one seen, raised by
    /// one if the parent counted an OOM kill meanwhile.
    pub(crate) fn count(&mut self) -> Option<u64> {
        self.changed();
        if self.own_read {
            return self.seen;
        }
        let parent_rose = self.parent.as_ref().is_some_and(|(path, before)| {
            read_oom_kill_count(path).is_some_and(|now| now > *before)
        });
        match (parent_rose, self.seen) {
            (true, seen) => Some(seen.unwrap_or(0) + 1),
            (false, seen) => seen,
        }
    }
}

/// `<cgroup>/../memory.events` for a v2 `<cgroup>/memory.events` (v1's `memory.oom_control` is
/// not hierarchical).
fn parent_events(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    if name != "memory.events" {
        return None;
    }
    Some(path.parent()?.parent()?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_memory_events() {
        let text = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_oom_kill_count(text), Some(1));
    }

    #[test]
    fn parses_v1_oom_control() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kill_count(text), Some(3));
    }

    #[test]
    fn missing_counter_is_none() {
        assert_eq!(parse_oom_kill_count("oom_kill_disable 0\n"), None);
        assert_eq!(read_oom_kill_count(Path::new("/does/not/exist")), None);
    }

    #[test]
    fn only_v2_has_a_parent_count() {
        assert_eq!(
            parent_events(Path::new("/sys/fs/cgroup/pod.slice/c.scope/memory.events")),
            Some(PathBuf::from("/sys/fs/cgroup/pod.slice/memory.events"))
        );
        assert_eq!(
            parent_events(Path::new("/sys/fs/cgroup/memory/pod/c/memory.oom_control")),
            None
        );
    }

    /// A container whose cgroup vanished before its OOM kill was read: the parent's count tells.
    #[test]
    fn a_vanished_cgroup_falls_back_to_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let child = dir.path().join("c.scope");
        fs::create_dir(&child).unwrap();
        let (own, parent) = (
            child.join("memory.events"),
            dir.path().join("memory.events"),
        );
        fs::write(&own, "oom 0\noom_kill 0\n").unwrap();
        fs::write(&parent, "oom 0\noom_kill 4\n").unwrap();
        let mut watch = OomWatch::new(&own).unwrap();
        fs::remove_dir_all(&child).unwrap();
        assert_eq!(watch.count(), Some(0), "no change in the parent: no OOM");
        fs::write(&parent, "oom 1\noom_kill 5\n").unwrap();
        assert!(oom_killed(Some(0), watch.count()));

        // While the own file is readable, it alone counts.
        fs::create_dir(&child).unwrap();
        fs::write(&own, "oom 0\noom_kill 0\n").unwrap();
        let mut watch = OomWatch::new(&own).unwrap();
        fs::write(&parent, "oom 2\noom_kill 9\n").unwrap();
        assert_eq!(watch.count(), Some(0));
    }

    #[test]
    fn rise_means_oom() {
        assert!(oom_killed(None, Some(1)));
        assert!(oom_killed(Some(1), Some(2)));
        assert!(!oom_killed(Some(2), Some(2)));
        assert!(!oom_killed(None, None));
    }
}
