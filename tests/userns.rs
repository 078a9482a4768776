//! User namespaces (`hostUsers: false`, KEP-127) end to end: a pod with kubelet's id maps gets
//! its own user namespace, owning its network, IPC and UTS namespaces; every container joins it
//! (also one whose config leaves `userns_options` out), sees its root mapped to the pod's range,
//! owns its root filesystem through idmapped layers, cannot act as the host's root, and writes
//! volume files the host sees with the mapped owner. Two pods get disjoint ranges; a daemon
//! restart keeps them; both executors; requests that cannot be served are refused.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

/// kubelet hands out ranges of 65536 at multiples of 65536.
const RANGE: u32 = 65536;

fn userns(host_base: u32) -> UserNamespace {
    let map = IdMapping {
        host_id: host_base,
        container_id: 0,
        length: RANGE,
    };
    UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids: vec![map],
        gids: vec![map],
    }
}

fn namespaces(pid: NamespaceMode, user: Option<UserNamespace>) -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        ipc: NamespaceMode::Pod as i32,
        pid: pid as i32,
        userns_options: user,
        ..Default::default()
    }
}

/// A pod as kubelet sends it for `hostUsers: false`.
fn userns_pod(d: &TestDaemon, name: &str, host_base: u32, pid: NamespaceMode) -> PodSandboxConfig {
    let mut pod = d.pod_config(name);
    pod.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(namespaces(pid, Some(userns(host_base)))),
            ..Default::default()
        }),
        ..Default::default()
    });
    pod
}

/// A sleeping container; with `user` its config carries the pod's options, as kubelet's does.
fn sleeper(name: &str, user: Option<UserNamespace>, mounts: Vec<Mount>) -> ContainerConfig {
    let mut c =
        TestDaemon::container_config(name, &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]);
    c.mounts = mounts;
    c.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(namespaces(NamespaceMode::Container, user)),
            ..Default::default()
        }),
        ..Default::default()
    });
    c
}

async fn run_pod_with(
    d: &mut TestDaemon,
    pod: &PodSandboxConfig,
    handler: &str,
) -> Result<String, tonic::Status> {
    d.client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .map(|r| r.into_inner().pod_sandbox_id)
}

/// Runs `script` in the container; returns (exit code, stdout + stderr).
async fn exec(d: &mut TestDaemon, id: &str, script: &str) -> (i32, String) {
    let out = d
        .client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {script}: {e}\n{}", d.daemon_log()))
        .into_inner();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.exit_code, text)
}

async fn uid_map(d: &mut TestDaemon, id: &str) -> Vec<String> {
    let (code, out) = exec(d, id, "cat /proc/self/uid_map").await;
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().map(str::to_string).collect()
}

fn bind(host: &Path, container: &str) -> Mount {
    Mount {
        host_path: host.to_string_lossy().into(),
        container_path: container.into(),
        ..Default::default()
    }
}

async fn runtime_says_user_namespaces(d: &mut TestDaemon) -> bool {
    let status = d
        .client
        .runtime
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let handlers = status.runtime_handlers;
    assert!(handlers.len() >= 2, "{handlers:?}");
    handlers
        .iter()
        .all(|h| h.features.as_ref().is_some_and(|f| f.user_namespaces))
}

