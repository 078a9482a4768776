//! The container's mounts, following containerd: the default system mounts (`/proc`, a `/dev`
//! tmpfs, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`, `/sys/fs/cgroup`), the pod's
//! `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` and `/dev/shm`, and the request's bind mounts,
//! those two groups sorted by destination depth. Image `VOLUME`s become directories in the rootfs.

use std::io;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::api::{Mount as CriMount, MountPropagation};

use super::namespaces::id_mapping;
use super::rootfs::Rootfs;
use super::{HostFacts, PodContext, SpecError};

const ETC_HOSTNAME: &str = "/etc/hostname";
const ETC_HOSTS: &str = "/etc/hosts";
const ETC_RESOLV_CONF: &str = "/etc/resolv.conf";
const DEV_SHM: &str = "/dev/shm";
const DEV: &str = "/dev";
const SYS: &str = "/sys";
const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

/// What the mount section of the spec needs to know about the container.
pub(crate) struct MountContext<'a> {
    pub(crate) mounts: &'a [CriMount],
    pub(crate) pod: &'a PodContext,
    pub(crate) privileged: bool,
    pub(crate) readonly_rootfs: bool,
    /// The container gets its own cgroup namespace.
    pub(crate) cgroupns: bool,
    /// The container gets a user namespace.
    pub(crate) userns: bool,
    pub(crate) host: &'a HostFacts,
    /// The container's cgroup (absolute in the hierarchy), for the v1 `/sys/fs/cgroup` binds.
    pub(crate) cgroups_path: &'a str,
}

/// The mounts plus the rootfs propagation the bind mounts require.
#[derive(Debug)]
pub(crate) struct MountPlan {
    pub(crate) mounts: Vec<Mount>,
    /// `rshared` / `rslave` when a bind mount propagates; `None` keeps the runtime's `rprivate`.
    pub(crate) rootfs_propagation: Option<String>,
}

/// One bind mount to make, from the request or from the pod.
struct Bind {
    field: String,
    destination: PathBuf,
    source: PathBuf,
    readonly: bool,
    recursive_read_only: bool,
    propagation: MountPropagation,
    uid_mappings: Vec<LinuxIdMapping>,
    gid_mappings: Vec<LinuxIdMapping>,
}

/// Builds the mount list.
pub(crate) fn plan(ctx: &MountContext<'_>) -> Result<MountPlan, SpecError> {
    let mut binds = Vec::with_capacity(ctx.mounts.len() + 4);
    for (i, m) in ctx.mounts.iter().enumerate() {
        binds.push(request_bind(i, m)?);
    }
    binds.extend(pod_binds(ctx, &binds));
    // Fewer path components first, so a mount never hides one below it; stable, so the
    // request's order wins among equals (containerd's orderedMounts).
    binds.sort_by_key(|b| depth(&b.destination));

    // The mount table is only needed to check propagating binds; most containers have none.
    let propagating = binds
        .iter()
        .any(|b| b.propagation != MountPropagation::PropagationPrivate);
    let entries = if propagating {
        mount_table(&ctx.host.mountinfo)?
    } else {
        Vec::new()
    };
    let mut rootfs_propagation = None;
    let mut mounts: Vec<Mount> = defaults(ctx)
        .into_iter()
        .filter(|m| !overridden(m.destination(), &binds))
        .collect();
    for bind in &binds {
        mounts.push(bind_mount(bind, &entries, &mut rootfs_propagation)?);
    }
    Ok(MountPlan {
        mounts,
        rootfs_propagation,
    })
}

