//! cgroup limits and devices: the CRI's `LinuxContainerResources` in OCI form, the device nodes
//! a container gets (the request's, or all of the host's when privileged) and the device cgroup
//! rules that let it use them.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxHugepageLimit, LinuxMemory,
    LinuxResources,
};

use crate::api::{Device, LinuxContainerResources};

use super::{HostFacts, SpecError};

/// Access letters of a device cgroup rule: read, write, mknod.
const RWM: &str = "rwm";
/// `/dev` subdirectories a privileged container does not get from the host (containerd's list):
/// they are the container's own mounts or runtime bookkeeping.
const HOST_DEV_SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
/// The host console is never handed to a container.
const HOST_DEV_SKIP_FILES: &[&str] = &["console"];

/// The devices section of the spec.
#[derive(Debug, Default)]
pub(crate) struct DevicePlan {
    /// Device nodes created in the container's `/dev`.
    pub(crate) devices: Vec<LinuxDevice>,
    /// Device cgroup rules, in order.
    pub(crate) rules: Vec<LinuxDeviceCgroup>,
}

/// Devices and device rules. Unprivileged: deny everything, allow runc's standard set (the
/// same every runtime allows) and the request's devices. Privileged: every host device, all allowed.
pub(crate) fn devices(
    requested: &[Device],
    privileged: bool,
    host: &HostFacts,
) -> Result<DevicePlan, SpecError> {
    let mut plan = DevicePlan::default();
    for (i, device) in requested.iter().enumerate() {
        let access = permissions(device, i)?;
        for node in request_devices(device, i)? {
            plan.rules.push(allow(
                Some(node.typ()),
                Some(node.major()),
                Some(node.minor()),
                &access,
            ));
            plan.devices.push(node);
        }
    }
    if privileged {
        let mut taken: Vec<PathBuf> = plan.devices.iter().map(|d| d.path().clone()).collect();
        for node in host_devices(&host.dev_dir)? {
            if !taken.contains(node.path()) {
                taken.push(node.path().clone());
                plan.devices.push(node);
            }
        }
        plan.rules = vec![allow(None, None, None, RWM)];
    } else {
        let mut rules = vec![rule(false, None, None, None, RWM)];
        rules.extend(default_rules());
        rules.append(&mut plan.rules);
        plan.rules = rules;
    }
    Ok(plan)
}

/// runc's always-allowed devices: mknod of anything, and the standard character devices.
fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let chars: &[(i64, Option<i64>)] = &[
        (1, Some(3)), // /dev/null
        (1, Some(8)), // /dev/random
        (1, Some(7)), // /dev/full
        (5, Some(0)), // /dev/tty
        (1, Some(5)), // /dev/zero
        (1, Some(9)), // /dev/urandom
        (5, Some(1)), // /dev/console
        (136, None),  // /dev/pts/*
        (5, Some(2)), // /dev/ptmx
    ];
    let mut rules = vec![
        allow(Some(C), None, None, "m"),
        allow(Some(B), None, None, "m"),
    ];
    rules.extend(
        chars
            .iter()
            .map(|(major, minor)| allow(Some(C), Some(*major), *minor, RWM)),
    );
    rules
}

