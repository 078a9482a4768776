//! The seccomp filter: `RuntimeDefault` (a built-in profile equivalent to containerd's and
//! moby's default), `Localhost` profiles loaded from the node, or none (`Unconfined`).
//!
//! Profiles are Docker-format JSON, a superset of the OCI `LinuxSeccomp` object: rules may carry
//! `includes` / `excludes` conditions on capabilities, architectures and kernel version, and
//! `archMap` picks the architectures for the machine we run on. [`Profile::to_oci`] resolves
//! all of that against the container's capabilities and produces plain OCI seccomp.

mod default_profile;

use std::path::Path;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::api::LinuxContainerSecurityContext;
use crate::api::security_profile::ProfileType;

use super::capabilities::ProcessCaps;
use super::security::{LOCALHOST_PREFIX, parse_profile_string};
use super::{SpecError, SpecSettings};

/// `seccomp_default_profile` value selecting the built-in profile.
pub(crate) const BUILTIN: &str = "builtin";
/// Longest profile file we read.
const PROFILE_LIMIT: u64 = 4 << 20;
/// Syscalls take at most six arguments.
const MAX_ARGS: u32 = 6;
const LOCALHOST_FIELD: &str = "security_context.seccomp.localhost_ref";
const DEFAULT_FIELD: &str = "settings.seccomp_default_profile";

/// The machine's architecture: Go's name (used by Docker profiles' `includes.arches`) and
/// libseccomp's.
#[cfg(target_arch = "x86_64")]
const NATIVE: (&str, &str) = ("amd64", "SCMP_ARCH_X86_64");
#[cfg(target_arch = "aarch64")]
const NATIVE: (&str, &str) = ("arm64", "SCMP_ARCH_AARCH64");
#[cfg(target_arch = "riscv64")]
const NATIVE: (&str, &str) = ("riscv64", "SCMP_ARCH_RISCV64");
#[cfg(target_arch = "s390x")]
const NATIVE: (&str, &str) = ("s390x", "SCMP_ARCH_S390X");
#[cfg(target_arch = "powerpc64")]
const NATIVE: (&str, &str) = ("ppc64le", "SCMP_ARCH_PPC64LE");
#[cfg(target_arch = "loongarch64")]
const NATIVE: (&str, &str) = ("loong64", "SCMP_ARCH_LOONGARCH64");

/// What a profile is resolved against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) caps: &'a ProcessCaps,
    pub(crate) kernel: (u32, u32),
    /// Go and libseccomp names of the architecture.
    pub(crate) arch: (&'a str, &'a str),
}

/// The container's seccomp filter, or `None` for none at all.
#[allow(deprecated)] // seccomp_profile_path: older kubelets still send only this
pub(crate) fn filter(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
    caps: &ProcessCaps,
    settings: &SpecSettings,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    // Privileged containers run without seccomp whatever they ask (CRI contract).
    if privileged {
        return Ok(None);
    }
    let requested = match sc.and_then(|s| s.seccomp.clone()) {
        Some(p) => Some(p),
        None => parse_profile_string(
            sc.map(|s| s.seccomp_profile_path.as_str())
                .unwrap_or_default(),
            "security_context.seccomp_profile_path",
        )?,
    };
    let requested = match requested {
        Some(p) => p,
        None if settings.seccomp_default_for_unconfined => Default::default(),
        None => return Ok(None),
    };
    let kind = requested.profile_type();
    if !settings.host.seccomp {
        if kind == ProfileType::Unconfined {
            return Ok(None);
        }
        return Err(SpecError::Precondition {
            field: "security_context.seccomp".into(),
            reason: "seccomp is not supported by this kernel".into(),
        });
    }
    if kind != ProfileType::Localhost && !requested.localhost_ref.is_empty() {
        return Err(SpecError::invalid(
            LOCALHOST_FIELD,
            "localhost_ref is only allowed with a Localhost profile",
        ));
    }
    let target = Target {
        caps,
        kernel: settings.host.kernel,
        arch: NATIVE,
    };
    let profile = match kind {
        ProfileType::Unconfined => return Ok(None),
        ProfileType::RuntimeDefault => runtime_default(settings)?,
        ProfileType::Localhost => {
            let path = requested
                .localhost_ref
                .strip_prefix(LOCALHOST_PREFIX)
                .unwrap_or(&requested.localhost_ref);
            load(Path::new(path), LOCALHOST_FIELD, false)?
        }
    };
    profile.to_oci(&target).map(Some).map_err(|reason| {
        let field = if kind == ProfileType::Localhost {
            LOCALHOST_FIELD
        } else {
            DEFAULT_FIELD
        };
        SpecError::invalid(field, reason)
    })
}

