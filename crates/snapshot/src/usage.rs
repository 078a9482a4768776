//! Disk usage of a directory tree, as `du` counts it: allocated blocks, each inode once.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

/// st_blocks counts 512-byte units whatever the filesystem block size.
const STAT_BLOCK: u64 = 512;

/// Bytes allocated and inodes used under `root` (root included). Hard links count once.
pub fn disk_usage(root: &Path) -> Result<(u64, u64)> {
    let mut seen = HashSet::new();
    let mut bytes = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // A container may delete files while we walk.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", &path)(e)),
        };
        if seen.insert((meta.dev(), meta.ino())) {
            bytes += meta.blocks() * STAT_BLOCK;
        }
        if meta.is_dir() {
            let entries = match std::fs::read_dir(&path) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read dir", &path)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(Error::io("read dir", &path))?;
                stack.push(entry.path());
            }
        }
    }
    Ok((bytes, seen.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10000]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let (bytes, inodes) = disk_usage(dir.path()).unwrap();
        assert_eq!(inodes, 3);
        assert!(bytes >= 10000, "{bytes}");
    }
}