fn allow(
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    rule(true, typ, major, minor, access)
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// The cgroup permissions of a requested device: letters from `rwm`, `rwm` when empty.
fn permissions(device: &Device, i: usize) -> Result<String, SpecError> {
    if device.permissions.is_empty() {
        return Ok(RWM.to_string());
    }
    if device.permissions.chars().all(|c| RWM.contains(c)) {
        Ok(device.permissions.clone())
    } else {
        Err(SpecError::invalid(
            format!("devices[{i}].permissions"),
            format!("{:?} is not made of r, w and m", device.permissions),
        ))
    }
}

/// The nodes for one requested device: the device itself, or every device below a directory
/// (like `/dev/snd`), with the container path following the host layout.
fn request_devices(device: &Device, i: usize) -> Result<Vec<LinuxDevice>, SpecError> {
    let field = format!("devices[{i}].host_path");
    let resolved = std::fs::canonicalize(&device.host_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpecError::NotFound {
            field: field.clone(),
            path: device.host_path.clone().into(),
        },
        _ => SpecError::Io {
            what: "resolving the device",
            path: device.host_path.clone().into(),
            source: e,
        },
    })?;
    let container_path = if device.container_path.is_empty() {
        &device.host_path
    } else {
        &device.container_path
    };
    if !container_path.starts_with('/') {
        return Err(SpecError::invalid(
            format!("devices[{i}].container_path"),
            format!("{container_path:?} is not an absolute path"),
        ));
    }
    if resolved.is_dir() {
        return walk_devices(&resolved, Path::new(container_path), Walk::Request);
    }
    device_node(&resolved, Path::new(container_path))
        .map_err(|e| SpecError::Io {
            what: "reading the device",
            path: resolved.clone(),
            source: e,
        })?
        .map(|d| vec![d])
        .ok_or_else(|| SpecError::invalid(field, format!("{} is not a device", device.host_path)))
}

/// Every device on the host, for a privileged container.
fn host_devices(dev_dir: &Path) -> Result<Vec<LinuxDevice>, SpecError> {
    walk_devices(dev_dir, dev_dir, Walk::Host)
}

/// Whose devices a walk collects: the host's `/dev` skips what containers must not share.
#[derive(Clone, Copy, PartialEq)]
enum Walk {
    Request,
    Host,
}

/// Device nodes below `dir` (symlinks are not followed), mapped to the same relative paths
/// below `container_dir`.
fn walk_devices(
    dir: &Path,
    container_dir: &Path,
    walk: Walk,
) -> Result<Vec<LinuxDevice>, SpecError> {
    let io = |source| SpecError::Io {
        what: "listing devices",
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let kind = entry.file_type().map_err(io)?;
        let skipped = |list: &[&str]| walk == Walk::Host && list.contains(&name_str.as_ref());
        if kind.is_dir() {
            if !skipped(HOST_DEV_SKIP_DIRS) {
                found.extend(walk_devices(
                    &entry.path(),
                    &container_dir.join(&name),
                    walk,
                )?);
            }
            continue;
        }
        if skipped(HOST_DEV_SKIP_FILES) {
            continue;
        }
        // Nodes vanish while we walk (hotplug); that is not an error.
        if let Ok(Some(node)) = device_node(&entry.path(), &container_dir.join(&name)) {
            found.push(node);
        }
    }
    Ok(found)
}

