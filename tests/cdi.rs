//! CDI devices end to end: spec files the test writes (a `vendor.example/dev=null` device backed
//! by /dev/null with environment, a mount, extra groups and hooks that leave a trace on the
//! host), asked for through `CDI_devices` and through `cdi.k8s.io/*` annotations, with the
//! embedded executor and with runc; unknown devices and broken files refused by name; files
//! written after the daemon started are seen.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Options, TestDaemon};
use longshore::api::*;
use tonic::Code;

/// Spec directories (lowest priority first) and the files the hooks and mounts use.
struct Specs {
    _dir: tempfile::TempDir,
    etc: PathBuf,
    run: PathBuf,
    trace: PathBuf,
    data: PathBuf,
}

impl Specs {
    fn new() -> Specs {
        let dir = tempfile::tempdir().unwrap();
        let (etc, run) = (dir.path().join("etc-cdi"), dir.path().join("run-cdi"));
        std::fs::create_dir(&etc).unwrap();
        std::fs::create_dir(&run).unwrap();
        let data = dir.path().join("data.txt");
        std::fs::write(&data, "vendor data\n").unwrap();
        let trace = dir.path().join("trace");
        let specs = Specs {
            etc,
            run,
            trace,
            data,
            _dir: dir,
        };
        specs.write_null_device();
        specs
    }

    fn hook(&self, name: &str) -> serde_json::Value {
        let script = format!("echo {name} >> {}", self.trace.display());
        serde_json::json!({"hookName": name, "path": "/bin/sh", "args": ["sh", "-c", script]})
    }

    fn write_null_device(&self) {
        let spec = serde_json::json!({
            "cdiVersion": "0.7.0",
            "kind": "vendor.example/dev",
            "containerEdits": {"env": ["CDI_VENDOR=example"]},
            "devices": [{
                "name": "null",
                "containerEdits": {
                    "env": ["CDI_DEVICE=null"],
                    "deviceNodes": [{"path": "/dev/cdi-null", "hostPath": "/dev/null"}],
                    "mounts": [{
                        "hostPath": self.data.to_string_lossy(),
                        "containerPath": "/cdi/data",
                        "options": ["ro", "bind"]
                    }],
                    "hooks": [self.hook("createRuntime"), self.hook("poststart"), self.hook("poststop")],
                    "additionalGids": [4242]
                }
            }]
        });
        std::fs::write(
            self.etc.join("vendor.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
    }

    fn config(&self) -> String {
        format!(
            "[containers]\ncdi_spec_dirs = [\"{}\", \"{}\"]\n",
            self.etc.display(),
            self.run.display()
        )
    }

    fn trace(&self) -> Vec<String> {
        std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

fn log_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3).map(String::from))
        .collect()
}

const PROBE: &str = "echo \"env $CDI_DEVICE $CDI_VENDOR $LATE\"; cat /cdi/data; \
                     [ -c /dev/cdi-null ] && echo x > /dev/cdi-null && echo chardev; id -G";

fn with_devices(name: &str, devices: &[&str]) -> ContainerConfig {
    let mut c = TestDaemon::container_config(name, &["sh", "-c", PROBE]);
    c.cdi_devices = devices
        .iter()
        .map(|d| CdiDevice {
            name: d.to_string(),
        })
        .collect();
    c
}

async fn run_pod_on(d: &mut TestDaemon, name: &str, handler: &str) -> (String, PodSandboxConfig) {
    let pod = d.pod_config(name);
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

async fn refused(
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

async fn devices_reach_the_container(handler: &str) {
    let specs = Specs::new();
    let mut d = TestDaemon::start_with(Options {
        extra_config: specs.config(),
        ..Default::default()
    })
    .await;
    d.pull(common::BUSYBOX).await;
    let (pod_id, pod) = run_pod_on(&mut d, &format!("cdi-{handler}"), handler).await;

    let c = with_devices("field", &["vendor.example/dev=null"]);
    let id = d.run_container(&pod_id, &pod, c).await;
    let status = d.wait_exited(&id, Duration::from_secs(20)).await;
    let lines = log_lines(&status.log_path);
    assert_eq!(status.exit_code, 0, "{lines:?}");
    assert_eq!(lines[0].trim_end(), "env null example", "{lines:?}");
    assert_eq!(lines[1], "vendor data");
    assert_eq!(lines[2], "chardev", "{lines:?}");
    assert!(
        lines[3].split(' ').any(|g| g == "4242"),
        "groups: {lines:?}"
    );
    let trace = specs.trace();
    for hook in ["createRuntime", "poststart"] {
        assert!(trace.iter().any(|t| t == hook), "{hook} ran: {trace:?}");
    }

    // The annotation form, and a spec file written while the daemon runs.
    let late = "cdiVersion: \"0.5.0\"\nkind: vendor.example/late\ndevices:\n  - name: one\n    containerEdits:\n      env: [\"LATE=1\"]\n";
    std::fs::write(specs.run.join("late.yaml"), late).unwrap();
    let mut c = with_devices("annotated", &["vendor.example/late=one"]);
    c.annotations
        .insert("cdi.k8s.io/test".into(), "vendor.example/dev=null".into());
    let id = d.run_container(&pod_id, &pod, c).await;
    let status = d.wait_exited(&id, Duration::from_secs(20)).await;
    let lines = log_lines(&status.log_path);
    assert_eq!(
        lines.first().map(|l| l.trim_end()),
        Some("env null example 1"),
        "{lines:?}"
    );

    // Unknown devices and broken files are refused by name, and nothing is made.
    let before = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .len();
    let err = refused(
        &mut d,
        &pod_id,
        &pod,
        with_devices("unknown", &["vendor.example/dev=gpu7"]),
    )
    .await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("vendor.example/dev=gpu7"), "{err}");
    std::fs::write(specs.run.join("broken.json"), "{\"cdiVersion\": ").unwrap();
    let err = refused(
        &mut d,
        &pod_id,
        &pod,
        with_devices("broken", &["vendor.example/broken=x"]),
    )
    .await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("broken.json"), "{err}");
    let err = refused(&mut d, &pod_id, &pod, with_devices("bad-name", &["gpu0"])).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let after = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .len();
    assert_eq!(before, after, "a refused container was made");
    // The broken file costs only itself.
    let id = d
        .run_container(
            &pod_id,
            &pod,
            with_devices("still", &["vendor.example/dev=null"]),
        )
        .await;
    assert_eq!(
        d.wait_exited(&id, Duration::from_secs(20)).await.exit_code,
        0
    );

    d.remove_all_pods().await;
    d.assert_nothing_left();
    let trace = specs.trace();
    assert!(
        trace.iter().any(|t| t == "poststop"),
        "poststop ran at removal: {trace:?}"
    );
    assert!(Path::new(&specs.data).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn cdi_devices_reach_the_container_embedded() {
    longshore_testkit::require_root!();
    devices_reach_the_container("").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cdi_devices_reach_the_container_runc() {
    longshore_testkit::require_root!();
    devices_reach_the_container("runc").await;
}
