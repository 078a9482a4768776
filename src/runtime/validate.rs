//! Checks on requests that must fail with InvalidArgument (or NotFound) naming the field.

use crate::server::RpcError;

use crate::api::{ContainerConfig, PodSandboxConfig};
use crate::daemon::Daemon;

/// A pod config needs metadata with a name, a namespace and a uid.
pub(crate) fn pod_config(config: &PodSandboxConfig) -> Result<(), RpcError> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| RpcError::invalid_argument("config.metadata is required"))?;
    for (field, value) in [
        ("name", &m.name),
        ("namespace", &m.namespace),
        ("uid", &m.uid),
    ] {
        if value.is_empty() {
            return Err(RpcError::invalid_argument(format!(
                "config.metadata.{field} is required"
            )));
        }
    }
    // The kernel's limit for a hostname (HOST_NAME_MAX).
    if config.hostname.len() > 64 {
        return Err(RpcError::invalid_argument(format!(
            "config.hostname {:?} is longer than 64 bytes",
            config.hostname
        )));
    }
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
