//! Load: many clients at once through full pod lifecycles (run, create, start, exec, logs, stop,
//! remove), then nothing may be left and the daemon's memory must come back.
//!
//! CI runs 50 clients x 4 pods; `LONGSHORE_LOAD_PODS_PER_CLIENT=20` makes it 1000 pods.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestDaemon;
use common::net::HostNet;
use longshore::api::*;
use longshore::client::CriClient;

const CLIENTS: usize = 50;
const PODS_PER_CLIENT_ENV: &str = "LONGSHORE_LOAD_PODS_PER_CLIENT";
const DEFAULT_PODS_PER_CLIENT: usize = 4;
/// How far above its warmed-up start the daemon's RSS may stay once the load is gone.
const RSS_SLACK: u64 = 8 << 20;

/// The daemon's resident set size.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

/// The message parts of a CRI log file.
fn log_messages(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3).map(String::from))
        .collect()
}

/// What one lifecycle needs to know of the daemon.
#[derive(Clone)]
struct Shape {
    pod: PodSandboxConfig,
    shared_pid: bool,
}

/// One full lifecycle through `client`; an error names the step.
async fn lifecycle(client: &mut CriClient, shape: Shape) -> Result<(), String> {
    let rt = &mut client.runtime;
    let mut pod = shape.pod;
    if !shape.shared_pid {
        let ns = NamespaceOption {
            pid: NamespaceMode::Container as i32,
            ..Default::default()
        };
        pod.linux
            .get_or_insert_with(Default::default)
            .security_context = Some(LinuxSandboxSecurityContext {
            namespace_options: Some(ns),
            ..Default::default()
        });
    }
    std::fs::create_dir_all(&pod.log_directory).map_err(|e| format!("log dir: {e}"))?;
    let pod_id = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {e}"))?
        .into_inner()
        .pod_sandbox_id;
    // The trap is set before "ready" is said: a SIGTERM that came between the two would end
    // the shell with 143 instead of 0.
    let script = "trap 'exit 0' TERM; echo ready; sleep 3600 & wait";
    let config = TestDaemon::container_config("work", &["sh", "-c", script]);
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer: {e}"))?
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer: {e}"))?;
    let out = rt
        .exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["echo".into(), id.clone()],
            timeout: 30,
        })
        .await
        .map_err(|e| format!("ExecSync: {e}"))?
        .into_inner();
    if out.exit_code != 0 || String::from_utf8_lossy(&out.stdout).trim() != id {
        return Err(format!("ExecSync answered {out:?}"));
    }
    let log = Path::new(&pod.log_directory).join("work.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_messages(&log).iter().any(|l| l == "ready") {
        if Instant::now() > deadline {
            return Err(format!("no 'ready' in {}", log.display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.reopen_container_log(ReopenContainerLogRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("ReopenContainerLog: {e}"))?;
    rt.stop_container(StopContainerRequest {
        container_id: id.clone(),
        timeout: 30,
    })
    .await
    .map_err(|e| format!("StopContainer: {e}"))?;
    let status = rt
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| format!("ContainerStatus: {e}"))?
        .into_inner()
        .status
        .ok_or("ContainerStatus without a status")?;
    if (status.state, status.exit_code) != (ContainerState::ContainerExited as i32, 0) {
        return Err(format!(
            "stopped container is {:?} with code {} (SIGTERM obeyed means 0)",
            status.state, status.exit_code
        ));
    }
    rt.remove_container(RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|e| format!("RemoveContainer: {e}"))?;
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod_id.clone(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox: {e}"))?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod_id,
    })
    .await
    .map_err(|e| format!("RemovePodSandbox: {e}"))?;
    Ok(())
}

/// `clients` clients at once, `per_client` lifecycles each; returns the failures.
async fn drive(d: &TestDaemon, clients: usize, per_client: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let socket = d.socket.clone();
        let shapes: Vec<Shape> = (0..per_client)
            .map(|i| Shape {
                pod: d.pod_config(&format!("load-{c}-{i}")),
                // Half the pods share their PID namespace (crictl's default), half are
                // kubelet's usual shape.
                shared_pid: (c + i) % 2 == 0,
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut client = CriClient::connect(&socket)
                .await
                .map_err(|e| vec![format!("client {c}: connect: {e}")])?;
            let mut failures = Vec::new();
            for (i, shape) in shapes.into_iter().enumerate() {
                if let Err(e) = lifecycle(&mut client, shape).await {
                    failures.push(format!("client {c} pod {i}: {e}"));
                }
            }
            if failures.is_empty() {
                Ok(())
            } else {
                Err(failures)
            }
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => failures.extend(f),
            Err(e) => failures.push(format!("client task: {e}")),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_through_full_lifecycles_leave_nothing() {
    longshore_testkit::require_root!();
    let per_client = std::env::var(PODS_PER_CLIENT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PODS_PER_CLIENT);
    let mut d = TestDaemon::start().await;
    let host = HostNet::new(&d);
    d.pull(common::BUSYBOX).await;
    // Warm up (allocator arenas, caches, the first monitor) before reading the baseline.
    let warmup = drive(&d, 2, 1).await;
    // The failures are printed after the daemon's log too: CI keeps only an output's tail.
    assert!(
        warmup.is_empty(),
        "{warmup:#?}\n{}\nfailures: {warmup:#?}",
        d.daemon_log()
    );
    let pid = d.daemon_pid().unwrap();
    let before = rss(pid);

    let started = Instant::now();
    let failures = drive(&d, CLIENTS, per_client).await;
    let took = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of {} lifecycles failed:\n{}\n{}\nagain, the failures:\n{}",
        failures.len(),
        CLIENTS * per_client,
        failures.join("\n"),
        d.daemon_log(),
        failures.join("\n")
    );
    let peak = rss(pid);
    eprintln!(
        "load: {} lifecycles by {CLIENTS} clients in {took:.1?}; daemon RSS {} KiB before, {} KiB after",
        CLIENTS * per_client,
        before >> 10,
        peak >> 10
    );

    d.assert_nothing_left_within(Duration::from_secs(10)).await;
    d.assert_network_released();
    host.assert_no_pod_rules();
    // The daemon gives memory back (its trimmer runs every few seconds).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = rss(pid);
    while now > before + RSS_SLACK && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = rss(pid);
    }
    assert!(
        now <= before + RSS_SLACK,
        "daemon RSS {} KiB after the load, {} KiB before it (slack {} KiB)",
        now >> 10,
        before >> 10,
        RSS_SLACK >> 10
    );
}
