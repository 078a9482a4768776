//! [`ImageStore`]: the API the daemon's ImageService calls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longshore_registry::{Client, Credentials, Digest, Platform, Reference, RegistryConfig};
use longshore_snapshot::{Snapshotter, image_lease};
use tracing::{info, warn};

use crate::content::ContentStore;
use crate::error::{Error, Result};
use crate::metadata::{self, Image};
use crate::singleflight::KeyedLocks;

const CONTENT_DIR: &str = "content";
const IMAGE_LEASE_PREFIX: &str = "image:";
const PULL_LEASE_PREFIX: &str = "pull:";
const ID_PREFIX: &str = "sha256:";

/// How the image store pulls.
#[derive(Debug, Clone)]
pub struct ImageStoreConfig {
    /// containerd-style `hosts.toml` directory for mirrors and per-host TLS.
    pub registry_config_path: Option<PathBuf>,
    /// A docker-style `config.json` for credentials when a pull brings none.
    pub docker_config_path: Option<PathBuf>,
    /// Largest uncompressed layer accepted (decompression bomb guard).
    pub max_layer_bytes: u64,
    /// Largest uncompressed/compressed ratio of a layer bigger than `layer_ratio_floor`
    /// (decompression bomb guard); 0 turns the ratio check off.
    pub max_layer_ratio: u64,
    /// Uncompressed bytes a layer may always have, whatever its ratio.
    pub layer_ratio_floor: u64,
    /// A pull that receives no byte for this long fails.
    pub pull_progress_timeout: Duration,
    /// Layers downloaded and unpacked at once, per pull.
    pub max_concurrent_downloads: usize,
    /// The platform to pick from multi-platform images.
    pub platform: Platform,
    /// `syncfs` each unpacked layer before recording it (durable across power loss).
    pub sync_layers: bool,
}

impl Default for ImageStoreConfig {
    fn default() -> Self {
        ImageStoreConfig {
            registry_config_path: None,
            docker_config_path: None,
            max_layer_bytes: 16 << 30,
            max_layer_ratio: 100,
            layer_ratio_floor: 256 << 20,
            pull_progress_timeout: Duration::from_secs(60),
            max_concurrent_downloads: 4,
            platform: Platform::host(),
            sync_layers: true,
        }
    }
}

/// Disk use of the image filesystem, for CRI `ImageFsInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    /// The directory holding the layers.
    pub mountpoint: PathBuf,
    /// Bytes used by unpacked layers and stored blobs.
    pub used_bytes: u64,
    /// Inodes used by unpacked layers and stored blobs.
    pub inodes_used: u64,
}

/// The image store: content, layers (through the snapshotter) and image records.
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Arc<redb::Database>,
    pub(crate) content: ContentStore,
    pub(crate) snapshotter: Arc<Snapshotter>,
    pub(crate) client: Client,
    pub(crate) config: ImageStoreConfig,
    pub(crate) image_flight: KeyedLocks,
    pub(crate) layer_flight: KeyedLocks,
    /// Serializes a pull's final commit with removals' cleanup.
    pub(crate) commit_lock: Mutex<()>,
}

impl ImageStore {
    /// Open the store under `root` (`<root>/content`, `<root>/snapshots`, `<root>/containers`)
    /// with the daemon's database, and clean up what an interrupted run left.
    pub fn open(root: &Path, db: Arc<redb::Database>, config: ImageStoreConfig) -> Result<Self> {
        metadata::ensure_tables(&db)?;
        let snapshotter = Arc::new(Snapshotter::open(root, db.clone())?);
        let content = ContentStore::open(&root.join(CONTENT_DIR))?;
        let client = Client::new(RegistryConfig {
            config_path: config.registry_config_path.clone(),
            docker_config_path: config.docker_config_path.clone(),
            ..Default::default()
        });
        let store = ImageStore {
            inner: Arc::new(Inner {
                db,
                content,
                snapshotter,
                client,
                config,
                image_flight: KeyedLocks::default(),
                layer_flight: KeyedLocks::default(),
                commit_lock: Mutex::new(()),
            }),
        };
        store.reconcile()?;
        Ok(store)
    }

    /// The snapshotter, shared with the container side of the daemon.
    pub fn snapshotter(&self) -> &Arc<Snapshotter> {
        &self.inner.snapshotter
    }

    /// Pull `reference` (normalized: `busybox` is `docker.io/library/busybox:latest`) and
    /// return the stored image. Concurrent pulls of the same reference or layer share the work.
    pub async fn pull(&self, reference: &str, credentials: Option<Credentials>) -> Result<Image> {
        let reference = Reference::parse(reference)?;
        self.inner.pull(&reference, credentials.as_ref()).await
    }

