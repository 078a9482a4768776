//! The container's namespaces: the pod's network, IPC and UTS namespaces joined by path (or the
//! host's, by leaving them out), the PID namespace by `NamespaceMode`, a fresh mount namespace,
//! a fresh cgroup namespace on cgroup v2 for unprivileged containers, and the pod's user
//! namespace when the pod has one.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType,
};

use crate::api::{IdMapping, NamespaceMode, NamespaceOption, UserNamespace};

use super::{PodContext, SpecError};

/// Namespaces plus the user-namespace id maps that go with them.
#[derive(Debug, Default)]
pub(crate) struct NamespacePlan {
    pub(crate) namespaces: Vec<LinuxNamespace>,
    pub(crate) uid_mappings: Vec<LinuxIdMapping>,
    pub(crate) gid_mappings: Vec<LinuxIdMapping>,
    /// The container has a user namespace (mounts then need no special handling here, but the
    /// caller may want to know).
    pub(crate) userns: bool,
}

/// Builds the namespace list. `cgroup_v2` is the host's cgroup mode.
pub(crate) fn plan(
    options: Option<&NamespaceOption>,
    pod: &PodContext,
    privileged: bool,
    cgroup_v2: bool,
) -> Result<NamespacePlan, SpecError> {
    let mut plan = NamespacePlan::default();
    let ns = &mut plan.namespaces;
    ns.push(new(LinuxNamespaceType::Mount));
    join_if(ns, LinuxNamespaceType::Network, &pod.netns);
    join_if(ns, LinuxNamespaceType::Ipc, &pod.ipcns);
    join_if(ns, LinuxNamespaceType::Uts, &pod.utsns);
    if let Some(pid) = pid_namespace(options, pod)? {
        ns.push(pid);
    }
    // A cgroup namespace for every unprivileged container, on v1 hosts too (containerd does it
    // on v2 only): the container then sees its own cgroup as the root, and youki's libcontainer
    // mounts /sys/fs/cgroup from inside the namespace instead of guessing the host path (its
    // guess is wrong for host-PID containers on v1). Privileged containers see the host's.
    let _ = cgroup_v2;
    if !privileged {
        ns.push(new(LinuxNamespaceType::Cgroup));
    }
    user_namespace(options, pod, &mut plan)?;
    Ok(plan)
}

fn new(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns
}

fn joined(typ: LinuxNamespaceType, path: PathBuf) -> LinuxNamespace {
    let mut ns = new(typ);
    ns.set_path(Some(path));
    ns
}

/// `Some(path)` joins the pod's namespace; `None` is the host's, which means leaving it out.
fn join_if(list: &mut Vec<LinuxNamespace>, typ: LinuxNamespaceType, path: &Option<PathBuf>) {
    if let Some(path) = path {
        list.push(joined(typ, path.clone()));
    }
}

fn pid_namespace(
    options: Option<&NamespaceOption>,
    pod: &PodContext,
) -> Result<Option<LinuxNamespace>, SpecError> {
    let mode = options.map(|o| o.pid()).unwrap_or(NamespaceMode::Pod);
    match mode {
        NamespaceMode::Node => Ok(None),
        NamespaceMode::Container => Ok(Some(new(LinuxNamespaceType::Pid))),
        // POD means "whatever the pod has": its shared namespace, the host's for a host-PID
        // pod, or (a pod without a shared one) a namespace of the container's own.
        NamespaceMode::Pod => match &pod.pidns {
            Some(path) => Ok(Some(joined(LinuxNamespaceType::Pid, path.clone()))),
            None if pod.host_pid => Ok(None),
            None => Ok(Some(new(LinuxNamespaceType::Pid))),
        },
        NamespaceMode::Target => match pod.target_pid {
            Some(pid) if pid > 0 => Ok(Some(joined(
                LinuxNamespaceType::Pid,
                PathBuf::from(format!("/proc/{pid}/ns/pid")),
            ))),
            _ => Err(SpecError::invalid(
                "security_context.namespace_options.target_id",
                "PID namespace TARGET needs a running target container",
            )),
        },
    }
}

/// The pod's user namespace. A pod that has one (`pod.userns` with `pod.userns_options`) puts
/// every container in it, also one whose own config leaves `userns_options` out (it must never
/// run as the host's root beside its pod's namespaces), with the pod's maps: the OCI runtime
/// joins by path and needs the maps for the ownership of what it makes. A container that asks
/// for a POD user namespace in a pod without one is refused.
fn user_namespace(
    options: Option<&NamespaceOption>,
    pod: &PodContext,
    plan: &mut NamespacePlan,
) -> Result<(), SpecError> {
    if let (Some(path), Some(userns)) = (&pod.userns, &pod.userns_options) {
        return join_pod_user_namespace(path, userns, plan);
    }
    let Some(userns) = options.and_then(|o| o.userns_options.as_ref()) else {
        return Ok(());
    };
    match userns.mode() {
        NamespaceMode::Node => Ok(()),
        NamespaceMode::Pod => Err(SpecError::invalid(
            "security_context.namespace_options.userns_options.mode",
            "POD, but the pod sandbox has no user namespace of its own",
        )),
        other => Err(SpecError::invalid(
            "security_context.namespace_options.userns_options.mode",
            format!(
                "user namespace mode {} is not supported",
                other.as_str_name()
            ),
        )),
    }
}