/// A request mount, validated; the host path must exist (symlinks are followed, as the CRI asks).
fn request_bind(i: usize, m: &CriMount) -> Result<Bind, SpecError> {
    let field = format!("mounts[{i}]");
    if m.image.as_ref().is_some_and(|img| !img.image.is_empty()) {
        return Err(SpecError::invalid(
            format!("{field}.image"),
            "image volume mounts must be resolved to a host_path before the spec is built",
        ));
    }
    if !m.container_path.starts_with('/') {
        return Err(SpecError::invalid(
            format!("{field}.container_path"),
            format!("{:?} is not an absolute path", m.container_path),
        ));
    }
    if m.host_path.is_empty() {
        return Err(SpecError::invalid(
            format!("{field}.host_path"),
            "empty host path",
        ));
    }
    let source = std::fs::canonicalize(&m.host_path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SpecError::NotFound {
            field: format!("{field}.host_path"),
            path: m.host_path.clone().into(),
        },
        _ => SpecError::Io {
            what: "resolving the mount source",
            path: m.host_path.clone().into(),
            source: e,
        },
    })?;
    Ok(Bind {
        field,
        destination: clean(Path::new(&m.container_path)),
        source,
        readonly: m.readonly,
        recursive_read_only: m.recursive_read_only,
        propagation: m.propagation(),
        uid_mappings: m
            .uid_mappings
            .iter()
            .map(id_mapping)
            .collect::<Result<_, _>>()?,
        gid_mappings: m
            .gid_mappings
            .iter()
            .map(id_mapping)
            .collect::<Result<_, _>>()?,
    })
}

/// The pod's files and `/dev/shm`, unless the request mounts those paths itself. A pod file that
/// does not exist is skipped, as containerd does.
fn pod_binds(ctx: &MountContext<'_>, requested: &[Bind]) -> Vec<Bind> {
    let pod = ctx.pod;
    // With the host's IPC namespace the container shares the host's /dev/shm too.
    let shm = if pod.ipcns.is_none() {
        Some(PathBuf::from(DEV_SHM))
    } else {
        pod.shm.clone()
    };
    let files = [
        (ETC_HOSTNAME, pod.hostname_file.clone(), ctx.readonly_rootfs),
        (ETC_HOSTS, pod.hosts_file.clone(), ctx.readonly_rootfs),
        (
            ETC_RESOLV_CONF,
            pod.resolv_conf.clone(),
            ctx.readonly_rootfs,
        ),
        (DEV_SHM, shm, false),
    ];
    files
        .into_iter()
        .filter(|(dst, _, _)| !requested.iter().any(|b| b.destination == Path::new(dst)))
        .filter_map(|(dst, src, readonly)| {
            let source = src?;
            source.exists().then(|| Bind {
                field: format!("pod {dst}"),
                destination: PathBuf::from(dst),
                source,
                readonly,
                recursive_read_only: false,
                propagation: MountPropagation::PropagationPrivate,
                uid_mappings: Vec::new(),
                gid_mappings: Vec::new(),
            })
        })
        .collect()
}

/// A default mount is dropped when a bind mount takes its place, and everything under `/dev`
/// goes when `/dev` itself is bind mounted.
fn overridden(destination: &Path, binds: &[Bind]) -> bool {
    binds.iter().any(|b| b.destination == destination)
        || (destination.starts_with(DEV)
            && destination != Path::new(DEV)
            && binds.iter().any(|b| b.destination == Path::new(DEV)))
}

fn bind_mount(
    bind: &Bind,
    table: &[MountInfo],
    rootfs_propagation: &mut Option<String>,
) -> Result<Mount, SpecError> {
    let mut options = vec!["rbind".to_string()];
    match bind.propagation {
        MountPropagation::PropagationPrivate => options.push("rprivate".into()),
        MountPropagation::PropagationBidirectional => {
            require_propagation(bind, table, &["shared:"])?;
            options.push("rshared".into());
            // The OCI spec's spelling (runtimes apply it recursively); youki refuses "rshared".
            *rootfs_propagation = Some("shared".into());
        }
        MountPropagation::PropagationHostToContainer => {
            require_propagation(bind, table, &["shared:", "master:"])?;
            options.push("rslave".into());
            if rootfs_propagation.as_deref() != Some("shared") {
                *rootfs_propagation = Some("slave".into());
            }
        }
    }
    options.push(access_option(bind)?.into());
    let mut mount = Mount::default();
    mount
        .set_destination(bind.destination.clone())
        .set_typ(Some("bind".into()))
        .set_source(Some(bind.source.clone()))
        .set_options(Some(options));
    if !bind.uid_mappings.is_empty() || !bind.gid_mappings.is_empty() {
        mount
            .set_uid_mappings(Some(bind.uid_mappings.clone()))
            .set_gid_mappings(Some(bind.gid_mappings.clone()));
    }
    Ok(mount)
}

