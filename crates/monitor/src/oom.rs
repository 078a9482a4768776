//! Telling an OOM kill: the container cgroup's memory events file counts the kernel's OOM kills
//! (`oom_kill N` in both v2 `memory.events` and v1 `memory.oom_control`). The monitor reads the
//! count before the container starts and again when it has exited, before the executor removes
//! the cgroup; a higher count means the OOM killer struck inside the container.

use std::fs;
use std::path::Path;

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
