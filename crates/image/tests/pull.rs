//! Pulls against the real test registry: tags, digests, platforms, compressions, whiteouts,
//! removal and layer sharing. See tests/common.rs for how to start the registry.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use longshore_image::ErrorKind;

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the length passed.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[tokio::test]
async fn pull_by_tag_then_by_digest_and_resolve_every_way() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let image = store
        .pull("registry.k8s.io/e2e-test-images/busybox:1.29-2", None)
        .await
        .unwrap();
    assert_eq!(
        image.repo_tags,
        vec!["registry.k8s.io/e2e-test-images/busybox:1.29-2"]
    );
    assert_eq!(image.repo_digests.len(), 1);
    assert_eq!(image.config.cmd, vec!["sh"]);
    assert_eq!(image.platform, "linux/amd64");
    let top = store
        .snapshotter()
        .layer_dir(image.chain_ids.last().unwrap())
        .unwrap();
    assert!(top.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::metadata(top.join("bin/sh")).unwrap().nlink(),
        std::fs::metadata(top.join("bin/busybox")).unwrap().nlink()
    );
    assert!(
        std::fs::metadata(top.join("bin/busybox")).unwrap().nlink() > 100,
        "applets are hard links"
    );
    assert_eq!(
        std::fs::metadata(top.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );

    let hex = image.id.strip_prefix("sha256:").unwrap();
    for query in [
        image.id.as_str(),
        hex,
        &hex[..12],
        "registry.k8s.io/e2e-test-images/busybox:1.29-2",
        image.repo_digests[0].as_str(),
    ] {
        assert_eq!(
            store.resolve(query).unwrap().map(|i| i.id),
            Some(image.id.clone()),
            "{query}"
        );
    }
    assert!(
        store
            .resolve("registry.k8s.io/e2e-test-images/busybox:other")
            .unwrap()
            .is_none()
    );

    // Pull by digest into a second store: same image, no tag.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = open(dir2.path(), config());
    let by_digest = store2.pull(&image.repo_digests[0], None).await.unwrap();
    assert_eq!(by_digest.id, image.id);
    assert!(by_digest.repo_tags.is_empty());
    assert_eq!(by_digest.repo_digests, image.repo_digests);

    // `busybox` means docker.io/library/busybox:latest (a Docker schema 2 image, mirrored).
    // Its config is the same as the e2e busybox's, so it is the same image with one more tag.
    let hub = store.pull("busybox", None).await.unwrap();
    assert_eq!(hub.id, image.id);
    assert_eq!(
        hub.repo_tags,
        vec![
            "registry.k8s.io/e2e-test-images/busybox:1.29-2",
            "docker.io/library/busybox:latest"
        ]
    );
    assert_eq!(
        hub.repo_digests.len(),
        2,
        "the Docker manifest has its own digest"
    );
    assert_eq!(store.list().unwrap().len(), 1);
    let usage = store.fs_info().unwrap();
    assert_eq!(usage.mountpoint, dir.path().join("snapshots"));
    assert!(
        usage.used_bytes > 1_000_000 && usage.inodes_used > 10,
        "{usage:?}"
    );
}

#[tokio::test]
async fn errors_have_kinds() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let err = store
        .pull(&format!("{REGISTRY}/longshore-test/layers:nope"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = store.pull("Not A Reference", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidReference, "{err}");
    assert!(
        !store
            .remove("sha256:0000000000000000000000000000000000000000000000000000000000000000")
            .unwrap()
    );
    assert_empty(&store, dir.path());
}

#[tokio::test]
async fn multi_arch_index_and_manifest_list_pick_amd64() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    for name in ["multiarch", "multiarch-docker"] {
        let image = store
            .pull(&format!("{REGISTRY}/longshore-test/{name}:latest"), None)
            .await
            .unwrap();
        assert_eq!(image.platform, "linux/amd64", "{name}");
        let layer = store.snapshotter().layer_dir(&image.chain_ids[0]).unwrap();
        assert_eq!(
            std::fs::read_to_string(layer.join("arch")).unwrap(),
            "amd64\n"
        );
        // The index is kept too: its digest is the repo digest.
        assert_eq!(image.blobs.len(), 3);
    }
}