/// The `RuntimeDefault` profile: built in, or the file the configuration names.
fn runtime_default(settings: &SpecSettings) -> Result<Profile, SpecError> {
    match settings.seccomp_default_profile.as_str() {
        "" | BUILTIN => Ok(default_profile::profile()),
        path => load(Path::new(path), DEFAULT_FIELD, true),
    }
}

/// Reads and parses a profile file. A problem with the configured default is the node's
/// (`Precondition`); with a requested profile it is the request's.
pub(crate) fn load(path: &Path, field: &str, configured: bool) -> Result<Profile, SpecError> {
    let fail = |reason: String| {
        if configured {
            SpecError::Precondition {
                field: field.into(),
                reason,
            }
        } else {
            SpecError::invalid(field, reason)
        }
    };
    if !path.is_absolute() {
        return Err(fail(format!(
            "seccomp profile {} is not an absolute path",
            path.display()
        )));
    }
    let text = match read_limited(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            return Err(SpecError::NotFound {
                field: field.into(),
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(fail(format!(
                "cannot read seccomp profile {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| fail(format!("seccomp profile {}: {e}", path.display())))
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(PROFILE_LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > PROFILE_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "profile is larger than 4 MiB",
        ));
    }
    Ok(text)
}

/// A Docker-format seccomp profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    pub(crate) default_action: String,
    #[serde(default)]
    pub(crate) default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) flags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) listener_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) listener_metadata: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) syscalls: Vec<Rule>,
}

/// Architectures to add when running on `architecture`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArchMap {
    pub(crate) architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) sub_architectures: Vec<String>,
}

/// One rule: syscalls, the action, argument conditions and when the rule applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    /// Old single-name form.
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) names: Vec<String>,
    pub(crate) action: String,
    #[serde(default)]
    pub(crate) errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) args: Vec<RuleArg>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) includes: Condition,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) excludes: Condition,
}

/// An argument comparison.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleArg {
    pub(crate) index: u32,
    pub(crate) value: u64,
    #[serde(default)]
    pub(crate) value_two: u64,
    pub(crate) op: String,
}

/// `includes`: the rule applies only if all of these hold; `excludes`: not if any holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Condition {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) arches: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) min_kernel: String,
}

/// Go writes empty lists as `null`; treat that like a missing field.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Profile {
    /// Resolves the profile for `target` into OCI seccomp. The error is a human reason.
    pub(crate) fn to_oci(&self, target: &Target<'_>) -> Result<LinuxSeccomp, String> {
        let default_action: LinuxSeccompAction = enum_value(&self.default_action, "action")?;
        if default_action == LinuxSeccompAction::ScmpActNotify {
            return Err("SCMP_ACT_NOTIFY cannot be the default action".into());
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(default_action)
            .set_default_errno_ret(self.default_errno_ret);
        let arches = self.architectures(target)?;
        if !arches.is_empty() {
            out.set_architectures(Some(arches));
        }
        if !self.flags.is_empty() {
            let flags = self
                .flags
                .iter()
                .map(|f| enum_value::<LinuxSeccompFilterFlag>(f, "flag"))
                .collect::<Result<_, _>>()?;
            out.set_flags(Some(flags));
        }
        if !self.listener_path.is_empty() {
            out.set_listener_path(Some(self.listener_path.clone().into()));
        }
        if !self.listener_metadata.is_empty() {
            out.set_listener_metadata(Some(self.listener_metadata.clone()));
        }
        let mut syscalls = Vec::with_capacity(self.syscalls.len());
        for (i, rule) in self.syscalls.iter().enumerate() {
            if let Some(s) = rule
                .to_oci(target)
                .map_err(|e| format!("syscalls[{i}]: {e}"))?
            {
                syscalls.push(s);
            }
        }
        out.set_syscalls(Some(syscalls));
        Ok(out)
    }

    fn architectures(&self, target: &Target<'_>) -> Result<Vec<Arch>, String> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err("both architectures and archMap are set".into());
        }
        let names: Vec<&String> = if self.arch_map.is_empty() {
            self.architectures.iter().collect()
        } else {
            self.arch_map
                .iter()
                .filter(|m| m.architecture == target.arch.1)
                .flat_map(|m| std::iter::once(&m.architecture).chain(&m.sub_architectures))
                .collect()
        };
        names
            .into_iter()
            .map(|a| enum_value(a, "architecture"))
            .collect()
    }
}

