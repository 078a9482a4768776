//! The OCI runtime spec builder: turns kubelet's `ContainerConfig`, the pod, the image's config
//! and a few host facts into the `config.json` an OCI executor (the monitor's embedded
//! libcontainer, or runc) runs.
//!
//! The rules are those of containerd's CRI plugin (1.7/2.x) and CRI-O, because kubelet and
//! `critest` expect their behaviour. One file per concern: [`process`] (args, env, cwd),
//! [`user`], [`capabilities`], [`mounts`], [`namespaces`], [`resources`] (with devices),
//! [`security`] (masked paths, AppArmor, OOM score), [`seccomp`]. Untrusted files of the image
//! are read through [`rootfs`], which cannot be tricked into reading the host's.

#![warn(missing_docs)]

mod capabilities;
mod host;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod rootfs;
mod seccomp;
mod security;
mod user;

#[cfg(test)]
mod runc_test;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, Mount, Process, Root, Spec, User};

use crate::api::{ContainerConfig, LinuxContainerSecurityContext, PodSandboxConfig};

/// The CRI types the builder reads, under the name the daemon uses too.
pub(crate) use longshore_cri_api::v1 as api;
use longshore_error::Kind;

pub use host::HostFacts;
pub use user::ResolvedUser;

/// Everything [`build`] needs for one container.
pub struct SpecInput<'a> {
    /// The new container's id (for logs).
    pub container_id: &'a str,
    /// The CreateContainer request's config.
    pub config: &'a ContainerConfig,
    /// The config the pod was created with.
    pub pod_config: &'a PodSandboxConfig,
    /// What the pod already set up.
    pub pod: &'a PodContext,
    /// The image's config.
    pub image: &'a ImageConfigView,
    /// The container's mounted root filesystem; the image's `/etc/passwd` and `/etc/group` are
    /// read from it and its `VOLUME` directories created in it.
    pub rootfs: &'a Path,
    /// The container's cgroup (`linux.cgroupsPath`).
    pub cgroups_path: &'a str,
    /// Node configuration and host facts.
    pub settings: &'a SpecSettings,
}

/// The pod's side of a container: its namespaces and files.
#[derive(Debug, Clone, Default)]
pub struct PodContext {
    /// The pod sandbox id (`io.kubernetes.cri.sandbox-id`).
    pub sandbox_id: String,
    /// Pinned network namespace; `None` is the host's.
    pub netns: Option<PathBuf>,
    /// Pinned IPC namespace; `None` is the host's (and then the host's `/dev/shm` is shared).
    pub ipcns: Option<PathBuf>,
    /// Pinned UTS namespace; `None` is the host's.
    pub utsns: Option<PathBuf>,
    /// Pod-shared PID namespace, for containers with `NamespaceMode::POD`.
    pub pidns: Option<PathBuf>,
    /// The pod uses the host's PID namespace (`NamespaceMode::NODE` at pod level).
    pub host_pid: bool,
    /// Pod user namespace, for pods with `userns_options.mode == POD`.
    pub userns: Option<PathBuf>,
    /// The pod's own `userns_options` (mode POD, with kubelet's maps), when it has `userns`:
    /// every container of the pod joins that namespace, whatever its own options say.
    pub userns_options: Option<crate::api::UserNamespace>,
    /// Init pid of the target container, for `NamespaceMode::TARGET`.
    pub target_pid: Option<i32>,
    /// The pod's hostname (`HOSTNAME`); empty means the host's.
    pub hostname: String,
    /// File bind-mounted at `/etc/hostname`.
    pub hostname_file: Option<PathBuf>,
    /// File bind-mounted at `/etc/hosts`.
    pub hosts_file: Option<PathBuf>,
    /// File bind-mounted at `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
    /// The pod's `/dev/shm` tmpfs (ignored with the host IPC namespace).
    pub shm: Option<PathBuf>,
}

