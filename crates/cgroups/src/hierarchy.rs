//! Which cgroup hierarchies this host has, where each controller lives, and where this process
//! sits in them.

use std::path::{Path, PathBuf};

use crate::controller::Controller;
use crate::fs::{self, FsError};
use crate::mountinfo::{self, CgroupMount, MountKind, OwnCgroups};
use crate::path::{CgroupPath, PathError};

/// Where the kernel lists this process's mounts.
const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";
/// Where the kernel lists this process's cgroups.
const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";
/// Controllers available in a v2 cgroup.
pub(crate) const CGROUP_CONTROLLERS: &str = "cgroup.controllers";
/// The usual mount points of the unified hierarchy, best first.
const UNIFIED_MOUNT_POINTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// The cgroup interface a controller is driven through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1 files (`memory.limit_in_bytes`, `cpu.shares`...).
    V1,
    /// cgroup v2 files (`memory.max`, `cpu.weight`...).
    V2,
}

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies for most controllers plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) that may carry controllers v1 does not.
    Hybrid,
    /// Only the unified v2 hierarchy.
    Unified,
}

/// Why the hierarchy could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    /// `/proc/self/mountinfo`, `/proc/self/cgroup` or `cgroup.controllers` was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// No cgroup file system is mounted.
    #[error("no cgroup or cgroup2 file system is mounted (see {PROC_SELF_MOUNTINFO})")]
    NoCgroupMounts,
    /// A mount root or our own cgroup path is not a valid cgroup path.
    #[error("invalid cgroup path from the kernel: {0}")]
    BadPath(#[from] PathError),
    /// A cgroup path lies outside what a mount shows (e.g. above a cgroup namespace's root).
    #[error("cgroup {path} is outside the {mount_root} cgroup mounted at {}", mount_point.display())]
    OutsideMount {
        /// The cgroup path.
        path: CgroupPath,
        /// The cgroup the mount shows.
        mount_root: CgroupPath,
        /// Where it is mounted.
        mount_point: PathBuf,
    },
    /// This process's cgroups in two hierarchies are not on one line of descent, so no single
    /// path is below both.
    #[error("this process's cgroups {first} and {second} are not nested in one another")]
    SplitSelf {
        /// One of our cgroups.
        first: CgroupPath,
        /// Another, in a different hierarchy.
        second: CgroupPath,
    },
}

/// A mounted hierarchy: its mount point and which of its cgroups the mount shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub dir: PathBuf,
    pub root: CgroupPath,
}

impl Mount {
    /// The directory of cgroup `path` under this mount.
    pub fn dir_of(&self, path: &CgroupPath) -> Result<PathBuf, HierarchyError> {
        let relative =
            path.strip_prefix(&self.root)
                .ok_or_else(|| HierarchyError::OutsideMount {
                    path: path.clone(),
                    mount_root: self.root.clone(),
                    mount_point: self.dir.clone(),
                })?;
        Ok(if relative.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(relative)
        })
    }
}

/// A v1 hierarchy: the controllers mounted together and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Hierarchy {
    pub controllers: Vec<Controller>,
    pub mount: Mount,
    /// Our own cgroup in it.
    pub own: Option<CgroupPath>,
}

/// The unified hierarchy and the controllers it offers at its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnifiedHierarchy {
    pub controllers: Vec<Controller>,
    pub mount: Mount,
    /// Our own cgroup in it.
    pub own: Option<CgroupPath>,
}

/// The host's cgroup hierarchies, as found at [`Hierarchy::detect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    mode: Mode,
    v1: Vec<V1Hierarchy>,
    unified: Option<UnifiedHierarchy>,
    /// The v1 `name=systemd` hierarchy (no controllers; runc and systemd make cgroups there).
    named_systemd: Option<PathBuf>,
}

impl Hierarchy {
    /// Read `/proc/self/mountinfo` and `/proc/self/cgroup` and find every controller.
    pub fn detect() -> Result<Hierarchy, HierarchyError> {
        let mountinfo = fs::read(Path::new(PROC_SELF_MOUNTINFO))?;
        let own = fs::read(Path::new(PROC_SELF_CGROUP))?;
        Hierarchy::from_parts(&mountinfo, &own, |dir| {
            fs::read(&dir.join(CGROUP_CONTROLLERS))
        })
    }

