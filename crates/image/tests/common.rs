//! Shared helpers for the image store's integration tests.
//!
//! These tests pull from the real test registries. Start them and push the images first
//! (from the repository root), then run as root:
//!
//! ```sh
//! tests/registry/start.sh
//! python3 tests/images/build_images.py --registry-storage /tmp/longshore-registry/storage
//! cargo test -p longshore-image
//! ```

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use longshore_image::{ImageStore, ImageStoreConfig};

pub const REGISTRY: &str = "127.0.0.1:5000";

pub fn require_registry() {
    for port in [5000, 5001] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "no test registry on 127.0.0.1:{port}: run tests/registry/start.sh and tests/images/build_images.py"
        );
    }
}

pub fn hosts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/registry/hosts.d")
}

pub fn registry_log() -> PathBuf {
    PathBuf::from(
        std::env::var("LONGSHORE_REGISTRY_DIR")
            .unwrap_or_else(|_| "/tmp/longshore-registry".into()),
    )
    .join("5000.log")
}

pub fn config() -> ImageStoreConfig {
    ImageStoreConfig {
        registry_config_path: Some(hosts_dir()),
        max_layer_bytes: 64 << 20,
        pull_progress_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

pub fn open(root: &Path, config: ImageStoreConfig) -> ImageStore {
    let db = Arc::new(redb::Database::create(root.join("longshore.db")).unwrap());
    ImageStore::open(root, db, config).unwrap()
}

/// Unmounts on drop, so a failing test leaves no mount behind.
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = longshore_snapshot::unmount(&self.0);
    }
}

/// Names in a directory (empty if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Assert the store holds nothing: no image, no blob, no layer, no ingest file.
pub fn assert_empty(store: &ImageStore, root: &Path) {
    assert!(
        store.list().unwrap().is_empty(),
        "images left: {:?}",
        store.list().unwrap()
    );
    assert!(
        entries(&root.join("content/blobs/sha256")).is_empty(),
        "blobs left"
    );
    assert!(
        entries(&root.join("content/ingest")).is_empty(),
        "ingest files left"
    );
    assert!(
        entries(&root.join("snapshots")).is_empty(),
        "snapshots left: {:?}",
        entries(&root.join("snapshots"))
    );
    assert!(store.snapshotter().layers().unwrap().is_empty());
}
