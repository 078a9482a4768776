//! Enabling controllers for children through `cgroup.subtree_control`.

use std::path::Path;

use crate::controller::Controller;
use crate::fs::{self, FsError};
use crate::hierarchy::CGROUP_CONTROLLERS;

/// Controllers enabled for a cgroup's children.
const CGROUP_SUBTREE_CONTROL: &str = "cgroup.subtree_control";

/// The controllers pod and container cgroups need, in the order the kernel lists them.
pub(crate) const WANTED: [Controller; 6] = [
    Controller::Cpuset,
    Controller::Cpu,
    Controller::Io,
    Controller::Memory,
    Controller::Hugetlb,
    Controller::Pids,
];

/// Enabling controllers failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllersError {
    /// Reading the lists or writing `cgroup.subtree_control` failed (a cgroup with processes
    /// of its own cannot enable controllers for children: EBUSY).
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Enable in `dir`'s `cgroup.subtree_control` every wanted controller that `dir` has and has not
/// enabled yet. Writes nothing when all are already on.
pub(crate) fn enable(dir: &Path) -> Result<(), ControllersError> {
    let available = fs::read(&dir.join(CGROUP_CONTROLLERS))?;
    let subtree = dir.join(CGROUP_SUBTREE_CONTROL);
    let enabled = fs::read(&subtree)?;
    let line = missing(&available, &enabled);
    if !line.is_empty() {
        fs::write(&subtree, &line)?;
    }
    Ok(())
}

/// The `+a +b` line enabling the wanted controllers that are available but not enabled.
fn missing(available: &str, enabled: &str) -> String {
    let has = |list: &str, c: Controller| list.split_whitespace().any(|n| n == c.name());
    WANTED
        .iter()
        .filter(|c| has(available, **c) && !has(enabled, **c))
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enables_only_what_is_missing_and_available() {
        assert_eq!(
            missing(
                "cpuset cpu io memory hugetlb pids rdma misc\n",
                "cpu memory\n"
            ),
            "+cpuset +io +hugetlb +pids"
        );
        assert_eq!(missing("hugetlb\n", ""), "+hugetlb");
        assert_eq!(missing("cpu memory\n", "cpu memory\n"), "");
        assert_eq!(missing("", ""), "");
    }
}
