//! The pull pipeline: resolve, fetch the config, then stream every missing layer through
//! decompression into its snapshot, several layers at once; commit metadata last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use longshore_registry::{Credentials, Descriptor, Digest, Reference, Session};
use longshore_snapshot::{LayerRecord, Snapshotter, image_lease};
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::metadata::{self, Image, RawConfig};
use crate::store::{ImageStoreConfig, Inner};
use crate::unpack::{self, ChannelReader, StopFlags, UnpackError, known_layer_type};

/// Image configs larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Chunks buffered between download and unpack (reqwest chunks are up to ~16 KiB on HTTP/1).
const CHANNEL_DEPTH: usize = 256;
/// Log a progress line every this many bytes of a layer.
const PROGRESS_STEP: u64 = 32 << 20;

/// Removes a pull's temporary lease when the pull ends, however it ends.
struct LeaseGuard<'a> {
    snapshotter: &'a Snapshotter,
    owner: String,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.snapshotter.remove_lease(&self.owner) {
            tracing::warn!(owner = %self.owner, error = %e, "cannot drop pull lease");
        }
    }
}

/// One layer to fetch.
struct LayerJob<'a> {
    desc: &'a Descriptor,
    diff_id: &'a Digest,
    chain_id: &'a str,
    parent: Option<&'a str>,
}

impl Inner {
    /// Pull `reference` (already normalized); see [`crate::ImageStore::pull`].
    pub(crate) async fn pull(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<Image> {
        let started = Instant::now();
        let _flight = self.image_flight.lock(&reference.to_string()).await;
        let session = self.client.session(reference, credentials)?;
        let resolved = self
            .timed(
                reference,
                session.pull_manifest(reference, &self.config.platform),
            )
            .await??;
        let manifest = &resolved.image;
        let what = format!("{reference} ({})", resolved.manifest.digest);
        let config_bytes = self
            .config_blob(&session, reference, &manifest.config)
            .await?;
        let raw = RawConfig::parse(
            &format!("config {} of {what}", manifest.config.digest),
            &config_bytes,
        )?;
        if raw.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::hostile(
                &what,
                format!(
                    "{} layers but {} diff IDs",
                    manifest.layers.len(),
                    raw.rootfs.diff_ids.len()
                ),
            ));
        }
        if let Some(bad) = manifest
            .layers
            .iter()
            .find(|l| !known_layer_type(&l.media_type))
        {
            return Err(Error::hostile(
                bad.digest.as_str(),
                format!("unsupported layer media type {:?}", bad.media_type),
            ));
        }
        let chain_ids = metadata::chain_ids(&raw.rootfs.diff_ids);
        let lease = LeaseGuard {
            snapshotter: &self.snapshotter,
            owner: format!("pull:{:016x}", rand::random::<u64>()),
        };
        let jobs: Vec<LayerJob<'_>> = (0..manifest.layers.len())
            .map(|i| LayerJob {
                desc: &manifest.layers[i],
                diff_id: &raw.rootfs.diff_ids[i],
                chain_id: &chain_ids[i],
                parent: i.checked_sub(1).map(|p| chain_ids[p].as_str()),
            })
            .collect();
        // Futures collected first: a closure inside the stream type would make the whole pull
        // future fail rustc's higher-ranked Send check when the daemon awaits it in a handler.
        let layer_futures: Vec<_> = jobs
            .iter()
            .map(|job| self.layer(&session, reference, job, &lease.owner))
            .collect();
        let fetched: Vec<u64> = futures::stream::iter(layer_futures)
            .buffer_unordered(self.config.max_concurrent_downloads.max(1))
            .try_collect()
            .await?;

