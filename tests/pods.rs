//! Pods and containers end to end: shared namespaces, cgroups, security context, OOM, runtime
//! handlers, restart recovery and bad input — through the real daemon.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::Duration;

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

/// The lines a container wrote to its CRI log (the message part).
fn log_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3).map(String::from))
        .collect()
}

async fn wait_for_log(d: &mut TestDaemon, id: &str, needle: &str) -> Vec<String> {
    let path = d.status(id).await.log_path;
    for _ in 0..200 {
        let lines = log_lines(&path);
        if lines.iter().any(|l| l.contains(needle)) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{needle:?} never appeared in {path}: {:?}\n{}",
        log_lines(&path),
        d.daemon_log()
    );
}

fn with_security(mut c: ContainerConfig, sc: LinuxContainerSecurityContext) -> ContainerConfig {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context = Some(sc);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_of_a_pod_share_ipc_pid_uts_and_shm() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let mut pod = d.pod_config("shared");
    pod.hostname = "shared-host".into();
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
    let pod_id = d.run_pod(&pod).await;
    let shared_pid = NamespaceOption {
        pid: NamespaceMode::Pod as i32,
        ..Default::default()
    };
    let sc = LinuxContainerSecurityContext {
        namespace_options: Some(shared_pid),
        ..Default::default()
    };
    let a = with_security(
        TestDaemon::container_config(
            "a",
            &[
                "sh",
                "-c",
                "echo from-a > /dev/shm/flag; hostname; exec sleep 3600",
            ],
        ),
        sc.clone(),
    );
    let a = d.run_container(&pod_id, &pod, a).await;
    wait_for_log(&mut d, &a, "shared-host").await;
    let b = with_security(
        TestDaemon::container_config(
            "b",
            &[
                "sh",
                "-c",
                "cat /dev/shm/flag; hostname; ps; readlink /proc/self/ns/ipc; sleep 3600",
            ],
        ),
        sc,
    );
    let b = d.run_container(&pod_id, &pod, b).await;
    let lines = wait_for_log(&mut d, &b, "ipc:").await;
    assert!(lines.iter().any(|l| l == "from-a"), "shm shared: {lines:?}");
    assert!(
        lines.iter().filter(|l| *l == "shared-host").count() == 1,
        "uts shared: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("sleep 3600")),
        "a's process visible in b: {lines:?}"
    );
    // Both containers see the pod's IPC namespace.
    let pid_a = d
        .client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: a.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&pid_a.info["info"]).unwrap();
    let pid = info["pid"].as_i64().unwrap();
    let ipc_a = std::fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    assert!(
        lines.iter().any(|l| *l == ipc_a.to_string_lossy()),
        "same ipc ns {ipc_a:?}: {lines:?}"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn security_context_is_enforced() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("secure");
    let pod_id = d.run_pod(&pod).await;

    let ro = with_security(
        TestDaemon::container_config(
            "ro",
            &["sh", "-c", "touch /newfile && echo wrote || echo refused"],
        ),
        LinuxContainerSecurityContext {
            readonly_rootfs: true,
            ..Default::default()
        },
    );
    let ro = d.run_container(&pod_id, &pod, ro).await;
    assert!(
        wait_for_log(&mut d, &ro, "refused")
            .await
            .iter()
            .any(|l| l.contains("Read-only"))
    );

    let nocap = with_security(
        TestDaemon::container_config(
            "nocap",
            &["sh", "-c", "chown 1 /tmp && echo chowned || echo refused"],
        ),
        LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                drop_capabilities: vec!["CHOWN".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let nocap = d.run_container(&pod_id, &pod, nocap).await;
    wait_for_log(&mut d, &nocap, "refused").await;

    let user = with_security(
        TestDaemon::container_config("user", &["id"]),
        LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1234 }),
            run_as_group: Some(Int64Value { value: 5678 }),
            supplemental_groups: vec![4321],
            ..Default::default()
        },
    );
    let user = d.run_container(&pod_id, &pod, user).await;
    let lines = wait_for_log(&mut d, &user, "uid=").await;
    assert!(lines[0].starts_with("uid=1234 gid=5678"), "{lines:?}");
    assert!(lines[0].contains("4321"), "{lines:?}");
    let status = d.status(&user).await;
    let linux_user = status.user.and_then(|u| u.linux).unwrap();
    assert_eq!((linux_user.uid, linux_user.gid), (1234, 5678));

    let seccomp = with_security(
        TestDaemon::container_config(
            "seccomp",
            &[
                "sh",
                "-c",
                "grep Seccomp: /proc/self/status; unshare -U true && echo unshared || echo blocked; exec sleep 3600",
            ],
        ),
        LinuxContainerSecurityContext {
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let seccomp = d.run_container(&pod_id, &pod, seccomp).await;
    let lines = wait_for_log(&mut d, &seccomp, "Seccomp").await;
    assert!(lines.iter().any(|l| l.ends_with('2')), "{lines:?}");
    wait_for_log(&mut d, &seccomp, "blocked").await;
    // A process exec'd into the container is under the same filter.
    let out = d
        .client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: seccomp.clone(),
            cmd: vec!["grep".into(), "Seccomp:".into(), "/proc/self/status".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.trim_end().ends_with('2'),
        "exec'd process filtered: {text:?}"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_kills_with_reason() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("oom");
    let pod_id = d.run_pod(&pod).await;
    let mut c = TestDaemon::container_config(
        "hog",
        &[
            "dd",
            "if=/dev/zero",
            "of=/dev/shm/fill",
            "bs=1M",
            "count=256",
        ],
    );
    c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        ..Default::default()
    });
    let id = d.run_container(&pod_id, &pod, c).await;
    let status = d.wait_exited(&id, Duration::from_secs(30)).await;
    assert_eq!(status.reason, "OOMKilled", "{status:?}");
    assert_eq!(status.exit_code, 137, "{status:?}");
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runc_handler_runs_the_same_containers() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("runc");
    let pod_id = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "runc".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let c = with_security(
        TestDaemon::container_config("hello", &["sh", "-c", "echo hello; id -u; exit 3"]),
        LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 99 }),
            ..Default::default()
        },
    );
    let id = d.run_container(&pod_id, &pod, c).await;
    let status = d.wait_exited(&id, Duration::from_secs(20)).await;
    assert_eq!((status.exit_code, status.reason.as_str()), (3, "Error"));
    assert_eq!(log_lines(&status.log_path), ["hello", "99"]);
    let sleeper =
        TestDaemon::container_config("sleeper", &["sh", "-c", "trap '' TERM; sleep 3600 & wait"]);
    let sleeper = d.run_container(&pod_id, &pod, sleeper).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: sleeper.clone(),
            timeout: 1,
        })
        .await
        .unwrap();
    let status = d.status(&sleeper).await;
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(
        status.exit_code, 137,
        "SIGTERM ignored: killed after the timeout"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_update_reaches_the_live_cgroup() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("update");
    let pod_id = d.run_pod(&pod).await;
    let id = d
        .run_container(
            &pod_id,
            &pod,
            TestDaemon::container_config("c", &["sleep", "3600"]),
        )
        .await;
    let limit = 48i64 << 20;
    d.client
        .runtime
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: limit,
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let resp = d
        .client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&resp.info["info"]).unwrap();
    let cgroup = info["cgroup"].as_str().unwrap().to_string();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = if v2 {
        format!("/sys/fs/cgroup{cgroup}/memory.max")
    } else {
        format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes")
    };
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        limit.to_string(),
        "{file}"
    );
    let status = resp.status.unwrap();
    assert_eq!(
        status
            .resources
            .and_then(|r| r.linux)
            .map(|l| l.memory_limit_in_bytes),
        Some(limit)
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_twenty_pods_running_and_records_exits_made_meanwhile() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let mut pods = Vec::new();
    for i in 0..20 {
        let pod = d.pod_config(&format!("r{i}"));
        let pod_id = d.run_pod(&pod).await;
        // The first one exits with 7 while the daemon is away.
        let cmd = if i == 0 {
            vec!["sh", "-c", "sleep 2; echo leaving; exit 7"]
        } else {
            vec![
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
            ]
        };
        let id = d
            .run_container(&pod_id, &pod, TestDaemon::container_config("c", &cmd))
            .await;
        pods.push((pod_id, id));
    }
    let log_of_1 = d.status(&pods[1].1).await.log_path;
    d.stop_process(libc::SIGTERM);
    let before = log_lines(&log_of_1).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = log_lines(&log_of_1).len();
    assert!(
        during > before,
        "logs kept being written while the daemon was down ({before} -> {during})"
    );
    d.restart().await;

    let listed = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 20, "no pod lost or duplicated");
    assert!(
        listed
            .items
            .iter()
            .all(|p| p.state == PodSandboxState::SandboxReady as i32)
    );
    let containers = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(containers.containers.len(), 20);
    let first = d.status(&pods[0].1).await;
    assert_eq!(
        first.state,
        ContainerState::ContainerExited as i32,
        "{first:?}"
    );
    assert_eq!(first.exit_code, 7);
    for (_, id) in &pods[1..] {
        assert_eq!(
            d.status(id).await.state,
            ContainerState::ContainerRunning as i32
        );
    }
    // Still controllable after the restart.
    d.client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: pods[1].1.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        d.status(&pods[1].1).await.state,
        ContainerState::ContainerExited as i32
    );
    // Names stay reserved across the restart.
    let again = d.pod_config("r5");
    let mut dup = again.clone();
    dup.metadata = d
        .client
        .runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pods[5].0.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .metadata;
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(dup),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_container_input_names_the_field() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let mut pod = d.pod_config("bad");
    pod.linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("kernel.panic".into(), "1".into());
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
    assert!(err.message().contains("kernel.panic"), "{err}");

    let pod = d.pod_config("bad2");
    let pod_id = d.run_pod(&pod).await;
    let mut c = TestDaemon::container_config("m", &["true"]);
    c.mounts = vec![Mount {
        container_path: "/data".into(),
        host_path: "/does/not/exist".into(),
        ..Default::default()
    }];
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(c),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert!(err.message().contains("mounts[0].host_path"), "{err}");
    let c = with_security(
        TestDaemon::container_config("caps", &["true"]),
        LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                add_capabilities: vec!["WIZARDRY".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(c),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("WIZARDRY"), "{err}");
    let c = TestDaemon::container_config("nope", &["/does/not/exist"]);
    let err = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(c),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .map(|r| r.into_inner().container_id);
    let id = err.expect("a missing binary fails at start, as with runc");
    let err = d
        .client
        .runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("/does/not/exist"), "{err}");
    let status = d.status(&id).await;
    assert_eq!(status.reason, "StartError");
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

