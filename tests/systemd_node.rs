//! A systemd node: systemd as PID 1 (the QEMU guest of `tests/vm/run-in-systemd-vm.sh`, run by
//! `scripts/test-daemon-v2.sh --systemd`), Longshore started as a service from
//! `deploy/systemd/longshore.service` with `[cgroups] driver = "systemd"`, driven over gRPC as
//! kubelet drives it. Every container must be a scope systemd knows, with its limits as unit
//! properties and in the cgroup files, unchanged by `systemctl daemon-reload`, changed by
//! `UpdateContainerResources`, kept by `systemctl restart longshore`, and gone after removal.
//!
//! Elsewhere (no systemd as PID 1) it says "skipped".

#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BUSYBOX, TestDaemon};
use longshore::api::*;
use longshore::client::CriClient;
use longshore_systemd::{Systemd, properties};

const UNIT: &str = "longshore-test.service";
/// The slice kubelet would make for a burstable pod (kubelet makes it through systemd too).
const KUBELET_SLICE: &str = "kubepods-burstable-podtest1.slice";
const KUBELET_SLICE_DIR: &str =
    "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podtest1.slice";

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn show(unit: &str, property: &str) -> String {
    sh(&format!("systemctl show {unit} -p {property} --value"))
}

fn journal() -> String {
    sh(&format!(
        "journalctl -u {UNIT} --no-pager -o cat | tail -60"
    ))
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| format!("<{}: {e}>", path.as_ref().display()))
        .trim()
        .to_string()
}

/// Longshore as a service: the repo's unit, with this build's binary and a test configuration.
fn install_service(dir: &Path) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [registry]\nconfig_path = \"{hosts}\"\ndocker_config = \"{d}/none.json\"\n\
             [cgroups]\ndriver = \"systemd\"\n\
             [runtime.handlers.runc]\npath = \"/usr/bin/runc\"\n",
            d = dir.display(),
            hosts = repo.join("tests/registry/hosts.d").display(),
        ),
    )
    .unwrap();
    let unit = std::fs::read_to_string(repo.join("deploy/systemd/longshore.service")).unwrap();
    let exec = format!(
        "ExecStart={} serve --config {}",
        env!("CARGO_BIN_EXE_longshore"),
        config.display()
    );
    let unit: String = unit
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                exec.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(unit.contains("Type=notify"), "the unit is Type=notify");
    std::fs::write(
        format!("/run/systemd/system/{UNIT}"),
        unit + "\nEnvironment=RUST_LOG=info\n",
    )
    .unwrap();
    sh("systemctl daemon-reload");
    dir.join("state/longshore.sock")
}

fn start_service() {
    let out = Command::new("systemctl")
        .args(["start", UNIT])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemctl start: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        journal()
    );
    assert_eq!(show(UNIT, "ActiveState"), "active", "{}", journal());
}

fn pod(name: &str, cgroup_parent: &str, pid: NamespaceMode) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "systemd".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: format!("/tmp/systemd-node-logs/{name}"),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_pod(c: &mut CriClient, config: &PodSandboxConfig, handler: &str) -> String {
    c.runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", journal()))
        .into_inner()
        .pod_sandbox_id
}

async fn run_container(
    c: &mut CriClient,
    pod_id: &str,
    pod: &PodSandboxConfig,
    resources: LinuxContainerResources,
) -> String {
    let mut config = TestDaemon::container_config("sleeper", &["sleep", "3600"]);
    config.linux.as_mut().unwrap().resources = Some(resources);
    let id = c
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", journal()))
        .into_inner()
        .container_id;
    c.runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", journal()));
    id
}

async fn container_pid(c: &mut CriClient, id: &str) -> u32 {
    let status = c
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status.as_ref().unwrap().state,
        ContainerState::ContainerRunning as i32,
        "{status:?}"
    );
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
    info["pid"].as_u64().unwrap() as u32
}

fn limits(memory: i64) -> LinuxContainerResources {
    LinuxContainerResources {
        memory_limit_in_bytes: memory,
        cpu_quota: 25_000,
        cpu_period: 100_000,
        cpu_shares: 256,
        ..Default::default()
    }
}

