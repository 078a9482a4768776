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
/// watches the file the same way).
pub(crate) struct OomWatch {
    path: PathBuf,
    inotify: Inotify,
    seen: Option<u64>,
}

impl OomWatch {
    /// Watches `path`; `None` where inotify cannot (the count is then read at exit only).
    pub(crate) fn new(path: &Path) -> Option<OomWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        if let Err(e) = inotify.add_watch(path, AddWatchFlags::IN_MODIFY) {
            tracing::debug!(path = %path.display(), error = %e, "cannot watch memory events");
            return None;
        }
        Some(OomWatch {
            path: path.to_path_buf(),
            inotify,
            seen: read_oom_kill_count(path),
        })
    }

    /// The fd to poll for changes.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Takes the pending notifications and reads the count again.
    pub(crate) fn changed(&mut self) {
        while matches!(self.inotify.read_events(), Ok(events) if !events.is_empty()) {}
        if let Some(n) = read_oom_kill_count(&self.path) {
            self.seen = Some(self.seen.map_or(n, |s| s.max(n)));
        }
    }

    /// The count now: read again if the file is still there, else the last one seen.
    pub(crate) fn count(&mut self) -> Option<u64> {
        self.changed();
        self.seen
    }
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
    fn rise_means_oom() {
        assert!(oom_killed(None, Some(1)));
        assert!(oom_killed(Some(1), Some(2)));
        assert!(!oom_killed(Some(2), Some(2)));
        assert!(!oom_killed(None, None));
    }
}