/// Runs a pod on `handler` that shares its PID namespace (the CRI default), and returns its id
/// and config.
async fn shared_pid_pod(
    d: &mut TestDaemon,
    name: &str,
    handler: &str,
) -> (String, PodSandboxConfig) {
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
    let id = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", d.daemon_log()))
        .into_inner()
        .pod_sandbox_id;
    (id, pod)
}

/// The number of `tick` lines in a container's log.
fn ticks(path: &str) -> usize {
    log_lines(path).iter().filter(|l| *l == "tick").count()
}

/// In a shared PID namespace no kernel ends a container's other processes when its main one
/// exits. Here a child keeps writing to stdout, which held the exit back until the 30 s drain
/// cap: the exit must be reported while the child would still be writing, and the child must be
/// gone (its ticks stop).
async fn shared_pid_container_ends_with_its_main_process(handler: &str) {
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let (pod_id, pod) = shared_pid_pod(&mut d, &format!("main-exit-{handler}"), handler).await;
    let ticker = "(while true; do echo tick; sleep 0.1; done) & sleep 0.3; exit 3";
    let c = TestDaemon::container_config("parent", &["sh", "-c", ticker]);
    let id = d.run_container(&pod_id, &pod, c).await;
    // Far below the drain cap, far above what the kill takes.
    let status = d.wait_exited(&id, Duration::from_secs(10)).await;
    assert_eq!(status.exit_code, 3);
    let after_exit = ticks(&status.log_path);
    assert!(
        after_exit >= 1,
        "the child ran: {:?}",
        log_lines(&status.log_path)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ticks(&status.log_path),
        after_exit,
        "the child outlived its container"
    );

    // StopContainer: the main process leaves at SIGTERM, its child with it.
    let trapper = "trap 'exit 0' TERM; (while true; do echo tick; sleep 0.1; done) & wait";
    let c = TestDaemon::container_config("trapper", &["sh", "-c", trapper]);
    let id = d.run_container(&pod_id, &pod, c).await;
    wait_for_log(&mut d, &id, "tick").await;
    d.client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 20,
        })
        .await
        .unwrap();
    let status = d.status(&id).await;
    assert_eq!(
        (status.state, status.exit_code),
        (ContainerState::ContainerExited as i32, 0),
        "SIGTERM ended the main process, not the stop timeout's SIGKILL"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_pid_container_ends_with_its_main_process_embedded() {
    longshore_testkit::require_root!();
    shared_pid_container_ends_with_its_main_process("").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_pid_container_ends_with_its_main_process_runc() {
    longshore_testkit::require_root!();
    shared_pid_container_ends_with_its_main_process("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_its_deadline_is_deadline_exceeded() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("deadline");
    let pod_id = d.run_pod(&pod).await;
    let c = TestDaemon::container_config("sleeper", &["sleep", "3600"]);
    let id = d.run_container(&pod_id, &pod, c).await;
    // The client's deadline (grpc-timeout), not the CRI timeout field, ends this call. A tonic
    // or Go client would time out by itself at the same moment, so a raw HTTP/2 call shows
    // what the daemon answers.
    let request = ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec!["sleep".into(), "5".into()],
        timeout: 0,
    };
    let (code, message) = raw_grpc_call(
        &d.socket,
        "/runtime.v1.RuntimeService/ExecSync",
        &prost::Message::encode_to_vec(&request),
        "300m",
    )
    .await;
    assert_eq!(code, Code::DeadlineExceeded as i32, "{message}");
    // The daemon and the container carry on.
    let out = d
        .client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id,
            cmd: vec!["echo".into(), "still here".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

/// One unary gRPC call over plain HTTP/2 with a `grpc-timeout` header and no client-side
/// deadline; returns the grpc-status and grpc-message the server sent.
async fn raw_grpc_call(
    socket: &std::path::Path,
    path: &str,
    message: &[u8],
    timeout: &str,
) -> (i32, String) {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let request = hyper::Request::post(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", timeout)
        .body(http_body_util::Full::new(bytes::Bytes::from(framed)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let trailers = body.collect().await.unwrap().trailers().cloned();
    let field = |name: &str| {
        parts
            .headers
            .get(name)
            .or_else(|| trailers.as_ref().and_then(|t| t.get(name)))
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    (
        field("grpc-status").parse().unwrap_or(-1),
        field("grpc-message"),
    )
}
