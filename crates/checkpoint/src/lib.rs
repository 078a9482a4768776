//! Checkpoint archives: what `CheckpointContainer` writes and a restoring `CreateContainer` reads.
//!
//! The layout is CRI-O's (and Podman's), so `checkpointctl show|inspect` reads a Longshore
//! checkpoint, and the names are checkpointctl's `lib/metadata.go` constants. An uncompressed tar
//! whose top level holds:
//!
//! | entry | what |
//! |---|---|
//! | `config.dump` | container metadata, JSON ([`ContainerMetadata`]) |
//! | `spec.dump` | the container's OCI runtime spec (its bundle's `config.json`) |
//! | `checkpoint/` | CRIU's images (`inventory.img`, `pages-*.img`, ..., `stats-dump`) and `descriptors.json` |
//! | `dump.log` | CRIU's log of the dump |
//! | `rootfs-diff.tar` | the files of the container's writable layer, overlay whiteouts left out |
//! | `deleted.files` | JSON list of the image's paths the container deleted (`/etc/motd`) |
//!
//! Not carried (as in CRI-O): the contents of volumes, which belong to the new pod.

#![warn(missing_docs)]

mod diff;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use diff::{apply_rootfs_diff, write_rootfs_diff};

/// Container metadata.
pub const CONFIG_DUMP: &str = "config.dump";
/// The OCI runtime spec.
pub const SPEC_DUMP: &str = "spec.dump";
/// CRIU's images.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// CRIU's dump log.
pub const DUMP_LOG: &str = "dump.log";
/// The writable layer's files.
pub const ROOTFS_DIFF: &str = "rootfs-diff.tar";
/// Paths deleted from the image.
pub const DELETED_FILES: &str = "deleted.files";

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// A metadata file does not parse.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The archive is not a container checkpoint.
    #[error("{path} is not a container checkpoint archive: {reason}")]
    NotAnArchive {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// `config.dump`: the fields checkpointctl shows and CRI-O writes, plus the handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMetadata {
    /// The container's id.
    pub id: String,
    /// Its name (the CRI metadata name).
    pub name: String,
    /// The image as the user named it.
    pub rootfs_image: String,
    /// The image id (`sha256:...`), what a restore mounts again.
    pub rootfs_image_ref: String,
    /// The image name checkpointctl shows.
    pub rootfs_image_name: String,
    /// The OCI runtime: the handler's name, or `longshore` for the embedded executor.
    #[serde(rename = "runtime")]
    pub runtime: String,
    /// When the container was created.
    pub created_time: DateTime<Utc>,
    /// When it was checkpointed.
    pub checkpointed_time: DateTime<Utc>,
}

/// Writes `config.dump` into `dir`.
pub fn write_metadata(dir: &Path, meta: &ContainerMetadata) -> Result<()> {
    write_json(&dir.join(CONFIG_DUMP), meta)
}

/// Reads `config.dump` from `dir`.
pub fn read_metadata(dir: &Path) -> Result<ContainerMetadata> {
    read_json(&dir.join(CONFIG_DUMP))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let file = File::create(path).map_err(io_err("create", path))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    out.flush().map_err(io_err("write", path))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Tars the top level of `dir` into `archive`, written beside it first and renamed into place
/// when complete, so a reader never sees half an archive.
pub fn pack(dir: &Path, archive: &Path) -> Result<()> {
    let part = PathBuf::from(format!("{}.part", archive.display()));
    let result = pack_to(dir, &part)
        .and_then(|()| fs::rename(&part, archive).map_err(io_err("rename into place", archive)));
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

fn pack_to(dir: &Path, part: &Path) -> Result<()> {
    let file = File::create(part).map_err(io_err("create", part))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    builder.follow_symlinks(false);
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        if meta.is_dir() {
            builder.append_dir_all(&name, &path)
        } else {
            builder.append_path_with_name(&path, &name)
        }
        .map_err(io_err("archive", &path))?;
    }
    let out = builder.into_inner().map_err(io_err("finish", part))?;
    let file = out
        .into_inner()
        .map_err(|e| io_err("flush", part)(e.into_error()))?;
    file.sync_all().map_err(io_err("sync", part))
}

/// Unpacks `archive` into `dir` (which must exist); entries that would land outside it are
/// refused by the tar crate. Fails with [`Error::NotAnArchive`] unless the result holds
/// `config.dump`, `spec.dump` and `checkpoint/`.
pub fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let file = File::open(archive).map_err(io_err("open", archive))?;
    let mut tar = tar::Archive::new(io::BufReader::new(file));
    tar.set_preserve_permissions(true);
    tar.unpack(dir).map_err(|e| Error::NotAnArchive {
        path: archive.to_path_buf(),
        reason: format!("unpacking failed: {e}"),
    })?;
    for need in [CONFIG_DUMP, SPEC_DUMP, CHECKPOINT_DIR] {
        if !dir.join(need).exists() {
            return Err(Error::NotAnArchive {
                path: archive.to_path_buf(),
                reason: format!("it has no {need}"),
            });
        }
    }
    Ok(())
}

