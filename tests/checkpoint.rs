//! Checkpoint and restore end to end: a counter checkpointed while it runs (with the embedded
//! executor and with runc), its archive read back in CRI-O's layout, the original pod removed,
//! and the counter restored into a new pod (by the embedded executor, by runc, and from an OCI
//! image made of the archive), counting on from where it was, with its writable
//! layer's changes (a file written, a file deleted) in place.
//!
//! CRIU must work on the kernel: on this project's hosts (kernel 6.18, Debian's CRIU 3.17.1)
//! `criu check` fails on the vDSO layout, so there the requests are checked and CRIU's own error
//! must reach the client; scripts/test.sh runs the whole round trip in the cgroup v2 VM (Debian's
//! 6.1 kernel), where CRIU works.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestDaemon;
use longshore::api::*;
use tonic::Code;

/// Counts in a shell variable (so only a restored process can go on from its value), keeps the
/// count in a file of its writable layer and logs it; deletes a file of the image first.
const COUNTER: &str = "rm /etc/group; i=0; while true; do i=$((i+1)); echo $i > /count; \
                       echo $i; sleep 0.2; done";

/// `Ok` when CRIU runs here; its own words otherwise.
fn criu_works() -> Result<(), String> {
    match Command::new("criu").arg("check").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("criu: {e}")),
    }
}

/// A pod whose containers have PID namespaces of their own (what CRIU restores whole).
fn pod_config(d: &TestDaemon, name: &str) -> PodSandboxConfig {
    let mut pod = d.pod_config(name);
    pod.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(private_pid()),
            ..Default::default()
        }),
        ..Default::default()
    });
    pod
}

fn private_pid() -> NamespaceOption {
    NamespaceOption {
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    }
}

fn counter_config(name: &str, image: &str) -> ContainerConfig {
    let mut c = TestDaemon::container_config(name, &["sh", "-c", COUNTER]);
    c.image = Some(ImageSpec {
        image: image.into(),
        ..Default::default()
    });
    c.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(private_pid()),
            ..Default::default()
        }),
        ..Default::default()
    });
    c
}

async fn run_pod(d: &mut TestDaemon, pod: &PodSandboxConfig, handler: &str) -> String {
    d.client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", d.daemon_log()))
        .into_inner()
        .pod_sandbox_id
}

async fn checkpoint(d: &mut TestDaemon, id: &str, location: &str) -> Result<(), tonic::Status> {
    d.client
        .runtime
        .checkpoint_container(CheckpointContainerRequest {
            container_id: id.into(),
            location: location.into(),
            timeout: 120,
        })
        .await
        .map(|_| ())
}

async fn create(
    d: &mut TestDaemon,
    pod_id: &str,
    pod: &PodSandboxConfig,
    config: ContainerConfig,
) -> Result<String, tonic::Status> {
    d.client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .map(|r| r.into_inner().container_id)
}