/// The parts of the image config (OCI image `config` object) the spec uses.
#[derive(Debug, Clone, Default)]
pub struct ImageConfigView {
    /// `User`: `uid`, `uid:gid`, `name`, `name:group` or empty.
    pub user: String,
    /// `Env`, `KEY=value` each.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Volumes` (the keys), created as directories in the rootfs.
    pub volumes: Vec<String>,
    /// `StopSignal`, e.g. `SIGQUIT`.
    pub stop_signal: String,
    /// The image name reported in `io.kubernetes.cri.image-name`.
    pub image_name: String,
}

/// Node configuration for every spec, plus the host facts.
#[derive(Debug, Clone)]
pub struct SpecSettings {
    /// Capabilities of a container before its add/drop lists (`CAP_` names).
    pub default_capabilities: Vec<String>,
    /// `builtin`, or the path of a Docker/OCI seccomp JSON profile used for `RuntimeDefault`.
    pub seccomp_default_profile: String,
    /// Give `RuntimeDefault` to containers that ask for no seccomp profile.
    pub seccomp_default_for_unconfined: bool,
    /// Never set an `oom_score_adj` below the daemon's own.
    pub restrict_oom_score_adj: bool,
    /// AppArmor profile for `RuntimeDefault` on AppArmor hosts; it must be loaded already.
    /// Empty leaves such containers unconfined.
    pub apparmor_default_profile: String,
    /// What this host supports.
    pub host: HostFacts,
}

impl SpecSettings {
    /// Settings from the `[containers]` configuration and the detected host, checked: an
    /// unknown default capability or an unreadable default seccomp profile is an error here,
    /// at startup, rather than at every CreateContainer.
    pub fn from_config(
        config: &longshore_config::ContainersConfig,
        host: HostFacts,
    ) -> Result<Self, SpecError> {
        let settings = SpecSettings {
            default_capabilities: config.default_capabilities.clone(),
            seccomp_default_profile: config.seccomp_default_profile.clone(),
            seccomp_default_for_unconfined: config.seccomp_default_for_unconfined,
            restrict_oom_score_adj: config.restrict_oom_score_adj,
            apparmor_default_profile: String::new(),
            host,
        };
        capabilities::resolve(
            None,
            &settings.default_capabilities,
            false,
            settings.host.last_cap,
        )?;
        match settings.seccomp_default_profile.as_str() {
            "" | seccomp::BUILTIN => {}
            path => {
                seccomp::load(Path::new(path), "containers.seccomp_default_profile", true)?;
            }
        }
        Ok(settings)
    }
}

/// The result of [`build`].
#[derive(Debug, Clone)]
pub struct BuiltSpec {
    /// The runtime spec, ready to save as `config.json`.
    pub spec: Spec,
    /// The resolved process identity (ContainerStatus reports it).
    pub user: ResolvedUser,
    /// Signal number StopContainer sends first.
    pub stop_signal: i32,
}

/// Why a spec could not be built. Every variant names the request field (or setting) at fault.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The request is wrong (gRPC `InvalidArgument`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field, e.g. `mounts[2].host_path`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something the request names does not exist (gRPC `NotFound`).
    #[error("{field}: {} does not exist", path.display())]
    NotFound {
        /// The request field naming it.
        field: String,
        /// The missing file (or profile).
        path: PathBuf,
    },
    /// The node or the pod cannot provide what is asked (gRPC `FailedPrecondition`).
    #[error("{field}: {reason}")]
    Precondition {
        /// The request field or setting concerned.
        field: String,
        /// What is missing.
        reason: String,
    },
    /// A host file could not be read (gRPC `Internal`).
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The operation.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl SpecError {
    /// An `Invalid` error for `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl longshore_error::Classify for SpecError {
    fn kind(&self) -> Kind {
        match self {
            SpecError::Invalid { .. } => Kind::InvalidArgument,
            SpecError::NotFound { .. } => Kind::NotFound,
            SpecError::Precondition { .. } => Kind::FailedPrecondition,
            SpecError::Io { .. } => Kind::Internal,
        }
    }
}