/// Copies the tree `src` into the existing folder `dst`: folders, files (with their modes) and
/// symbolic links (a checkpoint image's layer into a container's state folder).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in fs::read_dir(src).map_err(io_err("list", src))? {
        let entry = entry.map_err(io_err("list", src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type().map_err(io_err("stat", &from))?;
        if kind.is_dir() {
            fs::create_dir_all(&to).map_err(io_err("create", &to))?;
            copy_tree(&from, &to)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("read link", &from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io_err("link", &to))?;
        } else {
            fs::copy(&from, &to).map_err(io_err("copy", &from))?;
        }
    }
    Ok(())
}

/// The most a metadata file of an archive may hold.
const MAX_HEAD_FILE: u64 = 16 << 20;

/// `config.dump` and `spec.dump` of the archive at `path` (headers are read and the CRIU images
/// skipped by seeking, so this is quick for any size), or `None` when `path` is not a tar with
/// both: what a restoring CreateContainer looks at first.
pub fn read_head(path: &Path) -> Result<Option<(ContainerMetadata, Vec<u8>)>> {
    let file = File::open(path).map_err(io_err("open", path))?;
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Ok(None);
    }
    let mut tar = tar::Archive::new(file);
    let Ok(entries) = tar.entries_with_seek() else {
        return Ok(None);
    };
    let (mut config, mut spec) = (None, None);
    for entry in entries {
        let Ok(mut entry) = entry else {
            return Ok(None);
        };
        let slot = match entry.path().ok().as_deref().and_then(Path::to_str) {
            Some(CONFIG_DUMP) => &mut config,
            Some(SPEC_DUMP) => &mut spec,
            _ => continue,
        };
        if entry.size() > MAX_HEAD_FILE {
            return Err(Error::NotAnArchive {
                path: path.to_path_buf(),
                reason: format!("its metadata file is {} bytes", entry.size()),
            });
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut entry, &mut bytes).map_err(io_err("read", path))?;
        *slot = Some(bytes);
        if config.is_some() && spec.is_some() {
            break;
        }
    }
    let (Some(config), Some(spec)) = (config, spec) else {
        return Ok(None);
    };
    let meta = serde_json::from_slice(&config).map_err(|source| Error::Json {
        path: path.join(CONFIG_DUMP),
        source,
    })?;
    Ok(Some((meta, spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> ContainerMetadata {
        ContainerMetadata {
            id: "abc".into(),
            name: "counter".into(),
            rootfs_image: "docker.io/library/busybox:latest".into(),
            rootfs_image_ref: "sha256:1234".into(),
            rootfs_image_name: "docker.io/library/busybox:latest".into(),
            runtime: "runc".into(),
            created_time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            checkpointed_time: DateTime::from_timestamp(1_700_000_100, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn metadata_uses_cri_o_field_names() {
        let dir = tempfile::tempdir().unwrap();
        write_metadata(dir.path(), &metadata()).unwrap();
        let text = fs::read_to_string(dir.path().join(CONFIG_DUMP)).unwrap();
        for key in [
            "\"id\"",
            "\"name\"",
            "\"rootfsImage\"",
            "\"rootfsImageRef\"",
            "\"rootfsImageName\"",
            "\"runtime\"",
            "\"createdTime\"",
            "\"checkpointedTime\"",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert_eq!(read_metadata(dir.path()).unwrap(), metadata());
    }

    #[test]
    fn an_archive_packs_and_unpacks_and_is_recognised() {
        let src = tempfile::tempdir().unwrap();
        write_metadata(src.path(), &metadata()).unwrap();
        fs::write(src.path().join(SPEC_DUMP), "{}").unwrap();
        fs::create_dir(src.path().join(CHECKPOINT_DIR)).unwrap();
        fs::write(src.path().join(CHECKPOINT_DIR).join("inventory.img"), "x").unwrap();
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("c.tar");
        pack(src.path(), &archive).unwrap();
        assert!(!out.path().join("c.tar.part").exists());
        let (meta, spec) = read_head(&archive).unwrap().unwrap();
        assert_eq!((meta, spec), (metadata(), b"{}".to_vec()));

        let dst = tempfile::tempdir().unwrap();
        unpack(&archive, dst.path()).unwrap();
        assert_eq!(read_metadata(dst.path()).unwrap(), metadata());
        let copy = tempfile::tempdir().unwrap();
        copy_tree(dst.path(), copy.path()).unwrap();
        assert_eq!(read_metadata(copy.path()).unwrap(), metadata());
        assert!(copy.path().join("checkpoint/inventory.img").is_file());
        assert_eq!(
            fs::read_to_string(dst.path().join("checkpoint/inventory.img")).unwrap(),
            "x"
        );
    }

    #[test]
    fn other_files_are_not_archives() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "not a tar").unwrap();
        assert!(read_head(&plain).unwrap().is_none());
        assert!(read_head(dir.path()).unwrap().is_none());
        assert!(read_head(&dir.path().join("missing")).is_err());

        // A tar without the checkpoint's files is refused when unpacked.
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join(SPEC_DUMP), "{}").unwrap();
        let archive = dir.path().join("half.tar");
        pack(src.path(), &archive).unwrap();
        assert!(read_head(&archive).unwrap().is_none());
        let dst = tempfile::tempdir().unwrap();
        let e = unpack(&archive, dst.path()).unwrap_err();
        assert!(e.to_string().contains("config.dump"), "{e}");
    }
}