#[tokio::test]
async fn gzip_zstd_and_uncompressed_layers() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    for (name, file, text) in [
        ("zstd", "data/zstd.txt", "this layer is zstd-compressed\n"),
        (
            "uncompressed",
            "data/plain.txt",
            "this layer is an uncompressed tar\n",
        ),
    ] {
        let image = store
            .pull(&format!("{REGISTRY}/longshore-test/{name}:latest"), None)
            .await
            .unwrap();
        let layer = store.snapshotter().layer_dir(&image.chain_ids[1]).unwrap();
        assert_eq!(
            std::fs::read_to_string(layer.join(file)).unwrap(),
            text.repeat(100),
            "{name}"
        );
        assert!(
            store
                .snapshotter()
                .layer_dir(&image.chain_ids[0])
                .unwrap()
                .join("bin/busybox")
                .exists()
        );
    }
}

#[tokio::test]
async fn whiteouts_and_opaque_dirs_in_a_real_overlay_mount() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let image = store
        .pull(&format!("{REGISTRY}/longshore-test/layers:latest"), None)
        .await
        .unwrap();
    let c = &image.config;
    assert_eq!(c.user, "1001:1002");
    assert_eq!(c.entrypoint, vec!["/bin/entry"]);
    assert_eq!(c.cmd, vec!["sh"]);
    assert_eq!(c.working_dir, "/data");
    assert_eq!(c.stop_signal, "SIGUSR1");
    assert!(c.env.contains(&"B=two words".to_string()));
    assert_eq!(c.volumes, vec!["/data/vol"]);
    assert_eq!(c.exposed_ports, vec!["53/udp", "8080/tcp"]);
    assert_eq!(
        c.labels.get("org.longshore.test").map(String::as_str),
        Some("layers")
    );

    // In the layer directories: overlayfs whiteouts and the opaque xattr.
    let layer2 = store.snapshotter().layer_dir(&image.chain_ids[1]).unwrap();
    let wh = std::fs::symlink_metadata(layer2.join("data/b.txt")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert_eq!(
        xattr(&layer2.join("data/opq"), "trusted.overlay.opaque").as_deref(),
        Some(b"y".as_slice())
    );

    // In a real overlay mount of the image: what a container sees.
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    store
        .snapshotter()
        .mount_readonly(&image.chain_ids, &target)
        .unwrap();
    let _guard = MountGuard(target.clone());
    let data = target.join("data");
    let mut names = entries(&data);
    names.sort();
    assert_eq!(
        names,
        vec![
            "a.txt", "c.txt", "emptydir", "fifo", "hard", "link", "null", "opq", "owned", "setuid",
            "xattr"
        ]
    );
    assert_eq!(
        entries(&data.join("opq")),
        vec!["new1"],
        "opaque dir hides the lower entries"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("a.txt")).unwrap(),
        "a from layer 3\n"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("hard")).unwrap(),
        "b from layer 1\n"
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert!(
        std::fs::symlink_metadata(data.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = std::fs::symlink_metadata(data.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!((libc::major(null.rdev()), libc::minor(null.rdev())), (1, 3));
    let owned = std::fs::metadata(data.join("owned")).unwrap();
    assert_eq!(
        (
            owned.uid(),
            owned.gid(),
            owned.mode() & 0o7777,
            owned.mtime()
        ),
        (1001, 1002, 0o640, 1234567890)
    );
    assert_eq!(
        std::fs::metadata(data.join("setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::metadata(data.join("emptydir")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().mtime(),
        1700000000,
        "directory mtimes are restored"
    );
    assert_eq!(
        xattr(&data.join("xattr"), "user.longshore").as_deref(),
        Some(b"yes".as_slice())
    );
}

#[tokio::test]
async fn remove_by_tag_then_digest_and_by_id() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let repo = "gcr.io/k8s-staging-cri-tools/test-image-tags";
    let mut id = String::new();
    for tag in ["1", "2", "3"] {
        id = store.pull(&format!("{repo}:{tag}"), None).await.unwrap().id;
    }
    let image = store.resolve(&id).unwrap().unwrap();
    assert_eq!(image.repo_tags.len(), 3);
    assert!(store.remove(&format!("{repo}:1")).unwrap());
    let image = store
        .resolve(&id)
        .unwrap()
        .expect("other tags keep the image");
    assert_eq!(
        image.repo_tags,
        vec![format!("{repo}:2"), format!("{repo}:3")]
    );
    assert!(store.resolve(&format!("{repo}:1")).unwrap().is_none());
    assert!(
        store.remove(&image.repo_digests[0]).unwrap(),
        "a digest removes the whole image"
    );
    assert!(store.resolve(&format!("{repo}:2")).unwrap().is_none());
    assert_empty(&store, dir.path());

    let image = store
        .pull("gcr.io/k8s-staging-cri-tools/test-image-tag:test", None)
        .await
        .unwrap();
    store.pin(&image.id).unwrap();
    assert!(store.resolve(&image.id).unwrap().unwrap().pinned);
    assert!(store.remove(&image.id).unwrap());
    assert_empty(&store, dir.path());
    // The last tag removes the image.
    store
        .pull("gcr.io/k8s-staging-cri-tools/test-image-tag:test", None)
        .await
        .unwrap();
    assert!(
        store
            .remove("gcr.io/k8s-staging-cri-tools/test-image-tag:test")
            .unwrap()
    );
    assert_empty(&store, dir.path());
}

#[tokio::test]
async fn shared_layers_stay_while_an_image_or_container_uses_them() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let layers = store
        .pull(&format!("{REGISTRY}/longshore-test/layers:latest"), None)
        .await
        .unwrap();
    let shared = store
        .pull(
            &format!("{REGISTRY}/longshore-test/layers-shared:latest"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(layers.chain_ids[..2], shared.chain_ids[..2]);
    let snap = store.snapshotter().clone();
    let rootfs = snap.prepare("ctr-1", &layers.chain_ids).unwrap();
    assert_eq!(rootfs.lowerdirs.len(), 3);
    let dir_of = |id: &String| snap.layer_dir(id).unwrap();

    store.remove(&layers.id).unwrap();
    assert!(
        layers.chain_ids.iter().all(|c| dir_of(c).exists()),
        "the container holds all three"
    );
    snap.remove("ctr-1").unwrap();
    snap.gc().unwrap();
    assert!(
        !dir_of(&layers.chain_ids[2]).exists(),
        "only `layers` used its top layer"
    );
    assert!(
        dir_of(&layers.chain_ids[0]).exists() && dir_of(&layers.chain_ids[1]).exists(),
        "shared ones stay"
    );
    store.remove(&shared.id).unwrap();
    assert_empty(&store, dir.path());
}

#[tokio::test]
async fn basic_auth_right_and_wrong_password() {
    longshore_testkit::require_root!();
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let image = "127.0.0.1:5001/e2e-test-images/busybox:1.29-2";
    let wrong = longshore_image::Credentials {
        username: "longshore".into(),
        password: "wrong".into(),
        ..Default::default()
    };
    let err = store.pull(image, Some(wrong)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_empty(&store, dir.path());
    let right = longshore_image::Credentials {
        username: "longshore".into(),
        password: "longshore-pass".into(),
        ..Default::default()
    };
    let pulled = store.pull(image, Some(right)).await.unwrap();
    assert_eq!(pulled.repo_tags, vec![image]);
}