/// The OCI device for the node at `host` (not following a final symlink), or `None` if it is
/// not a device.
fn device_node(host: &Path, container: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(host)?;
    let kind = meta.file_type();
    let typ = if kind.is_char_device() {
        LinuxDeviceType::C
    } else if kind.is_block_device() {
        LinuxDeviceType::B
    } else if kind.is_fifo() {
        LinuxDeviceType::P
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(container.to_path_buf())
        .set_typ(typ)
        .set_major(nix::sys::stat::major(rdev) as i64)
        .set_minor(nix::sys::stat::minor(rdev) as i64)
        .set_file_mode(Some(meta.mode() & !libc::S_IFMT))
        .set_uid(Some(meta.uid()))
        .set_gid(Some(meta.gid()));
    Ok(Some(d))
}

/// cgroup limits from the request, in containerd's way: zero means "not set"; a memory limit
/// without a swap limit also caps swap (no swapping by default) where swap is accounted.
pub(crate) fn resources(
    requested: Option<&LinuxContainerResources>,
    device_rules: Vec<LinuxDeviceCgroup>,
    host: &HostFacts,
) -> LinuxResources {
    let mut out = LinuxResources::default();
    out.set_devices(Some(device_rules));
    let Some(r) = requested else {
        return out;
    };
    if let Some(cpu) = cpu(r) {
        out.set_cpu(Some(cpu));
    }
    if let Some(memory) = memory(r, host.swap_accounting) {
        out.set_memory(Some(memory));
    }
    if !r.hugepage_limits.is_empty() {
        if host.hugetlb {
            out.set_hugepage_limits(Some(
                r.hugepage_limits
                    .iter()
                    .map(|h| {
                        let mut l = LinuxHugepageLimit::default();
                        l.set_page_size(h.page_size.clone())
                            .set_limit(h.limit as i64);
                        l
                    })
                    .collect(),
            ));
        } else {
            tracing::warn!(
                "hugepage limits requested but the hugetlb cgroup controller is missing; ignoring them"
            );
        }
    }
    if !r.unified.is_empty() {
        out.set_unified(Some(
            r.unified
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ));
    }
    out
}

fn cpu(r: &LinuxContainerResources) -> Option<LinuxCpu> {
    let mut cpu = LinuxCpu::default();
    let mut set = false;
    if r.cpu_period != 0 {
        cpu.set_period(Some(r.cpu_period as u64));
        set = true;
    }
    if r.cpu_quota != 0 {
        cpu.set_quota(Some(r.cpu_quota));
        set = true;
    }
    if r.cpu_shares != 0 {
        cpu.set_shares(Some(r.cpu_shares as u64));
        set = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(r.cpuset_cpus.clone()));
        set = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.set_mems(Some(r.cpuset_mems.clone()));
        set = true;
    }
    set.then_some(cpu)
}

