//! Capability sets of the container process: the configured defaults, then the request's
//! add/drop lists (with `ALL`, names with or without `CAP_`), ambient capabilities, and every
//! capability the kernel knows for a privileged container.

use std::collections::BTreeSet;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::api::LinuxContainerSecurityContext;

use super::SpecError;

/// Every capability Linux defines: name without `CAP_`, number (linux/capability.h), OCI name.
const KNOWN: &[(&str, u32, Capability)] = &[
    ("CHOWN", 0, Capability::Chown),
    ("DAC_OVERRIDE", 1, Capability::DacOverride),
    ("DAC_READ_SEARCH", 2, Capability::DacReadSearch),
    ("FOWNER", 3, Capability::Fowner),
    ("FSETID", 4, Capability::Fsetid),
    ("KILL", 5, Capability::Kill),
    ("SETGID", 6, Capability::Setgid),
    ("SETUID", 7, Capability::Setuid),
    ("SETPCAP", 8, Capability::Setpcap),
    ("LINUX_IMMUTABLE", 9, Capability::LinuxImmutable),
    ("NET_BIND_SERVICE", 10, Capability::NetBindService),
    ("NET_BROADCAST", 11, Capability::NetBroadcast),
    ("NET_ADMIN", 12, Capability::NetAdmin),
    ("NET_RAW", 13, Capability::NetRaw),
    ("IPC_LOCK", 14, Capability::IpcLock),
    ("IPC_OWNER", 15, Capability::IpcOwner),
    ("SYS_MODULE", 16, Capability::SysModule),
    ("SYS_RAWIO", 17, Capability::SysRawio),
    ("SYS_CHROOT", 18, Capability::SysChroot),
    ("SYS_PTRACE", 19, Capability::SysPtrace),
    ("SYS_PACCT", 20, Capability::SysPacct),
    ("SYS_ADMIN", 21, Capability::SysAdmin),
    ("SYS_BOOT", 22, Capability::SysBoot),
    ("SYS_NICE", 23, Capability::SysNice),
    ("SYS_RESOURCE", 24, Capability::SysResource),
    ("SYS_TIME", 25, Capability::SysTime),
    ("SYS_TTY_CONFIG", 26, Capability::SysTtyConfig),
    ("MKNOD", 27, Capability::Mknod),
    ("LEASE", 28, Capability::Lease),
    ("AUDIT_WRITE", 29, Capability::AuditWrite),
    ("AUDIT_CONTROL", 30, Capability::AuditControl),
    ("SETFCAP", 31, Capability::Setfcap),
    ("MAC_OVERRIDE", 32, Capability::MacOverride),
    ("MAC_ADMIN", 33, Capability::MacAdmin),
    ("SYSLOG", 34, Capability::Syslog),
    ("WAKE_ALARM", 35, Capability::WakeAlarm),
    ("BLOCK_SUSPEND", 36, Capability::BlockSuspend),
    ("AUDIT_READ", 37, Capability::AuditRead),
    ("PERFMON", 38, Capability::Perfmon),
    ("BPF", 39, Capability::Bpf),
    ("CHECKPOINT_RESTORE", 40, Capability::CheckpointRestore),
];

/// The keyword for every capability in add/drop lists.
const ALL: &str = "ALL";

/// The capability number for `name` (`NET_ADMIN`, `CAP_NET_ADMIN`, any case).
pub(crate) fn number(name: &str) -> Option<u32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    KNOWN
        .iter()
        .find(|(n, _, _)| *n == bare)
        .map(|(_, num, _)| *num)
}

/// The resolved capabilities of the container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessCaps {
    /// Bounding = effective = permitted (containerd sets the three alike).
    pub(crate) bounding: BTreeSet<u32>,
    /// Ambient (also inheritable, which the kernel requires for ambient capabilities).
    pub(crate) ambient: BTreeSet<u32>,
}

impl ProcessCaps {
    /// Keeps only capabilities in `mask` (the daemon's bounding set): asking the kernel for one
    /// outside it makes capset fail and the container never starts.
    pub(crate) fn restrict_to(&mut self, mask: u64) {
        let inside = |n: &u32| *n < 64 && mask & (1u64 << n) != 0;
        self.bounding.retain(inside);
        self.ambient.retain(inside);
    }

