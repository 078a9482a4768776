//! Where each hierarchy is mounted (from `/proc/self/mountinfo`, parsed by crates/mountinfo) and
//! which cgroup this process is in, per hierarchy (`/proc/self/cgroup`).

use std::path::PathBuf;

use crate::controller::Controller;

/// File system type of a v1 hierarchy.
const FSTYPE_V1: &str = "cgroup";
/// File system type of the unified hierarchy.
const FSTYPE_V2: &str = "cgroup2";

/// A cgroup file system mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// v1 (with the controllers it carries) or v2.
    pub kind: MountKind,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (`/` unless bind-mounted or namespaced).
    pub root: String,
}

/// The kind of a cgroup mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A v1 hierarchy and its controllers.
    V1(Vec<Controller>),
    /// The unified hierarchy.
    V2,
}

/// The cgroup and cgroup2 mounts in a mountinfo text, in order. v1 mounts that carry no known
/// controller (`name=systemd`) are left out.
pub(crate) fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    longshore_mountinfo::parse(mountinfo)
        .into_iter()
        .filter_map(cgroup_mount)
        .collect()
}

fn cgroup_mount(m: longshore_mountinfo::MountInfo) -> Option<CgroupMount> {
    let kind = match m.fs_type.as_str() {
        FSTYPE_V2 => MountKind::V2,
        FSTYPE_V1 => {
            let controllers: Vec<Controller> = m
                .super_options
                .split(',')
                .filter_map(Controller::from_name)
                .collect();
            if controllers.is_empty() {
                return None;
            }
            MountKind::V1(controllers)
        }
        _ => return None,
    };
    Some(CgroupMount {
        kind,
        mount_point: m.mount_point,
        root: m.root,
    })
}

/// This process's cgroups, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnCgroups {
    /// Per v1 hierarchy: its controllers and our path in it.
    pub v1: Vec<(Vec<Controller>, String)>,
    /// Our path in the unified hierarchy (the `0::` line).
    pub unified: Option<String>,
}

impl OwnCgroups {
    /// Our path in the v1 hierarchy carrying `controller`.
    pub fn v1_path(&self, controller: Controller) -> Option<&str> {
        self.v1
            .iter()
            .find(|(cs, _)| cs.contains(&controller))
            .map(|(_, p)| p.as_str())
    }
}

/// Parse `/proc/self/cgroup` (`<hierarchy id>:<controllers>:<path>` per line).
pub(crate) fn own_cgroups(text: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(list), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if id == "0" && list.is_empty() {
            own.unified = Some(path.to_string());
            continue;
        }
        let controllers: Vec<Controller> =
            list.split(',').filter_map(Controller::from_name).collect();
        if !controllers.is_empty() {
            own.v1.push((controllers, path.to_string()));
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mountinfo of this project's hybrid development host.
    pub(crate) const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_v1_and_v2_mounts() {
        let mounts = cgroup_mounts(HYBRID);
        assert_eq!(mounts.len(), 5, "tmpfs and name=systemd are skipped");
        assert_eq!(mounts[0].kind, MountKind::V1(vec![Controller::Cpu]));
        assert_eq!(mounts[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(mounts[0].root, "/");
        assert_eq!(mounts[4].kind, MountKind::V2);
        assert_eq!(
            mounts[4].mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn combined_controllers_optional_fields_and_escapes() {
        let text = "25 20 0:22 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:2 - cgroup cgroup rw,cpu,cpuacct\n\
                    26 20 0:23 / /mnt/my\\040cgroup rw - cgroup2 none rw,nsdelegate\n";
        let mounts = cgroup_mounts(text);
        assert_eq!(
            mounts[0].kind,
            MountKind::V1(vec![Controller::Cpu, Controller::Cpuacct])
        );
        assert_eq!(mounts[0].root, "/docker/abc");
        assert_eq!(mounts[1].mount_point, PathBuf::from("/mnt/my cgroup"));
    }

    #[test]
    fn own_cgroups_per_hierarchy() {
        let text = "9:name=systemd:/\n4:memory:/process_api/45bf\n2:cpu,cpuacct:/\n0::/\n";
        let own = own_cgroups(text);
        assert_eq!(own.unified.as_deref(), Some("/"));
        assert_eq!(own.v1_path(Controller::Memory), Some("/process_api/45bf"));
        assert_eq!(own.v1_path(Controller::Cpuacct), Some("/"));
        assert_eq!(own.v1_path(Controller::Pids), None);
        assert_eq!(own.v1.len(), 2, "name=systemd is not a controller");
        let v2 = own_cgroups("0::/user.slice/session-1.scope\n");
        assert_eq!(v2.unified.as_deref(), Some("/user.slice/session-1.scope"));
        assert!(v2.v1.is_empty());
    }
}
