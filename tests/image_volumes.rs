//! Image volumes (`Mount.image`, KEP-4639) end to end: an image's files visible read-only in a
//! container (a three-layer image through a read-only overlay, a one-layer image through a
//! bind), `image_sub_path` honoured and escapes refused, the layers kept while a container uses
//! them even after RemoveImage, and collected once the pod is gone.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::{Duration, Instant};

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

const LAYERS: &str = "127.0.0.1:5000/longshore-test/layers:latest";

fn image_mount(container_path: &str, image: &str, sub_path: &str) -> Mount {
    Mount {
        container_path: container_path.into(),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        image_sub_path: sub_path.into(),
        readonly: true,
        ..Default::default()
    }
}

fn layer_dirs(d: &TestDaemon) -> usize {
    std::fs::read_dir(d.dir.path().join("root/snapshots"))
        .map(|r| r.flatten().count())
        .unwrap_or(0)
}

async fn exec(d: &mut TestDaemon, id: &str, script: &str) -> String {
    let out = d
        .client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn create(
    d: &mut TestDaemon,
    pod_id: &str,
    pod: &PodSandboxConfig,
    c: ContainerConfig,
) -> tonic::Status {
    d.client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(c),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn image_volumes_mount_read_only_and_keep_their_layers() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let busybox_layers = layer_dirs(&d);
    d.pull(LAYERS).await;
    let pod = d.pod_config("imgvol");
    let pod_id = d.run_pod(&pod).await;

    let mut c = TestDaemon::container_config("reader", &["sleep", "3600"]);
    c.mounts = vec![
        image_mount("/vol", LAYERS, ""),
        image_mount("/tools", common::BUSYBOX, "bin"),
    ];
    let id = d.run_container(&pod_id, &pod, c).await;
    let out = exec(
        &mut d,
        &id,
        "cat /vol/data/a.txt /vol/data/c.txt; [ -e /vol/data/b.txt ] || echo no-b; \
         [ -x /tools/busybox ] && echo tools; touch /vol/new 2>/dev/null || echo read-only",
    )
    .await;
    assert_eq!(
        out,
        "a from layer 3\nc from layer 2\nno-b\ntools\nread-only\n",
        "{}",
        d.daemon_log()
    );
    let status = d.status(&id).await;
    assert!(
        status
            .mounts
            .iter()
            .any(|m| m.image.as_ref().is_some_and(|i| i.image == LAYERS)),
        "the status names the image, for kubelet's image GC: {:?}",
        status.mounts
    );

    // Removing the image leaves the layers to the container that uses them.
    d.client
        .image
        .remove_image(RemoveImageRequest {
            image: Some(ImageSpec {
                image: LAYERS.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        exec(&mut d, &id, "cat /vol/data/a.txt").await,
        "a from layer 3\n"
    );

    // Refusals, and nothing made for them.
    let mut c = TestDaemon::container_config("escape", &["true"]);
    c.mounts = vec![image_mount("/tools", common::BUSYBOX, "../..")];
    let err = create(&mut d, &pod_id, &pod, c).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("image_sub_path"), "{err}");
    let mut c = TestDaemon::container_config("missing", &["true"]);
    c.mounts = vec![image_mount("/tools", common::BUSYBOX, "no/such/dir")];
    let err = create(&mut d, &pod_id, &pod, c).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let mut c = TestDaemon::container_config("writable", &["true"]);
    c.mounts = vec![Mount {
        readonly: false,
        ..image_mount("/tools", common::BUSYBOX, "")
    }];
    let err = create(&mut d, &pod_id, &pod, c).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("readonly"), "{err}");
    let mut c = TestDaemon::container_config("unpulled", &["true"]);
    c.mounts = vec![image_mount(
        "/x",
        "127.0.0.1:5000/longshore-test/zstd:latest",
        "",
    )];
    let err = create(&mut d, &pod_id, &pod, c).await;
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // Gone with the pod: mounts, and the removed image's layers.
    d.remove_all_pods().await;
    d.assert_nothing_left();
    let deadline = Instant::now() + Duration::from_secs(10);
    while layer_dirs(&d) > busybox_layers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        layer_dirs(&d),
        busybox_layers,
        "the removed image's layers were collected"
    );
}
