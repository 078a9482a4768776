//! The end-to-end harness: a real `longshore serve` process with its own root, state, socket and
//! cgroup, driven through the CRI gRPC API, and checks that nothing is left behind.
//!
//! Needs root, and the local registry of `scripts/setup-test-host.sh` on 127.0.0.1:5000.
#![allow(dead_code)]

pub mod net;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use longshore::api::*;
use longshore::client::CriClient;
use longshore_testkit::cgroup::TestCgroupRoot;

/// The image every basic test runs.
/// How long a removed container's storage may take to go after RemoveContainer answered.
pub const RELEASE_WITHIN: Duration = Duration::from_secs(5);
pub const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";

/// Options for one test daemon.
#[derive(Clone)]
pub struct Options {
    /// Give the daemon a CNI bridge network of its own (bridge + host-local, and portmap when
    /// `portmap`); without it pods cannot be made unless they use the host network.
    pub cni: bool,
    /// Add the portmap plugin to the test network.
    pub portmap: bool,
    /// Extra TOML appended to the generated config (new tables only).
    pub extra_config: String,
    /// Extra keys for the generated `[registry]` table.
    pub registry_extra: String,
    /// Make the daemon's folder private (0700) instead of searchable by others (0711): then
    /// pods cannot have user namespaces.
    pub private_dir: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cni: true,
            portmap: false,
            extra_config: String::new(),
            registry_extra: String::new(),
            private_dir: false,
        }
    }
}

/// A bridge name and a /24 unique to this test daemon (per process by counter, across
/// processes by pid).
fn test_network() -> (String, u8) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let octet = ((std::process::id() * 7 + n * 13) % 250 + 1) as u8;
    (format!("lse{}", &rand_suffix()[..6]), octet)
}

/// A running test daemon. Dropping it removes its pods, stops it and sweeps up.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config_file: PathBuf,
    pub log_dir: PathBuf,
    pub cgroup_root: String,
    /// The test cgroup root itself: dropping it kills and removes what is left there.
    cgroups: TestCgroupRoot,
    pub client: CriClient,
    /// The test network's bridge and subnet octet, if it has one.
    pub network: Option<(String, u8)>,
    child: Option<Child>,
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config_text(dir: &Path, cgroup_root: &str, opts: &Options) -> String {
    let cni_dir = dir.join("cni");
    let mut text = format!(
        "root = \"{root}\"\nstate = \"{state}\"\n\
         [registry]\nconfig_path = \"{hosts}\"\ndocker_config = \"{dir}/no-docker-config.json\"\n{registry_extra}\n\
         [cgroups]\nroot = \"{cgroup_root}\"\ndefault_parent = \"/pods\"\n\
         [cni]\nconf_dir = \"{cni}\"\ncache_dir = \"{dir}/cni-cache\"\n\
         [runtime.handlers.runc]\npath = \"/usr/bin/runc\"\n",
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        hosts = repo_dir().join("tests/registry/hosts.d").display(),
        dir = dir.display(),
        cni = cni_dir.display(),
        registry_extra = opts.registry_extra,
    );
    text.push_str(&opts.extra_config);
    text
}

impl TestDaemon {
    /// Starts a daemon with default options.
    pub async fn start() -> TestDaemon {
        Self::start_with(Options::default()).await
    }

    /// Starts a daemon.
    pub async fn start_with(opts: Options) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("longshore-e2e-")
            .tempdir()
            .unwrap();
        // As /var/lib and /run are: the processes of a pod with its own user namespace, which
        // are not the host's root, must be able to pass through to their root filesystem.
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if opts.private_dir { 0o700 } else { 0o711 };
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let cgroups = TestCgroupRoot::new("longshore-e2e");
        let cgroup_root = cgroups.path().to_string();
        let cni_dir = dir.path().join("cni");
        std::fs::create_dir_all(&cni_dir).unwrap();
        let network = opts.cni.then(test_network);
        if let Some((bridge, octet)) = &network {
            write_bridge_conflist(&cni_dir, dir.path(), bridge, *octet, opts.portmap);
        }
        let config_file = dir.path().join("config.toml");
        std::fs::write(&config_file, config_text(dir.path(), &cgroup_root, &opts)).unwrap();
        let socket = dir.path().join("state/longshore.sock");
        let log_dir = dir.path().join("logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let child = spawn(&config_file, dir.path(), &[]);
        let client = connect(&socket).await;
        TestDaemon {
            dir,
            socket,
            config_file,
            log_dir,
            cgroup_root,
            cgroups,
            client,
            network,
            child: Some(child),
        }
    }