    /// Find an image by ID (`sha256:<hex>` or `<hex>`), tag, repo digest, or unique ID prefix.
    pub fn resolve(&self, ref_or_id: &str) -> Result<Option<Image>> {
        Ok(self.lookup(ref_or_id)?.map(|(image, _)| image))
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<Image>> {
        metadata::list(&self.inner.db)
    }

    /// Remove by tag (only that tag, while the image has others) or by ID / digest (the whole
    /// image, its unused layers and blobs). Returns false if nothing matched.
    pub fn remove(&self, ref_or_id: &str) -> Result<bool> {
        let _commit = self
            .inner
            .commit_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some((image, name)) = self.lookup(ref_or_id)? else {
            return Ok(false);
        };
        if let Some(tag) = name.filter(|n| image.repo_tags.contains(n) && image.repo_tags.len() > 1)
        {
            metadata::remove_tag(&self.inner.db, &image.id, &tag)?;
            info!(image = %image.id, %tag, "removed tag");
            return Ok(true);
        }
        metadata::remove(&self.inner.db, &image.id)?;
        self.inner
            .snapshotter
            .remove_lease(&image_lease(&image.id))?;
        self.inner.snapshotter.gc()?;
        self.remove_unreferenced_blobs()?;
        info!(image = %image.id, "removed image");
        Ok(true)
    }

    /// Pin an image so kubelet never garbage-collects it (pause images).
    pub fn pin(&self, ref_or_id: &str) -> Result<()> {
        let (image, _) = self
            .lookup(ref_or_id)?
            .ok_or_else(|| Error::ImageNotFound(ref_or_id.to_string()))?;
        metadata::set_pinned(&self.inner.db, &image.id, true)
    }

    /// Space used by layers and blobs.
    pub fn fs_info(&self) -> Result<FsUsage> {
        let (mut used_bytes, mut inodes_used) = self.inner.content.usage()?;
        for (_, layer) in self.inner.snapshotter.layers()? {
            used_bytes += layer.size_bytes;
            inodes_used += layer.inodes;
        }
        Ok(FsUsage {
            mountpoint: self.inner.snapshotter.snapshots_dir(),
            used_bytes,
            inodes_used,
        })
    }

    /// The image and, if found by name, the name.
    fn lookup(&self, query: &str) -> Result<Option<(Image, Option<String>)>> {
        let db = &self.inner.db;
        let hex = query.strip_prefix(ID_PREFIX).unwrap_or(query);
        let is_hex = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex && hex.len() == 64 {
            if let Some(image) = metadata::get(db, &format!("{ID_PREFIX}{hex}"))? {
                return Ok(Some((image, None)));
            }
        }
        if let Ok(reference) = Reference::parse(query) {
            let name = match reference.digest() {
                Some(d) => reference.repo_digest(d),
                None => reference.tagged().unwrap_or_default(),
            };
            if let Some(id) = metadata::id_by_name(db, &name)? {
                if let Some(image) = metadata::get(db, &id)? {
                    return Ok(Some((image, Some(name))));
                }
            }
        }
        if is_hex {
            let matches: Vec<Image> = metadata::list(db)?
                .into_iter()
                .filter(|i| {
                    i.id.strip_prefix(ID_PREFIX)
                        .is_some_and(|h| h.starts_with(hex))
                })
                .collect();
            return match matches.len() {
                0 => Ok(None),
                1 => Ok(matches.into_iter().next().map(|i| (i, None))),
                _ => Err(Error::Ambiguous(query.to_string())),
            };
        }
        Ok(None)
    }

    /// Delete blobs no image lists.
    fn remove_unreferenced_blobs(&self) -> Result<()> {
        let keep: std::collections::HashSet<String> = metadata::list(&self.inner.db)?
            .into_iter()
            .flat_map(|i| i.blobs)
            .collect();
        for digest in self.inner.content.list()? {
            if !keep.contains(digest.as_str()) {
                self.inner.content.delete(&digest)?;
            }
        }
        Ok(())
    }

    /// After a crash: drop pull leases and leases of images without a record, then free what
    /// nobody holds.
    fn reconcile(&self) -> Result<()> {
        let snap = &self.inner.snapshotter;
        for owner in snap.lease_owners()? {
            let stale = owner.starts_with(PULL_LEASE_PREFIX)
                || owner
                    .strip_prefix(IMAGE_LEASE_PREFIX)
                    .is_some_and(|id| metadata::get(&self.inner.db, id).ok().flatten().is_none());
            if stale {
                warn!(%owner, "dropping stale layer lease");
                snap.remove_lease(&owner)?;
            }
        }
        snap.gc()?;
        self.remove_unreferenced_blobs()
    }

    /// The blob store (read-only use: tests and image inspection).
    pub fn content(&self) -> &ContentStore {
        &self.inner.content
    }

    /// Read a stored blob by digest, e.g. an image's config for `ImageStatus` verbose info.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let d = Digest::parse(digest).map_err(|reason| Error::hostile(digest, reason))?;
        self.inner.content.read(&d)
    }
}
