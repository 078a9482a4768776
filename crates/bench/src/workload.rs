//! The pods and containers the benchmark asks for, shaped like kubelet's: a BestEffort pod with
//! a kubelet-style cgroup parent and its own PID namespace per container, and a container that
//! sleeps and exits promptly on SIGTERM.

use std::collections::HashMap;

use longshore_cri_api::v1::{
    ContainerConfig, ContainerMetadata, IdMapping, ImageSpec, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, UserNamespace,
};

/// The image the pods run (from the test registry, through the runtimes' mirrors).
pub const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";

/// The big multi-layer image of the cold-pull figure (`LONGSHORE_BENCH_IMAGES=1
/// ./scripts/setup-test-host.sh` pushes it).
pub const BIG_IMAGE: &str = "docker.io/longshore-test/big:latest";

/// The pods' namespace (Kubernetes namespace, in the pod metadata).
pub const NAMESPACE: &str = "longshore-bench";

/// The label naming the run that made a pod, so a sweep removes only the run's own pods.
pub const RUN_LABEL: &str = "longshore-bench/run";

/// The container's command: sleeps, and exits at once on SIGTERM like a well-behaved service, so
/// a stop measures the runtime rather than a grace period.
pub const COMMAND: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

/// kubelet's CPU shares for a BestEffort container.
const BEST_EFFORT_SHARES: i64 = 2;
/// kubelet's oom_score_adj for a BestEffort container.
const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;
const CPU_PERIOD: i64 = 100_000;

/// A container whose main process exits at once and leaves a child behind, in a pod sharing
/// its PID namespace: no kernel ends the child, the runtime must.
pub const LEAVES_A_CHILD: [&str; 3] = ["sh", "-c", "sleep 3600 & exit 3"];

/// Whose PID namespace a pod's containers run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidShape {
    /// One per container: kubelet's usual pod (`shareProcessNamespace: false`).
    PerContainer,
    /// One for the pod (`shareProcessNamespace: true`, and crictl's default).
    Shared,
}

/// kubelet's namespace choices: pod network and IPC, and the PID namespace `pid` says.
fn namespaces(pid: PidShape) -> NamespaceOption {
    let pid = match pid {
        PidShape::PerContainer => NamespaceMode::Container,
        PidShape::Shared => NamespaceMode::Pod,
    };
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A pod's config. `cgroup_parent` is the folder kubelet would put `pod<uid>` in
/// (`/kubepods/besteffort`); `None` leaves the runtime's default.
pub fn pod_config(
    name: &str,
    uid: &str,
    log_directory: &str,
    cgroup_parent: Option<&str>,
    run_id: &str,
    pid: PidShape,
) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: uid.to_string(),
            namespace: NAMESPACE.to_string(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        log_directory: log_directory.to_string(),
        labels: HashMap::from([(RUN_LABEL.to_string(), run_id.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent
                .map(|p| pod_cgroup(p, uid))
                .unwrap_or_default(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(pid)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// kubelet's cgroupfs name for a pod's cgroup under `parent`.
pub fn pod_cgroup(parent: &str, uid: &str) -> String {
    format!("{}/pod{uid}", parent.trim_end_matches('/'))
}

/// A container's config: `command` (else [`COMMAND`]) in the PID namespace `pid` says.
pub fn container_config(
    name: &str,
    image: &str,
    command: Option<&[&str]>,
    pid: PidShape,
) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        command: command
            .unwrap_or(&COMMAND)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        log_path: format!("{name}_0.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: CPU_PERIOD,
                cpu_shares: BEST_EFFORT_SHARES,
                oom_score_adj: BEST_EFFORT_OOM_SCORE_ADJ,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces(pid)),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Gives the pod a user namespace of its own: kubelet's shape for `hostUsers: false`, 65536 ids
/// from `host_base`.
pub fn with_user_namespace(config: &mut PodSandboxConfig, host_base: u32) {
    let map = IdMapping {
        host_id: host_base,
        container_id: 0,
        length: 65536,
    };
    let userns = UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids: vec![map],
        gids: vec![map],
    };
    if let Some(ns) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    {
        ns.userns_options = Some(userns);
    }
}

/// The container config with its pod's user namespace options, as kubelet sends them.
pub fn in_pods_user_namespace(mut c: ContainerConfig, pod: &PodSandboxConfig) -> ContainerConfig {
    let userns = pod
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .and_then(|n| n.userns_options.clone());
    if let (Some(userns), Some(ns)) = (
        userns,
        c.linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .and_then(|s| s.namespace_options.as_mut()),
    ) {
        ns.userns_options = Some(userns);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_look_like_kubelets() {
        let c = pod_config(
            "p",
            "u1",
            "/logs/u1",
            Some("/kubepods/besteffort/"),
            "run1",
            PidShape::PerContainer,
        );
        let linux = c.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/besteffort/podu1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.pid(), NamespaceMode::Container);
        assert_eq!(c.labels[RUN_LABEL], "run1");
        let mut u = pod_config("p", "u", "/l", None, "r", PidShape::PerContainer);
        with_user_namespace(&mut u, 65536 * 3);
        let c =
            in_pods_user_namespace(container_config("c", "i", None, PidShape::PerContainer), &u);
        let copied = c
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(copied.userns_options.unwrap().uids[0].host_id, 65536 * 3);
        assert!(
            pod_config("p", "u", "/l", None, "r", PidShape::Shared)
                .linux
                .unwrap()
                .cgroup_parent
                .is_empty()
        );
    }
}
