//! Security settings outside capabilities and seccomp: masked and read-only paths, the AppArmor
//! profile, and the OOM score adjustment.

use crate::api::{
    LinuxContainerResources, LinuxContainerSecurityContext, SecurityProfile,
    security_profile::ProfileType,
};

use super::{SpecError, SpecSettings};

/// The kernel's list of loaded AppArmor profiles, one `name (mode)` a line.
const APPARMOR_PROFILES: &str = "/sys/kernel/security/apparmor/profiles";
/// Prefix of a node-local profile in the CRI's profile strings.
pub(crate) const LOCALHOST_PREFIX: &str = "localhost/";
/// The runtime's own default profile, as a CRI profile string.
pub(crate) const RUNTIME_DEFAULT: &str = "runtime/default";
/// Docker's spelling of the runtime default (still accepted by containerd).
pub(crate) const DOCKER_DEFAULT: &str = "docker/default";
/// No profile.
pub(crate) const UNCONFINED: &str = "unconfined";

/// The kernel's range for `/proc/<pid>/oom_score_adj`.
const OOM_SCORE_ADJ_MIN: i64 = -1000;
const OOM_SCORE_ADJ_MAX: i64 = 1000;

/// Paths hidden from a non-privileged container (containerd's and moby's list).
const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];
/// Paths made read-only in a non-privileged container.
const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Masked paths: none for a privileged container, the request's list, else the defaults.
///
/// kubelet always sends a list (the defaults, or an empty one for `procMount: Unmasked`);
/// protobuf cannot tell "empty" from "absent", so an empty list gets the defaults here.
pub(crate) fn masked_paths(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
) -> Vec<String> {
    paths(
        sc.map(|s| s.masked_paths.as_slice()),
        privileged,
        DEFAULT_MASKED_PATHS,
    )
}

/// Read-only paths, by the same rule as [`masked_paths`].
pub(crate) fn readonly_paths(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
) -> Vec<String> {
    paths(
        sc.map(|s| s.readonly_paths.as_slice()),
        privileged,
        DEFAULT_READONLY_PATHS,
    )
}

fn paths(requested: Option<&[String]>, privileged: bool, defaults: &[&str]) -> Vec<String> {
    match requested {
        _ if privileged => Vec::new(),
        Some(list) if !list.is_empty() => list.to_vec(),
        _ => defaults.iter().map(|p| p.to_string()).collect(),
    }
}

/// Parses a deprecated CRI profile string (`runtime/default`, `docker/default`, `unconfined`,
/// `localhost/<ref>`) into the structured form; `""` means "not set".
pub(crate) fn parse_profile_string(
    text: &str,
    field: &str,
) -> Result<Option<SecurityProfile>, SpecError> {
    let profile = |t: ProfileType, r: &str| SecurityProfile {
        profile_type: t as i32,
        localhost_ref: r.to_string(),
    };
    match text {
        "" => Ok(None),
        RUNTIME_DEFAULT | DOCKER_DEFAULT => Ok(Some(profile(ProfileType::RuntimeDefault, ""))),
        UNCONFINED => Ok(Some(profile(ProfileType::Unconfined, ""))),
        other => match other.strip_prefix(LOCALHOST_PREFIX) {
            Some(r) if !r.is_empty() => Ok(Some(profile(ProfileType::Localhost, r))),
            _ => Err(SpecError::invalid(
                field,
                format!("invalid profile {other:?}"),
            )),
        },
    }
}

/// The AppArmor profile for the process, or `None` for unconfined. Applied only where AppArmor
/// is enabled; elsewhere every request is ignored (as CRI-O does), since kubelet only asks for
/// AppArmor on nodes that have it.
#[allow(deprecated)] // apparmor_profile: older kubelets still send only this
pub(crate) fn apparmor(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
    settings: &SpecSettings,
) -> Result<Option<String>, SpecError> {
    let requested = match sc.and_then(|s| s.apparmor.clone()) {
        Some(p) => Some(p),
        None => parse_profile_string(
            sc.map(|s| s.apparmor_profile.as_str()).unwrap_or_default(),
            "security_context.apparmor_profile",
        )?,
    };
    if !settings.host.apparmor {
        if requested
            .as_ref()
            .is_some_and(|p| p.profile_type() == ProfileType::Localhost)
        {
            tracing::warn!("AppArmor is not enabled on this host; ignoring the requested profile");
        }
        return Ok(None);
    }
    // kubernetes#51746: no profile means the runtime default.
    let profile = requested.unwrap_or_default();
    if profile.profile_type() != ProfileType::Localhost && !profile.localhost_ref.is_empty() {
        return Err(SpecError::invalid(
            "security_context.apparmor.localhost_ref",
            "localhost_ref is only allowed with a Localhost profile",
        ));
    }
    match profile.profile_type() {
        ProfileType::Unconfined => Ok(None),
        ProfileType::RuntimeDefault
            if privileged || settings.apparmor_default_profile.is_empty() =>
        {
            Ok(None)
        }
        ProfileType::RuntimeDefault => Ok(Some(settings.apparmor_default_profile.clone())),
        ProfileType::Localhost => {
            let name = profile
                .localhost_ref
                .strip_prefix(LOCALHOST_PREFIX)
                .unwrap_or(&profile.localhost_ref);
            let loaded =
                std::fs::read_to_string(APPARMOR_PROFILES).map_err(|source| SpecError::Io {
                    what: "reading the loaded AppArmor profiles",
                    path: APPARMOR_PROFILES.into(),
                    source,
                })?;
            if !profile_loaded(&loaded, name) {
                return Err(SpecError::NotFound {
                    field: "security_context.apparmor.localhost_ref".into(),
                    path: format!("apparmor profile {name}").into(),
                });
            }
            Ok(Some(name.to_string()))
        }
    }
}

