//! ImageService end to end through the daemon: tags and digests, removal semantics, image users,
//! filesystem usage, whiteouts seen from inside a container, shared layers outliving their image
//! while a container uses them, and hostile images refused without a trace.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::Duration;

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

const GCR: &str = "gcr.io/k8s-staging-cri-tools";
const LOCAL: &str = "registry.k8s.io/longshore-test";

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

async fn status(d: &mut TestDaemon, image: &str) -> Option<Image> {
    d.client
        .image
        .image_status(ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .image
}

async fn list(d: &mut TestDaemon) -> Vec<Image> {
    d.client
        .image
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
}

async fn remove(d: &mut TestDaemon, image: &str) {
    d.client
        .image
        .remove_image(RemoveImageRequest { image: spec(image) })
        .await
        .unwrap();
}

async fn fs_used(d: &mut TestDaemon) -> (u64, u64) {
    let info = d
        .client
        .image
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let fs = &info.image_filesystems[0];
    assert!(fs.timestamp > 0);
    assert!(std::path::Path::new(&fs.fs_id.as_ref().unwrap().mountpoint).exists());
    (
        fs.used_bytes.as_ref().unwrap().value,
        fs.inodes_used.as_ref().unwrap().value,
    )
}

/// The manifest digest the image builder pushed for `repo:tag`.
fn pushed_digest(repo_tag: &str) -> String {
    let dir = std::env::var("LONGSHORE_REGISTRY_DIR")
        .unwrap_or_else(|_| "/tmp/longshore-registry".into());
    let text = std::fs::read_to_string(format!("{dir}/images/digests.json"))
        .expect("run scripts/setup-test-host.sh");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[repo_tag]["digest"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_digests_and_removal() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let id1 = d.pull(&format!("{GCR}/test-image-tags:1")).await;
    let id2 = d.pull(&format!("{GCR}/test-image-tags:2")).await;
    let id3 = d.pull(&format!("{GCR}/test-image-tags:3")).await;
    assert!(id1 == id2 && id2 == id3, "three tags, one image");
    let images = list(&mut d).await;
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags.len(), 3, "{:?}", images[0].repo_tags);

    // A tag removes only that tag while others remain.
    remove(&mut d, &format!("{GCR}/test-image-tags:1")).await;
    let left = status(&mut d, &id1).await.expect("still there by id");
    assert_eq!(left.repo_tags.len(), 2);
    assert!(
        status(&mut d, &format!("{GCR}/test-image-tags:1"))
            .await
            .is_none()
    );
    // By id removes the image.
    remove(&mut d, &id1).await;
    assert!(list(&mut d).await.is_empty());
    // Removing what is not there is fine.
    remove(&mut d, &id1).await;

    // By digest: pull, see the repo digest, remove by it.
    let digest = pushed_digest("k8s-staging-cri-tools/test-image-1:latest");
    let by_digest = format!("{GCR}/test-image-1@{digest}");
    let id = d.pull(&by_digest).await;
    let image = status(&mut d, &by_digest).await.unwrap();
    assert_eq!(image.id, id);
    assert!(
        image.repo_digests.contains(&by_digest),
        "{:?}",
        image.repo_digests
    );
    remove(&mut d, &by_digest).await;
    assert!(status(&mut d, &id).await.is_none());

    // Short names go to docker.io/library.
    let id = d.pull("busybox").await;
    let image = status(&mut d, "docker.io/library/busybox:latest")
        .await
        .unwrap();
    assert_eq!(image.id, id);

    // A reference that does not parse, and one the registry does not have.
    let err = d
        .client
        .image
        .pull_image(PullImageRequest {
            image: spec("UPPER/Case:bad tag"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = d
        .client
        .image
        .pull_image(PullImageRequest {
            image: spec(&format!("{GCR}/nope:1")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn image_users_and_formats() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(&format!("{GCR}/test-image-user-uid")).await;
    let image = status(&mut d, &format!("{GCR}/test-image-user-uid:latest"))
        .await
        .unwrap();
    assert_eq!(image.uid.map(|u| u.value), Some(1002));
    d.pull(&format!("{GCR}/test-image-user-username")).await;
    let image = status(&mut d, &format!("{GCR}/test-image-user-username"))
        .await
        .unwrap();
    assert_eq!(image.username, "www-data");
    assert!(image.uid.is_none());
    // zstd layers, a multi-arch index (amd64 chosen), an uncompressed image.
    for name in ["zstd", "multiarch", "multiarch-docker", "uncompressed"] {
        d.pull(&format!("{LOCAL}/{name}:latest")).await;
    }
    let verbose = d
        .client
        .image
        .image_status(ImageStatusRequest {
            image: spec(&format!("{LOCAL}/multiarch:latest")),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verbose.info["info"].contains("amd64"), "{:?}", verbose.info);
    // Filtered list.
    let filtered = d
        .client
        .image
        .list_images(ListImagesRequest {
            filter: Some(ImageFilter {
                image: spec(&format!("{LOCAL}/zstd:latest")),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].repo_tags, [format!("{LOCAL}/zstd:latest")]);
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_see_whiteouts_and_keep_layers_of_removed_images() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let (bytes0, _) = fs_used(&mut d).await;
    let image = format!("{LOCAL}/layers-shared:latest");
    d.pull(&image).await;
    let (bytes1, inodes1) = fs_used(&mut d).await;
    assert!(bytes1 > bytes0 && inodes1 > 0);

    let pod = d.pod_config("layers");
    let pod_id = d.run_pod(&pod).await;
    let mut config = TestDaemon::container_config(
        "view",
        &[
            "sh",
            "-c",
            "ls -a /data | tr '\\n' ' '; echo; ls -a /data/opq | tr '\\n' ' '; echo; cat /data/a.txt /data/c.txt; sleep 3600",
        ],
    );
    config.image = spec(&image);
    let id = d.run_container(&pod_id, &pod, config).await;
    let log = {
        let path = d.status(&id).await.log_path;
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("c from layer 2") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        text
    };
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect();
    assert!(
        lines[0].contains("a.txt") && lines[0].contains("c.txt"),
        "{lines:?}"
    );
    assert!(
        !lines[0].contains("b.txt"),
        "b.txt was whited out: {lines:?}"
    );
    assert!(
        !lines[0].contains(".wh."),
        "no whiteout file leaks: {lines:?}"
    );
    assert!(
        lines[1].contains("new1") && !lines[1].contains("old1"),
        "opaque dir: {lines:?}"
    );
    assert!(
        lines.contains(&"a from layer 1") && lines.contains(&"c from layer 2"),
        "{lines:?}"
    );

    // Remove the image while its container runs: the layers stay until the container goes.
    remove(&mut d, &image).await;
    assert!(list(&mut d).await.is_empty());
    let (bytes2, _) = fs_used(&mut d).await;
    assert!(
        bytes2 >= bytes1 - 4096 * 4,
        "layers still held by the container ({bytes1} -> {bytes2})"
    );
    let second = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some({
                let mut c = TestDaemon::container_config("again", &["true"]);
                c.image = spec(&image);
                c
            }),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        second.code(),
        Code::NotFound,
        "the image itself is gone: {second}"
    );
    d.remove_all_pods().await;
    // Layers are collected in the background, right after the removal.
    let mut bytes3 = bytes1;
    for _ in 0..100 {
        bytes3 = fs_used(&mut d).await.0;
        if bytes3 < bytes1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        bytes3 < bytes1,
        "layers freed with the last container ({bytes1} -> {bytes3})"
    );
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_images_are_refused_and_leave_nothing() {
    longshore_testkit::require_root!();
    // A layer limit the decompression bomb exceeds.
    let opts = common::Options {
        registry_extra: "max_layer_size = \"64MiB\"".into(),
        ..Default::default()
    };
    let mut d = TestDaemon::start_with(opts).await;
    let before = fs_used(&mut d).await;
    let cases = [
        ("traversal", "'..'"),
        ("absolute", "absolute path"),
        ("symlink", "outside the layer"),
        ("hardlink-symlink", "outside the layer"),
        ("digest", "digest"),
        ("diffid", "diff ID"),
        ("bomb", "limit"),
        ("badconfig", "unparseable image config"),
        ("badmanifest", "unparseable image manifest"),
    ];
    for (name, why) in cases {
        let image = format!("{LOCAL}/hostile-{name}:latest");
        let err = d
            .client
            .image
            .pull_image(PullImageRequest {
                image: spec(&image),
                ..Default::default()
            })
            .await
            .expect_err(&image);
        assert_eq!(err.code(), Code::FailedPrecondition, "{name}: {err}");
        assert!(
            err.message().contains(why),
            "{name}: {err} should say {why:?}"
        );
    }
    assert!(list(&mut d).await.is_empty());
    assert_eq!(fs_used(&mut d).await, before, "no blob or layer kept");
    d.assert_nothing_left();
}