/// CRI annotation keys (containerd's names, which tools such as NRI plugins read).
const ANNOTATION_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const ANNOTATION_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
const ANNOTATION_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const ANNOTATION_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const ANNOTATION_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
const ANNOTATION_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const ANNOTATION_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// OCI runtime spec version written into `config.json`.
const OCI_VERSION: &str = "1.0.2-dev";

/// Builds the runtime spec for a container. Besides reading the image's user database, this
/// creates the image's `VOLUME` directories in the rootfs.
pub fn build(input: &SpecInput<'_>) -> Result<BuiltSpec, SpecError> {
    let config = input.config;
    let sc = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref());
    let privileged = sc.is_some_and(|s| s.privileged);
    if privileged && !pod_privileged(input.pod_config) {
        return Err(SpecError::invalid(
            "security_context.privileged",
            "a privileged container needs a privileged pod sandbox",
        ));
    }
    let rootfs = rootfs::Rootfs::open(input.rootfs).map_err(|source| SpecError::Io {
        what: "opening the container rootfs",
        path: input.rootfs.to_path_buf(),
        source,
    })?;
    let user = user::resolve(sc, &input.image.user, &rootfs)?;
    let settings = input.settings;
    let mut caps = capabilities::resolve(
        sc,
        &settings.default_capabilities,
        privileged,
        settings.host.last_cap,
    )?;
    caps.restrict_to(settings.host.bounding_caps);
    let (linux, mounts) = linux_section(input, sc, privileged, &caps)?;
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into())
        .set_hostname(None)
        .set_process(Some(process_section(input, sc, privileged, &user, &caps)?))
        .set_root(Some(root_section(input.rootfs, sc)))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux))
        .set_annotations(Some(annotations(input)));
    mounts::create_image_volumes(&rootfs, &input.image.volumes, &config.mounts)?;
    tracing::debug!(
        container = input.container_id,
        uid = user.uid,
        "built runtime spec"
    );
    Ok(BuiltSpec {
        spec,
        user,
        stop_signal: process::stop_signal(config, input.image),
    })
}

fn pod_privileged(pod: &PodSandboxConfig) -> bool {
    pod.linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|s| s.privileged)
}

fn process_section(
    input: &SpecInput<'_>,
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
    user: &ResolvedUser,
    caps: &capabilities::ProcessCaps,
) -> Result<Process, SpecError> {
    let config = input.config;
    let settings = input.settings;
    let hostname = if input.pod.hostname.is_empty() {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        input.pod.hostname.clone()
    };
    let mut oci_user = User::default();
    oci_user
        .set_uid(user.uid)
        .set_gid(user.gid)
        .set_additional_gids(Some(user.additional_gids.clone()));
    let mut process = Process::default();
    process
        .set_terminal(Some(config.tty))
        .set_user(oci_user)
        .set_args(Some(process::args(config, input.image)?))
        .set_env(Some(process::env(config, input.image, &hostname)))
        .set_cwd(process::cwd(config, input.image)?)
        .set_capabilities(Some(caps.to_oci()))
        .set_rlimits(None)
        // `false` is left out rather than written: youki's libcontainer reads any present value
        // as "set", and then installs seccomp after dropping CAP_SYS_ADMIN, which fails.
        .set_no_new_privileges(sc.is_some_and(|s| s.no_new_privs).then_some(true))
        .set_apparmor_profile(security::apparmor(sc, privileged, settings)?)
        .set_oom_score_adj(security::oom_score_adj(
            config.linux.as_ref().and_then(|l| l.resources.as_ref()),
            settings,
        )?)
        .set_selinux_label(None);
    Ok(process)
}

fn root_section(rootfs: &Path, sc: Option<&LinuxContainerSecurityContext>) -> Root {
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf())
        .set_readonly(Some(sc.is_some_and(|s| s.readonly_rootfs)));
    root
}