async fn exec(d: &mut TestDaemon, id: &str, cmd: &[&str]) -> (i32, String) {
    let out = d
        .client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}\n{}", d.daemon_log()))
        .into_inner();
    (
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

async fn count(d: &mut TestDaemon, id: &str) -> u64 {
    let (code, text) = exec(d, id, &["cat", "/count"]).await;
    assert_eq!(code, 0, "cat /count: {text}");
    text.parse().unwrap_or(0)
}

/// Waits until the counter has counted past `n`.
async fn counted_past(d: &mut TestDaemon, id: &str, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = count(d, id).await;
        if c > n {
            return c;
        }
        assert!(Instant::now() < deadline, "{id} stuck at {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_numbers(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3)?.trim().parse().ok())
        .collect()
}

fn tar_names(tar: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect()
}

/// Checkpoints a running counter of a `handler` pod, checks the archive, removes the pod and
/// restores the counter into a new `restore_handler` pod.
async fn round_trip(d: &mut TestDaemon, handler: &str, restore_handler: &str, image_id: &str) {
    let out = tempfile::tempdir().unwrap();
    let location = out.path().join(format!("checkpoint-{handler}.tar"));
    let location_str = location.to_string_lossy().to_string();

    let pod = pod_config(d, &format!("ckpt-src-{handler}"));
    let pod_id = run_pod(d, &pod, handler).await;
    let id = create(d, &pod_id, &pod, counter_config("counter", common::BUSYBOX))
        .await
        .unwrap();
    d.client
        .runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    counted_past(d, &id, 5).await;
    let source_image_ref = d.status(&id).await.image_ref;

    checkpoint(d, &id, &location_str)
        .await
        .unwrap_or_else(|e| panic!("CheckpointContainer ({handler:?}): {e}\n{}", d.daemon_log()));
    // It keeps running and counting.
    let status = d.status(&id).await;
    assert_eq!(status.state, ContainerState::ContainerRunning as i32);
    let after = count(d, &id).await;
    counted_past(d, &id, after).await;
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        leftovers,
        vec![format!("checkpoint-{handler}.tar")],
        "only the archive"
    );

    // The archive, as CRI-O lays it out.
    let (meta, spec) = longshore_checkpoint::read_head(&location).unwrap().unwrap();
    assert_eq!(meta.id, id);
    assert_eq!(meta.name, "counter");
    assert_eq!(meta.rootfs_image_ref, image_id);
    assert_eq!(
        meta.runtime,
        if handler.is_empty() {
            "longshore"
        } else {
            handler
        }
    );
    let spec: serde_json::Value = serde_json::from_slice(&spec).unwrap();
    assert_eq!(spec["process"]["args"][2], COUNTER);
    let unpacked = tempfile::tempdir().unwrap();
    longshore_checkpoint::unpack(&location, unpacked.path()).unwrap();
    let u = unpacked.path();
    assert!(u.join("checkpoint/inventory.img").exists());
    assert!(u.join("checkpoint/descriptors.json").exists());
    assert!(u.join("dump.log").exists());
    let diff = tar_names(&u.join("rootfs-diff.tar"));
    assert!(diff.iter().any(|n| n == "count"), "{diff:?}");
    let deleted: Vec<String> =
        serde_json::from_slice(&std::fs::read(u.join("deleted.files")).unwrap()).unwrap();
    assert_eq!(deleted, vec!["/etc/group"]);
    inspect_with_checkpointctl(&location, &id);
    let checkpointed: u64 = {
        let mut a = tar::Archive::new(std::fs::File::open(u.join("rootfs-diff.tar")).unwrap());
        let mut entry = a
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_str() == Some("count"))
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        text.trim().parse().unwrap()
    };

    // The original goes away; the checkpoint comes back in a new pod.
    d.remove_all_pods().await;
    let pod = pod_config(d, &format!("ckpt-dst-{handler}"));
    let pod_id = run_pod(d, &pod, restore_handler).await;
    let restored = create(d, &pod_id, &pod, counter_config("restored", &location_str))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateContainer from the checkpoint: {e}\n{}",
                d.daemon_log()
            )
        });
    let status = d.status(&restored).await;
    assert_eq!(
        status.image_ref, source_image_ref,
        "made from the checkpointed image"
    );
    d.client
        .runtime
        .start_container(StartContainerRequest {
            container_id: restored.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer (restore): {e}\n{}", d.daemon_log()));
    let now = counted_past(d, &restored, checkpointed).await;
    let (_, cgroup) = exec(d, &restored, &["cat", "/proc/1/cgroup"]).await;
    let (_, own) = exec(d, &restored, &["cat", "/proc/self/cgroup"]).await;
    assert_eq!(
        cgroup, own,
        "the restored process is in its new container's cgroup"
    );
    assert!(now > checkpointed, "{now} after {checkpointed}");
    let (code, _) = exec(d, &restored, &["cat", "/etc/group"]).await;
    assert_ne!(code, 0, "the deleted file stays deleted");
    // The restored shell counts on from its own variable: its log starts after the checkpoint.
    let status = d.status(&restored).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let logged = log_numbers(&status.log_path);
    assert!(
        !logged.is_empty(),
        "the restored process logs to its new log"
    );
    // (The dump may fall between writing /count and echoing the same number.)
    assert!(
        logged.iter().all(|n| *n >= checkpointed) && logged[0] <= checkpointed + 1,
        "counted on from {checkpointed}: {logged:?}"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
    if handler == "runc" {
        // Made by runc, restored by the embedded executor this time.
        restore_from_an_image(d, &location, checkpointed, "").await;
    }
}

/// The archive as an OCI image (its one layer is the archive, its manifest carries CRI-O's
/// checkpoint annotation), pushed to the test registry, pulled, and restored from.
async fn restore_from_an_image(
    d: &mut TestDaemon,
    archive: &Path,
    checkpointed: u64,
    handler: &str,
) {
    let registry = WritableRegistry::start();
    let name = format!("{}/e2e-checkpoints/counter:v1", registry.authority);
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(layout.path(), archive);
    let copy = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}", layout.path().display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    d.pull(&name).await;
    drop(registry);

    let pod = pod_config(d, "ckpt-from-image");
    let pod_id = run_pod(d, &pod, handler).await;
    let restored = create(d, &pod_id, &pod, counter_config("from-image", &name))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateContainer from the checkpoint image: {e}\n{}",
                d.daemon_log()
            )
        });
    d.client
        .runtime
        .start_container(StartContainerRequest {
            container_id: restored.clone(),
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "StartContainer (restore from image): {e}\n{}",
                d.daemon_log()
            )
        });
    counted_past(d, &restored, checkpointed).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let logged = log_numbers(&d.status(&restored).await.log_path);
    assert!(
        !logged.is_empty() && logged[0] <= checkpointed + 1 && logged[0] >= checkpointed,
        "counted on from {checkpointed}: {logged:?}"
    );
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