/// Whether `name` is in the kernel's profile list (`name (enforce)` lines).
fn profile_loaded(table: &str, name: &str) -> bool {
    !name.is_empty()
        && table.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(" ("))
        })
}

/// The OOM score adjustment: the request's, raised to the daemon's own when
/// `restrict_oom_score_adj` is on (a container may not be less killable than its runtime).
/// `None` when the request carries no resources, leaving the runtime's inherited value.
pub(crate) fn oom_score_adj(
    resources: Option<&LinuxContainerResources>,
    settings: &SpecSettings,
) -> Result<Option<i32>, SpecError> {
    let Some(resources) = resources else {
        return Ok(None);
    };
    let wanted = resources.oom_score_adj;
    if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&wanted) {
        return Err(SpecError::invalid(
            "resources.oom_score_adj",
            format!("{wanted} is outside [{OOM_SCORE_ADJ_MIN}, {OOM_SCORE_ADJ_MAX}]"),
        ));
    }
    let wanted = wanted as i32;
    if settings.restrict_oom_score_adj {
        Ok(Some(wanted.max(settings.host.daemon_oom_score_adj)))
    } else {
        Ok(Some(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::settings;

    #[test]
    fn masked_and_readonly_defaults() {
        assert_eq!(masked_paths(None, false).len(), DEFAULT_MASKED_PATHS.len());
        assert!(masked_paths(None, true).is_empty());
        let sc = LinuxContainerSecurityContext {
            masked_paths: vec!["/bin/ls".into()],
            readonly_paths: vec!["/tmp".into()],
            ..Default::default()
        };
        assert_eq!(masked_paths(Some(&sc), false), ["/bin/ls"]);
        assert_eq!(readonly_paths(Some(&sc), false), ["/tmp"]);
        assert!(readonly_paths(Some(&sc), true).is_empty());
        assert!(readonly_paths(None, false).contains(&"/proc/sys".to_string()));
    }

    #[test]
    fn profile_strings() {
        let t = |s| {
            parse_profile_string(s, "f")
                .unwrap()
                .map(|p| (p.profile_type(), p.localhost_ref))
        };
        assert_eq!(t(""), None);
        assert_eq!(
            t("runtime/default"),
            Some((ProfileType::RuntimeDefault, String::new()))
        );
        assert_eq!(
            t("docker/default"),
            Some((ProfileType::RuntimeDefault, String::new()))
        );
        assert_eq!(
            t("unconfined"),
            Some((ProfileType::Unconfined, String::new()))
        );
        assert_eq!(
            t("localhost//x.json"),
            Some((ProfileType::Localhost, "/x.json".into()))
        );
        assert!(parse_profile_string("bogus", "f").is_err());
        assert!(parse_profile_string("localhost/", "f").is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn apparmor_ignored_without_apparmor() {
        let s = settings();
        let sc = LinuxContainerSecurityContext {
            apparmor_profile: "localhost/whatever".into(),
            ..Default::default()
        };
        assert_eq!(apparmor(Some(&sc), false, &s).unwrap(), None);
        let bad = LinuxContainerSecurityContext {
            apparmor_profile: "nonsense".into(),
            ..Default::default()
        };
        assert!(apparmor(Some(&bad), false, &s).is_err());
    }

    #[test]
    fn apparmor_with_apparmor() {
        let mut s = settings();
        s.host.apparmor = true;
        assert_eq!(apparmor(None, false, &s).unwrap(), None);
        s.apparmor_default_profile = "longshore-default".into();
        assert_eq!(
            apparmor(None, false, &s).unwrap().as_deref(),
            Some("longshore-default")
        );
        assert_eq!(apparmor(None, true, &s).unwrap(), None);
        let unconfined = LinuxContainerSecurityContext {
            apparmor: Some(SecurityProfile {
                profile_type: ProfileType::Unconfined as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        };
        assert_eq!(apparmor(Some(&unconfined), false, &s).unwrap(), None);
        let mixed = LinuxContainerSecurityContext {
            apparmor: Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                localhost_ref: "x".into(),
            }),
            ..Default::default()
        };
        assert!(apparmor(Some(&mixed), false, &s).is_err());
    }

    #[test]
    fn loaded_profile_lookup() {
        let table = "cri-validate-apparmor-test-deny-write (enforce)\ndocker-default (enforce)\n";
        assert!(profile_loaded(table, "docker-default"));
        assert!(!profile_loaded(table, "docker"));
        assert!(!profile_loaded(table, ""));
    }

    #[test]
    fn oom_score_adj_floor() {
        let mut s = settings();
        s.host.daemon_oom_score_adj = -500;
        let r = |v| LinuxContainerResources {
            oom_score_adj: v,
            ..Default::default()
        };
        assert_eq!(oom_score_adj(None, &s).unwrap(), None);
        assert_eq!(oom_score_adj(Some(&r(-999)), &s).unwrap(), Some(-500));
        assert_eq!(oom_score_adj(Some(&r(1000)), &s).unwrap(), Some(1000));
        s.restrict_oom_score_adj = false;
        assert_eq!(oom_score_adj(Some(&r(-999)), &s).unwrap(), Some(-999));
        assert!(matches!(
            oom_score_adj(Some(&r(5000)), &s),
            Err(SpecError::Invalid { .. })
        ));
    }
}