/// `ro`, `rro` (recursive read-only, which needs `ro` and private propagation) or `rw`.
fn access_option(bind: &Bind) -> Result<&'static str, SpecError> {
    match (bind.readonly, bind.recursive_read_only) {
        (true, true) if bind.propagation != MountPropagation::PropagationPrivate => {
            Err(SpecError::invalid(
                format!("{}.recursive_read_only", bind.field),
                format!(
                    "a recursive read-only mount needs private propagation, not {}",
                    bind.propagation.as_str_name()
                ),
            ))
        }
        (true, true) => Ok("rro"),
        (true, false) => Ok("ro"),
        (false, true) => Err(SpecError::invalid(
            format!("{}.recursive_read_only", bind.field),
            "a recursive read-only mount must also be readonly",
        )),
        (false, false) => Ok("rw"),
    }
}

/// Propagation only works when the source's host mount propagates; containerd refuses otherwise.
fn require_propagation(bind: &Bind, table: &[MountInfo], wanted: &[&str]) -> Result<(), SpecError> {
    let entry = containing_mount(table, &bind.source).ok_or_else(|| SpecError::Precondition {
        field: format!("{}.propagation", bind.field),
        reason: format!("no mount holds {}", bind.source.display()),
    })?;
    if entry
        .optional
        .iter()
        .any(|o| wanted.iter().any(|w| o.starts_with(w)))
    {
        return Ok(());
    }
    let kind = if wanted.len() == 1 {
        "shared"
    } else {
        "shared or slave"
    };
    Err(SpecError::Precondition {
        field: format!("{}.propagation", bind.field),
        reason: format!(
            "{} is on mount {} which is not a {kind} mount",
            bind.source.display(),
            entry.mount_point.display()
        ),
    })
}