/// A registry of the test's own on a free loopback port (the shared test registry is read-only
/// in the VM), with its storage in a temporary folder; killed (by its PID) when dropped.
struct WritableRegistry {
    authority: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl WritableRegistry {
    fn start() -> WritableRegistry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: checkpoint-test\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let authority = format!("127.0.0.1:{port}");
        let up = longshore_testkit::eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(&authority).is_ok()
        });
        let registry = WritableRegistry {
            authority,
            child,
            _dir: dir,
        };
        assert!(up, "the test's registry did not come up");
        registry
    }
}

impl Drop for WritableRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Adds `bytes` as a blob of the layout; returns its descriptor's digest and size.
fn add_blob(layout: &Path, file: &Path) -> (String, u64) {
    let digest = sha256(file);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::copy(file, blobs.join(&digest[7..])).unwrap();
    (digest, std::fs::metadata(file).unwrap().len())
}

fn add_json(layout: &Path, value: &serde_json::Value) -> (String, u64) {
    let file = layout.join("tmp.json");
    std::fs::write(&file, serde_json::to_vec(value).unwrap()).unwrap();
    let added = add_blob(layout, &file);
    std::fs::remove_file(file).unwrap();
    added
}

fn write_oci_layout(layout: &Path, archive: &Path) {
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let (layer, layer_size) = add_blob(layout, archive);
    let (config, config_size) = add_json(
        layout,
        &serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer]}
        }),
    );
    let (manifest, manifest_size) = add_json(
        layout,
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
            "annotations": {"io.kubernetes.cri-o.annotations.checkpoint.name": "counter"}
        }),
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifest_size}]
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_counter_is_checkpointed_and_restored_in_a_new_pod() {
    longshore_testkit::require_root!();
    if let Err(why) = criu_works() {
        eprintln!(
            "skipped: CRIU cannot run on this kernel ({why}); scripts/test.sh runs this in the cgroup v2 VM"
        );
        return;
    }
    let mut d = TestDaemon::start().await;
    let image_id = d.pull(common::BUSYBOX).await;
    round_trip(&mut d, "", "", &image_id).await;
    round_trip(&mut d, "runc", "runc", &image_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_and_restore_requests_are_checked() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let image_id = d.pull(common::BUSYBOX).await;
    let out = tempfile::tempdir().unwrap();
    let location = out.path().join("c.tar").to_string_lossy().to_string();

    let err = checkpoint(&mut d, "no-such-container", &location)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    let pod = pod_config(&d, "ckpt-checks");
    let pod_id = run_pod(&mut d, &pod, "").await;
    let exited = d
        .run_container(
            &pod_id,
            &pod,
            TestDaemon::container_config("done", &["true"]),
        )
        .await;
    d.wait_exited(&exited, Duration::from_secs(20)).await;
    let err = checkpoint(&mut d, &exited, &location).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");

    let running = d
        .run_container(&pod_id, &pod, counter_config("counter", common::BUSYBOX))
        .await;
    for bad in ["", "relative.tar", "/no/such/folder/c.tar"] {
        let err = checkpoint(&mut d, &running, bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err}");
    }
    let folder = out.path().to_string_lossy().to_string();
    let err = checkpoint(&mut d, &running, &folder).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    if let Err(why) = criu_works() {
        // CRIU's own refusal reaches the client, and nothing is left behind.
        let err = checkpoint(&mut d, &running, &location).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
        let first = why.lines().next().unwrap_or_default();
        assert!(
            err.message().contains("criu") || err.message().contains(first),
            "{err} (criu check: {why})"
        );
        eprintln!("CRIU refused, as criu check said: {err}");
        let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            d.status(&running).await.state,
            ContainerState::ContainerRunning as i32
        );
    }

    // Restores: a path that is no archive, and an archive in a pod of the embedded executor.
    let not_archive = out.path().join("plain.tar");
    std::fs::write(&not_archive, "not a tar").unwrap();
    let err = create(
        &mut d,
        &pod_id,
        &pod,
        counter_config("from-plain", &not_archive.to_string_lossy()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // An archive without real CRIU images is made into a container, but CRIU's refusal to
    // restore it fails the start, saying so, with nothing left running.
    let fake = made_up_archive(out.path(), &image_id);
    let from_fake = create(&mut d, &pod_id, &pod, counter_config("from-fake", &fake))
        .await
        .unwrap();
    let err = d
        .client
        .runtime
        .start_container(StartContainerRequest {
            container_id: from_fake.clone(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("criu"), "{err}");
    let status = d.status(&from_fake).await;
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert_eq!(status.reason, "StartError");
    let runc_pod = pod_config(&d, "ckpt-checks-runc");
    let runc_pod_id = run_pod(&mut d, &runc_pod, "runc").await;
    let other_image = made_up_archive(out.path(), "sha256:0000");
    let err = create(
        &mut d,
        &runc_pod_id,
        &runc_pod,
        counter_config("from-elsewhere", &other_image),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert!(err.message().contains("sha256:0000"), "{err}");

    d.remove_all_pods().await;
    d.assert_nothing_left();
}

/// `checkpointctl show` (checkpoint-restore's inspection tool, where it is installed: it is not
/// packaged by Debian) reads the archive as one of CRI-O's: it names the container and image.
fn inspect_with_checkpointctl(archive: &Path, id: &str) {
    let Ok(out) = Command::new("checkpointctl")
        .arg("show")
        .arg(archive)
        .output()
    else {
        eprintln!("checkpointctl is not installed: the archive is not inspected with it");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "checkpointctl show: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("checkpointctl show:\n{text}");
    assert!(text.contains("counter"), "{text}");
    assert!(text.contains(&id[..12]), "{text}");
    assert!(text.contains("busybox"), "{text}");
}

/// An archive with the metadata of a checkpoint of `image_id` and no real CRIU images.
fn made_up_archive(dir: &Path, image_id: &str) -> String {
    let content = tempfile::tempdir().unwrap();
    let meta = longshore_checkpoint::ContainerMetadata {
        id: "x".into(),
        name: "x".into(),
        rootfs_image: "busybox".into(),
        rootfs_image_ref: image_id.into(),
        rootfs_image_name: "busybox".into(),
        runtime: "runc".into(),
        created_time: chrono::Utc::now(),
        checkpointed_time: chrono::Utc::now(),
    };
    longshore_checkpoint::write_metadata(content.path(), &meta).unwrap();
    std::fs::write(
        content.path().join("spec.dump"),
        r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sleep","1"],"cwd":"/"},"root":{"path":"rootfs"}}"#,
    )
    .unwrap();
    std::fs::create_dir(content.path().join("checkpoint")).unwrap();
    std::fs::write(
        content.path().join("checkpoint/descriptors.json"),
        r#"["/dev/null","pipe:[1]","pipe:[2]"]"#,
    )
    .unwrap();
    let path = dir.join(format!("made-up-{}.tar", &image_id[7..11]));
    longshore_checkpoint::pack(content.path(), &path).unwrap();
    path.to_string_lossy().to_string()
}
