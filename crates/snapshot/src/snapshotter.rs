//! Layer snapshots by chain ID, container writable layers, and the leases that keep layers alive.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableMultimapTable};
use tracing::{debug, info, warn};

use crate::db::{self, LAYERS, LEASES, LayerRecord};
use crate::error::{Error, Result};
use crate::mount::{MountStrategy, OverlaySpec, bind_readonly, mount_overlay};
use crate::usage::disk_usage;

const SNAPSHOTS_DIR: &str = "snapshots";
const CONTAINERS_DIR: &str = "containers";
const FS_DIR: &str = "fs";
const UPPER_DIR: &str = "upper";
const WORK_DIR: &str = "work";
/// A container whose image has no layers still needs one (empty) lower directory.
const EMPTY_LOWER_DIR: &str = "empty-lower";
/// Prefix of layer directories being written; never a chain ID (those are hex).
const TEMP_PREFIX: &str = ".tmp-";
const CHAIN_ID_PREFIX: &str = "sha256:";
const MAX_CONTAINER_ID_LEN: usize = 128;

/// The lease owner name for an image.
pub fn image_lease(image_id: &str) -> String {
    format!("image:{image_id}")
}

/// The lease owner name for a container.
pub fn container_lease(container_id: &str) -> String {
    format!("container:{container_id}")
}

/// A container's root filesystem, ready to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// Lower layer directories, top-most first (overlayfs order).
    pub lowerdirs: Vec<PathBuf>,
    /// The container's writable layer.
    pub upperdir: PathBuf,
    /// overlayfs's work directory, on the same filesystem as `upperdir`.
    pub workdir: PathBuf,
}

/// Layers found and removed by [`Snapshotter::gc`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Chain IDs whose snapshots were removed.
    pub removed: Vec<String>,
    /// Bytes those snapshots used.
    pub bytes_freed: u64,
}

/// The snapshotter: owns `<root>/snapshots` and `<root>/containers`.
pub struct Snapshotter {
    root: PathBuf,
    db: Arc<redb::Database>,
    strategy: MountStrategy,
}

impl Snapshotter {
    /// Open (creating directories and tables) and remove leftovers of interrupted work:
    /// temporary layer directories and layer directories without a record.
    pub fn open(root: &Path, db: Arc<redb::Database>) -> Result<Self> {
        let s = Snapshotter {
            root: root.to_path_buf(),
            db,
            strategy: MountStrategy::Auto,
        };
        for dir in [s.snapshots_dir(), s.root.join(CONTAINERS_DIR)] {
            std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        }
        db::ensure_tables(&s.db)?;
        s.remove_orphan_layer_dirs()?;
        Ok(s)
    }

    /// Force a mount strategy (tests use this to exercise each one).
    pub fn with_mount_strategy(mut self, strategy: MountStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// `<root>/snapshots`: the filesystem the image store reports usage for.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join(SNAPSHOTS_DIR)
    }