fn join_pod_user_namespace(
    path: &std::path::Path,
    userns: &UserNamespace,
    plan: &mut NamespacePlan,
) -> Result<(), SpecError> {
    if userns.uids.is_empty() || userns.gids.is_empty() {
        return Err(SpecError::invalid(
            "security_context.namespace_options.userns_options",
            "a POD user namespace needs uid and gid mappings",
        ));
    }
    plan.namespaces
        .push(joined(LinuxNamespaceType::User, path.to_path_buf()));
    plan.uid_mappings = userns
        .uids
        .iter()
        .map(id_mapping)
        .collect::<Result<_, _>>()?;
    plan.gid_mappings = userns
        .gids
        .iter()
        .map(id_mapping)
        .collect::<Result<_, _>>()?;
    plan.userns = true;
    Ok(())
}

/// A CRI id mapping in OCI form.
pub(crate) fn id_mapping(m: &IdMapping) -> Result<LinuxIdMapping, SpecError> {
    LinuxIdMappingBuilder::default()
        .host_id(m.host_id)
        .container_id(m.container_id)
        .size(m.length)
        .build()
        .map_err(|e| SpecError::invalid("userns id mapping", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserNamespace;

    fn pod() -> PodContext {
        PodContext {
            netns: Some("/run/p/ns/net".into()),
            ipcns: Some("/run/p/ns/ipc".into()),
            utsns: Some("/run/p/ns/uts".into()),
            pidns: Some("/run/p/ns/pid".into()),
            ..Default::default()
        }
    }

    fn summary(plan: &NamespacePlan) -> Vec<(String, Option<String>)> {
        plan.namespaces
            .iter()
            .map(|n| {
                (
                    n.typ().to_string(),
                    n.path().as_ref().map(|p| p.display().to_string()),
                )
            })
            .collect()
    }

    fn opts(pid: NamespaceMode) -> NamespaceOption {
        NamespaceOption {
            pid: pid as i32,
            ..Default::default()
        }
    }

    #[test]
    fn pod_namespaces_are_joined() {
        let plan = plan(Some(&opts(NamespaceMode::Pod)), &pod(), false, false).unwrap();
        let s = |a: &str, b: Option<&str>| (a.to_string(), b.map(str::to_string));
        assert_eq!(
            summary(&plan),
            vec![
                s("mnt", None),
                s("net", Some("/run/p/ns/net")),
                s("ipc", Some("/run/p/ns/ipc")),
                s("uts", Some("/run/p/ns/uts")),
                s("pid", Some("/run/p/ns/pid")),
                s("cgroup", None),
            ]
        );
    }

    #[test]
    fn host_namespaces_are_left_out() {
        let host = PodContext::default();
        let plan = plan(Some(&opts(NamespaceMode::Node)), &host, true, false).unwrap();
        assert_eq!(summary(&plan), vec![("mnt".to_string(), None)]);
    }

    #[test]
    fn pid_modes() {
        let p = plan(Some(&opts(NamespaceMode::Container)), &pod(), false, false).unwrap();
        assert!(summary(&p).contains(&("pid".to_string(), None)));
        let mut target = pod();
        target.target_pid = Some(4242);
        let p = plan(Some(&opts(NamespaceMode::Target)), &target, false, false).unwrap();
        assert!(summary(&p).contains(&("pid".to_string(), Some("/proc/4242/ns/pid".to_string()))));
        let err = plan(Some(&opts(NamespaceMode::Target)), &pod(), false, false).unwrap_err();
        assert!(matches!(&err, SpecError::Invalid { field, .. } if field.ends_with("target_id")));
        let mut no_pidns = pod();
        no_pidns.pidns = None;
        let private = plan(Some(&opts(NamespaceMode::Pod)), &no_pidns, false, false).unwrap();
        assert!(summary(&private).contains(&("pid".to_string(), None)));
        no_pidns.host_pid = true;
        let host = plan(Some(&opts(NamespaceMode::Pod)), &no_pidns, false, false).unwrap();
        assert!(!summary(&host).iter().any(|(k, _)| k == "pid"));
    }

    #[test]
    fn cgroup_namespace_for_unprivileged_containers() {
        let has_cgroupns = |privileged, v2| {
            summary(
                &plan(
                    Some(&opts(NamespaceMode::Container)),
                    &pod(),
                    privileged,
                    v2,
                )
                .unwrap(),
            )
            .contains(&("cgroup".to_string(), None))
        };
        assert!(has_cgroupns(false, true));
        assert!(!has_cgroupns(true, true));
        assert!(has_cgroupns(false, false));
        assert!(!has_cgroupns(true, false));
    }

    #[test]
    fn pod_user_namespace() {
        let map = IdMapping {
            host_id: 100000,
            container_id: 0,
            length: 65536,
        };
        let pod_userns = UserNamespace {
            mode: NamespaceMode::Pod as i32,
            uids: vec![map],
            gids: vec![map],
        };
        let mut o = opts(NamespaceMode::Container);
        o.userns_options = Some(pod_userns.clone());
        let mut p = pod();
        p.userns = Some("/run/p/ns/user".into());
        p.userns_options = Some(pod_userns);
        let plan = plan(Some(&o), &p, false, false).unwrap();
        assert!(plan.userns);
        assert!(summary(&plan).contains(&("user".to_string(), Some("/run/p/ns/user".to_string()))));
        assert_eq!(plan.uid_mappings[0].host_id(), 100000);
        // A container that leaves its options out still joins its pod's user namespace.
        let bare = super::plan(Some(&opts(NamespaceMode::Container)), &p, false, false).unwrap();
        assert!(bare.userns);
        assert_eq!(bare.gid_mappings[0].host_id(), 100000);
        // Without a pod user namespace, POD is refused rather than made per container.
        assert!(super::plan(Some(&o), &pod(), false, false).is_err());
        o.userns_options = Some(UserNamespace {
            mode: NamespaceMode::Container as i32,
            ..Default::default()
        });
        assert!(super::plan(Some(&o), &pod(), false, false).is_err());
    }
}
