//! Crash ordering, end to end: a daemon that dies at a step of RunPodSandbox or CreateContainer
//! (aborted at a crash point, `LONGSHORE_CRASH_AT`, as if killed there) leaves things half made;
//! the restarted daemon undoes them from the record it wrote before making anything, and its
//! start-up sweep removes what no record owns. Nothing may be left: no pinned namespace, mount,
//! pod PID 1, cgroup, IP reservation, veth, CNI cache entry or writable layer.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::Duration;

use common::TestDaemon;
use common::net::HostNet;
use longshore::api::*;
use longshore::crash_point::CRASH_AT_ENV;

/// A pod that shares its PID namespace: it has a pod PID 1 to leak.
fn shared_pid_pod(d: &TestDaemon, name: &str) -> PodSandboxConfig {
    let mut pod = d.pod_config(name);
    pod.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    pod
}

async fn run_pod_crashing_at(point: &str) {
    let mut d = TestDaemon::start().await;
    let host = HostNet::new(&d);
    d.restart_with_env(&[(CRASH_AT_ENV, point)]).await;
    let pod = shared_pid_pod(&d, "crash");
    let answer = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await;
    assert!(answer.is_err(), "the daemon should have died at {point}");
    assert!(
        d.wait_for_daemon_exit(Duration::from_secs(10)),
        "the daemon did not stop at {point}"
    );
    d.restart().await;
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "a half-made pod is listed: {pods:?}");
    d.assert_nothing_left_within(Duration::from_secs(20)).await;
    d.assert_network_released();
    host.assert_no_pod_rules();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_namespaces_leaves_nothing() {
    longshore_testkit::require_root!();
    run_pod_crashing_at("run_pod_sandbox:namespaces").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_network_leaves_nothing() {
    longshore_testkit::require_root!();
    run_pod_crashing_at("run_pod_sandbox:network").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_writable_layer_leaves_nothing() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    d.restart_with_env(&[(CRASH_AT_ENV, "create_container:layer")])
        .await;
    let pod = d.pod_config("crash-layer");
    let pod_id = d.run_pod(&pod).await;
    let answer = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(TestDaemon::container_config("c", &["true"])),
            sandbox_config: Some(pod),
        })
        .await;
    assert!(answer.is_err(), "the daemon should have died");
    assert!(d.wait_for_daemon_exit(Duration::from_secs(10)));
    d.restart().await;
    let containers = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(containers.is_empty(), "{containers:?}");
    let layers_dir = d.dir.path().join("root/containers");
    let layers = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&layers_dir)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for _ in 0..200 {
        if layers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(layers().is_empty(), "writable layers left: {:?}", layers());
    d.stop_and_remove_pod(&pod_id).await;
    d.assert_nothing_left();
}