    /// The unpacked directory of a layer (whether or not it exists).
    pub fn layer_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.snapshots_dir().join(chain_hex(chain_id)?).join(FS_DIR))
    }

    /// The record of a committed layer, if it exists.
    pub fn layer(&self, chain_id: &str) -> Result<Option<LayerRecord>> {
        chain_hex(chain_id)?;
        db::get_layer(&self.db, chain_id)
    }

    /// Every committed layer.
    pub fn layers(&self) -> Result<Vec<(String, LayerRecord)>> {
        db::all_layers(&self.db)
    }

    /// Start writing a layer: an empty directory to unpack into. Commit it with
    /// [`LayerWriter::commit`]; dropping the writer removes everything it wrote.
    pub fn begin_layer(&self, chain_id: &str) -> Result<LayerWriter<'_>> {
        let hex = chain_hex(chain_id)?;
        let temp = self
            .snapshots_dir()
            .join(format!("{TEMP_PREFIX}{hex}-{}", std::process::id()));
        // A leftover of an earlier failed attempt by this process: start clean.
        remove_tree(&temp)?;
        let fs = temp.join(FS_DIR);
        std::fs::create_dir_all(&fs).map_err(Error::io("create", &fs))?;
        Ok(LayerWriter {
            snapshotter: self,
            chain_id: chain_id.to_string(),
            temp,
            fs,
            committed: false,
        })
    }

    /// Hold `chain_ids` under `owner` (adds to what the owner already holds).
    pub fn add_lease(&self, owner: &str, chain_ids: &[String]) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut leases = tx.open_multimap_table(LEASES)?;
            for id in chain_ids {
                leases.insert(owner, id.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drop everything `owner` holds. Layers stay until [`Snapshotter::gc`].
    pub fn remove_lease(&self, owner: &str) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_multimap_table(LEASES)?.remove_all(owner)?;
        tx.commit()?;
        Ok(())
    }

    /// Every lease owner.
    pub fn lease_owners(&self) -> Result<Vec<String>> {
        let tx = self.db.begin_read()?;
        let leases = tx.open_multimap_table(LEASES)?;
        let mut out = Vec::new();
        for entry in leases.iter()? {
            out.push(entry?.0.value().to_string());
        }
        Ok(out)
    }

    /// The chain IDs `owner` holds.
    pub fn lease(&self, owner: &str) -> Result<Vec<String>> {
        let tx = self.db.begin_read()?;
        let leases = tx.open_multimap_table(LEASES)?;
        let mut out = Vec::new();
        for v in leases.get(owner)? {
            out.push(v?.value().to_string());
        }
        Ok(out)
    }

    /// Remove every layer no lease holds. Records go first (in one transaction), directories
    /// after, so a crash midway leaves only orphan directories that `open` cleans.
    pub fn gc(&self) -> Result<GcReport> {
        let tx = self.db.begin_write()?;
        let held = db::leased_chain_ids(&tx)?;
        let mut report = GcReport::default();
        {
            let mut layers = tx.open_table(LAYERS)?;
            let unused: Vec<(String, u64)> = db::all_layers(&self.db)?
                .into_iter()
                .filter(|(id, _)| !held.contains(id))
                .map(|(id, rec)| (id, rec.size_bytes))
                .collect();
            for (id, size) in unused {
                layers.remove(id.as_str())?;
                report.removed.push(id);
                report.bytes_freed += size;
            }
        }
        if report.removed.is_empty() {
            // Most calls (every container removal) find nothing: skip the commit's fsync.
            tx.abort()?;
            return Ok(report);
        }
        tx.commit()?;
        for id in &report.removed {
            let dir = self.snapshots_dir().join(chain_hex(id)?);
            remove_tree(&dir)?;
            debug!(chain_id = %id, "removed layer snapshot");
        }
        if !report.removed.is_empty() {
            info!(
                layers = report.removed.len(),
                bytes = report.bytes_freed,
                "snapshot gc"
            );
        }
        Ok(report)
    }

    /// Create `<root>/containers/<id>/{upper,work}` over the image's layers (`chain_ids` base
    /// first, as in the image) and lease those layers to the container.
    pub fn prepare(&self, container_id: &str, chain_ids: &[String]) -> Result<Rootfs> {
        let dir = self.container_dir(container_id)?;
        let mut lowerdirs = Vec::with_capacity(chain_ids.len());
        for id in chain_ids.iter().rev() {
            if self.layer(id)?.is_none() {
                return Err(Error::LayerNotFound(id.clone()));
            }
            lowerdirs.push(self.layer_dir(id)?);
        }
        let (upperdir, workdir) = (dir.join(UPPER_DIR), dir.join(WORK_DIR));
        for d in [&upperdir, &workdir] {
            std::fs::create_dir_all(d).map_err(Error::io("create", d))?;
        }
        if lowerdirs.is_empty() {
            let empty = dir.join(EMPTY_LOWER_DIR);
            std::fs::create_dir_all(&empty).map_err(Error::io("create", &empty))?;
            lowerdirs.push(empty);
        }
        self.add_lease(&container_lease(container_id), chain_ids)?;
        Ok(Rootfs {
            lowerdirs,
            upperdir,
            workdir,
        })
    }

    /// Mount a container's rootfs (writable overlay) on `target`.
    pub fn mount(&self, rootfs: &Rootfs, target: &Path) -> Result<()> {
        let spec = OverlaySpec {
            lowerdirs: &rootfs.lowerdirs,
            upper: Some((&rootfs.upperdir, &rootfs.workdir)),
        };
        mount_overlay(&spec, target, self.strategy)
    }

    /// Mounts `rootfs` on `target` for a container in a user namespace: the lower layers as
    /// idmapped views through the namespace pinned at `userns` (nothing copied or chowned), and
    /// the writable layer's root given to `owner` (the host uid and gid of the namespace's root)
    /// so the container's root owns `/` as it would without a user namespace.
    pub fn mount_idmapped(
        &self,
        rootfs: &Rootfs,
        target: &Path,
        userns: &Path,
        owner: (u32, u32),
    ) -> Result<()> {
        let ns = std::fs::File::open(userns).map_err(Error::io("open", userns))?;
        std::os::unix::fs::lchown(&rootfs.upperdir, Some(owner.0), Some(owner.1))
            .map_err(Error::io("chown", &rootfs.upperdir))?;
        let spec = OverlaySpec {
            lowerdirs: &rootfs.lowerdirs,
            upper: Some((&rootfs.upperdir, &rootfs.workdir)),
        };
        let scratch = target.with_file_name("idmapped-layers");
        crate::idmap::mount_overlay_idmapped(&spec, target, self.strategy, ns.as_fd(), &scratch)
    }

    /// Mount the layers `chain_ids` (base first) read-only on `target`, e.g. for image volumes.
    pub fn mount_readonly(&self, chain_ids: &[String], target: &Path) -> Result<()> {
        let mut lowerdirs = Vec::with_capacity(chain_ids.len());
        for id in chain_ids.iter().rev() {
            if self.layer(id)?.is_none() {
                return Err(Error::LayerNotFound(id.clone()));
            }
            lowerdirs.push(self.layer_dir(id)?);
        }
        match lowerdirs.as_slice() {
            [] => Err(Error::Mount {
                target: target.into(),
                reason: "no layers to mount".into(),
            }),
            // overlayfs needs two lower layers when there is no upper one.
            [only] => bind_readonly(only, target),
            _ => mount_overlay(
                &OverlaySpec {
                    lowerdirs: &lowerdirs,
                    upper: None,
                },
                target,
                self.strategy,
            ),
        }
    }

    /// Unmount `target` (idempotent).
    pub fn unmount(&self, target: &Path) -> Result<()> {
        crate::mount::unmount(target)
    }

    /// Delete a container's writable layer and its lease (idempotent). Unmount first.
    ///
    /// The lease's removal is committed without an fsync of its own: the caller's next durable
    /// commit in the same database (the container record's removal) makes it durable. A crash
    /// in between loses only the removal of a lease whose container record is still there, so
    /// the removal is simply repeated; a lease no record owns is swept at start.
    pub fn remove(&self, container_id: &str) -> Result<()> {
        let dir = self.container_dir(container_id)?;
        remove_tree(&dir)?;
        let mut tx = self.db.begin_write()?;
        if let Err(e) = tx.set_durability(redb::Durability::None) {
            debug!(error = %e, "a durable lease removal, then");
        }
        tx.open_multimap_table(LEASES)?
            .remove_all(container_lease(container_id).as_str())?;
        tx.commit()?;
        Ok(())
    }

    /// Every container that has a writable layer or a lease here: what a start-up sweep
    /// compares with the daemon's records to find layers nobody owns.
    pub fn containers(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .lease_owners()?
            .into_iter()
            .filter_map(|owner| owner.strip_prefix("container:").map(str::to_string))
            .collect();
        let dir = self.root.join(CONTAINERS_DIR);
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            op: "listing",
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// A container's writable layer (its overlay upper directory), made by [`Snapshotter::prepare`].
    pub fn upper_dir(&self, container_id: &str) -> Result<PathBuf> {
        Ok(self.container_dir(container_id)?.join(UPPER_DIR))
    }

    /// Bytes and inodes of a container's writable layer.
    pub fn usage(&self, container_id: &str) -> Result<(u64, u64)> {
        let upper = self.container_dir(container_id)?.join(UPPER_DIR);
        if !upper.exists() {
            return Ok((0, 0));
        }
        disk_usage(&upper)
    }

    fn container_dir(&self, container_id: &str) -> Result<PathBuf> {
        let valid = !container_id.is_empty()
            && container_id.len() <= MAX_CONTAINER_ID_LEN
            && !container_id.starts_with('.')
            && container_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(Error::InvalidContainerId(container_id.to_string()));
        }
        Ok(self.root.join(CONTAINERS_DIR).join(container_id))
    }

    fn remove_orphan_layer_dirs(&self) -> Result<()> {
        let known: std::collections::HashSet<String> = db::all_layers(&self.db)?
            .into_iter()
            .filter_map(|(id, _)| id.strip_prefix(CHAIN_ID_PREFIX).map(str::to_string))
            .collect();
        let dir = self.snapshots_dir();
        for entry in std::fs::read_dir(&dir).map_err(Error::io("read dir", &dir))? {
            let entry = entry.map_err(Error::io("read dir", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                warn!(dir = %entry.path().display(), "removing unfinished or unrecorded layer directory");
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// A layer being unpacked into a temporary directory.
pub struct LayerWriter<'a> {
    snapshotter: &'a Snapshotter,
    chain_id: String,
    temp: PathBuf,
    fs: PathBuf,
    committed: bool,
}

impl LayerWriter<'_> {
    /// The directory to unpack into.
    pub fn fs_dir(&self) -> &Path {
        &self.fs
    }

    /// Make the layer visible: rename into place, then record it and lease it to `lease_owner`
    /// in one transaction.
    pub fn commit(mut self, record: LayerRecord, lease_owner: &str) -> Result<()> {
        let s = self.snapshotter;
        let final_dir = s.snapshots_dir().join(chain_hex(&self.chain_id)?);
        if db::get_layer(&s.db, &self.chain_id)?.is_some() {
            // Someone else committed it meanwhile: keep theirs, drop ours.
            s.add_lease(lease_owner, std::slice::from_ref(&self.chain_id))?;
            return Ok(());
        }
        // A directory without a record is a leftover of a crash between rename and commit.
        remove_tree(&final_dir)?;
        std::fs::rename(&self.temp, &final_dir)
            .map_err(Error::io("rename layer into", &final_dir))?;
        self.committed = true;
        let tx = s.db.begin_write()?;
        {
            tx.open_table(LAYERS)?
                .insert(self.chain_id.as_str(), db::encode(&record).as_str())?;
            tx.open_multimap_table(LEASES)?
                .insert(lease_owner, self.chain_id.as_str())?;
        }
        if let Err(e) = tx.commit() {
            let _ = remove_tree(&final_dir);
            return Err(e.into());
        }
        debug!(chain_id = %self.chain_id, "committed layer snapshot");
        Ok(())
    }
}

impl Drop for LayerWriter<'_> {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = remove_tree(&self.temp) {
                warn!(dir = %self.temp.display(), error = %e, "cannot remove unfinished layer");
            }
        }
    }
}

/// The hex part of a `sha256:<64 hex>` chain ID, validated so it is safe as a directory name.
fn chain_hex(chain_id: &str) -> Result<&str> {
    let hex = chain_id
        .strip_prefix(CHAIN_ID_PREFIX)
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| Error::InvalidChainId(chain_id.to_string()))?;
    Ok(hex)
}

/// `rm -rf`, tolerating absence. As root, modes do not stop us.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}