fn memory(r: &LinuxContainerResources, swap_accounting: bool) -> Option<LinuxMemory> {
    let mut memory = LinuxMemory::default();
    let limit = r.memory_limit_in_bytes;
    let swap = r.memory_swap_limit_in_bytes;
    if limit != 0 {
        memory.set_limit(Some(limit));
    }
    if swap_accounting {
        if swap != 0 {
            memory.set_swap(Some(swap));
        } else if limit != 0 {
            memory.set_swap(Some(limit));
        }
    }
    (limit != 0 || memory.swap().is_some()).then_some(memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::HugepageLimit;
    use crate::tests_support::host_facts;

    fn host(dev_dir: &Path) -> HostFacts {
        HostFacts {
            dev_dir: dev_dir.to_path_buf(),
            ..host_facts()
        }
    }

    fn rule_text(r: &LinuxDeviceCgroup) -> String {
        format!("{}{}", if r.allow() { "allow " } else { "deny " }, r)
    }

    #[test]
    fn dev_null_lookup() {
        let dev = Device {
            host_path: "/dev/null".into(),
            container_path: "/dev/mynull".into(),
            permissions: "rw".into(),
        };
        let plan = devices(&[dev], false, &host(Path::new("/dev"))).unwrap();
        assert_eq!(plan.devices.len(), 1);
        let d = &plan.devices[0];
        assert_eq!(
            (d.path().as_path(), d.typ(), d.major(), d.minor()),
            (Path::new("/dev/mynull"), LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(d.file_mode(), Some(0o666));
        let rules: Vec<String> = plan.rules.iter().map(rule_text).collect();
        assert_eq!(rules.first().unwrap(), "deny a *:* rwm");
        assert_eq!(rules.last().unwrap(), "allow c 1:3 rw");
        assert!(rules.contains(&"allow c 136:* rwm".to_string()));
        assert!(rules.contains(&"allow b *:* m".to_string()));
    }

    #[test]
    fn device_errors() {
        let h = host(Path::new("/dev"));
        let missing = Device {
            host_path: "/dev/does-not-exist".into(),
            ..Default::default()
        };
        let err = devices(&[missing], false, &h).unwrap_err();
        assert!(
            matches!(&err, SpecError::NotFound { field, .. } if field == "devices[0].host_path"),
            "{err}"
        );
        let file = Device {
            host_path: "/proc/self/status".into(),
            container_path: "/x".into(),
            ..Default::default()
        };
        assert!(matches!(
            devices(&[file], false, &h),
            Err(SpecError::Invalid { .. })
        ));
        let perms = Device {
            host_path: "/dev/null".into(),
            permissions: "rwx".into(),
            ..Default::default()
        };
        let err = devices(&[perms], false, &h).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "devices[0].permissions")
        );
    }

    #[test]
    fn privileged_gets_host_devices() {
        let plan = devices(&[], true, &host(Path::new("/dev"))).unwrap();
        assert_eq!(plan.rules.len(), 1);
        assert_eq!(rule_text(&plan.rules[0]), "allow a *:* rwm");
        let paths: Vec<_> = plan
            .devices
            .iter()
            .map(|d| d.path().display().to_string())
            .collect();
        assert!(paths.contains(&"/dev/null".to_string()), "{paths:?}");
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("/dev/pts/") || p == "/dev/console"),
            "{paths:?}"
        );
    }

    #[test]
    fn directory_of_devices() {
        // A fake /dev with a device dir and a skipped dir.
        let dir = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            nix::sys::stat::mknod(
                &dir.path().join(p),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o660),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap()
        };
        std::fs::create_dir_all(dir.path().join("snd")).unwrap();
        std::fs::create_dir_all(dir.path().join("pts")).unwrap();
        mk("snd/pcm");
        mk("pts/0");
        mk("console");
        std::fs::write(dir.path().join("snd/readme"), "").unwrap();
        let req = Device {
            host_path: dir.path().join("snd").display().to_string(),
            container_path: "/dev/snd".into(),
            permissions: "rwm".into(),
        };
        let plan = devices(&[req], false, &host(dir.path())).unwrap();
        assert_eq!(plan.devices.len(), 1);
        assert_eq!(plan.devices[0].path(), Path::new("/dev/snd/pcm"));
        let privileged = devices(&[], true, &host(dir.path())).unwrap();
        let paths: Vec<_> = privileged
            .devices
            .iter()
            .map(|d| d.path().display().to_string())
            .collect();
        let snd = dir.path().join("snd/pcm").display().to_string();
        assert_eq!(paths, vec![snd]);
    }

    #[test]
    fn limits() {
        let h = host(Path::new("/dev"));
        let r = LinuxContainerResources {
            cpu_period: 100000,
            cpu_quota: 50000,
            cpu_shares: 512,
            memory_limit_in_bytes: 15 << 20,
            cpuset_cpus: "0-1".into(),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 1 << 21,
            }],
            unified: [("memory.high".to_string(), "1000000".to_string())].into(),
            ..Default::default()
        };
        let out = resources(Some(&r), vec![], &h);
        let cpu = out.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.period(), cpu.quota(), cpu.shares()),
            (Some(100000), Some(50000), Some(512))
        );
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
        let mem = out.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(15 << 20), Some(15 << 20)));
        // No hugetlb controller on this host: the limits are dropped, not failed.
        assert!(out.hugepage_limits().is_none());
        assert_eq!(out.unified().as_ref().unwrap()["memory.high"], "1000000");

        let mut h2 = h.clone();
        h2.swap_accounting = false;
        h2.hugetlb = true;
        let out = resources(
            Some(&LinuxContainerResources {
                memory_swap_limit_in_bytes: 5,
                ..r.clone()
            }),
            vec![],
            &h2,
        );
        assert_eq!(out.memory().as_ref().unwrap().swap(), None);
        assert_eq!(
            out.hugepage_limits().as_ref().unwrap()[0].page_size(),
            "2MB"
        );
        let out = resources(Some(&LinuxContainerResources::default()), vec![], &h);
        assert!(out.cpu().is_none() && out.memory().is_none());
    }
}
