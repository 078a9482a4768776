//! The writable layer's changes: `rootfs-diff.tar` and `deleted.files`.
//!
//! The container's overlay upper directory *is* its change set: new and changed files as they
//! are, deletions as whiteouts (character devices 0:0). The tar takes the files; the whiteouts
//! become `deleted.files` entries, and a restore turns them back into whiteouts in the new upper
//! directory, so the image's file stays hidden exactly as before. An opaque directory (one
//! deleted and made again) keeps its new contents but not its opacity: files of the image
//! inside it show again after a restore.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::{DELETED_FILES, Error, ROOTFS_DIFF, Result, io_err, read_json, write_json};

/// Writes `dir/rootfs-diff.tar` and `dir/deleted.files` from the overlay upper dir `upper`.
pub fn write_rootfs_diff(upper: &Path, dir: &Path) -> Result<()> {
    let tar_path = dir.join(ROOTFS_DIFF);
    let file = File::create(&tar_path).map_err(io_err("create", &tar_path))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    builder.follow_symlinks(false);
    let mut deleted = Vec::new();
    add_tree(&mut builder, upper, Path::new(""), &mut deleted)?;
    builder
        .into_inner()
        .map_err(io_err("finish", &tar_path))?
        .into_inner()
        .map_err(|e| io_err("flush", &tar_path)(e.into_error()))?;
    write_json(&dir.join(DELETED_FILES), &deleted)
}

fn add_tree<W: io::Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    deleted: &mut Vec<String>,
) -> Result<()> {
    let here = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&here)
        .map_err(io_err("list", &here))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let path = here.join(&name);
        let entry = rel.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            deleted.push(format!("/{}", entry.display()));
        } else if kind.is_dir() {
            builder
                .append_dir(&entry, &path)
                .map_err(io_err("archive", &path))?;
            add_tree(builder, root, &entry, deleted)?;
        } else {
            builder
                .append_path_with_name(&path, &entry)
                .map_err(io_err("archive", &path))?;
        }
    }
    Ok(())
}

/// Puts the changes of the checkpoint in `dir` into the new, empty upper dir `upper`: the files
/// with their modes and owners, and a whiteout for every deleted path.
pub fn apply_rootfs_diff(dir: &Path, upper: &Path) -> Result<()> {
    let tar_path = dir.join(ROOTFS_DIFF);
    if tar_path.exists() {
        let file = File::open(&tar_path).map_err(io_err("open", &tar_path))?;
        let mut tar = tar::Archive::new(BufReader::new(file));
        tar.set_preserve_permissions(true);
        tar.set_preserve_ownerships(true);
        tar.set_overwrite(true);
        tar.unpack(upper).map_err(io_err("unpack", &tar_path))?;
    }
    let deleted_path = dir.join(DELETED_FILES);
    if !deleted_path.exists() {
        return Ok(());
    }
    let deleted: Vec<String> = read_json(&deleted_path)?;
    for path in deleted {
        whiteout(upper, &path)?;
    }
    Ok(())
}

/// A whiteout (character device 0:0) for `path` (`/etc/motd`) under `upper`.
fn whiteout(upper: &Path, path: &str) -> Result<()> {
    let rel = clean_relative(path).ok_or_else(|| Error::NotAnArchive {
        path: PathBuf::from(DELETED_FILES),
        reason: format!("{path:?} is not a path inside the container"),
    })?;
    let target = upper.join(&rel);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    if fs::symlink_metadata(&target).is_ok() {
        // Made again after the deletion: the new file is in the tar already.
        return Ok(());
    }
    let c_path = CString::new(target.as_os_str().as_bytes()).map_err(|_| Error::NotAnArchive {
        path: PathBuf::from(DELETED_FILES),
        reason: format!("{path:?} holds a NUL"),
    })?;
    // SAFETY: c_path is a valid NUL-terminated path; mknod reads it and keeps no pointer.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR, 0) };
    if rc != 0 {
        return Err(io_err("make whiteout", &target)(io::Error::last_os_error()));
    }
    Ok(())
}

/// `path` without its root, refused if it climbs out (`..`) or is empty.
fn clean_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in Path::new(path).components() {
        match part {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside() {
        assert_eq!(clean_relative("/etc/motd"), Some(PathBuf::from("etc/motd")));
        assert_eq!(clean_relative("a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(clean_relative("/../etc/shadow"), None);
        assert_eq!(clean_relative("/"), None);
    }

    /// Whiteouts need mknod (root); the rest runs anywhere.
    #[test]
    fn an_upper_dir_round_trips() {
        let root = nix_is_root();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(upper.path().join("data/sub")).unwrap();
        fs::write(upper.path().join("data/sub/count"), "41").unwrap();
        std::os::unix::fs::symlink("sub/count", upper.path().join("data/link")).unwrap();
        if root {
            whiteout(upper.path(), "/etc/motd").unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        write_rootfs_diff(upper.path(), dir.path()).unwrap();
        let deleted: Vec<String> = read_json(&dir.path().join(DELETED_FILES)).unwrap();
        assert_eq!(deleted, if root { vec!["/etc/motd"] } else { vec![] });

        let new_upper = tempfile::tempdir().unwrap();
        apply_rootfs_diff(dir.path(), new_upper.path()).unwrap();
        let n = new_upper.path();
        assert_eq!(fs::read_to_string(n.join("data/sub/count")).unwrap(), "41");
        assert_eq!(
            fs::read_link(n.join("data/link")).unwrap(),
            PathBuf::from("sub/count")
        );
        if root {
            let meta = fs::symlink_metadata(n.join("etc/motd")).unwrap();
            assert!(meta.file_type().is_char_device());
            assert_eq!(meta.rdev(), 0);
        }
    }

    #[test]
    fn a_deleted_path_that_escapes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_json(&dir.path().join(DELETED_FILES), &vec!["/../../x"]).unwrap();
        let upper = tempfile::tempdir().unwrap();
        let e = apply_rootfs_diff(dir.path(), upper.path()).unwrap_err();
        assert!(e.to_string().contains("not a path inside"), "{e}");
    }

    fn nix_is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }
}
