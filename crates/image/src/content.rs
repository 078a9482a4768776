//! The content store: blobs by digest under `<root>/content/blobs/sha256/<hex>`.
//!
//! Manifests, indexes and configs are kept here; compressed layers are not (they are unpacked
//! while downloading and never written whole). A blob is written to `ingest/` and renamed into
//! place only after its digest and size match, so a reader never sees a partial blob.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use longshore_registry::Digest;
use tracing::warn;

use crate::error::{Error, Result};

const BLOBS_DIR: &str = "blobs/sha256";
const INGEST_DIR: &str = "ingest";

/// Blobs by digest.
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Open `<dir>` (creating it) and discard leftovers of interrupted writes.
    pub fn open(dir: &Path) -> Result<Self> {
        let store = ContentStore {
            blobs: dir.join(BLOBS_DIR),
            ingest: dir.join(INGEST_DIR),
        };
        for d in [&store.blobs, &store.ingest] {
            std::fs::create_dir_all(d).map_err(Error::io("create", d))?;
        }
        // Only this process writes here, and it has just started: anything in ingest is stale.
        for entry in
            std::fs::read_dir(&store.ingest).map_err(Error::io("read dir", &store.ingest))?
        {
            let entry = entry.map_err(Error::io("read dir", &store.ingest))?;
            if let Err(e) = std::fs::remove_file(entry.path()) {
                warn!(path = %entry.path().display(), error = %e, "cannot remove stale ingest file");
            }
        }
        Ok(store)
    }

    /// Where a blob lives.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Is the blob present?
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    /// Read a blob whole.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        std::fs::read(&path).map_err(Error::io("read blob", path))
    }

    /// Store `data` as `digest`, refusing it if it does not hash to `digest`.
    pub fn write(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let actual = Digest::of(data);
        if &actual != digest {
            return Err(Error::hostile(
                digest.as_str(),
                format!("content hashes to {actual}"),
            ));
        }
        let target = self.path(digest);
        if target.exists() {
            return Ok(());
        }
        let temp = self
            .ingest
            .join(format!("{}-{}", digest.hex(), rand::random::<u64>()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&temp)
                .map_err(Error::io("create", &temp))?;
            f.write_all(data).map_err(Error::io("write", &temp))?;
            // Small and referenced by committed metadata: make it durable before the rename.
            f.sync_all().map_err(Error::io("fsync", &temp))?;
            std::fs::rename(&temp, &target).map_err(Error::io("rename into", &target))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Delete a blob (absent is fine).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", path)(e)),
        }
    }

    /// Every stored blob's digest.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.blobs).map_err(Error::io("read dir", &self.blobs))? {
            let entry = entry.map_err(Error::io("read dir", &self.blobs))?;
            if let Ok(d) = Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy()))
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Bytes and files the blobs use.
    pub fn usage(&self) -> Result<(u64, u64)> {
        let (mut bytes, mut files) = (0, 0);
        for d in self.list()? {
            if let Ok(m) = std::fs::metadata(self.path(&d)) {
                bytes += m.len();
                files += 1;
            }
        }
        Ok((bytes, files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_matching_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        assert!(store.write(&d, b"hellO").is_err());
        assert!(!store.has(&d));
        store.write(&d, b"hello").unwrap();
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(dir.path().join(INGEST_DIR))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        store.delete(&d).unwrap();
        store.delete(&d).unwrap();
        assert!(!store.has(&d));
    }
}
