//! The walking skeleton, end to end through gRPC: pull busybox from the local registry (through
//! the registry.k8s.io mirror), run a pod, run a container that prints `hello`, read it from the
//! CRI log, see exit 0, remove everything and check nothing is left.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::Duration;

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn hello_from_a_first_pod() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let image_id = d.pull(common::BUSYBOX).await;
    assert!(image_id.starts_with("sha256:"), "{image_id}");

    let pod = d.pod_config("hello");
    let pod_id = d.run_pod(&pod).await;
    let config = TestDaemon::container_config("hello", &["echo", "hello"]);
    let ctr = d.run_container(&pod_id, &pod, config).await;
    let status = d.wait_exited(&ctr, Duration::from_secs(20)).await;
    assert_eq!(status.exit_code, 0, "{status:?}");
    assert_eq!(status.reason, "Completed");
    assert!(status.finished_at >= status.started_at && status.started_at > 0);

    let log = std::fs::read_to_string(&status.log_path).unwrap();
    let line = log.lines().next().unwrap_or_default();
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(parts.len(), 4, "{log:?}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(parts[0]).is_ok(),
        "{line}"
    );
    assert_eq!(&parts[1..], ["stdout", "F", "hello"], "{log:?}");

    let listed = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.containers.len(), 1);
    assert_eq!(
        listed.containers[0].state,
        ContainerState::ContainerExited as i32
    );

    d.client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: ctr.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    d.client
        .runtime
        .remove_container(RemoveContainerRequest {
            container_id: ctr.clone(),
        })
        .await
        .unwrap();
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    d.client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    // Idempotent, as kubelet expects.
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    d.client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .unwrap();
    d.client
        .runtime
        .remove_container(RemoveContainerRequest { container_id: ctr })
        .await
        .unwrap();
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;

    // Missing metadata / empty name.
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(PodSandboxConfig::default()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("metadata"), "{err}");
    let mut pod = d.pod_config("bad");
    pod.metadata.as_mut().unwrap().name.clear();
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("metadata.name"), "{err}");

    // Unknown runtime handler.
    let pod = d.pod_config("bad-handler");
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("nope"), "{err}");

    // A container for a missing pod.
    let pod = d.pod_config("ghost");
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: "0123456789abcdef".into(),
            config: Some(TestDaemon::container_config("c", &["true"])),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // An image that was never pulled, and one that does not exist in the registry.
    let pod_id = d.run_pod(&pod).await;
    let mut config = TestDaemon::container_config("c", &["true"]);
    config.image = Some(ImageSpec {
        image: "registry.k8s.io/e2e-test-images/never-pulled:1".into(),
        ..Default::default()
    });
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = d
        .client
        .image
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: "registry.k8s.io/e2e-test-images/does-not-exist:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // Empty container name.
    let mut config = TestDaemon::container_config("", &["true"]);
    config.metadata.as_mut().unwrap().name.clear();
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // Duplicate names are reserved.
    let config = TestDaemon::container_config("dup", &["sleep", "60"]);
    d.client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config.clone()),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap();
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    assert!(err.message().contains("reserved"), "{err}");

    // Status of unknown things.
    let err = d
        .client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: "feedface".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = d
        .client
        .runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: "feedface".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // A container in a stopped pod.
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    let config = TestDaemon::container_config("late", &["true"]);
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");

    d.remove_all_pods().await;
    d.assert_nothing_left();
}