    /// Whether the bounding set holds `name`; seccomp rules are gated on this.
    pub(crate) fn has(&self, name: &str) -> bool {
        number(name).is_some_and(|n| self.bounding.contains(&n))
    }

    /// The OCI form.
    pub(crate) fn to_oci(&self) -> LinuxCapabilities {
        let main = to_set(&self.bounding);
        let ambient = to_set(&self.ambient);
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(main.clone()))
            .set_effective(Some(main.clone()))
            .set_permitted(Some(main))
            .set_inheritable(Some(ambient.clone()))
            .set_ambient(Some(ambient));
        caps
    }
}

fn to_set(numbers: &BTreeSet<u32>) -> Capabilities {
    KNOWN
        .iter()
        .filter(|(_, n, _)| numbers.contains(n))
        .map(|(_, _, c)| *c)
        .collect()
}

/// Every capability up to the kernel's `cap_last_cap`.
fn all(last_cap: u32) -> BTreeSet<u32> {
    KNOWN
        .iter()
        .map(|(_, n, _)| *n)
        .filter(|n| *n <= last_cap)
        .collect()
}

/// Resolves the capability sets: defaults, `ALL` in add then in drop, then the named adds and
/// drops (so `drop: [ALL], add: [NET_BIND_SERVICE]` keeps exactly that one), as containerd does.
/// A privileged container gets every capability. Ambient capabilities join every set.
pub(crate) fn resolve(
    sc: Option<&LinuxContainerSecurityContext>,
    defaults: &[String],
    privileged: bool,
    last_cap: u32,
) -> Result<ProcessCaps, SpecError> {
    let mut bounding = BTreeSet::new();
    for (i, name) in defaults.iter().enumerate() {
        let n = number(name).ok_or_else(|| SpecError::Precondition {
            field: format!("settings.default_capabilities[{i}]"),
            reason: format!("unknown capability {name:?}"),
        })?;
        bounding.insert(n);
    }
    let requested = sc.and_then(|s| s.capabilities.as_ref());
    let add = requested
        .map(|c| c.add_capabilities.as_slice())
        .unwrap_or_default();
    let drop = requested
        .map(|c| c.drop_capabilities.as_slice())
        .unwrap_or_default();
    let ambient_names = requested
        .map(|c| c.add_ambient_capabilities.as_slice())
        .unwrap_or_default();

    if add.iter().any(|c| c.eq_ignore_ascii_case(ALL)) {
        bounding = all(last_cap);
    }
    if drop.iter().any(|c| c.eq_ignore_ascii_case(ALL)) {
        bounding.clear();
    }
    bounding.extend(named(add, "add_capabilities")?);
    for n in named(drop, "drop_capabilities")? {
        bounding.remove(&n);
    }
    if privileged {
        bounding = all(last_cap);
    }
    let ambient: BTreeSet<u32> = named(ambient_names, "add_ambient_capabilities")?
        .into_iter()
        .collect();
    bounding.extend(&ambient);
    Ok(ProcessCaps { bounding, ambient })
}

