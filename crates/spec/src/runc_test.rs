//! End to end: specs built by [`super::build`] for a busybox rootfs, run for real by Debian's
//! runc in pinned pod namespaces and a cgroup below the test's own.
//!
//! Needs root, `/usr/bin/runc` and a static `/bin/busybox` (Debian's busybox-static).

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use longshore_namespaces::{PinRequest, pin, unpin};

use super::*;
use crate::api::{
    Capability, ContainerMetadata, LinuxContainerConfig, LinuxContainerResources,
    Mount as CriMount, NamespaceMode, NamespaceOption, PodSandboxMetadata, SecurityProfile,
};

const RUNC: &str = "/usr/bin/runc";
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "id", "cat", "echo", "chown", "touch", "unshare", "grep", "true", "hostname",
];
const POD_HOSTNAME: &str = "spec-pod";
const MEMORY_LIMIT: i64 = 64 << 20;

/// A pod: pinned namespaces, its files, a busybox rootfs, runc state. Dropping it releases the
/// pins; every container is deleted by its own guard.
struct Pod {
    dir: tempfile::TempDir,
    pod: PodContext,
}

impl Pod {
    fn new() -> Pod {
        let dir = tempfile::tempdir().expect("temp dir");
        let ns_dir = dir.path().join("ns");
        let pinned = pin(
            &ns_dir,
            &PinRequest {
                net: true,
                ipc: true,
                uts: true,
                hostname: Some(POD_HOSTNAME.into()),
                sysctls: vec![],
            },
        )
        .expect("pin pod namespaces");
        let files = dir.path().join("pod");
        std::fs::create_dir_all(files.join("shm")).unwrap();
        std::fs::write(files.join("hostname"), format!("{POD_HOSTNAME}\n")).unwrap();
        std::fs::write(files.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(files.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let pod = PodContext {
            sandbox_id: "pod-under-test".into(),
            netns: pinned.net.clone(),
            ipcns: pinned.ipc.clone(),
            utsns: pinned.uts.clone(),
            hostname: POD_HOSTNAME.into(),
            hostname_file: Some(files.join("hostname")),
            hosts_file: Some(files.join("hosts")),
            resolv_conf: Some(files.join("resolv.conf")),
            shm: Some(files.join("shm")),
            ..Default::default()
        };
        Pod { dir, pod }
    }

    /// A fresh busybox rootfs for one container.
    fn rootfs(&self, name: &str) -> PathBuf {
        let root = self.dir.path().join(name).join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:3000:app\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/secret"), "do-not-read\n").unwrap();
        root
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = unpin(&self.dir.path().join("ns"));
    }
}

/// Removes the container's runc state and cgroups, whatever happened.
struct ContainerGuard {
    id: String,
    state: PathBuf,
    cgroup: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new(RUNC)
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "--force", &self.id])
            .output();
        for dir in cgroup_dirs(&self.cgroup) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A tmpfs mounted on the host for the duration of a test.
struct TmpfsGuard(PathBuf);

impl TmpfsGuard {
    fn mount(at: &Path) -> TmpfsGuard {
        std::fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount tmpfs");
        TmpfsGuard(at.to_path_buf())
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Where a cgroup path relative to ours lands in every hierarchy this process belongs to (runc
/// joins a relative `cgroupsPath` to its own cgroup in each one).
fn cgroup_dirs(relative: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let mounts: Vec<PathBuf> = if controllers.is_empty() {
            vec![
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup"),
            ]
        } else {
            controllers
                .split(',')
                .map(|c| Path::new("/sys/fs/cgroup").join(c.trim_start_matches("name=")))
                .collect()
        };
        for m in mounts.into_iter().filter(|m| m.is_dir()) {
            dirs.push(m.join(path.trim_start_matches('/')).join(relative));
        }
    }
    dirs
}

/// What one container run printed.
struct Run {
    stdout: String,
    stderr: String,
    built: BuiltSpec,
}

fn run(pod: &Pod, name: &str, config: ContainerConfig) -> Run {
    let rootfs = pod.rootfs(name);
    let settings = SpecSettings::from_config(
        &longshore_config::ContainersConfig::default(),
        HostFacts::detect(),
    )
    .expect("settings");
    let image = ImageConfigView {
        user: "app".into(),
        cmd: vec!["sh".into()],
        image_name: "busybox".into(),
        ..Default::default()
    };
    let pod_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "pod".into(),
            uid: "u".into(),
            namespace: "ns".into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    let id = format!("longshore-spec-{}-{name}", std::process::id());
    let guard = ContainerGuard {
        id: id.clone(),
        state: pod.dir.path().join("runc-state"),
        cgroup: id.clone(),
    };
    let built = build(&SpecInput {
        container_id: &id,
        config: &config,
        pod_config: &pod_config,
        pod: &pod.pod,
        image: &image,
        rootfs: &rootfs,
        cgroups_path: &guard.cgroup,
        settings: &settings,
    })
    .expect("build spec");
    let bundle = rootfs.parent().unwrap();
    built
        .spec
        .save(bundle.join("config.json"))
        .expect("write config.json");
    let out = Command::new(RUNC)
        .arg("--root")
        .arg(&guard.state)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .output()
        .expect("run runc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{name}: runc failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // runc run removes the container and its cgroups once the process exits.
    let left: Vec<PathBuf> = cgroup_dirs(&id)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "{name}: cgroups left behind: {left:?}");
    drop(guard);
    Run {
        stdout,
        stderr,
        built,
    }
}

fn container(command: &str, sc: LinuxContainerSecurityContext) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        command: vec!["sh".into(), "-c".into(), command.into()],
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: MEMORY_LIMIT,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..sc
            }),
        }),
        ..Default::default()
    }
}

/// The value after `key=` on its own output line.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