impl Rule {
    /// The OCI rule, or `None` when its conditions leave it out for this container.
    fn to_oci(&self, target: &Target<'_>) -> Result<Option<LinuxSyscall>, String> {
        if !self.name.is_empty() && !self.names.is_empty() {
            return Err("both name and names are set".into());
        }
        if !self.applies(target)? {
            return Ok(None);
        }
        let names = if self.name.is_empty() {
            self.names.clone()
        } else {
            vec![self.name.clone()]
        };
        if names.is_empty() {
            return Ok(None);
        }
        let mut out = LinuxSyscall::default();
        out.set_names(names)
            .set_action(enum_value(&self.action, "action")?)
            .set_errno_ret(self.errno_ret);
        if !self.args.is_empty() {
            out.set_args(Some(
                self.args
                    .iter()
                    .map(RuleArg::to_oci)
                    .collect::<Result<_, _>>()?,
            ));
        }
        Ok(Some(out))
    }

    fn applies(&self, target: &Target<'_>) -> Result<bool, String> {
        let inc = &self.includes;
        let exc = &self.excludes;
        let arch_is = |a: &String| a == target.arch.0 || a == target.arch.1;
        let has_cap = |c: &String| target.caps.has(c);
        let at_least = |v: &str| version(v).map(|min| target.kernel >= min);
        if !inc.arches.is_empty() && !inc.arches.iter().any(arch_is) {
            return Ok(false);
        }
        if !inc.caps.iter().all(has_cap) {
            return Ok(false);
        }
        if !inc.min_kernel.is_empty() && !at_least(&inc.min_kernel)? {
            return Ok(false);
        }
        if exc.arches.iter().any(arch_is) || exc.caps.iter().any(has_cap) {
            return Ok(false);
        }
        if !exc.min_kernel.is_empty() && at_least(&exc.min_kernel)? {
            return Ok(false);
        }
        Ok(true)
    }
}

impl RuleArg {
    fn to_oci(&self) -> Result<LinuxSeccompArg, String> {
        if self.index >= MAX_ARGS {
            return Err(format!("argument index {} is out of range", self.index));
        }
        let mut arg = LinuxSeccompArgBuilder::default()
            .index(self.index as usize)
            .value(self.value)
            .op(enum_value::<LinuxSeccompOperator>(&self.op, "operator")?);
        if self.value_two != 0 {
            arg = arg.value_two(self.value_two);
        }
        arg.build().map_err(|e| e.to_string())
    }
}

/// `"4.8"` → `(4, 8)`.
fn version(text: &str) -> Result<(u32, u32), String> {
    let mut parts = text.trim().split('.');
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok());
    match (major, minor) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("invalid kernel version {text:?}")),
    }
}