/// Asserts the container's scope: in `slice`, active, holding `pid`, with `memory` as MemoryMax
/// and in memory.max, 250 ms of CPU per second in cpu.max.
fn assert_scope(id: &str, slice: &str, slice_dir: &str, pid: u32, memory: i64) {
    let scope = format!("longshore-{id}.scope");
    assert_eq!(
        show(&scope, "ActiveState"),
        "active",
        "{scope}\n{}",
        journal()
    );
    assert_eq!(show(&scope, "Slice"), slice);
    assert_eq!(show(&scope, "Delegate"), "yes");
    assert_eq!(show(&scope, "MemoryMax"), memory.to_string());
    assert_eq!(show(&scope, "CPUQuotaPerSecUSec"), "250ms");
    let dir = format!("{slice_dir}/{scope}");
    assert_eq!(read(format!("{dir}/memory.max")), memory.to_string());
    assert_eq!(read(format!("{dir}/cpu.max")), "25000 100000");
    assert_eq!(
        read(format!("/proc/{pid}/cgroup")),
        format!("0::{}", &dir["/sys/fs/cgroup".len()..])
    );
    // systemd's own answer to "whose is this process?".
    let owner = sh(&format!(
        "busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager GetUnitByPID u {pid}"
    ));
    assert!(
        owner.contains(&scope.replace('-', "_2d").replace('.', "_2e")),
        "GetUnitByPID {pid}: {owner}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_are_systemd_scopes_with_their_limits() {
    longshore_testkit::require_root!();
    if std::fs::read_to_string("/proc/1/comm")
        .unwrap_or_default()
        .trim()
        != "systemd"
    {
        eprintln!(
            "skipped: systemd is not PID 1 here (scripts/test.sh runs this in the systemd VM)"
        );
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("longshore-systemd-")
        .tempdir()
        .unwrap();
    let socket = install_service(dir.path());
    start_service();
    let mut c = CriClient::connect(&socket).await.unwrap();
    c.image
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("pull: {e}\n{}", journal()));

    // kubelet makes the pod slice through systemd, then asks for the pod in it.
    let systemd = Systemd::new();
    systemd
        .start_transient_unit(
            KUBELET_SLICE,
            &properties::slice("kubelet's pod slice (test)"),
        )
        .await
        .unwrap();
    let kube_pod = pod("kubelet-shaped", KUBELET_SLICE, NamespaceMode::Container);
    let kube_pod_id = run_pod(&mut c, &kube_pod, "").await;
    let a = run_container(&mut c, &kube_pod_id, &kube_pod, limits(64 << 20)).await;
    let a_pid = container_pid(&mut c, &a).await;
    assert_scope(&a, KUBELET_SLICE, KUBELET_SLICE_DIR, a_pid, 64 << 20);
    let controllers = read(format!("{KUBELET_SLICE_DIR}/cgroup.subtree_control"));
    assert!(
        controllers.contains("memory") && controllers.contains("cpu"),
        "{controllers}"
    );

    // The runc handler's containers are scopes the same way.
    let runc_pod = pod("runc", KUBELET_SLICE, NamespaceMode::Container);
    let runc_pod_id = run_pod(&mut c, &runc_pod, "runc").await;
    let b = run_container(&mut c, &runc_pod_id, &runc_pod, limits(48 << 20)).await;
    let b_pid = container_pid(&mut c, &b).await;
    assert_scope(&b, KUBELET_SLICE, KUBELET_SLICE_DIR, b_pid, 48 << 20);

    // A pod without a kubelet parent, sharing its PID namespace: a slice of Longshore's own,
    // with the pod's PID 1 in a scope of its own.
    let own_pod = pod("crictl-shaped", "", NamespaceMode::Pod);
    let own_pod_id = run_pod(&mut c, &own_pod, "").await;
    let own_slice = format!("longshore-pod{own_pod_id}.slice");
    let own_dir = format!("/sys/fs/cgroup/longshore.slice/{own_slice}");
    assert_eq!(show(&own_slice, "ActiveState"), "active", "{}", journal());
    assert_eq!(
        show(&format!("longshore-{own_pod_id}.scope"), "ActiveState"),
        "active"
    );
    let e = run_container(&mut c, &own_pod_id, &own_pod, limits(32 << 20)).await;
    let e_pid = container_pid(&mut c, &e).await;
    assert_scope(&e, &own_slice, &own_dir, e_pid, 32 << 20);

    // A reload rewrites every unit's cgroup from its properties: nothing may change.
    sh("systemctl daemon-reload");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_scope(&a, KUBELET_SLICE, KUBELET_SLICE_DIR, a_pid, 64 << 20);
    assert_scope(&e, &own_slice, &own_dir, e_pid, 32 << 20);
    let after = read(format!("{KUBELET_SLICE_DIR}/cgroup.subtree_control"));
    for controller in controllers.split_whitespace() {
        assert!(
            after.split_whitespace().any(|c| c == controller),
            "daemon-reload took {controller} from the pod slice: {controllers} -> {after}"
        );
    }

    // New limits reach both the unit and the files, and survive a reload.
    c.runtime
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: a.clone(),
            linux: Some(limits(128 << 20)),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}\n{}", journal()));
    assert_scope(&a, KUBELET_SLICE, KUBELET_SLICE_DIR, a_pid, 128 << 20);
    sh("systemctl daemon-reload");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_scope(&a, KUBELET_SLICE, KUBELET_SLICE_DIR, a_pid, 128 << 20);

    // The daemon restarts; every container keeps running in its scope.
    let out = Command::new("systemctl")
        .args(["restart", UNIT])
        .output()
        .unwrap();
    assert!(out.status.success(), "systemctl restart: {}", journal());
    let mut c = CriClient::connect(&socket).await.unwrap();
    for (id, pid) in [(&a, a_pid), (&b, b_pid), (&e, e_pid)] {
        assert_eq!(
            container_pid(&mut c, id).await,
            pid,
            "{id} after the restart"
        );
    }
    assert_scope(&a, KUBELET_SLICE, KUBELET_SLICE_DIR, a_pid, 128 << 20);
    assert_scope(&b, KUBELET_SLICE, KUBELET_SLICE_DIR, b_pid, 48 << 20);

    // An exec'd process is in the container's scope too.
    let exec = c
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: a.clone(),
            cmd: vec!["cat".into(), "/proc/self/cgroup".into()],
            timeout: 30,
        })
        .await
        .unwrap()
        .into_inner();
    let seen = String::from_utf8_lossy(&exec.stdout).to_string();
    assert!(
        seen.contains(&format!("longshore-{a}.scope")) || seen.trim() == "0::/",
        "{seen}"
    );

    // An OOM kill is still seen, though systemd removes an emptied scope's cgroup at once.
    let mut hog = TestDaemon::container_config(
        "hog",
        &[
            "dd",
            "if=/dev/zero",
            "of=/dev/shm/fill",
            "bs=1M",
            "count=256",
        ],
    );
    hog.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        ..Default::default()
    });
    let hog_id = c
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: kube_pod_id.clone(),
            config: Some(hog),
            sandbox_config: Some(kube_pod.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    c.runtime
        .start_container(StartContainerRequest {
            container_id: hog_id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", journal()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let hog_status = loop {
        let s = c
            .runtime
            .container_status(ContainerStatusRequest {
                container_id: hog_id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if s.state == ContainerState::ContainerExited as i32 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hog_status.reason, "OOMKilled", "{hog_status:?}");

    // Stop and remove: no unit and no cgroup left (but longshore.slice, the parent of Longshore's
    // own pod slices, as kubepods.slice stays for kubelet's).
    for pod_id in [&kube_pod_id, &runc_pod_id, &own_pod_id] {
        c.runtime
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod_id.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", journal()));
        c.runtime
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", journal()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let units = sh(
            "systemctl list-units --all --plain --no-legend 'longshore*' | grep -v -e longshore-test.service -e '^longshore.slice '",
        );
        if units.is_empty() || Instant::now() > deadline {
            break units;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(left, "", "units left after removal\n{}", journal());
    assert!(!Path::new(&own_dir).exists(), "{own_dir} left");
    for id in [&a, &b, &e] {
        let scope_dir = format!("{KUBELET_SLICE_DIR}/longshore-{id}.scope");
        assert!(!Path::new(&scope_dir).exists(), "{scope_dir} left");
    }
    systemd.stop_unit(KUBELET_SLICE).await.unwrap();
    sh(&format!("systemctl stop {UNIT}"));
    let _ = std::fs::remove_file(format!("/run/systemd/system/{UNIT}"));
}

/// Builds the Debian package from this build's binaries (`deploy/deb/build.sh`).
fn build_deb(out: &Path) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_longshore")).parent().unwrap();
    let built = Command::new(repo.join("deploy/deb/build.sh"))
        .args([
            "--bin-dir".as_ref(),
            bin_dir.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .env("LONGSHORE_DEB_COMPRESSION", "none")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&built.stdout).trim())
}

#[test]
fn the_debian_package_holds_what_a_node_needs() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("skipped: no dpkg-deb here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let contents = sh(&format!("dpkg-deb -c {}", deb.display()));
    for path in [
        "./usr/bin/longshore",
        "./usr/bin/longshore-monitor",
        "./lib/systemd/system/longshore.service",
        "./etc/longshore/config.toml",
        "./usr/share/longshore/cni/10-longshore-bridge.conflist",
        "./usr/share/doc/longshore/examples/crictl.yaml",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{contents}"
        );
    }
    assert!(
        contents
            .lines()
            .next()
            .unwrap()
            .starts_with("drwxr-xr-x root/root"),
        "{contents}"
    );
    assert_eq!(
        sh(&format!("dpkg-deb -f {} Package", deb.display())),
        "longshore"
    );
    let conffiles = sh(&format!(
        "dpkg-deb --ctrl-tarfile {} | tar -xO ./conffiles",
        deb.display()
    ));
    assert_eq!(conffiles, "/etc/longshore/config.toml");
    let unit = sh(&format!(
        "dpkg-deb --fsys-tarfile {} | tar -xO ./lib/systemd/system/longshore.service",
        deb.display()
    ));
    assert!(
        unit.contains("ExecStart=/usr/bin/longshore serve"),
        "{unit}"
    );
    // The packaged configuration is one the daemon accepts.
    let config = sh(&format!(
        "dpkg-deb --fsys-tarfile {} | tar -xO ./etc/longshore/config.toml > {d}/c.toml && {bin} config check {d}/c.toml && echo ok",
        deb.display(),
        d = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_longshore"),
    ));
    assert!(config.ends_with("ok"), "{config}");
}

/// On the systemd node: `apt install ./longshore_*.deb`, then the packaged service starts with the
/// packaged configuration and answers on the default socket; `apt purge` takes it all away.
#[tokio::test(flavor = "multi_thread")]
async fn the_debian_package_installs_and_serves() {
    longshore_testkit::require_root!();
    if std::fs::read_to_string("/proc/1/comm")
        .unwrap_or_default()
        .trim()
        != "systemd"
    {
        eprintln!(
            "skipped: systemd is not PID 1 here (scripts/test.sh runs this in the systemd VM)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // scripts/test.sh builds it on the host: the guest's emulated CPU takes minutes for it.
    let deb = match std::env::var_os("LONGSHORE_TEST_DEB") {
        Some(deb) => PathBuf::from(deb),
        None => build_deb(dir.path()),
    };
    let install = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "apt-get install {}: {}{}",
        deb.display(),
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    assert_eq!(show("longshore.service", "UnitFileState"), "enabled");
    let started = Command::new("systemctl")
        .args(["start", "longshore.service"])
        .output()
        .unwrap();
    let log = || sh("journalctl -u longshore.service --no-pager -o cat | tail -40");
    assert!(
        started.status.success(),
        "systemctl start longshore: {}",
        log()
    );
    let mut c = CriClient::connect("/run/longshore/longshore.sock")
        .await
        .unwrap();
    let version = c
        .runtime
        .version(VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "longshore");
    sh("systemctl stop longshore.service");
    let purge = Command::new("apt-get")
        .args(["purge", "-y", "longshore"])
        .output()
        .unwrap();
    assert!(
        purge.status.success(),
        "{}",
        String::from_utf8_lossy(&purge.stderr)
    );
    assert!(!Path::new("/usr/bin/longshore").exists());
    assert!(!Path::new("/lib/systemd/system/longshore.service").exists());
}