/// The numbers of the names in `list`, skipping `ALL`; an unknown name is an error naming it.
fn named(list: &[String], field: &str) -> Result<Vec<u32>, SpecError> {
    list.iter()
        .enumerate()
        .filter(|(_, c)| !c.eq_ignore_ascii_case(ALL))
        .map(|(i, c)| {
            number(c).ok_or_else(|| {
                SpecError::invalid(
                    format!("security_context.capabilities.{field}[{i}]"),
                    format!("unknown capability {c:?}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Capability as CriCapability;

    fn defaults() -> Vec<String> {
        longshore_config::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    fn sc(add: &[&str], drop: &[&str], ambient: &[&str]) -> LinuxContainerSecurityContext {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        LinuxContainerSecurityContext {
            capabilities: Some(CriCapability {
                add_capabilities: v(add),
                drop_capabilities: v(drop),
                add_ambient_capabilities: v(ambient),
            }),
            ..Default::default()
        }
    }

    fn names(set: &BTreeSet<u32>) -> Vec<&'static str> {
        KNOWN
            .iter()
            .filter(|(_, n, _)| set.contains(n))
            .map(|(name, _, _)| *name)
            .collect()
    }

    #[test]
    fn names_with_or_without_prefix() {
        assert_eq!(number("NET_ADMIN"), Some(12));
        assert_eq!(number("CAP_NET_ADMIN"), Some(12));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("NOPE"), None);
    }

    #[test]
    fn defaults_without_request() {
        let caps = resolve(None, &defaults(), false, 40).unwrap();
        assert_eq!(caps.bounding.len(), 14);
        assert!(caps.has("CAP_NET_RAW") && !caps.has("SYS_ADMIN"));
        assert!(caps.ambient.is_empty());
    }

    #[test]
    fn add_and_drop() {
        let caps = resolve(
            Some(&sc(&["NET_ADMIN"], &["NET_RAW", "CAP_CHOWN"], &[])),
            &defaults(),
            false,
            40,
        )
        .unwrap();
        assert!(caps.has("NET_ADMIN") && !caps.has("NET_RAW") && !caps.has("CHOWN"));
        assert_eq!(caps.bounding.len(), 13);
    }

    #[test]
    fn all_keyword() {
        let caps = resolve(Some(&sc(&["ALL"], &["CHOWN"], &[])), &defaults(), false, 40).unwrap();
        assert_eq!(caps.bounding.len(), 40);
        assert!(!caps.has("CHOWN"));
        let caps = resolve(
            Some(&sc(&["NET_BIND_SERVICE"], &["all"], &[])),
            &defaults(),
            false,
            40,
        )
        .unwrap();
        assert_eq!(names(&caps.bounding), vec!["NET_BIND_SERVICE"]);
        let caps = resolve(Some(&sc(&[], &["ALL"], &[])), &defaults(), false, 40).unwrap();
        assert!(caps.bounding.is_empty());
        // An older kernel only gets what it knows.
        let caps = resolve(Some(&sc(&["ALL"], &[], &[])), &defaults(), false, 37).unwrap();
        assert_eq!(caps.bounding.len(), 38);
    }

    #[test]
    fn privileged_gets_everything() {
        let caps = resolve(Some(&sc(&[], &["ALL"], &[])), &defaults(), true, 40).unwrap();
        assert_eq!(caps.bounding.len(), 41);
        assert_eq!(caps.to_oci().bounding().as_ref().unwrap().len(), 41);
    }

    #[test]
    fn ambient_joins_every_set() {
        let caps = resolve(
            Some(&sc(&[], &["ALL"], &["NET_BIND_SERVICE"])),
            &defaults(),
            false,
            40,
        )
        .unwrap();
        let oci = caps.to_oci();
        for set in [
            oci.bounding(),
            oci.effective(),
            oci.permitted(),
            oci.inheritable(),
            oci.ambient(),
        ] {
            assert_eq!(
                set.as_ref().unwrap().iter().collect::<Vec<_>>(),
                vec![&Capability::NetBindService]
            );
        }
    }

    #[test]
    fn unknown_names_are_errors_naming_the_field() {
        let err = resolve(
            Some(&sc(&["NET_ADMIN", "BOGUS"], &[], &[])),
            &defaults(),
            false,
            40,
        )
        .unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "security_context.capabilities.add_capabilities[1]"),
            "{err}"
        );
        let err = resolve(None, &["CAP_NOPE".to_string()], false, 40).unwrap_err();
        assert!(matches!(err, SpecError::Precondition { .. }));
    }

    #[test]
    fn all_means_what_the_daemon_has() {
        let mut caps = resolve(Some(&sc(&["ALL"], &[], &[])), &defaults(), true, 40).unwrap();
        let sys_resource = number("CAP_SYS_RESOURCE").unwrap();
        assert!(caps.bounding.contains(&sys_resource));
        caps.restrict_to(!(1u64 << sys_resource));
        assert!(!caps.bounding.contains(&sys_resource));
        assert!(caps.has("CAP_SYS_ADMIN"));
    }
}