/// Checks what one container of a user-namespaced pod must see, with base host id `base`.
async fn check_container(d: &mut TestDaemon, id: &str, base: u32) {
    assert_eq!(
        uid_map(d, id).await,
        ["0".to_string(), base.to_string(), RANGE.to_string()]
    );
    // Root inside, owning its root filesystem (idmapped layers), able to change it.
    let (code, out) = exec(
        d,
        id,
        "id -u; stat -c %u:%g / /bin/sh; echo x > /etc/new; ls -ln /etc/new",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["0", "0:0", "0:0"], "{out}");
    assert!(
        lines[3].contains(" 0 ") && lines[3].contains("/etc/new"),
        "{out}"
    );
    // The pod's network namespace belongs to it: sysfs mounts and lo is there.
    let (code, out) = exec(
        d,
        id,
        "test -d /sys/class/net/lo && cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    )
    .await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_with_their_own_user_namespace() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    assert!(
        runtime_says_user_namespaces(&mut d).await,
        "{}",
        d.daemon_log()
    );
    d.pull(common::BUSYBOX).await;
    // Host files: a folder anyone may write, and a file only the host's root may read.
    let vol = d.dir.path().join("vol");
    let secret = d.dir.path().join("secret");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "host root only").unwrap();
    std::fs::set_permissions(secret.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();

    let base_a = 100 * RANGE;
    let pod_a = userns_pod(&d, "userns-a", base_a, NamespaceMode::Container);
    let pod_a_id = run_pod_with(&mut d, &pod_a, "")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
    let mounts = vec![bind(&vol, "/vol"), bind(&secret, "/secret")];
    let a = d
        .run_container(
            &pod_a_id,
            &pod_a,
            sleeper("a", Some(userns(base_a)), mounts),
        )
        .await;
    check_container(&mut d, &a, base_a).await;
    let (code, out) = exec(&mut d, &a, "cat /secret/key").await;
    assert_ne!(code, 0, "the pod's root read a host-root-only file: {out}");
    let (code, out) = exec(&mut d, &a, "echo hi > /vol/from-a").await;
    assert_eq!(code, 0, "{out}");
    let written = std::fs::metadata(vol.join("from-a")).unwrap();
    assert_eq!((written.uid(), written.gid()), (base_a, base_a));
    // A volume kubelet asks to see through the pod's maps (Mount.uidMappings): host root's files
    // are the pod root's there, and what it writes is the host root's.
    let shared = d.dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("key"), "for the pod's root\n").unwrap();
    std::fs::set_permissions(shared.join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let maps = userns(base_a);
    let idmapped = Mount {
        uid_mappings: maps.uids.clone(),
        gid_mappings: maps.gids.clone(),
        ..bind(&shared, "/shared")
    };
    let c = d
        .run_container(
            &pod_a_id,
            &pod_a,
            sleeper("idmapped", Some(userns(base_a)), vec![idmapped]),
        )
        .await;
    let (code, out) = exec(
        &mut d,
        &c,
        "cat /shared/key && stat -c %u /shared/key && echo y > /shared/new",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["for the pod's root", "0"]);
    assert_eq!(std::fs::metadata(shared.join("new")).unwrap().uid(), 0);
    // Maps other than the pod's cannot be served.
    let other = Mount {
        uid_mappings: userns(base_a + RANGE).uids,
        gid_mappings: userns(base_a + RANGE).gids,
        ..bind(&shared, "/shared")
    };
    let e = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_a_id.clone(),
            config: Some(sleeper("other-maps", Some(userns(base_a)), vec![other])),
            sandbox_config: Some(pod_a.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // A container whose own config leaves userns_options out still joins the pod's.
    let bare = d
        .run_container(&pod_a_id, &pod_a, sleeper("bare", None, vec![]))
        .await;
    assert_eq!(uid_map(&mut d, &bare).await[1], base_a.to_string());

    // A second pod, sharing its PID namespace (pod-init inside the user namespace), with the
    // runc handler: a range of its own.
    let base_b = 101 * RANGE;
    let pod_b = userns_pod(&d, "userns-b", base_b, NamespaceMode::Pod);
    let pod_b_id = run_pod_with(&mut d, &pod_b, "runc")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
    let b = d
        .run_container(
            &pod_b_id,
            &pod_b,
            sleeper("b", Some(userns(base_b)), vec![]),
        )
        .await;
    check_container(&mut d, &b, base_b).await;

    // A restart keeps both, namespaces and all.
    d.restart().await;
    assert_eq!(uid_map(&mut d, &a).await[1], base_a.to_string());
    assert_eq!(uid_map(&mut d, &b).await[1], base_b.to_string());
    let (code, out) = exec(&mut d, &a, "cat /etc/new").await;
    assert_eq!((code, out.trim()), (0, "x"));

    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn user_namespace_requests_that_cannot_be_served_are_refused() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let refused = |e: tonic::Status| assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Host network beside a user namespace.
    let mut pod = userns_pod(&d, "userns-hostnet", 102 * RANGE, NamespaceMode::Container);
    let sc = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    sc.namespace_options.as_mut().unwrap().network = NamespaceMode::Node as i32;
    refused(run_pod_with(&mut d, &pod, "").await.unwrap_err());
    // A map that would make the pod's root the host's.
    let mut pod = userns_pod(&d, "userns-root", 102 * RANGE, NamespaceMode::Container);
    let sc = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap();
    let user = sc
        .namespace_options
        .as_mut()
        .unwrap()
        .userns_options
        .as_mut()
        .unwrap();
    user.uids[0].host_id = 0;
    refused(run_pod_with(&mut d, &pod, "").await.unwrap_err());
    // A container asking for its pod's user namespace in a pod that has none.
    d.pull(common::BUSYBOX).await;
    let plain = d.pod_config("userns-none");
    let plain_id = d.run_pod(&plain).await;
    let e = d
        .client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: plain_id,
            config: Some(sleeper("c", Some(userns(103 * RANGE)), vec![])),
            sandbox_config: Some(plain),
        })
        .await
        .unwrap_err();
    refused(e);
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_cannot_serve_user_namespaces_says_so() {
    longshore_testkit::require_root!();
    // A state folder others cannot search: a pod's root could not reach its root filesystem.
    let mut d = TestDaemon::start_with(common::Options {
        private_dir: true,
        ..Default::default()
    })
    .await;
    assert!(
        !runtime_says_user_namespaces(&mut d).await,
        "{}",
        d.daemon_log()
    );
    let pod = userns_pod(&d, "userns-private", 104 * RANGE, NamespaceMode::Container);
    let e = run_pod_with(&mut d, &pod, "").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("does not let others search it"),
        "{e:?}"
    );
    assert!(
        d.daemon_log()
            .contains("pods cannot have their own user namespace here")
    );
    // Pods without one are served as ever.
    let plain = d.pod_config("plain");
    d.run_pod(&plain).await;
    d.remove_all_pods().await;
    d.assert_nothing_left();
}