/// An OCI enum from its JSON spelling (`SCMP_ACT_ERRNO`, `SCMP_ARCH_X86_64`, `SCMP_CMP_EQ`, ...).
fn enum_value<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("unknown {what} {text:?}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::SecurityProfile;
    use crate::capabilities;
    use crate::tests_support::settings;

    /// What the filter does to a call of `name` whose arguments are all `args` (missing ones 0),
    /// evaluated like libseccomp: the first matching rule in order wins over the default.
    pub(crate) fn verdict(
        f: &LinuxSeccomp,
        name: &str,
        args: &[u64],
    ) -> (LinuxSeccompAction, Option<u32>) {
        for rule in f.syscalls().iter().flatten() {
            if !rule.names().iter().any(|n| n == name) {
                continue;
            }
            let arg_ok = |a: &LinuxSeccompArg| {
                let v = args.get(a.index()).copied().unwrap_or(0);
                match a.op() {
                    LinuxSeccompOperator::ScmpCmpEq => v == a.value(),
                    LinuxSeccompOperator::ScmpCmpNe => v != a.value(),
                    LinuxSeccompOperator::ScmpCmpLt => v < a.value(),
                    LinuxSeccompOperator::ScmpCmpLe => v <= a.value(),
                    LinuxSeccompOperator::ScmpCmpGt => v > a.value(),
                    LinuxSeccompOperator::ScmpCmpGe => v >= a.value(),
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        v & a.value() == a.value_two().unwrap_or(0)
                    }
                }
            };
            if rule.args().iter().flatten().all(arg_ok) {
                return (rule.action(), rule.errno_ret());
            }
        }
        (f.default_action(), f.default_errno_ret())
    }

    fn caps(add: &[&str]) -> ProcessCaps {
        let defaults: Vec<String> = longshore_config::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let sc = LinuxContainerSecurityContext {
            capabilities: Some(crate::api::Capability {
                add_capabilities: add.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        capabilities::resolve(Some(&sc), &defaults, false, 40).unwrap()
    }

    fn with_profile(p: SecurityProfile) -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext {
            seccomp: Some(p),
            ..Default::default()
        }
    }

    fn localhost(path: &Path) -> SecurityProfile {
        SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: path.display().to_string(),
        }
    }

    const ALLOW: LinuxSeccompAction = LinuxSeccompAction::ScmpActAllow;
    const ERRNO: LinuxSeccompAction = LinuxSeccompAction::ScmpActErrno;

    #[test]
    fn runtime_default_blocks_the_dangerous_and_allows_the_ordinary() {
        let s = settings();
        let f = filter(
            Some(&with_profile(SecurityProfile::default())),
            false,
            &caps(&[]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.default_action(), ERRNO);
        assert_eq!(f.default_errno_ret(), None, "EPERM by default");
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "exit_group",
            "futex",
            "clock_gettime",
        ] {
            assert_eq!(verdict(&f, name, &[]).0, ALLOW, "{name}");
        }
        for name in [
            "unshare",
            "mount",
            "kexec_load",
            "init_module",
            "reboot",
            "setns",
            "bpf",
            "keyctl",
            "add_key",
        ] {
            assert_eq!(verdict(&f, name, &[]).0, ERRNO, "{name}");
        }
        // clone: plain threads and forks pass, namespace flags do not; clone3 says ENOSYS so libc
        // falls back to clone.
        assert_eq!(verdict(&f, "clone", &[libc::SIGCHLD as u64]).0, ALLOW);
        assert_eq!(verdict(&f, "clone", &[libc::CLONE_NEWUSER as u64]).0, ERRNO);
        assert_eq!(
            verdict(&f, "clone3", &[]),
            (ERRNO, Some(libc::ENOSYS as u32))
        );
        // socket: everything but AF_ALG (38) and AF_VSOCK (40).
        assert_eq!(verdict(&f, "socket", &[libc::AF_INET as u64]).0, ALLOW);
        assert_eq!(verdict(&f, "socket", &[39]).0, ALLOW);
        assert_eq!(verdict(&f, "socket", &[libc::AF_ALG as u64]).0, ERRNO);
        assert_eq!(verdict(&f, "socket", &[libc::AF_VSOCK as u64]).0, ERRNO);
        assert_eq!(verdict(&f, "personality", &[0]).0, ALLOW);
        assert_eq!(verdict(&f, "personality", &[0x0040000]).0, ERRNO);
        // ptrace is allowed from kernel 4.8 on (the kernel fixed the seccomp bypass there).
        assert_eq!(verdict(&f, "ptrace", &[]).0, ALLOW);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(verdict(&f, "arch_prctl", &[]).0, ALLOW);
            assert_eq!(
                f.architectures().as_ref().unwrap(),
                &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
        }
    }

    #[test]
    fn runtime_default_follows_capabilities() {
        let s = settings();
        let sc = with_profile(SecurityProfile::default());
        let admin = filter(Some(&sc), false, &caps(&["SYS_ADMIN"]), &s)
            .unwrap()
            .unwrap();
        for name in ["mount", "unshare", "sethostname", "setns", "clone3"] {
            assert_eq!(verdict(&admin, name, &[]).0, ALLOW, "{name}");
        }
        assert_eq!(
            verdict(&admin, "clone", &[libc::CLONE_NEWUSER as u64]).0,
            ALLOW
        );
        let plain = filter(Some(&sc), false, &caps(&[]), &s).unwrap().unwrap();
        assert_eq!(verdict(&plain, "sethostname", &[]).0, ERRNO);
        let boot = filter(Some(&sc), false, &caps(&["SYS_BOOT", "SYS_TIME"]), &s)
            .unwrap()
            .unwrap();
        assert_eq!(verdict(&boot, "reboot", &[]).0, ALLOW);
        assert_eq!(verdict(&boot, "settimeofday", &[]).0, ALLOW);
        assert_eq!(verdict(&plain, "reboot", &[]).0, ERRNO);
    }

    #[test]
    fn old_kernels_lose_ptrace() {
        let mut s = settings();
        s.host.kernel = (4, 4);
        let f = filter(
            Some(&with_profile(SecurityProfile::default())),
            false,
            &caps(&[]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(verdict(&f, "ptrace", &[]).0, ERRNO);
    }

    #[test]
    #[allow(deprecated)]
    fn selection_rules() {
        let mut s = settings();
        let c = caps(&[]);
        // nil / empty: unconfined, unless the node defaults to RuntimeDefault.
        assert!(filter(None, false, &c, &s).unwrap().is_none());
        assert!(
            filter(
                Some(&LinuxContainerSecurityContext::default()),
                false,
                &c,
                &s
            )
            .unwrap()
            .is_none()
        );
        let unconfined = SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            ..Default::default()
        };
        assert!(
            filter(Some(&with_profile(unconfined)), false, &c, &s)
                .unwrap()
                .is_none()
        );
        // Privileged never gets a filter.
        assert!(
            filter(
                Some(&with_profile(SecurityProfile::default())),
                true,
                &c,
                &s
            )
            .unwrap()
            .is_none()
        );
        // The deprecated path strings.
        let old = LinuxContainerSecurityContext {
            seccomp_profile_path: "runtime/default".into(),
            ..Default::default()
        };
        assert!(filter(Some(&old), false, &c, &s).unwrap().is_some());
        let bad = LinuxContainerSecurityContext {
            seccomp_profile_path: "what".into(),
            ..Default::default()
        };
        assert!(matches!(
            filter(Some(&bad), false, &c, &s),
            Err(SpecError::Invalid { .. })
        ));
        s.seccomp_default_for_unconfined = true;
        assert!(filter(None, false, &c, &s).unwrap().is_some());
        s.host.seccomp = false;
        assert!(matches!(
            filter(None, false, &c, &s),
            Err(SpecError::Precondition { .. })
        ));
    }

    #[test]
    #[allow(deprecated)]
    fn critest_localhost_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let hostname = dir.path().join("block-host-name.json");
        std::fs::write(
            &hostname,
            r#"{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ { "names": ["sethostname"], "action": "SCMP_ACT_ERRNO" } ] }"#,
        )
        .unwrap();
        let chmod = dir.path().join("block-chmod.json");
        std::fs::write(
            &chmod,
            r#"{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ { "names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO" } ] }"#,
        )
        .unwrap();
        let s = settings();
        let c = caps(&["SYS_ADMIN"]);
        let f = filter(Some(&with_profile(localhost(&hostname))), false, &c, &s)
            .unwrap()
            .unwrap();
        assert_eq!(f.default_action(), ALLOW);
        assert_eq!(verdict(&f, "sethostname", &[]), (ERRNO, None));
        assert_eq!(verdict(&f, "mount", &[]).0, ALLOW);
        // Also reachable through the deprecated string with the localhost/ prefix.
        let old = LinuxContainerSecurityContext {
            seccomp_profile_path: format!("localhost/{}", chmod.display()),
            ..Default::default()
        };
        let f = filter(Some(&old), false, &c, &s).unwrap().unwrap();
        assert_eq!(verdict(&f, "chmod", &[]).0, ERRNO);
        assert_eq!(verdict(&f, "fchmodat", &[]).0, ERRNO);
        assert_eq!(verdict(&f, "fchmod", &[]).0, ALLOW);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json["syscalls"][0]["names"],
            serde_json::json!(["chmod", "fchmodat"])
        );
    }

    #[test]
    fn localhost_errors() {
        let s = settings();
        let c = caps(&[]);
        let missing = Path::new("/nonexistent/profile.json");
        let err = filter(Some(&with_profile(localhost(missing))), false, &c, &s).unwrap_err();
        assert!(
            matches!(&err, SpecError::NotFound { field, .. } if field == LOCALHOST_FIELD),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#).unwrap();
        let err = filter(Some(&with_profile(localhost(&bad))), false, &c, &s).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == LOCALHOST_FIELD),
            "{err}"
        );
        std::fs::write(&bad, "not json").unwrap();
        assert!(filter(Some(&with_profile(localhost(&bad))), false, &c, &s).is_err());
        let relative = SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: "x.json".into(),
        };
        assert!(matches!(
            filter(Some(&with_profile(relative)), false, &c, &s),
            Err(SpecError::Invalid { .. })
        ));
    }

    #[test]
    fn docker_format_conversion() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null, "comment": "basic"},
                {"name": "kill", "action": "SCMP_ACT_LOG"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["unshare"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["s390_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
                {"names": ["newer"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
                {"names": ["older"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.0"}},
                {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 1, "value": 21531, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 255, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }"#;
        let profile: Profile = serde_json::from_str(text).unwrap();
        let c = caps(&[]);
        let target = Target {
            caps: &c,
            kernel: (6, 1),
            arch: ("amd64", "SCMP_ARCH_X86_64"),
        };
        let f = profile.to_oci(&target).unwrap();
        assert_eq!(f.default_errno_ret(), Some(38));
        assert_eq!(
            f.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert_eq!(
            f.flags().as_ref().unwrap(),
            &[LinuxSeccompFilterFlag::SeccompFilterFlagLog]
        );
        let names: Vec<String> = f
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect();
        assert_eq!(
            names,
            ["read", "write", "kill", "unshare", "arch_prctl", "ioctl"]
        );
        let ioctl = f.syscalls().as_ref().unwrap().last().unwrap();
        let args = ioctl.args().as_ref().unwrap();
        assert_eq!(
            (args[0].index(), args[0].value(), args[0].op()),
            (1, 21531, LinuxSeccompOperator::ScmpCmpEq)
        );
        assert_eq!(
            (args[1].value_two(), args[1].op()),
            (Some(1), LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        // With CAP_SYS_ADMIN the include/exclude pair flips.
        let admin = caps(&["SYS_ADMIN"]);
        let arm = Target {
            caps: &admin,
            kernel: (3, 10),
            arch: ("arm64", "SCMP_ARCH_AARCH64"),
        };
        let f = profile.to_oci(&arm).unwrap();
        let names: Vec<String> = f
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect();
        assert_eq!(names, ["read", "write", "kill", "mount", "older", "ioctl"]);
        assert_eq!(
            f.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
    }

    #[test]
    fn docker_format_errors() {
        let c = caps(&[]);
        let target = Target {
            caps: &c,
            kernel: (6, 1),
            arch: ("amd64", "SCMP_ARCH_X86_64"),
        };
        let bad = |text: &str| {
            serde_json::from_str::<Profile>(text)
                .unwrap()
                .to_oci(&target)
                .unwrap_err()
        };
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).contains("default"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#).contains("archMap"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}"#).contains("syscalls[0]"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#).contains("index"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#).contains("operator"));
        assert!(bad(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "x"}}]}"#).contains("kernel"));
    }

    #[test]
    fn configured_default_profile_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("default.json");
        std::fs::write(&path, r#"{"defaultAction": "SCMP_ACT_LOG"}"#).unwrap();
        let mut s = settings();
        s.seccomp_default_profile = path.display().to_string();
        let f = filter(
            Some(&with_profile(SecurityProfile::default())),
            false,
            &caps(&[]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.default_action(), LinuxSeccompAction::ScmpActLog);
        s.seccomp_default_profile = dir.path().join("gone.json").display().to_string();
        let err = filter(
            Some(&with_profile(SecurityProfile::default())),
            false,
            &caps(&[]),
            &s,
        )
        .unwrap_err();
        assert!(
            matches!(&err, SpecError::Precondition { field, .. } if field == DEFAULT_FIELD),
            "{err}"
        );
    }
}