/// The system mounts every container starts with.
fn defaults(ctx: &MountContext<'_>) -> Vec<Mount> {
    let rw = if ctx.privileged { "rw" } else { "ro" };
    let mut cgroup_options = vec!["nosuid", "noexec", "nodev", "relatime", rw];
    // Sharing the host cgroup namespace means sharing its cgroup2 superblock: keep the host's
    // delegation options or the remount strips them for everyone.
    if !ctx.cgroupns {
        cgroup_options.extend(ctx.host.cgroup2_mount_options.iter().map(String::as_str));
    }
    let mut list = vec![
        fs_mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        fs_mount(
            DEV,
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        fs_mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        fs_mount(
            DEV_SHM,
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        fs_mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    // sysfs cannot be mounted from a user namespace that does not own the network namespace;
    // containerd bind-mounts the host's read-only instead.
    if ctx.userns && ctx.pod.netns.is_none() {
        let mut sys = fs_mount(
            SYS,
            "bind",
            SYS,
            &["rbind", "rro", "nosuid", "nodev", "noexec"],
        );
        sys.set_source(Some(SYS.into()));
        list.push(sys);
    } else {
        list.push(fs_mount(
            SYS,
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", rw],
        ));
    }
    // A relative cgroups path is the runtime's to resolve: only a cgroup mount can follow it.
    if ctx.host.cgroup_v2 || !ctx.cgroups_path.starts_with('/') {
        list.push(fs_mount(SYS_FS_CGROUP, "cgroup", "cgroup", &cgroup_options));
    } else {
        list.extend(v1_cgroup_mounts(ctx, rw));
    }
    list
}

/// cgroup v1: a tmpfs at /sys/fs/cgroup with, for every hierarchy the host mounts, the
/// container's own cgroup bound at the same place (as runc lays it out). Written as plain binds
/// rather than a `cgroup` mount, because youki's libcontainer resolves a v1 `cgroup` mount through
/// the PIDs of its parent process, which breaks in a pod's shared PID namespace.
fn v1_cgroup_mounts(ctx: &MountContext<'_>, rw: &str) -> Vec<Mount> {
    let mut list = vec![fs_mount(
        SYS_FS_CGROUP,
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
    )];
    let table = mount_table(&ctx.host.mountinfo).unwrap_or_default();
    let relative = ctx.cgroups_path.trim_start_matches('/');
    // Named hierarchies (`name=systemd`) hold no controller and no container cgroup.
    let managed = |e: &&MountInfo| {
        e.fs_type == "cgroup2" || (e.fs_type == "cgroup" && !e.super_options.contains("name="))
    };
    for entry in table.iter().filter(managed) {
        let Ok(name) = entry.mount_point.strip_prefix(SYS_FS_CGROUP) else {
            continue;
        };
        if name.as_os_str().is_empty() || name.components().count() != 1 {
            continue;
        }
        let source = entry.mount_point.join(relative);
        let destination = Path::new(SYS_FS_CGROUP).join(name);
        let mut m = fs_mount(
            &destination.to_string_lossy(),
            "bind",
            &source.to_string_lossy(),
            &["rbind", "nosuid", "noexec", "nodev", rw],
        );
        m.set_source(Some(source));
        list.push(m);
    }
    list
}

fn fs_mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some(typ.into()))
        .set_source(Some(source.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// Creates the image's `VOLUME` directories in the rootfs (CRI-O's `mkdir` mode): the data
/// stays in the container's writable layer. Volumes the request mounts over are skipped.
pub(crate) fn create_image_volumes(
    rootfs: &Rootfs,
    volumes: &[String],
    mounts: &[CriMount],
) -> Result<(), SpecError> {
    for (i, volume) in volumes.iter().enumerate() {
        let destination = clean(&Path::new("/").join(volume));
        if mounts
            .iter()
            .any(|m| clean(Path::new(&m.container_path)) == destination)
        {
            continue;
        }
        rootfs
            .mkdir_all(&destination)
            .map_err(|e| SpecError::Precondition {
                field: format!("image.volumes[{i}]"),
                reason: format!(
                    "cannot create {} in {}: {e}",
                    destination.display(),
                    rootfs.path().display()
                ),
            })?;
    }
    Ok(())
}

/// Lexical cleanup like Go's `filepath.Clean` for absolute paths: no `.`, `..` or `//`.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Number of `/` in the cleaned path: `/` and `/a` are 1, `/a/b` is 2.
fn depth(path: &Path) -> usize {
    path.to_string_lossy().matches('/').count()
}

pub(crate) use longshore_mountinfo::MountInfo;

fn mount_table(path: &Path) -> Result<Vec<MountInfo>, SpecError> {
    let table = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        what: "reading the mount table",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(mountinfo_entries(&table))
}

/// Parses a mountinfo table; malformed lines are skipped.
pub(crate) fn mountinfo_entries(table: &str) -> Vec<MountInfo> {
    longshore_mountinfo::parse(table)
}

/// The mount `path` lives on: the deepest mount point above it; of several mounts on the same
/// point, the last (the one on top).
fn containing_mount<'a>(table: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    table
        .iter()
        .filter(|e| path.starts_with(&e.mount_point))
        .fold(None, |best: Option<&MountInfo>, e| match best {
            Some(b) if depth_of(&b.mount_point) > depth_of(&e.mount_point) => Some(b),
            _ => Some(e),
        })
}

fn depth_of(path: &Path) -> usize {
    path.components().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::host_facts;

    const TABLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:22 / /proc rw,nosuid - proc proc rw
30 22 0:30 / /mnt/shared rw shared:5 - tmpfs tmpfs rw
31 22 0:31 / /mnt/private rw - tmpfs tmpfs rw
32 22 0:32 / /mnt/slave rw master:5 - tmpfs tmpfs rw
33 31 0:33 / /mnt/private/with\\040space rw shared:9 - tmpfs tmpfs rw
34 22 0:34 / /sys/fs/cgroup rw,nosuid shared:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    struct Fixture {
        _dir: tempfile::TempDir,
        base: PathBuf,
        host: HostFacts,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        for d in ["vol", "data/a/b", "pod/shm"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        for f in ["pod/hostname", "pod/hosts", "pod/resolv.conf"] {
            std::fs::write(base.join(f), "x").unwrap();
        }
        // Propagation is checked against this table: the temp dir sits on "/" (shared:1).
        std::fs::write(base.join("mountinfo"), TABLE).unwrap();
        let host = HostFacts {
            cgroup_v2: true,
            cgroup2_mount_options: vec!["nsdelegate".into()],
            mountinfo: base.join("mountinfo"),
            ..host_facts()
        };
        Fixture {
            _dir: dir,
            base,
            host,
        }
    }

    fn pod(base: &Path) -> PodContext {
        PodContext {
            ipcns: Some("/run/ipc".into()),
            netns: Some("/run/net".into()),
            hostname_file: Some(base.join("pod/hostname")),
            hosts_file: Some(base.join("pod/hosts")),
            resolv_conf: Some(base.join("pod/resolv.conf")),
            shm: Some(base.join("pod/shm")),
            ..Default::default()
        }
    }

    fn cri(host: &Path, container: &str) -> CriMount {
        CriMount {
            host_path: host.display().to_string(),
            container_path: container.into(),
            ..Default::default()
        }
    }

    fn ctx<'a>(
        mounts: &'a [CriMount],
        pod: &'a PodContext,
        host: &'a HostFacts,
    ) -> MountContext<'a> {
        MountContext {
            mounts,
            pod,
            privileged: false,
            readonly_rootfs: false,
            cgroupns: false,
            userns: false,
            host,
            cgroups_path: "/kubepods/pod1/c1",
        }
    }

    fn find<'a>(plan: &'a MountPlan, dst: &str) -> Option<&'a Mount> {
        plan.mounts
            .iter()
            .find(|m| m.destination() == Path::new(dst))
    }

    fn options(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_and_pod_files() {
        let f = fixture();
        let p = pod(&f.base);
        let plan = super::plan(&ctx(&[], &p, &f.host)).unwrap();
        let dests: Vec<String> = plan
            .mounts
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/dev/shm"
            ]
        );
        let shm = find(&plan, "/dev/shm").unwrap();
        assert_eq!(
            shm.source().as_deref(),
            Some(f.base.join("pod/shm").as_path())
        );
        assert_eq!(options(shm), ["rbind", "rprivate", "rw"]);
        assert!(options(find(&plan, "/sys").unwrap()).contains(&"ro".to_string()));
        let cg = options(find(&plan, "/sys/fs/cgroup").unwrap());
        assert_eq!(
            cg,
            ["nosuid", "noexec", "nodev", "relatime", "ro", "nsdelegate"]
        );
        assert_eq!(plan.rootfs_propagation, None);
    }

    #[test]
    fn readonly_rootfs_and_privileged() {
        let f = fixture();
        let p = pod(&f.base);
        let mut c = ctx(&[], &p, &f.host);
        c.readonly_rootfs = true;
        c.privileged = true;
        c.cgroupns = true;
        let plan = super::plan(&c).unwrap();
        assert_eq!(
            options(find(&plan, "/etc/hosts").unwrap()),
            ["rbind", "rprivate", "ro"]
        );
        assert_eq!(
            options(find(&plan, "/dev/shm").unwrap()),
            ["rbind", "rprivate", "rw"]
        );
        assert!(options(find(&plan, "/sys").unwrap()).contains(&"rw".to_string()));
        assert_eq!(
            options(find(&plan, "/sys/fs/cgroup").unwrap()),
            ["nosuid", "noexec", "nodev", "relatime", "rw"]
        );
    }

    #[test]
    fn host_ipc_shares_host_shm_and_missing_pod_files_are_skipped() {
        let f = fixture();
        let p = PodContext {
            shm: None,
            ipcns: None,
            ..Default::default()
        };
        let plan = super::plan(&ctx(&[], &p, &f.host)).unwrap();
        assert_eq!(
            find(&plan, "/dev/shm").unwrap().source().as_deref(),
            Some(Path::new("/dev/shm"))
        );
        assert!(find(&plan, "/etc/hosts").is_none());
        // A private IPC namespace without a pod shm keeps the default tmpfs.
        let p = PodContext {
            ipcns: Some("/x".into()),
            ..Default::default()
        };
        let plan = super::plan(&ctx(&[], &p, &f.host)).unwrap();
        assert_eq!(
            find(&plan, "/dev/shm").unwrap().typ().as_deref(),
            Some("tmpfs")
        );
    }

    #[test]
    fn request_mounts_sorted_by_depth_and_override() {
        let f = fixture();
        let p = pod(&f.base);
        let mounts = vec![
            cri(&f.base.join("data/a/b"), "/srv/a/b"),
            cri(&f.base.join("vol"), "/etc/hosts"),
            cri(&f.base.join("data"), "/srv//x/../"),
            cri(&f.base.join("data/a"), "/srv/a"),
        ];
        let plan = super::plan(&ctx(&mounts, &p, &f.host)).unwrap();
        let binds: Vec<String> = plan
            .mounts
            .iter()
            .filter(|m| m.typ().as_deref() == Some("bind"))
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            binds,
            [
                "/srv",
                "/etc/hosts",
                "/srv/a",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/dev/shm",
                "/srv/a/b"
            ]
        );
        let hosts = find(&plan, "/etc/hosts").unwrap();
        assert_eq!(
            hosts.source().as_deref(),
            Some(f.base.join("vol").as_path())
        );
        assert_eq!(
            plan.mounts
                .iter()
                .filter(|m| m.destination() == Path::new("/etc/hosts"))
                .count(),
            1
        );
    }

    #[test]
    fn dev_mount_replaces_dev_defaults() {
        let f = fixture();
        let p = pod(&f.base);
        let mounts = vec![cri(&f.base.join("vol"), "/dev")];
        let plan = super::plan(&ctx(&mounts, &p, &f.host)).unwrap();
        // The default /dev mounts go; the pod's /dev/shm still lands on top of the bind.
        let under_dev: Vec<_> = plan
            .mounts
            .iter()
            .filter(|m| m.destination().starts_with("/dev"))
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.typ().clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            under_dev,
            [
                ("/dev".to_string(), "bind".to_string()),
                ("/dev/shm".to_string(), "bind".to_string())
            ]
        );
    }

    #[test]
    fn missing_host_path_is_not_found_and_not_created() {
        let f = fixture();
        let p = pod(&f.base);
        let missing = f.base.join("nope");
        let mounts = vec![cri(&f.base.join("vol"), "/a"), cri(&missing, "/b")];
        let err = super::plan(&ctx(&mounts, &p, &f.host)).unwrap_err();
        assert!(
            matches!(&err, SpecError::NotFound { field, .. } if field == "mounts[1].host_path"),
            "{err}"
        );
        assert!(!missing.exists());
    }

    #[test]
    fn symlinked_host_path_is_followed() {
        let f = fixture();
        let p = pod(&f.base);
        std::os::unix::fs::symlink(f.base.join("vol"), f.base.join("link")).unwrap();
        let plan = super::plan(&ctx(&[cri(&f.base.join("link"), "/v")], &p, &f.host)).unwrap();
        assert_eq!(
            find(&plan, "/v").unwrap().source().as_deref(),
            Some(f.base.join("vol").as_path())
        );
    }

    #[test]
    fn readonly_and_recursive_readonly() {
        let f = fixture();
        let p = pod(&f.base);
        let mut m = cri(&f.base.join("vol"), "/v");
        m.readonly = true;
        let plan1 = super::plan(&ctx(std::slice::from_ref(&m), &p, &f.host)).unwrap();
        assert_eq!(
            options(find(&plan1, "/v").unwrap()),
            ["rbind", "rprivate", "ro"]
        );
        m.recursive_read_only = true;
        let plan2 = super::plan(&ctx(std::slice::from_ref(&m), &p, &f.host)).unwrap();
        assert_eq!(
            options(find(&plan2, "/v").unwrap()),
            ["rbind", "rprivate", "rro"]
        );
        m.readonly = false;
        let err = super::plan(&ctx(std::slice::from_ref(&m), &p, &f.host)).unwrap_err();
        assert!(
            matches!(&err, SpecError::Invalid { field, .. } if field == "mounts[0].recursive_read_only")
        );
        m.readonly = true;
        m.propagation = MountPropagation::PropagationHostToContainer as i32;
        assert!(super::plan(&ctx(std::slice::from_ref(&m), &p, &f.host)).is_err());
    }

    #[test]
    fn propagation_mapping_and_source_check() {
        let f = fixture();
        let p = pod(&f.base);
        let mut m = cri(&f.base.join("vol"), "/v");
        m.propagation = MountPropagation::PropagationHostToContainer as i32;
        let plan1 = super::plan(&ctx(std::slice::from_ref(&m), &p, &f.host)).unwrap();
        assert_eq!(
            options(find(&plan1, "/v").unwrap()),
            ["rbind", "rslave", "rw"]
        );
        assert_eq!(plan1.rootfs_propagation.as_deref(), Some("slave"));
        let mut shared = m.clone();
        shared.container_path = "/w".into();
        shared.propagation = MountPropagation::PropagationBidirectional as i32;
        let plan2 = super::plan(&ctx(&[shared, m], &p, &f.host)).unwrap();
        assert_eq!(
            options(find(&plan2, "/w").unwrap()),
            ["rbind", "rshared", "rw"]
        );
        assert_eq!(plan2.rootfs_propagation.as_deref(), Some("shared"));
    }

    #[test]
    fn mountinfo_lookup() {
        let t = mountinfo_entries(TABLE);
        assert_eq!(t.len(), 7);
        let on = |p: &str| {
            containing_mount(&t, Path::new(p))
                .unwrap()
                .mount_point
                .display()
                .to_string()
        };
        assert_eq!(on("/mnt/shared/x"), "/mnt/shared");
        assert_eq!(on("/mnt/sharedx"), "/");
        assert_eq!(on("/mnt/private/with space/y"), "/mnt/private/with space");
        assert!(
            containing_mount(&t, Path::new("/mnt/slave"))
                .unwrap()
                .optional
                .contains(&"master:5".to_string())
        );
        assert!(
            containing_mount(&t, Path::new("/mnt/private/a"))
                .unwrap()
                .optional
                .is_empty()
        );
        assert_eq!(t[6].super_options, "rw,nsdelegate,memory_recursiveprot");
    }

    #[test]
    fn propagation_refused_on_private_source() {
        let table = "22 1 0:21 / / rw - ext4 /dev/vda rw\n";
        let bind = Bind {
            field: "mounts[0]".into(),
            destination: "/v".into(),
            source: "/srv".into(),
            readonly: false,
            recursive_read_only: false,
            propagation: MountPropagation::PropagationHostToContainer,
            uid_mappings: vec![],
            gid_mappings: vec![],
        };
        let mut prop = None;
        let err = bind_mount(&bind, &mountinfo_entries(table), &mut prop).unwrap_err();
        assert!(
            matches!(&err, SpecError::Precondition { field, .. } if field == "mounts[0].propagation"),
            "{err}"
        );
    }

    #[test]
    fn clean_and_depth() {
        assert_eq!(clean(Path::new("/a//b/./c/../d/")), PathBuf::from("/a/b/d"));
        assert_eq!(clean(Path::new("/../..")), PathBuf::from("/"));
        assert_eq!(depth(Path::new("/")), 1);
        assert_eq!(depth(Path::new("/a")), 1);
        assert_eq!(depth(Path::new("/a/b")), 2);
    }

    #[test]
    fn image_volumes_become_directories() {
        let root = tempfile::tempdir().unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        let mounts = vec![CriMount {
            container_path: "/covered".into(),
            ..Default::default()
        }];
        let vols = vec![
            "/data".to_string(),
            "var/cache/app".to_string(),
            "/covered/".to_string(),
        ];
        create_image_volumes(&rootfs, &vols, &mounts).unwrap();
        assert!(root.path().join("data").is_dir());
        assert!(root.path().join("var/cache/app").is_dir());
        assert!(!root.path().join("covered").exists());
        std::fs::write(root.path().join("file"), "").unwrap();
        let err = create_image_volumes(&rootfs, &["/file/x".to_string()], &[]).unwrap_err();
        assert!(
            matches!(&err, SpecError::Precondition { field, .. } if field == "image.volumes[0]")
        );
    }

    #[test]
    fn v1_hosts_bind_the_container_cgroup_per_hierarchy() {
        let f = fixture();
        let table = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 22 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        std::fs::write(f.base.join("mountinfo"), table).unwrap();
        let host = HostFacts {
            cgroup_v2: false,
            ..f.host.clone()
        };
        let p = pod(&f.base);
        let plan = super::plan(&ctx(&[], &p, &host)).unwrap();
        assert_eq!(
            find(&plan, "/sys/fs/cgroup").unwrap().typ().as_deref(),
            Some("tmpfs")
        );
        let memory = find(&plan, "/sys/fs/cgroup/memory").unwrap();
        assert_eq!(
            memory.source().as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/kubepods/pod1/c1"))
        );
        assert!(options(memory).contains(&"ro".to_string()));
        assert!(find(&plan, "/sys/fs/cgroup/cpu").is_some());
        assert!(find(&plan, "/sys/fs/cgroup/unified").is_some());
        assert!(
            find(&plan, "/sys/fs/cgroup/systemd").is_none(),
            "named hierarchies are left out"
        );
    }
}
