//! Requests that must be refused with InvalidArgument before anything is made: names beyond
//! Kubernetes' limits, hostnames with `/`, NUL bytes in what becomes a C string. Each refusal
//! leaves no pod, container, namespace, mount or cgroup behind.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]

mod common;

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

async fn refused_pod(d: &mut TestDaemon, config: PodSandboxConfig, field: &str) {
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains(field), "{err}");
    assert!(
        err.message().len() < 1024,
        "the refusal does not echo the input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_beyond_kubernetes_limits_are_refused_and_leave_nothing() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let mut huge = d.pod_config("huge");
    huge.metadata.as_mut().unwrap().name = "x".repeat(1 << 20);
    refused_pod(&mut d, huge, "config.metadata.name").await;
    let mut ns = d.pod_config("ns");
    ns.metadata.as_mut().unwrap().namespace = "n".repeat(64);
    refused_pod(&mut d, ns, "config.metadata.namespace").await;
    for bad in ["a/b", "a\0b"] {
        let mut host = d.pod_config("host");
        host.hostname = bad.into();
        refused_pod(&mut d, host, "config.hostname").await;
    }
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn nul_bytes_in_a_container_are_refused() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("nul");
    let pod_id = d.run_pod(&pod).await;
    let mut bad_env = TestDaemon::container_config("env", &["true"]);
    bad_env.envs = vec![KeyValue {
        key: "A".into(),
        value: b"x\0y".to_vec(),
    }];
    let mut bad_cwd = TestDaemon::container_config("cwd", &["true"]);
    bad_cwd.working_dir = "/tmp\0/x".into();
    let mut bad_mount = TestDaemon::container_config("mnt", &["true"]);
    bad_mount.mounts = vec![Mount {
        container_path: "/data\0".into(),
        host_path: "/tmp".into(),
        ..Default::default()
    }];
    for (config, field) in [
        (
            TestDaemon::container_config("cmd", &["sh", "-c\0rm -rf /"]),
            "config.command[1]",
        ),
        (bad_env, "config.envs[0].value"),
        (bad_cwd, "config.working_dir"),
        (bad_mount, "config.mounts[0].container_path"),
    ] {
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
        assert!(err.message().contains(field), "{field}: {err}");
    }
    let containers = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(containers.is_empty(), "{containers:?}");
    d.remove_all_pods().await;
    d.assert_nothing_left();
}