/// The `linux` object and the mounts (which depend on the namespaces).
fn linux_section(
    input: &SpecInput<'_>,
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
    caps: &capabilities::ProcessCaps,
) -> Result<(Linux, Vec<Mount>), SpecError> {
    let config = input.config;
    let host = &input.settings.host;
    let ns = namespaces::plan(
        sc.and_then(|s| s.namespace_options.as_ref()),
        input.pod,
        privileged,
        host.cgroup_v2,
    )?;
    let cgroupns = ns
        .namespaces
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let mount_plan = mounts::plan(&mounts::MountContext {
        mounts: &config.mounts,
        pod: input.pod,
        privileged,
        readonly_rootfs: sc.is_some_and(|s| s.readonly_rootfs),
        cgroupns,
        userns: ns.userns,
        host,
        cgroups_path: input.cgroups_path,
    })?;
    let devices = resources::devices(&config.devices, privileged, host)?;
    let requested = config.linux.as_ref().and_then(|l| l.resources.as_ref());
    let mut linux = Linux::default();
    linux
        .set_uid_mappings((!ns.uid_mappings.is_empty()).then_some(ns.uid_mappings))
        .set_gid_mappings((!ns.gid_mappings.is_empty()).then_some(ns.gid_mappings))
        .set_sysctl(None)
        .set_resources(Some(resources::resources(requested, devices.rules, host)))
        .set_cgroups_path(Some(PathBuf::from(input.cgroups_path)))
        .set_namespaces(Some(ns.namespaces))
        .set_devices((!devices.devices.is_empty()).then_some(devices.devices))
        .set_seccomp(seccomp::filter(sc, privileged, caps, input.settings)?)
        .set_rootfs_propagation(mount_plan.rootfs_propagation)
        .set_masked_paths(Some(security::masked_paths(sc, privileged)))
        .set_readonly_paths(Some(security::readonly_paths(sc, privileged)))
        .set_mount_label(None);
    Ok((linux, mount_plan.mounts))
}