    /// Build from the text of mountinfo and `/proc/self/cgroup`; `read_controllers` returns the
    /// `cgroup.controllers` text of a cgroup2 mount's directory.
    pub(crate) fn from_parts(
        mountinfo: &str,
        own_text: &str,
        read_controllers: impl Fn(&Path) -> Result<String, FsError>,
    ) -> Result<Hierarchy, HierarchyError> {
        let mounts = mountinfo::cgroup_mounts(mountinfo);
        let own = mountinfo::own_cgroups(own_text);
        let v1 = v1_hierarchies(&mounts, &own)?;
        let unified = match pick_unified(&mounts) {
            Some(m) => {
                let mount = Mount {
                    dir: m.mount_point.clone(),
                    root: CgroupPath::new(&m.root)?,
                };
                let text = read_controllers(&mount.dir)?;
                let controllers = text.split_whitespace().filter_map(Controller::from_name);
                Some(UnifiedHierarchy {
                    controllers: controllers.collect(),
                    mount,
                    own: own.unified.as_deref().map(own_path).transpose()?,
                })
            }
            None => None,
        };
        let mode = match (v1.is_empty(), unified.is_some()) {
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::Legacy,
            (true, true) => Mode::Unified,
            (true, false) => return Err(HierarchyError::NoCgroupMounts),
        };
        tracing::debug!(?mode, v1 = v1.len(), "cgroup hierarchy detected");
        let named_systemd = (mode != Mode::Unified)
            .then(|| named_systemd_mount(mountinfo))
            .flatten();
        Ok(Hierarchy {
            mode,
            v1,
            unified,
            named_systemd,
        })
    }

    /// The interface resources are driven through: V2 only on a pure v2 host. A hybrid host acts
    /// as V1, except for controllers that exist only on its cgroup2 mount (see
    /// [`controller_version`](Self::controller_version)).
    pub fn version(&self) -> Version {
        match self.mode {
            Mode::Unified => Version::V2,
            Mode::Legacy | Mode::Hybrid => Version::V1,
        }
    }

    /// The directory of `path` in the v1 `name=systemd` hierarchy, on v1 and hybrid hosts that
    /// mount one. External runtimes (runc) make a container's cgroup there too, with any
    /// missing parents; whoever owns those parents removes them.
    pub fn named_systemd_dir(&self, path: &CgroupPath) -> Option<PathBuf> {
        let mount = self.named_systemd.as_ref()?;
        Some(mount.join(path.relative()))
    }

    /// How the host mounts its cgroups.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Through which interface `controller` is available, or `None` if it is not mounted.
    pub fn controller_version(&self, controller: Controller) -> Option<Version> {
        if self.v1_hierarchy(controller).is_some() {
            return Some(Version::V1);
        }
        let unified = self.unified.as_ref()?;
        unified
            .controllers
            .contains(&controller)
            .then_some(Version::V2)
    }

    /// The deepest cgroup path that lies at or below this process's own cgroup in every
    /// hierarchy. Creating cgroups only under it touches no one else's cgroups, and one absolute
    /// path then works in every v1 hierarchy.
    pub fn self_root(&self) -> Result<CgroupPath, HierarchyError> {
        let owns = self
            .v1
            .iter()
            .filter_map(|h| h.own.as_ref())
            .chain(self.unified.as_ref().and_then(|u| u.own.as_ref()));
        let mut deepest = CgroupPath::root();
        let mut all = Vec::new();
        for own in owns {
            if own.components().count() > deepest.components().count() {
                deepest = own.clone();
            }
            all.push(own);
        }
        for own in all {
            if !own.is_ancestor_or_self_of(&deepest) {
                return Err(HierarchyError::SplitSelf {
                    first: own.clone(),
                    second: deepest,
                });
            }
        }
        Ok(deepest)
    }

    pub(crate) fn v1(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    pub(crate) fn unified(&self) -> Option<&UnifiedHierarchy> {
        self.unified.as_ref()
    }

    fn v1_hierarchy(&self, controller: Controller) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.controllers.contains(&controller))
    }
}

/// One entry per distinct v1 hierarchy; a second mount of the same controllers is ignored.
fn v1_hierarchies(
    mounts: &[CgroupMount],
    own: &OwnCgroups,
) -> Result<Vec<V1Hierarchy>, HierarchyError> {
    let mut out: Vec<V1Hierarchy> = Vec::new();
    for m in mounts {
        let MountKind::V1(controllers) = &m.kind else {
            continue;
        };
        let seen = out
            .iter()
            .any(|h| controllers.iter().all(|c| h.controllers.contains(c)));
        if seen {
            continue;
        }
        let mine = controllers.first().and_then(|c| own.v1_path(*c));
        out.push(V1Hierarchy {
            controllers: controllers.clone(),
            mount: Mount {
                dir: m.mount_point.clone(),
                root: CgroupPath::new(&m.root)?,
            },
            own: mine.map(own_path).transpose()?,
        });
    }
    Ok(out)
}