        let id = format!("sha256:{}", manifest.config.digest.hex());
        let mut blobs = vec![
            (manifest.config.digest.clone(), config_bytes),
            (
                resolved.manifest.digest.clone(),
                resolved.manifest.bytes.clone(),
            ),
        ];
        if let Some(index) = &resolved.index {
            blobs.push((index.digest.clone(), index.bytes.clone()));
        }
        let top_digest = resolved
            .index
            .as_ref()
            .map(|i| &i.digest)
            .unwrap_or(&resolved.manifest.digest);
        let image = Image {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            config: raw.runtime(),
            chain_ids: chain_ids.clone(),
            diff_ids: raw
                .rootfs
                .diff_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            manifest_digest: resolved.manifest.digest.to_string(),
            blobs: blobs.iter().map(|(d, _)| d.to_string()).collect(),
            pinned: false,
            platform: raw.platform(),
            created: raw.created.clone(),
        };
        let tags: Vec<String> = reference.tagged().into_iter().collect();
        let digests = vec![reference.repo_digest(top_digest)];
        let stored = {
            // Content, lease and record together, excluding a concurrent remove's cleanup.
            let _commit = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
            for (digest, bytes) in &blobs {
                self.content.write(digest, bytes)?;
            }
            self.snapshotter.add_lease(&image_lease(&id), &chain_ids)?;
            metadata::put(&self.db, image, &tags, &digests)?
        };
        drop(lease);
        info!(
            %reference,
            id = %stored.id,
            layers = chain_ids.len(),
            fetched_layers = fetched.iter().filter(|b| **b > 0).count(),
            fetched_bytes = fetched.iter().sum::<u64>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pulled image"
        );
        Ok(stored)
    }

    async fn config_blob(
        &self,
        session: &Session,
        reference: &Reference,
        desc: &Descriptor,
    ) -> Result<Bytes> {
        if self.content.has(&desc.digest) {
            let bytes = self.content.read(&desc.digest)?;
            if Digest::of(&bytes) == desc.digest {
                return Ok(Bytes::from(bytes));
            }
        }
        Ok(self
            .timed(reference, session.fetch_blob_bytes(desc, MAX_CONFIG_BYTES))
            .await??)
    }

    /// Make sure one layer is unpacked; returns the compressed bytes fetched (0 if present).
    async fn layer(
        &self,
        session: &Session,
        reference: &Reference,
        job: &LayerJob<'_>,
        lease: &str,
    ) -> Result<u64> {
        let _flight = self.layer_flight.lock(job.chain_id).await;
        // Lease before looking: from here on gc cannot free it under us.
        self.snapshotter
            .add_lease(lease, &[job.chain_id.to_string()])?;
        if self.snapshotter.layer(job.chain_id)?.is_some() {
            debug!(chain_id = job.chain_id, "layer already unpacked");
            return Ok(0);
        }
        let started = Instant::now();
        let writer = self.snapshotter.begin_layer(job.chain_id)?;
        let what = format!("layer {} of {reference}", job.desc.digest);
        let mut stream = self
            .timed(reference, session.fetch_blob(job.desc))
            .await??;
        if let Some(len) = stream.content_length {
            if len != job.desc.size {
                return Err(Error::hostile(
                    &what,
                    format!(
                        "registry sends {len} bytes, descriptor says {}",
                        job.desc.size
                    ),
                ));
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let flags = Arc::new(StopFlags::default());
        let reader = ChannelReader::new(rx, job.desc.size, flags.clone());
        let dest = writer.fs_dir().to_path_buf();
        let limit = LayerLimit::new(&self.config, job.desc.size);
        let (max_bytes, sync) = (limit.bytes, self.config.sync_layers);
        let expected = job.desc.digest.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            unpack::unpack(reader, flags, &dest, max_bytes, sync, &expected)
        });
        let progress = self.config.pull_progress_timeout;
        let feed = async move {
            let mut received = 0u64;
            let mut next_log = PROGRESS_STEP;
            loop {
                let chunk = match tokio::time::timeout(progress, stream.next()).await {
                    Err(_) => return Err(stalled(reference, progress)),
                    Ok(None) => return Ok(received),
                    Ok(Some(chunk)) => chunk?,
                };
                received += chunk.len() as u64;
                if received >= next_log {
                    debug!(%reference, layer = %job.desc.digest, received, total = job.desc.size, "layer progress");
                    next_log += PROGRESS_STEP;
                }
                if tx.send(chunk).await.is_err() {
                    // The unpacker stopped early; its result says why.
                    return Ok(received);
                }
            }
        };
        let fed = feed.await;
        let unpacked = unpacker.await.map_err(|e| Error::Task(e.to_string()))?;
        let received = fed?;
        let stats = unpacked.map_err(|e| unpack_error(&what, e, &limit))?;
        if stats.compressed_size != job.desc.size {
            return Err(Error::hostile(
                &what,
                format!(
                    "got {} bytes, descriptor says {}",
                    stats.compressed_size, job.desc.size
                ),
            ));
        }
        if stats.compressed_digest != job.desc.digest {
            return Err(Error::hostile(
                &what,
                format!("content digest is {}", stats.compressed_digest),
            ));
        }
        if &stats.diff_id != job.diff_id {
            return Err(Error::hostile(
                &what,
                format!(
                    "uncompressed digest {} does not match diff ID {}",
                    stats.diff_id, job.diff_id
                ),
            ));
        }
        let record = LayerRecord {
            parent: job.parent.map(str::to_string),
            diff_id: job.diff_id.to_string(),
            size_bytes: stats.bytes,
            inodes: stats.inodes,
        };
        writer.commit(record, lease)?;
        let elapsed = started.elapsed();
        info!(
            %reference,
            layer = %job.desc.digest,
            compressed = received,
            unpacked = stats.bytes,
            files = stats.inodes,
            elapsed_ms = elapsed.as_millis() as u64,
            "layer unpacked"
        );
        Ok(received)
    }

    /// Run a registry call under the progress timeout.
    async fn timed<T>(
        &self,
        reference: &Reference,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        tokio::time::timeout(self.config.pull_progress_timeout, f)
            .await
            .map_err(|_| stalled(reference, self.config.pull_progress_timeout))
    }
}

