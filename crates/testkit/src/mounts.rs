//! What a test left mounted, and how to take it down.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

/// Mount points of this process at or below `dir`.
pub fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    longshore_mountinfo::mounted_under(dir).unwrap_or_default()
}

/// Detaches every mount at or below `dir`, deepest first; never fails (cleanup).
pub fn unmount_all_under(dir: &Path) {
    let mut mounts = mounted_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mounts {
        let _ = umount2(&m, MntFlags::MNT_DETACH);
    }
}
