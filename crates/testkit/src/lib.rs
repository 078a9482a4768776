//! The helpers every Longshore test suite needs, in one place: a test cgroup made only under the
//! test's own cgroup ([`cgroup::TestCgroupRoot`]), iptables snapshots and cleanup
//! ([`iptables`]), what is still mounted ([`mounts`]), random names ([`random_suffix`]) and
//! polling ([`eventually`]). Only tests depend on it.
//!
//! These helpers panic on what a test cannot go on without (that is what a test wants); their
//! cleanup functions never panic, so they can run in `Drop`.

#![warn(missing_docs)]
// Test helpers wait on the test's own threads: sleeping there blocks no async worker.
#![allow(clippy::disallowed_methods)]

pub mod cgroup;
pub mod iptables;
pub mod mounts;

use std::time::{Duration, Instant};

/// A short random hex suffix for names (bridges, pods, cgroups) that must not collide between
/// tests running at once.
pub fn random_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Polls `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Whether this process runs as root (the tests that make namespaces, mounts and cgroups
/// need it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// At the top of a test that needs root: returns from the test, saying so, when not root, so
/// that a plain `cargo test` as a user runs the pure tests and skips these. `scripts/test.sh`
/// runs everything as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root (run scripts/test.sh as root)");
            return;
        }
    };
}

/// Runs a command for its side effect, ignoring how it went (cleanup).
pub fn quiet(cmd: &str, args: &[&str]) {
    let _ = std::process::Command::new(cmd).args(args).output();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_differ() {
        assert_ne!(random_suffix(), random_suffix());
        assert_eq!(random_suffix().len(), 8);
    }

    #[test]
    fn eventually_gives_up() {
        let mut n = 0;
        assert!(eventually(Duration::from_secs(1), || {
            n += 1;
            n > 2
        }));
        assert!(!eventually(Duration::from_millis(50), || false));
    }
}