fn stalled(reference: &Reference, timeout: Duration) -> Error {
    Error::Stalled {
        reference: reference.to_string(),
        seconds: timeout.as_secs(),
    }
}

/// How many uncompressed bytes one layer may have: the configured cap, or less when the ratio
/// guard says so: `max_layer_ratio` times the descriptor's (verified) compressed size, but never
/// less than `layer_ratio_floor`. An 8 GiB layer of zeros in an 8 MiB blob is refused at
/// max(256 MiB, 800 MiB) by default, not written in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayerLimit {
    bytes: u64,
    /// The ratio, when it is what set `bytes`.
    by_ratio: Option<u64>,
    compressed: u64,
}

impl LayerLimit {
    fn new(config: &ImageStoreConfig, compressed: u64) -> LayerLimit {
        let cap = config.max_layer_bytes;
        let ratio = config.max_layer_ratio;
        let by_ratio = compressed
            .saturating_mul(ratio)
            .max(config.layer_ratio_floor);
        if ratio == 0 || by_ratio >= cap {
            return LayerLimit {
                bytes: cap,
                by_ratio: None,
                compressed,
            };
        }
        LayerLimit {
            bytes: by_ratio,
            by_ratio: Some(ratio),
            compressed,
        }
    }

    fn refusal(&self) -> String {
        match self.by_ratio {
            None => format!(
                "uncompressed size exceeds the {} byte limit (registry.max_layer_size; decompression bomb?)",
                self.bytes
            ),
            Some(ratio) => format!(
                "uncompressed size exceeds {} bytes: more than {ratio}x its {} compressed bytes \
                 (registry.max_layer_ratio; decompression bomb?)",
                self.bytes, self.compressed
            ),
        }
    }
}

fn unpack_error(what: &str, e: UnpackError, limit: &LayerLimit) -> Error {
    match e {
        UnpackError::Hostile(reason) => Error::hostile(what, reason),
        UnpackError::Invalid(reason) => Error::hostile(what, format!("malformed layer: {reason}")),
        UnpackError::TooLarge => Error::hostile(what, limit.refusal()),
        UnpackError::Oversize => Error::hostile(what, "more bytes than the descriptor's size"),
        UnpackError::DigestMismatch(actual) => {
            Error::hostile(what, format!("content digest is {actual}"))
        }
        UnpackError::Read(e) => Error::hostile(what, format!("corrupt or truncated stream: {e}")),
        UnpackError::Io { op, path, source } => Error::Io { op, path, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ratio: u64) -> ImageStoreConfig {
        ImageStoreConfig {
            max_layer_bytes: 16 << 30,
            max_layer_ratio: ratio,
            layer_ratio_floor: 256 << 20,
            ..Default::default()
        }
    }

    #[test]
    fn the_ratio_guard_limits_big_expanding_layers() {
        // An 8 MiB blob may expand to 800 MiB, not to the 16 GiB cap.
        let limit = LayerLimit::new(&config(100), 8 << 20);
        assert_eq!((limit.bytes, limit.by_ratio), (800 << 20, Some(100)));
        assert!(
            limit
                .refusal()
                .contains("100x its 8388608 compressed bytes")
        );
    }

    #[test]
    fn small_layers_keep_the_floor_and_big_ones_the_cap() {
        // A few KiB of config files: the floor, whatever they expand to.
        let small = LayerLimit::new(&config(100), 4096);
        assert_eq!((small.bytes, small.by_ratio), (256 << 20, Some(100)));
        // 1 GiB compressed: 100x is past the cap, so the cap it is.
        let big = LayerLimit::new(&config(100), 1 << 30);
        assert_eq!((big.bytes, big.by_ratio), (16 << 30, None));
        assert!(big.refusal().contains("registry.max_layer_size"));
        // Ratio 0: off.
        let off = LayerLimit::new(&config(0), 4096);
        assert_eq!((off.bytes, off.by_ratio), (16 << 30, None));
        // No overflow on absurd descriptor sizes.
        let huge = LayerLimit::new(&config(u64::MAX), u64::MAX);
        assert_eq!(huge.bytes, 16 << 30);
    }
}