/// Our path from `/proc/self/cgroup`; the kernel appends " (deleted)" for a removed cgroup.
fn own_path(path: &str) -> Result<CgroupPath, HierarchyError> {
    Ok(CgroupPath::new(path.trim_end_matches(" (deleted)"))?)
}

fn pick_unified(mounts: &[CgroupMount]) -> Option<&CgroupMount> {
    let v2 = || mounts.iter().filter(|m| m.kind == MountKind::V2);
    UNIFIED_MOUNT_POINTS
        .iter()
        .find_map(|want| v2().find(|m| m.mount_point == Path::new(want)))
        .or_else(|| v2().next())
}

/// Where the v1 `name=systemd` hierarchy is mounted (mounted at its root), if it is.
fn named_systemd_mount(mountinfo: &str) -> Option<PathBuf> {
    longshore_mountinfo::parse(mountinfo)
        .into_iter()
        .find(|m| {
            m.fs_type == "cgroup"
                && m.root == "/"
                && m.super_options.split(',').any(|o| o == "name=systemd")
        })
        .map(|m| m.mount_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/45bf\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    fn controllers(list: &'static str) -> impl Fn(&Path) -> Result<String, FsError> {
        move |_| Ok(list.to_string())
    }

    #[test]
    fn hybrid_host() {
        let h =
            Hierarchy::from_parts(HYBRID_MOUNTS, HYBRID_SELF, controllers("hugetlb\n")).unwrap();
        assert_eq!(h.mode(), Mode::Hybrid);
        assert_eq!(h.version(), Version::V1);
        assert_eq!(h.controller_version(Controller::Memory), Some(Version::V1));
        assert_eq!(h.controller_version(Controller::Hugetlb), Some(Version::V2));
        assert_eq!(h.controller_version(Controller::Rdma), None);
        assert_eq!(h.self_root().unwrap().as_str(), "/process_api/45bf");
        assert_eq!(h.v1().len(), 4);
        let unified = h.unified().unwrap();
        assert_eq!(unified.mount.dir, PathBuf::from("/sys/fs/cgroup/unified"));
        let pod = CgroupPath::new("/longshore/pod-1").unwrap();
        assert_eq!(
            h.named_systemd_dir(&pod),
            Some(PathBuf::from("/sys/fs/cgroup/systemd/longshore/pod-1"))
        );
    }

    #[test]
    fn pure_v2_host() {
        let mounts = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let own = "0::/system.slice/longshore.service\n";
        let h =
            Hierarchy::from_parts(mounts, own, controllers("cpuset cpu io memory pids\n")).unwrap();
        assert_eq!(h.mode(), Mode::Unified);
        assert_eq!(h.version(), Version::V2);
        assert_eq!(h.controller_version(Controller::Cpu), Some(Version::V2));
        assert_eq!(h.controller_version(Controller::Hugetlb), None);
        assert_eq!(h.named_systemd_dir(&CgroupPath::new("/a").unwrap()), None);
        assert_eq!(
            h.self_root().unwrap().as_str(),
            "/system.slice/longshore.service"
        );
    }

    #[test]
    fn legacy_host_with_shared_mount_and_duplicates() {
        let mounts = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 31 0:29 / /mnt/again rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let own = "3:memory:/a\n2:cpu,cpuacct:/a/b\n";
        let h = Hierarchy::from_parts(mounts, own, controllers("")).unwrap();
        assert_eq!(h.mode(), Mode::Legacy);
        assert_eq!(
            h.v1().len(),
            2,
            "the second cpu,cpuacct mount is a duplicate"
        );
        assert_eq!(h.self_root().unwrap().as_str(), "/a/b");
    }

    #[test]
    fn split_own_cgroups_are_refused() {
        let mounts = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let h = Hierarchy::from_parts(mounts, "2:memory:/a\n1:cpu:/b\n", controllers("")).unwrap();
        assert!(matches!(
            h.self_root(),
            Err(HierarchyError::SplitSelf { .. })
        ));
    }

    #[test]
    fn no_mounts_is_an_error() {
        let got =
            Hierarchy::from_parts("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", "", controllers(""));
        assert!(matches!(got, Err(HierarchyError::NoCgroupMounts)));
    }

    #[test]
    fn mount_dir_of_respects_the_mount_root() {
        let m = Mount {
            dir: PathBuf::from("/sys/fs/cgroup/memory"),
            root: CgroupPath::new("/docker/abc").unwrap(),
        };
        let inside = CgroupPath::new("/docker/abc/x").unwrap();
        assert_eq!(
            m.dir_of(&inside).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/x")
        );
        let root = CgroupPath::new("/docker/abc").unwrap();
        assert_eq!(
            m.dir_of(&root).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert!(m.dir_of(&CgroupPath::new("/other").unwrap()).is_err());
    }
}
