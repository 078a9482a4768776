//! Hostile and broken images are refused with a clear error and leave nothing behind; an
//! interrupted or stalled pull leaves nothing and a retry succeeds; concurrent pulls fetch each
//! blob once. See tests/common.rs for how to start the registry.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use common::*;
use longshore_image::{ErrorKind, ImageStoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ESCAPES: &[&str] = &[
    "/tmp/escape-absolute",
    "/tmp/longshore-escape-symlink",
    "/tmp/longshore-escape-abs-symlink",
];

#[tokio::test]
async fn hostile_images_are_refused_and_leave_nothing() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let store = open(&root, config());
    let mut cases = vec![
        ("traversal", "'..'"),
        ("absolute", "absolute path"),
        ("symlink", "outside the layer"),
        ("symlink-absolute", "outside the layer"),
        ("hardlink", "'..'"),
        ("hardlink-symlink", "outside the layer"),
        ("diffid", "diff ID"),
        ("size", "bytes"),
        ("bomb", "max_layer_size"),
        ("badconfig", "unparseable image config"),
        ("badmanifest", "unparseable image manifest"),
    ];
    let tampered = std::env::var("LONGSHORE_REGISTRY_DIR")
        .unwrap_or_else(|_| "/tmp/longshore-registry".into());
    if Path::new(&tampered).join("storage").exists() {
        cases.push(("digest", "content digest"));
    }
    for (name, why) in cases {
        let err = store
            .pull(
                &format!("{REGISTRY}/longshore-test/hostile-{name}:latest"),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Hostile, "{name}: {err}");
        assert!(
            err.to_string().contains(why),
            "{name}: {err} should mention {why:?}"
        );
        assert_empty(&store, &root);
        assert!(!dir.path().join("escape-traversal").exists());
        for escape in ESCAPES {
            assert!(!Path::new(escape).exists(), "{name} wrote {escape}");
        }
    }
}

#[tokio::test]
async fn a_layer_expanding_past_the_ratio_is_refused_before_the_cap() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // The size cap far away: only the ratio can stop 512 MiB of zeros in a ~0.5 MiB blob.
    let strict = ImageStoreConfig {
        max_layer_bytes: 16 << 30,
        max_layer_ratio: 100,
        layer_ratio_floor: 64 << 20,
        ..config()
    };
    let store = open(&root, strict);
    let err = store
        .pull(
            &format!("{REGISTRY}/longshore-test/hostile-bomb:latest"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Hostile, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("max_layer_ratio") && text.contains("100x"),
        "{text}"
    );
    assert!(
        text.contains(&(64u64 << 20).to_string()),
        "the floor is the limit: {text}"
    );
    assert_empty(&store, &root);
    // The floor: an ordinary image passes a ratio it exceeds, being small.
    let tight = ImageStoreConfig {
        max_layer_ratio: 1,
        layer_ratio_floor: 64 << 20,
        ..config()
    };
    let tight_root = dir.path().join("tight");
    std::fs::create_dir(&tight_root).unwrap();
    let store = open(&tight_root, tight);
    store
        .pull("registry.k8s.io/e2e-test-images/busybox:1.29-2", None)
        .await
        .unwrap();
}

/// A TCP proxy to the registry that can cut (mode CUT) or stall (mode STALL) a response after
/// `LIMIT` bytes, or pass everything (mode PASS).
const PASS: u8 = 0;
const CUT: u8 = 1;
const STALL: u8 = 2;
const LIMIT: usize = 300_000;

async fn start_proxy(mode: Arc<AtomicU8>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mode = mode.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(REGISTRY).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut ur, mut uw) = upstream.split();
                let up = tokio::io::copy(&mut cr, &mut uw);
                let down = async {
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 16384];
                    loop {
                        let n = ur.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        if mode != PASS && sent + n > LIMIT {
                            if mode == STALL {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                            }
                            return; // CUT: drop the connection mid-body
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (port, task)
}

fn proxied_hosts(dir: &Path, port: u16) -> std::path::PathBuf {
    let hosts = dir.join("hosts");
    std::fs::create_dir_all(hosts.join("flaky.example")).unwrap();
    std::fs::write(
        hosts.join("flaky.example/hosts.toml"),
        format!("[host.\"http://127.0.0.1:{port}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    )
    .unwrap();
    hosts
}

#[tokio::test]
async fn interrupted_and_stalled_pulls_leave_nothing_and_retry_cleanly() {
    longshore_testkit::require_root!();
    require_registry();
    let mode = Arc::new(AtomicU8::new(CUT));
    let (port, proxy) = start_proxy(mode.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut cfg = config();
    cfg.registry_config_path = Some(proxied_hosts(dir.path(), port));
    cfg.pull_progress_timeout = Duration::from_secs(2);
    let store = open(&root, cfg);
    let image = "flaky.example/e2e-test-images/busybox:1.29-2";

    let err = store.pull(image, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "cut: {err}");
    assert_empty(&store, &root);

    mode.store(STALL, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let err = store.pull(image, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "stall: {err}");
    assert!(err.to_string().contains("no progress"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_empty(&store, &root);

    mode.store(PASS, Ordering::SeqCst);
    let pulled = store.pull(image, None).await.unwrap();
    assert_eq!(pulled.repo_tags, vec![image]);
    proxy.abort();
}

/// GET lines for `digest` with status 200 in the registry's access log.
fn blob_gets(digest: &str) -> usize {
    let log = std::fs::read_to_string(registry_log()).unwrap_or_default();
    log.lines()
        .filter(|l| {
            l.contains("\"GET /v2/")
                && l.contains(&format!("/blobs/{digest}"))
                && l.contains("\" 200 ")
        })
        .count()
}

#[tokio::test]
async fn concurrent_identical_pulls_fetch_each_blob_once() {
    longshore_testkit::require_root!();
    require_registry();
    assert!(
        registry_log().exists(),
        "registry log {} missing",
        registry_log().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    // test-image-2 is pulled by no other test: its config and top layer are its own.
    let image = format!("{REGISTRY}/k8s-staging-cri-tools/test-image-2:latest");
    let probe = longshore_registry::Reference::parse(&image).unwrap();
    let client = longshore_registry::Client::new(Default::default());
    let session = client.session(&probe, None).unwrap();
    let resolved = session
        .pull_manifest(&probe, &longshore_registry::Platform::host())
        .await
        .unwrap();
    let config_digest = resolved.image.config.digest.to_string();
    let top_digest = resolved.image.layers.last().unwrap().digest.to_string();
    let before = (blob_gets(&config_digest), blob_gets(&top_digest));

    let pulls: Vec<_> = (0..4).map(|_| store.pull(&image, None)).collect();
    let results = futures::future::join_all(pulls).await;
    let ids: Vec<String> = results.into_iter().map(|r| r.unwrap().id).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    tokio::time::sleep(Duration::from_millis(200)).await; // let the registry flush its log line
    let after = (blob_gets(&config_digest), blob_gets(&top_digest));
    assert_eq!(after.0 - before.0, 1, "config fetched once");
    assert_eq!(after.1 - before.1, 1, "layer fetched once");
}
