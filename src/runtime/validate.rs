//! Checks on requests that must fail with InvalidArgument (or NotFound) naming the field.

use crate::server::RpcError;

use crate::api::{ContainerConfig, PodSandboxConfig};
use crate::daemon::Daemon;

/// Kubernetes' limits on object names: a pod (and, in practice, container) name is a DNS
/// subdomain of at most 253 bytes, a namespace a DNS label of at most 63. kubelet never sends
/// more; longer values would only fail later, deep in CNI or the kernel (E2BIG).
const MAX_NAME: usize = 253;
const MAX_NAMESPACE: usize = 63;
const MAX_UID: usize = 253;
/// The kernel's limit for a hostname (HOST_NAME_MAX).
const MAX_HOSTNAME: usize = 64;

/// A pod config needs metadata with a name, a namespace and a uid, within Kubernetes' limits.
pub(crate) fn pod_config(config: &PodSandboxConfig) -> Result<(), RpcError> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| RpcError::invalid_argument("config.metadata is required"))?;
    for (field, value, max) in [
        ("name", &m.name, MAX_NAME),
        ("namespace", &m.namespace, MAX_NAMESPACE),
        ("uid", &m.uid, MAX_UID),
    ] {
        if value.is_empty() {
            return Err(RpcError::invalid_argument(format!(
                "config.metadata.{field} is required"
            )));
        }
        bounded(&format!("config.metadata.{field}"), value, max)?;
    }
    bounded("config.hostname", &config.hostname, MAX_HOSTNAME)?;
    if config.hostname.contains('/') {
        return Err(RpcError::invalid_argument(format!(
            "config.hostname {:?} contains '/'",
            config.hostname
        )));
    }
    no_nul("config.log_directory", &config.log_directory)?;
    if !config.log_directory.is_empty() && !config.log_directory.starts_with('/') {
        return Err(RpcError::invalid_argument(format!(
            "config.log_directory {:?} must be an absolute path",
            config.log_directory
        )));
    }
    Ok(())
}

/// A container config needs metadata with a name and an image.
pub(crate) fn container_config(config: &ContainerConfig) -> Result<(), RpcError> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| RpcError::invalid_argument("config.metadata is required"))?;
    if m.name.is_empty() {
        return Err(RpcError::invalid_argument(
            "config.metadata.name is required",
        ));
    }
    bounded("config.metadata.name", &m.name, MAX_NAME)?;
    process_strings(config)?;
    let image = config
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or("");
    if image.is_empty() {
        return Err(RpcError::invalid_argument("config.image.image is required"));
    }
    if config.log_path.starts_with('/') || config.log_path.split('/').any(|c| c == "..") {
        return Err(RpcError::invalid_argument(format!(
            "config.log_path {:?} must be relative to the pod's log_directory",
            config.log_path
        )));
    }
    Ok(())
}

/// What becomes a C string of the container's process or a mount: a NUL would silently cut it
/// short, so the process would run something other than what was asked.
fn process_strings(config: &ContainerConfig) -> Result<(), RpcError> {
    for (i, arg) in config.command.iter().enumerate() {
        no_nul(&format!("config.command[{i}]"), arg)?;
    }
    for (i, arg) in config.args.iter().enumerate() {
        no_nul(&format!("config.args[{i}]"), arg)?;
    }
    for (i, kv) in config.envs.iter().enumerate() {
        no_nul(&format!("config.envs[{i}].key"), &kv.key)?;
        if kv.value.contains(&0) {
            return Err(RpcError::invalid_argument(format!(
                "config.envs[{i}].value contains a NUL byte"
            )));
        }
    }
    no_nul("config.working_dir", &config.working_dir)?;
    no_nul("config.log_path", &config.log_path)?;
    for (i, m) in config.mounts.iter().enumerate() {
        no_nul(
            &format!("config.mounts[{i}].container_path"),
            &m.container_path,
        )?;
        no_nul(&format!("config.mounts[{i}].host_path"), &m.host_path)?;
    }
    for (i, d) in config.devices.iter().enumerate() {
        no_nul(
            &format!("config.devices[{i}].container_path"),
            &d.container_path,
        )?;
        no_nul(&format!("config.devices[{i}].host_path"), &d.host_path)?;
    }
    Ok(())
}