/// The request's annotations plus the CRI ones (which win).
fn annotations(input: &SpecInput<'_>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = input.config.annotations.clone().into_iter().collect();
    let meta = input.pod_config.metadata.clone().unwrap_or_default();
    let name = input
        .config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    for (key, value) in [
        (ANNOTATION_CONTAINER_TYPE, "container".to_string()),
        (ANNOTATION_SANDBOX_ID, input.pod.sandbox_id.clone()),
        (ANNOTATION_SANDBOX_NAME, meta.name),
        (ANNOTATION_SANDBOX_NAMESPACE, meta.namespace),
        (ANNOTATION_SANDBOX_UID, meta.uid),
        (ANNOTATION_CONTAINER_NAME, name),
        (ANNOTATION_IMAGE_NAME, input.image.image_name.clone()),
    ] {
        out.insert(key.to_string(), value);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Shared fixtures for the spec tests.
    use super::*;

    /// Host facts of a typical cgroup v1 host without AppArmor, independent of this machine.
    pub(crate) fn host_facts() -> HostFacts {
        HostFacts {
            cgroup_v2: false,
            swap_accounting: true,
            hugetlb: false,
            apparmor: false,
            seccomp: true,
            last_cap: 40,
            bounding_caps: u64::MAX,
            daemon_oom_score_adj: 0,
            kernel: (6, 1),
            cgroup2_mount_options: Vec::new(),
            dev_dir: "/dev".into(),
            mountinfo: "/proc/self/mountinfo".into(),
        }
    }

    /// The default configuration on [`host_facts`].
    pub(crate) fn settings() -> SpecSettings {
        SpecSettings::from_config(&longshore_config::ContainersConfig::default(), host_facts())
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::settings;
    use super::*;
    use crate::api::{
        Capability, ContainerMetadata, KeyValue, LinuxContainerConfig, LinuxContainerResources,
        LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount as CriMount, NamespaceMode,
        NamespaceOption, PodSandboxMetadata,
    };
    use oci_spec::runtime::{Capability as OciCap, LinuxNamespaceType};

    struct Fixture {
        dir: tempfile::TempDir,
        pod: PodContext,
        image: ImageConfigView,
        settings: SpecSettings,
        pod_config: PodSandboxConfig,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:3000:app\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("pod/shm")).unwrap();
        std::fs::write(dir.path().join("pod/hosts"), "127.0.0.1 localhost\n").unwrap();
        let pod = PodContext {
            sandbox_id: "sandbox-1".into(),
            netns: Some("/run/longshore/pods/p/ns/net".into()),
            ipcns: Some("/run/longshore/pods/p/ns/ipc".into()),
            utsns: Some("/run/longshore/pods/p/ns/uts".into()),
            hostname: "web-0".into(),
            hosts_file: Some(dir.path().join("pod/hosts")),
            shm: Some(dir.path().join("pod/shm")),
            ..Default::default()
        };
        let image = ImageConfigView {
            user: "app".into(),
            env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
            entrypoint: vec!["/bin/server".into()],
            cmd: vec!["--port=80".into()],
            working_dir: "/app".into(),
            volumes: vec!["/data".into()],
            stop_signal: "SIGQUIT".into(),
            image_name: "example.com/web:1".into(),
        };
        let pod_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "uid-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            ..Default::default()
        };
        Fixture {
            dir,
            pod,
            image,
            settings: settings(),
            pod_config,
        }
    }

    fn config() -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "server".into(),
                attempt: 0,
            }),
            envs: vec![KeyValue {
                key: "MODE".into(),
                value: b"prod".to_vec(),
            }],
            annotations: [("team".to_string(), "a".to_string())].into(),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    memory_limit_in_bytes: 1 << 30,
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        pid: NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    fn run(f: &Fixture, config: &ContainerConfig) -> Result<BuiltSpec, SpecError> {
        let rootfs = f.dir.path().join("rootfs");
        build(&SpecInput {
            container_id: "c1",
            config,
            pod_config: &f.pod_config,
            pod: &f.pod,
            image: &f.image,
            rootfs: &rootfs,
            cgroups_path: "/kubepods/pod1/c1",
            settings: &f.settings,
        })
    }

    #[test]
    fn full_spec() {
        let f = fixture();
        let built = run(&f, &config()).unwrap();
        let spec = &built.spec;
        assert_eq!(
            built.user,
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![1000, 3000]
            }
        );
        assert_eq!(built.stop_signal, 3);
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/server", "--port=80"]);
        assert_eq!(
            p.env().as_ref().unwrap(),
            &[
                "PATH=/usr/bin:/bin",
                "HOSTNAME=web-0",
                "LANG=C.UTF-8",
                "MODE=prod"
            ]
        );
        assert_eq!(p.cwd(), Path::new("/app"));
        assert_eq!(p.no_new_privileges(), None);
        assert_eq!(p.oom_score_adj(), Some(0));
        assert!(p.rlimits().is_none());
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps.bounding().as_ref().unwrap().contains(&OciCap::NetRaw));
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
        assert_eq!(spec.hostname(), &None);
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/kubepods/pod1/c1"))
        );
        let types: Vec<LinuxNamespaceType> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert_eq!(
            types,
            [
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Cgroup
            ]
        );
        assert!(linux.seccomp().is_none(), "no profile asked, none given");
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
        let mem = linux.resources().as_ref().unwrap().memory().unwrap();
        assert_eq!(mem.limit(), Some(1 << 30));
        let ann = spec.annotations().as_ref().unwrap();
        assert_eq!(ann["io.kubernetes.cri.container-type"], "container");
        assert_eq!(ann["io.kubernetes.cri.sandbox-id"], "sandbox-1");
        assert_eq!(ann["io.kubernetes.cri.container-name"], "server");
        assert_eq!(ann["io.kubernetes.cri.image-name"], "example.com/web:1");
        assert_eq!(ann["io.kubernetes.cri.sandbox-namespace"], "default");
        assert_eq!(ann["team"], "a");
        let dests: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        assert!(dests.contains(&PathBuf::from("/etc/hosts")));
        assert!(
            !dests.contains(&PathBuf::from("/etc/hostname")),
            "no pod file, no mount"
        );
        assert!(
            f.dir.path().join("rootfs/data").is_dir(),
            "image volume created"
        );
        // The whole thing serializes as a runtime expects.
        let json = serde_json::to_value(spec).unwrap();
        assert_eq!(
            json["process"]["user"]["additionalGids"],
            serde_json::json!([1000, 3000])
        );
        assert_eq!(
            json["linux"]["resources"]["devices"][0],
            serde_json::json!({"allow": false, "access": "rwm"})
        );
    }

    #[test]
    fn tty_readonly_and_nnp() {
        let f = fixture();
        let mut c = config();
        c.tty = true;
        let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
        sc.readonly_rootfs = true;
        sc.no_new_privs = true;
        sc.capabilities = Some(Capability {
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        });
        let built = run(&f, &c).unwrap();
        let p = built.spec.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(
            p.env()
                .as_ref()
                .unwrap()
                .contains(&"TERM=xterm".to_string())
        );
        assert_eq!(p.no_new_privileges(), Some(true));
        assert!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .is_empty()
        );
        assert_eq!(built.spec.root().as_ref().unwrap().readonly(), Some(true));
        let hosts = built
            .spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert!(
            hosts
                .options()
                .as_ref()
                .unwrap()
                .contains(&"ro".to_string())
        );
    }

    #[test]
    fn privileged_needs_privileged_pod() {
        let mut f = fixture();
        let mut c = config();
        c.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .privileged = true;
        let err = run(&f, &c).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "security_context.privileged")
        );
        f.pod_config.linux = Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let built = run(&f, &c).unwrap();
        let linux = built.spec.linux().as_ref().unwrap();
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
        assert!(linux.seccomp().is_none());
        assert!(linux.devices().as_ref().is_some_and(|d| !d.is_empty()));
        let caps = built
            .spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(
            caps.bounding()
                .as_ref()
                .unwrap()
                .contains(&OciCap::SysAdmin)
        );
    }

    #[test]
    fn errors_become_grpc_codes() {
        let f = fixture();
        let mut c = config();
        c.mounts = vec![CriMount {
            container_path: "/x".into(),
            host_path: "/definitely/not/here".into(),
            ..Default::default()
        }];
        let err = run(&f, &c).unwrap_err();
        assert_eq!(longshore_error::Classify::kind(&err), Kind::NotFound);
        assert!(err.to_string().starts_with("mounts[0].host_path:"), "{err}");
        let mut c = config();
        c.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .capabilities = Some(Capability {
            add_capabilities: vec!["NET_ADMIN".into(), "WHAT".into()],
            ..Default::default()
        });
        let err = run(&f, &c).unwrap_err();
        assert_eq!(longshore_error::Classify::kind(&err), Kind::InvalidArgument);
        assert!(
            err.to_string()
                .starts_with("security_context.capabilities.add_capabilities[1]:")
        );
    }

    #[test]
    fn settings_from_config_are_checked() {
        let mut cfg = longshore_config::ContainersConfig::default();
        assert!(SpecSettings::from_config(&cfg, tests_support::host_facts()).is_ok());
        cfg.default_capabilities.push("CAP_MADE_UP".into());
        assert!(SpecSettings::from_config(&cfg, tests_support::host_facts()).is_err());
        let cfg = longshore_config::ContainersConfig {
            seccomp_default_profile: "/nonexistent/seccomp.json".into(),
            ..Default::default()
        };
        let err = SpecSettings::from_config(&cfg, tests_support::host_facts()).unwrap_err();
        assert!(matches!(err, SpecError::Precondition { .. }), "{err}");
    }
}