fn prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs containers and must run as root"
    );
    assert!(
        Path::new(RUNC).exists() && Path::new(BUSYBOX).exists(),
        "needs {RUNC} and {BUSYBOX}"
    );
}

#[test]
fn specs_run_under_runc() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root (run scripts/test.sh as root)");
        return;
    }
    prerequisites();
    let pod = Pod::new();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("f"), "").unwrap();
    let scratch_mount = CriMount {
        host_path: scratch.path().display().to_string(),
        container_path: "/scratch".into(),
        ..Default::default()
    };

    // 1. The image user with groups from /etc/group and the request; a masked path; pod files,
    //    memory limit; no seccomp asked, none applied.
    let sc = LinuxContainerSecurityContext {
        supplemental_groups: vec![1234],
        masked_paths: vec!["/etc/secret".into()],
        ..Default::default()
    };
    let script = "echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo secret=$(cat /etc/secret); \
                  echo hostname=$(hostname); echo etc_hostname=$(cat /etc/hostname); echo env=$HOSTNAME; \
                  echo mem=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null); \
                  echo cgroup=$(cat /proc/self/cgroup | grep ^0::); \
                  echo $(grep Seccomp: /proc/self/status)";
    let r = run(&pod, "user", container(script, sc));
    assert_eq!(
        r.built.user,
        ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![1000, 1234, 3000]
        }
    );
    assert_eq!(field(&r.stdout, "uid="), "1000");
    assert_eq!(field(&r.stdout, "gid="), "1000");
    let groups: BTreeSet<u32> = field(&r.stdout, "groups=")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    assert_eq!(groups, BTreeSet::from([1000, 1234, 3000]));
    assert_eq!(
        field(&r.stdout, "secret="),
        "",
        "masked file must read empty; stderr: {}",
        r.stderr
    );
    assert_eq!(field(&r.stdout, "hostname="), POD_HOSTNAME);
    assert_eq!(field(&r.stdout, "etc_hostname="), POD_HOSTNAME);
    assert_eq!(field(&r.stdout, "env="), POD_HOSTNAME);
    assert_eq!(field(&r.stdout, "mem="), MEMORY_LIMIT.to_string());
    if HostFacts::detect().cgroup_v2 {
        // Its own cgroup namespace: the container sees itself at the root.
        assert_eq!(field(&r.stdout, "cgroup="), "0::/");
    }
    assert_eq!(field(&r.stdout, "Seccomp: "), "0");

    // 2. The control: root with default capabilities, writable rootfs, unconfined. Each of the
    //    operations the next container must be refused works here.
    let root = LinuxContainerSecurityContext {
        run_as_user: Some(crate::api::Int64Value { value: 0 }),
        ..Default::default()
    };
    let script = "chown 1 /scratch/f; echo chown=$?; touch /newfile; echo touch=$?; \
                  unshare -U true; echo unshare=$?; echo $(grep Seccomp: /proc/self/status)";
    let mut config = container(script, root.clone());
    config.mounts = vec![scratch_mount.clone()];
    let r = run(&pod, "control", config);
    assert_eq!(field(&r.stdout, "chown="), "0", "stderr: {}", r.stderr);
    assert_eq!(field(&r.stdout, "touch="), "0", "stderr: {}", r.stderr);
    assert_eq!(field(&r.stdout, "unshare="), "0", "stderr: {}", r.stderr);
    assert_eq!(field(&r.stdout, "Seccomp: "), "0");
    std::os::unix::fs::chown(scratch.path().join("f"), Some(0), Some(0)).unwrap();

    // 3. CAP_CHOWN dropped, read-only rootfs, RuntimeDefault seccomp.
    let locked = LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            drop_capabilities: vec!["CHOWN".into()],
            ..Default::default()
        }),
        readonly_rootfs: true,
        seccomp: Some(SecurityProfile::default()),
        ..root
    };
    let mut config = container(script, locked);
    config.mounts = vec![scratch_mount];
    let r = run(&pod, "locked", config);
    assert_eq!(field(&r.stdout, "chown="), "1");
    assert!(
        r.stderr
            .contains("chown: /scratch/f: Operation not permitted"),
        "{}",
        r.stderr
    );
    assert_eq!(field(&r.stdout, "touch="), "1");
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    assert_eq!(field(&r.stdout, "unshare="), "1");
    assert!(
        r.stderr
            .contains("unshare: unshare(0x10000000): Operation not permitted"),
        "{}",
        r.stderr
    );
    assert_eq!(field(&r.stdout, "Seccomp: "), "2");
    let uid = std::fs::metadata(scratch.path().join("f"))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(uid, 0, "the refused chown changed nothing");

    // 4. Read-only mounts: plain `ro` covers only the top mount, `rro` every mount below it.
    let volume = tempfile::tempdir().unwrap();
    let _sub = TmpfsGuard::mount(&volume.path().join("sub"));
    let bind = |dst: &str, rro: bool| CriMount {
        host_path: volume.path().display().to_string(),
        container_path: dst.into(),
        readonly: true,
        recursive_read_only: rro,
        ..Default::default()
    };
    let script = "touch /ro/top; echo ro_top=$?; touch /ro/sub/a; echo ro_sub=$?; \
                  touch /rro/sub/b; echo rro_sub=$?";
    let mut config = container(script, LinuxContainerSecurityContext::default());
    config.mounts = vec![bind("/ro", false), bind("/rro", true)];
    let r = run(&pod, "readonly", config);
    assert_eq!(field(&r.stdout, "ro_top="), "1", "stderr: {}", r.stderr);
    assert_eq!(field(&r.stdout, "ro_sub="), "0", "stderr: {}", r.stderr);
    assert_eq!(field(&r.stdout, "rro_sub="), "1", "stderr: {}", r.stderr);
}