fn no_nul(field: &str, value: &str) -> Result<(), RpcError> {
    if value.contains('\0') {
        return Err(RpcError::invalid_argument(format!(
            "{field} contains a NUL byte"
        )));
    }
    Ok(())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), RpcError> {
    no_nul(field, value)?;
    if value.len() > max {
        let shown: String = value.chars().take(40).collect();
        return Err(RpcError::invalid_argument(format!(
            "{field} is {} bytes long ({shown:?}...); the limit is {max}",
            value.len()
        )));
    }
    Ok(())
}

/// The runtime handler must be configured ("" is the default handler).
pub(crate) fn runtime_handler(d: &Daemon, handler: &str) -> Result<(), RpcError> {
    if handler.is_empty() || d.config.runtime.handlers.contains_key(handler) {
        return Ok(());
    }
    let known: Vec<&str> = d
        .config
        .runtime
        .handlers
        .keys()
        .map(String::as_str)
        .collect();
    Err(RpcError::invalid_argument(format!(
        "runtime_handler {handler:?} is not configured (known: {known:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerMetadata, ImageSpec, KeyValue, Mount, PodSandboxMetadata};

    fn pod() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "1234".into(),
                attempt: 0,
            }),
            hostname: "web".into(),
            ..Default::default()
        }
    }

    fn container() -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "c".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            command: vec!["sh".into()],
            ..Default::default()
        }
    }

    fn refused(r: Result<(), RpcError>, field: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(field), "{e}");
    }

    #[test]
    fn pod_names_within_kubernetes_limits() {
        assert!(pod_config(&pod()).is_ok());
        let mut p = pod();
        p.metadata.as_mut().unwrap().name = "x".repeat(1 << 20);
        refused(pod_config(&p), "config.metadata.name");
        let mut p = pod();
        p.metadata.as_mut().unwrap().name = "x".repeat(253);
        assert!(pod_config(&p).is_ok());
        let mut p = pod();
        p.metadata.as_mut().unwrap().namespace = "n".repeat(64);
        refused(pod_config(&p), "config.metadata.namespace");
    }

    #[test]
    fn hostnames_without_slash_or_nul() {
        for bad in ["a/b", "a\0b", &"h".repeat(65)] {
            let mut p = pod();
            p.hostname = bad.to_string();
            refused(pod_config(&p), "config.hostname");
        }
    }

    #[test]
    fn nul_in_what_becomes_a_c_string() {
        assert!(container_config(&container()).is_ok());
        type Change = Box<dyn Fn(&mut ContainerConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "config.command[0]",
                Box::new(|c| c.command = vec!["sh\0-x".into()]),
            ),
            (
                "config.args[1]",
                Box::new(|c| c.args = vec!["a".into(), "b\0".into()]),
            ),
            (
                "config.envs[0].value",
                Box::new(|c| {
                    c.envs = vec![KeyValue {
                        key: "K".into(),
                        value: b"v\0w".to_vec(),
                    }]
                }),
            ),
            (
                "config.working_dir",
                Box::new(|c| c.working_dir = "/a\0b".into()),
            ),
            (
                "config.mounts[0].container_path",
                Box::new(|c| {
                    c.mounts = vec![Mount {
                        container_path: "/m\0".into(),
                        host_path: "/tmp".into(),
                        ..Default::default()
                    }]
                }),
            ),
        ];
        for (field, change) in cases {
            let mut c = container();
            change(&mut c);
            refused(container_config(&c), field);
        }
    }
}
