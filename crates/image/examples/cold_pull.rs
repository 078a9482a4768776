//! Cold-pull benchmark: pull one image into an empty store and print the time.
//!
//! ```sh
//! tests/registry/start.sh && python3 tests/images/build_images.py --bench
//! cargo run --release -p longshore-image --example cold_pull -- [REFERENCE] [--runs N] [--no-sync] [--dir DIR]
//! ```
//! REFERENCE defaults to 127.0.0.1:5000/longshore-test/big:latest. Each run starts from an empty
//! store under DIR (default /var/tmp), so the page cache holds the registry's files but nothing
//! of ours. Prints one line per run and the median.

use std::sync::Arc;
use std::time::Instant;

use longshore_image::{ImageStore, ImageStoreConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reference = "127.0.0.1:5000/longshore-test/big:latest".to_string();
    let mut runs = 3;
    let mut sync = true;
    let mut base = std::path::PathBuf::from("/var/tmp");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--no-sync" => sync = false,
            "--dir" => base = args.next().ok_or("--dir DIR")?.into(),
            other => reference = other.to_string(),
        }
    }
    let mut times = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir_in(&base)?;
        let db = Arc::new(redb::Database::create(dir.path().join("longshore.db"))?);
        let config = ImageStoreConfig {
            sync_layers: sync,
            ..Default::default()
        };
        let store = ImageStore::open(dir.path(), db, config)?;
        let started = Instant::now();
        let image = store.pull(&reference, None).await?;
        let secs = started.elapsed().as_secs_f64();
        let mb = image.size as f64 / 1e6;
        println!(
            "run {run}: {reference} {mb:.1} MB in {} layers: {secs:.3} s ({:.0} MB/s)",
            image.chain_ids.len(),
            mb / secs
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median cold pull: {:.3} s (sync_layers={sync})",
        times[times.len() / 2]
    );
    Ok(())
}
