//! Which sysctls a pod may set, and setting them inside the pod's namespaces.

use std::path::PathBuf;

use crate::NamespaceError;

/// IPC sysctls that are per IPC namespace (the list runc and kubelet accept).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
const MQUEUE_PREFIX: &str = "fs.mqueue.";
const NET_PREFIX: &str = "net.";
const UTS_SYSCTLS: &[&str] = &["kernel.hostname", "kernel.domainname"];

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    /// `net.*`
    Net,
    /// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`
    Ipc,
    /// `kernel.hostname`, `kernel.domainname`
    Uts,
}

/// Finds the namespace of a sysctl, refusing those that are not namespaced (they would change the
/// whole node). Names may be dotted (`net.ipv4.ip_forward`) or slashed (`net/ipv4/conf/eth0.1/x`).
pub fn classify_sysctl(name: &str) -> Result<SysctlNamespace, NamespaceError> {
    let dotted = dotted_name(name);
    if dotted.starts_with(NET_PREFIX) {
        return Ok(SysctlNamespace::Net);
    }
    if IPC_SYSCTLS.contains(&dotted.as_str()) || dotted.starts_with(MQUEUE_PREFIX) {
        return Ok(SysctlNamespace::Ipc);
    }
    if UTS_SYSCTLS.contains(&dotted.as_str()) {
        return Ok(SysctlNamespace::Uts);
    }
    Err(NamespaceError::Sysctl {
        name: name.to_string(),
        reason: "is not namespaced; it would change the whole node".into(),
    })
}

/// The name with `.` separators, for classification.
fn dotted_name(name: &str) -> String {
    if name.contains('/') {
        name.replace('/', ".")
    } else {
        name.to_string()
    }
}

/// The file under /proc/sys for a sysctl name; refuses names that could climb out of it.
pub(crate) fn proc_path(name: &str) -> Result<PathBuf, NamespaceError> {
    let relative = if name.contains('/') {
        name.to_string()
    } else {
        name.replace('.', "/")
    };
    if relative
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(NamespaceError::Sysctl {
            name: name.to_string(),
            reason: "is not a valid sysctl name".into(),
        });
    }
    Ok(PathBuf::from("/proc/sys").join(relative))
}

/// Writes one sysctl in the calling thread's namespaces.
pub(crate) fn write_sysctl(name: &str, value: &str) -> Result<(), NamespaceError> {
    let path = proc_path(name)?;
    std::fs::write(&path, value).map_err(|e| NamespaceError::Sysctl {
        name: name.to_string(),
        reason: format!("cannot write {value:?} to {}: {e}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_kubelet() {
        assert_eq!(
            classify_sysctl("net.ipv4.ip_forward").unwrap(),
            SysctlNamespace::Net
        );
        assert_eq!(
            classify_sysctl("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            SysctlNamespace::Net
        );
        assert_eq!(
            classify_sysctl("kernel.shm_rmid_forced").unwrap(),
            SysctlNamespace::Ipc
        );
        assert_eq!(
            classify_sysctl("fs.mqueue.msg_max").unwrap(),
            SysctlNamespace::Ipc
        );
        assert_eq!(
            classify_sysctl("kernel.domainname").unwrap(),
            SysctlNamespace::Uts
        );
        assert!(classify_sysctl("kernel.panic").is_err());
        assert!(classify_sysctl("vm.swappiness").is_err());
    }

    #[test]
    fn slashed_names_keep_dots() {
        assert_eq!(
            proc_path("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            proc_path("net.core.somaxconn").unwrap(),
            PathBuf::from("/proc/sys/net/core/somaxconn")
        );
        assert!(proc_path("net/../../etc/passwd").is_err());
    }
}