    /// The daemon's pid, while it runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the daemon with SIGTERM (containers keep running) and starts it again.
    pub async fn restart(&mut self) {
        self.restart_with_env(&[]).await;
    }

    /// Restarts the daemon with extra environment variables (a crash point).
    pub async fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.stop_process(libc::SIGTERM);
        let child = spawn(&self.config_file, self.dir.path(), env);
        self.child = Some(child);
        self.client = connect(&self.socket).await;
    }

    /// Waits for the daemon process to end by itself (at a crash point), for at most `within`.
    pub fn wait_for_daemon_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(_))) | None => {
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    /// Stops the daemon process only, with `signal`.
    pub fn stop_process(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of our own child process.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
        }
    }

    /// The daemon's log so far, for failure messages.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Pulls an image and returns its id.
    pub async fn pull(&mut self, image: &str) -> String {
        let resp = self
            .client
            .image
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("pull {image}: {e}\n{}", self.daemon_log()));
        resp.into_inner().image_ref
    }

    /// A pod config with a unique name and this daemon's log folder.
    pub fn pod_config(&self, name: &str) -> PodSandboxConfig {
        let uid = format!("uid-{name}-{}", rand_suffix());
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "e2e".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.log_dir.join(&uid).to_string_lossy().to_string(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..Default::default()
        }
    }

    /// Runs a pod and returns its id.
    pub async fn run_pod(&mut self, config: &PodSandboxConfig) -> String {
        self.client
            .runtime
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", self.daemon_log()))
            .into_inner()
            .pod_sandbox_id
    }

    /// A container config running `cmd` in busybox, logging to `<name>.log`.
    pub fn container_config(name: &str, cmd: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig::default()),
            ..Default::default()
        }
    }

    /// Creates and starts a container; returns its id.
    pub async fn run_container(
        &mut self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let id = self
            .client
            .runtime
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.into(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", self.daemon_log()))
            .into_inner()
            .container_id;
        self.client
            .runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", self.daemon_log()));
        id
    }

    /// The container's status.
    pub async fn status(&mut self, id: &str) -> ContainerStatus {
        self.client
            .runtime
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
    }

    /// Waits until the container has exited; returns its status.
    pub async fn wait_exited(&mut self, id: &str, within: Duration) -> ContainerStatus {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id).await;
            if status.state == ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {:?}\n{}",
                status.state,
                self.daemon_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops and removes every pod through the API.
    pub async fn remove_all_pods(&mut self) {
        let pods = self
            .client
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        for pod in pods {
            let _ = self
                .client
                .runtime
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: pod.id.clone(),
                })
                .await;
            let _ = self
                .client
                .runtime
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: pod.id,
                })
                .await;
        }
    }

    /// Asserts that no mount, cgroup or monitor process of this daemon is left.
    ///
    /// RemoveContainer answers before the container's root mount, writable layer and state
    /// folder are gone (they are released right after), so this waits up to [`RELEASE_WITHIN`]
    /// for them. The daemon is another process: blocking this thread holds nothing up.
    pub fn assert_nothing_left(&self) {
        let deadline = Instant::now() + RELEASE_WITHIN;
        let mut left = self.leftovers();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = self.leftovers();
        }
        assert!(left.is_empty(), "{}", left.join("\n"));
    }

    /// Like [`TestDaemon::assert_nothing_left`], for cleanup that runs in the background (after
    /// a restart): polls until nothing is left or `within` passes.
    pub async fn assert_nothing_left_within(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !self.leftovers().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.assert_nothing_left();
    }

    /// What the daemon's pods and containers left: mounts, state folders, cgroups, processes.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let dir = self.dir.path().to_string_lossy().to_string();
        let mounts = longshore_testkit::mounts::mounted_under(self.dir.path());
        if !mounts.is_empty() {
            left.push(format!("mounts left: {mounts:#?}"));
        }
        for (what, sub) in [("pod", "state/pods"), ("container", "state/containers")] {
            let entries: Vec<_> = std::fs::read_dir(self.dir.path().join(sub))
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            if !entries.is_empty() {
                left.push(format!("{what} state left: {entries:?}"));
            }
        }
        // The default parent (`/pods`, like kubelet's `/kubepods`) may stay, empty.
        let cgroups: Vec<_> = self
            .cgroups
            .children()
            .into_iter()
            .flat_map(|c| {
                if c.ends_with("pods") {
                    longshore_testkit::cgroup::children_of(&c)
                } else {
                    vec![c]
                }
            })
            .collect();
        if !cgroups.is_empty() {
            left.push(format!("cgroups left: {cgroups:?}"));
        }
        let daemon = self.child.as_ref().map(|c| c.id() as i32);
        let procs: Vec<i32> = processes_mentioning(&dir)
            .into_iter()
            .filter(|p| Some(*p) != daemon)
            .collect();
        if !procs.is_empty() {
            left.push(format!("processes left: {procs:?}"));
        }
        left
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // Remove pods through the API on a private runtime (we may be inside a dropped one).
        let socket = self.socket.clone();
        if self.child.is_some() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut client) = CriClient::connect(&socket).await {
                        let pods = client
                            .runtime
                            .list_pod_sandbox(ListPodSandboxRequest::default())
                            .await
                            .map(|r| r.into_inner().items)
                            .unwrap_or_default();
                        for pod in pods {
                            let _ = client
                                .runtime
                                .stop_pod_sandbox(StopPodSandboxRequest {
                                    pod_sandbox_id: pod.id.clone(),
                                })
                                .await;
                            let _ = client
                                .runtime
                                .remove_pod_sandbox(RemovePodSandboxRequest {
                                    pod_sandbox_id: pod.id,
                                })
                                .await;
                        }
                    }
                });
            })
            .join();
        }
        self.stop_process(libc::SIGTERM);
        sweep(self.dir.path(), &self.cgroups);
        if let Some((bridge, _)) = &self.network {
            // The bridge plugin leaves its bridge behind by design.
            let _ = Command::new("ip")
                .args(["link", "del", bridge])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Last-resort cleanup after a failed test: kill what our daemon started (found by our temp dir in
/// their command line or in our test cgroup), unmount everything under the temp dir, remove our
/// cgroups.
fn sweep(dir: &Path, cgroups: &TestCgroupRoot) {
    let dir_text = dir.to_string_lossy().to_string();
    for pid in processes_mentioning(&dir_text) {
        // SAFETY: kill(2) on processes our test daemon started (their command line names our dir).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    cgroups.remove();
    longshore_testkit::mounts::unmount_all_under(dir);
}

/// PIDs of processes whose command line mentions `needle` (our monitors and pod inits).
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn spawn(config_file: &Path, dir: &Path, env: &[(&str, &str)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_longshore"))
        .args(["serve", "--config"])
        .arg(config_file)
        // The daemon's own debug lines, not the HTTP/2 frames (they buried the rest).
        .env(
            "RUST_LOG",
            "debug,h2=info,hyper=info,hyper_util=info,tower=info",
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting longshore serve")
}

async fn connect(socket: &Path) -> CriClient {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if socket.exists() {
            if let Ok(client) = CriClient::connect(socket).await {
                return client;
            }
        }
        if Instant::now() >= deadline {
            let log = socket
                .parent()
                .and_then(|s| s.parent())
                .map(|d| d.join("daemon.log"));
            let text = log
                .and_then(|l| std::fs::read_to_string(l).ok())
                .unwrap_or_default();
            panic!("daemon did not open {}\n{text}", socket.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub use longshore_testkit::random_suffix as rand_suffix;

fn write_bridge_conflist(cni_dir: &Path, dir: &Path, bridge: &str, octet: u8, portmap: bool) {
    let mut conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": format!("{bridge}-net"),
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("10.231.{octet}.0/24")}]],
                    "dataDir": dir.join("ipam").to_string_lossy(),
                }
            },
        ]
    });
    if portmap {
        conf["plugins"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!(
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ));
    }
    std::fs::write(
        cni_dir.join("10-test.conflist"),
        serde_json::to_vec_pretty(&conf).unwrap(),
    )
    .unwrap();
}
