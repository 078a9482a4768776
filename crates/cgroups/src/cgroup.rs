//! The cgroup handle: one logical cgroup, which is a directory in every v1 hierarchy and/or one
//! in the unified hierarchy.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fs::{self, FsError};
use crate::hierarchy::{CGROUP_CONTROLLERS, Hierarchy, HierarchyError, Mode, Mount, Version};
use crate::path::CgroupPath;
use crate::procs;
use crate::resources::Resources;
use crate::stats::{CpuStats, MemoryStats, PidsStats, Stats};
use crate::{v1, v2, wait};

/// How long freeze and thaw wait for the kernel to confirm.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `kill_all` waits for the cgroup to empty.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `delete` retries a busy (still emptying) cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The cgroup's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct V1Dir {
    controllers: Vec<Controller>,
    mount: Mount,
    dir: PathBuf,
}

/// The cgroup's directory in the unified hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnifiedDir {
    /// Controllers the unified hierarchy offers (on a hybrid host, only those v1 lacks).
    controllers: Vec<Controller>,
    mount: Mount,
    dir: PathBuf,
}

/// Where a cgroup's directories are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// Resources through v1: a directory per v1 hierarchy, plus the cgroup2 one on hybrid hosts
    /// (for controllers only it carries, and PSI).
    V1 {
        v1: Vec<V1Dir>,
        unified: Option<UnifiedDir>,
    },
    /// Pure v2: one directory.
    V2(UnifiedDir),
}

/// A handle on one cgroup at the same path in every hierarchy of the host.
///
/// The handle holds paths only; it can outlive the cgroup (then calls fail, and `delete`
/// succeeds). Calls block on cgroupfs; `freeze`, `kill_all` and `delete` may wait up to seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    path: CgroupPath,
    layout: Layout,
}

impl Cgroup {
    /// A handle on `path` without creating anything.
    pub fn open(hierarchy: &Hierarchy, path: &CgroupPath) -> Result<Cgroup> {
        let unified = match hierarchy.unified() {
            None => None,
            Some(u) => Some(UnifiedDir {
                controllers: u.controllers.clone(),
                mount: u.mount.clone(),
                dir: u.mount.dir_of(path)?,
            }),
        };
        let layout = match (hierarchy.mode(), unified) {
            (Mode::Unified, Some(unified)) => Layout::V2(unified),
            (Mode::Unified, None) => return Err(HierarchyError::NoCgroupMounts.into()),
            (Mode::Legacy | Mode::Hybrid, unified) => {
                let v1 = hierarchy.v1().iter().map(|h| {
                    Ok(V1Dir {
                        controllers: h.controllers.clone(),
                        mount: h.mount.clone(),
                        dir: h.mount.dir_of(path)?,
                    })
                });
                Layout::V1 {
                    v1: v1.collect::<Result<Vec<_>>>()?,
                    unified,
                }
            }
        };
        Ok(Cgroup {
            path: path.clone(),
            layout,
        })
    }

    /// Create `path` (and any missing ancestors) in every hierarchy.
    ///
    /// In a v1 hierarchy carrying cpuset, empty `cpuset.cpus`/`cpuset.mems` are copied from the
    /// parent so processes can join. In the unified hierarchy each ancestor first enables the
    /// controllers its children need (cpuset, cpu, io, memory, hugetlb, pids — whichever it
    /// offers) in `cgroup.subtree_control`; an ancestor that holds processes itself cannot (the
    /// kernel's no-internal-process rule), so processes belong in leaf cgroups only.
    /// Creating an existing cgroup is not an error.
    pub fn create(hierarchy: &Hierarchy, path: &CgroupPath) -> Result<Cgroup> {
        let cgroup = Cgroup::open(hierarchy, path)?;
        for d in cgroup.v1_dirs() {
            create_v1(d, path)?;
        }
        if let Some(u) = cgroup.unified() {
            create_unified(u, path)?;
        }
        tracing::debug!(path = %path, "cgroup created");
        Ok(cgroup)
    }

    /// The cgroup's path.
    pub fn path(&self) -> &CgroupPath {
        &self.path
    }

    /// The interface its resources go through (V1 on hybrid hosts).
    pub fn version(&self) -> Version {
        match self.layout {
            Layout::V1 { .. } => Version::V1,
            Layout::V2(_) => Version::V2,
        }
    }

    /// Whether its directory exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs().iter().any(|d| d.is_dir())
    }

    /// Its directory in every hierarchy (v1 ones first, then the unified one).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let v1 = self.v1_dirs().iter().map(|d| d.dir.clone());
        v1.chain(self.unified().map(|u| u.dir.clone())).collect()
    }

    /// The file a monitor can poll for OOM kills: `memory.events` on v2, `memory.oom_control`
    /// on v1. Both carry an `oom_kill <n>` line; [`read_oom_kill_count`](crate::read_oom_kill_count)
    /// reads either. `None` when the memory controller is not mounted.
    pub fn memory_events_path(&self) -> Option<PathBuf> {
        match &self.layout {
            Layout::V2(u) => Some(u.dir.join(v2::memory::MEMORY_EVENTS)),
            Layout::V1 { .. } => Some(
                self.v1_dir(Controller::Memory)?
                    .join(v1::memory::MEMORY_OOM_CONTROL),
            ),
        }
    }

    /// Apply every set field of `resources`. Nothing is written for zero/empty fields.
    ///
    /// On v1, `unified` is refused before anything is written, `oom_group` is ignored (v1 has no
    /// group OOM kill), and hugetlb limits go to the cgroup2 mount on hybrid hosts whose hugetlb
    /// controller lives there.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        match &self.layout {
            Layout::V2(u) => Ok(v2::apply(&u.dir, resources)?),
            Layout::V1 { .. } => self.apply_v1(resources),
        }
    }

    fn apply_v1(&self, r: &Resources) -> Result<()> {
        if let Some(key) = r.unified.keys().next() {
            return Err(Error::UnifiedOnV1 { key: key.clone() });
        }
        if r.cpu_shares != 0 || r.cpu_quota != 0 || r.cpu_period != 0 {
            let dir = self.need_v1(Controller::Cpu)?;
            v1::cpu::apply(dir, r).map_err(v1::Error::from)?;
        }
        if !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty() {
            let dir = self.need_v1(Controller::Cpuset)?;
            v1::cpuset::apply(dir, r).map_err(v1::Error::from)?;
        }
        if r.memory_limit_in_bytes != 0 || r.memory_swap_limit_in_bytes != 0 {
            let dir = self.need_v1(Controller::Memory)?;
            v1::memory::apply(dir, r).map_err(v1::Error::from)?;
        }
        if r.pids_limit != 0 {
            let dir = self.need_v1(Controller::Pids)?;
            v1::pids::apply(dir, r.pids_limit).map_err(v1::Error::from)?;
        }
        if !r.hugepage_limits.is_empty() {
            self.apply_hugetlb_v1(r)?;
        }
        if r.oom_group.is_some() {
            tracing::debug!(path = %self.path, "oom_group has no cgroup v1 equivalent; ignored");
        }
        Ok(())
    }

    fn apply_hugetlb_v1(&self, r: &Resources) -> Result<()> {
        if let Some(dir) = self.v1_dir(Controller::Hugetlb) {
            return Ok(v1::hugetlb::apply(dir, &r.hugepage_limits).map_err(v1::Error::from)?);
        }
        let dir = self.unified_controller_dir(Controller::Hugetlb)?;
        Ok(v2::hugetlb::apply(dir, &r.hugepage_limits).map_err(v2::Error::from)?)
    }

    /// Move process `pid` into this cgroup in every hierarchy.
    pub fn add_process(&self, pid: u32) -> Result<()> {
        match &self.layout {
            Layout::V2(u) => procs::add(&u.dir, pid)?,
            Layout::V1 { v1, unified } => {
                for d in v1 {
                    procs::add(&d.dir, pid)?;
                }
                // On a hybrid host the cgroup2 directory may be absent if someone else made
                // the cgroup; the v1 hierarchies are the ones that matter there.
                if let Some(u) = unified.as_ref().filter(|u| u.dir.is_dir()) {
                    procs::add(&u.dir, pid)?;
                }
            }
        }
        Ok(())
    }

    /// The processes directly in this cgroup (not its children), sorted, from every hierarchy
    /// that limits resources.
    pub fn procs(&self) -> Result<Vec<u32>> {
        let mut pids = Vec::new();
        match &self.layout {
            Layout::V2(u) => pids.extend(procs::list(&u.dir)?),
            Layout::V1 { v1, .. } => {
                for d in v1 {
                    pids.extend(procs::list(&d.dir)?);
                }
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Block I/O per device, cumulative, from the io controller (v2) or blkio (v1); empty where
    /// neither accounts for this cgroup.
    pub fn io_stats(&self) -> Result<Vec<crate::IoDevice>> {
        if let Some(dir) = self.v1_dir(Controller::Blkio) {
            return Ok(crate::io::v1(dir)?);
        }
        match &self.layout {
            Layout::V2(u) => Ok(crate::io::v2(&u.dir)?),
            Layout::V1 { .. } => Ok(Vec::new()),
        }
    }

    /// Read the cgroup's accounting from the kernel's files (no process listing).
    pub fn stats(&self) -> Result<Stats> {
        let timestamp = SystemTime::now();
        match &self.layout {
            Layout::V2(u) => stats_v2(&u.dir, timestamp),
            Layout::V1 { .. } => self.stats_v1(timestamp),
        }
    }

    fn stats_v1(&self, timestamp: SystemTime) -> Result<Stats> {
        let v1_err = |e: v1::Error| Error::V1(e);
        let mut cpu = CpuStats::default();
        if let Some(dir) = self.v1_dir(Controller::Cpuacct) {
            v1::cpuacct::stats(dir, &mut cpu).map_err(|e| v1_err(e.into()))?;
        }
        if let Some(dir) = self.v1_dir(Controller::Cpu) {
            v1::cpu::throttling(dir, &mut cpu).map_err(|e| v1_err(e.into()))?;
        }
        let (memory, oom_kills) = match self.v1_dir(Controller::Memory) {
            Some(dir) => (
                v1::memory::stats(dir).map_err(|e| v1_err(e.into()))?,
                v1::memory::oom_kills(dir).map_err(|e| v1_err(e.into()))?,
            ),
            None => (MemoryStats::default(), 0),
        };
        let pids = match self.v1_dir(Controller::Pids) {
            Some(dir) => v1::pids::stats(dir).map_err(|e| v1_err(e.into()))?,
            None => PidsStats::default(),
        };
        // PSI lives only in v2 cgroups; a hybrid host has it for processes we also placed in
        // the unified directory.
        let pressure = match self.unified().filter(|u| u.dir.is_dir()) {
            Some(u) => v2::pressure::stats(&u.dir).map_err(|e| Error::V2(e.into()))?,
            None => None,
        };
        Ok(Stats {
            timestamp,
            cpu,
            memory,
            pids,
            oom_kills,
            pressure,
        })
    }

    /// Processes killed by the OOM killer in this cgroup so far (v2 `memory.events`, v1
    /// `memory.oom_control`).
    pub fn oom_kill_count(&self) -> Result<u64> {
        match &self.layout {
            Layout::V2(u) => Ok(v2::memory::oom_kills(&u.dir).map_err(v2::Error::from)?),
            Layout::V1 { .. } => {
                let dir = self.need_v1(Controller::Memory)?;
                Ok(v1::memory::oom_kills(dir).map_err(v1::Error::from)?)
            }
        }
    }

    /// Freeze every process in the cgroup and below, and wait until the kernel reports it
    /// frozen (v2 `cgroup.freeze` / `cgroup.events`; v1 `freezer.state`).
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaw the cgroup, and wait until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match &self.layout {
            Layout::V2(u) => {
                v2::freezer::set(&u.dir, frozen, FREEZE_TIMEOUT).map_err(v2::Error::from)?;
            }
            Layout::V1 { .. } => {
                let dir = self.need_v1(Controller::Freezer)?;
                v1::freezer::set(dir, frozen, FREEZE_TIMEOUT).map_err(v1::Error::from)?;
            }
        }
        Ok(())
    }

    /// SIGKILL every process in the cgroup and its descendants and wait until none is left
    /// (zombies not yet reaped by their parent do not count).
    ///
    /// v2 writes `cgroup.kill`. v1 freezes (when a freezer is mounted) so nothing forks while
    /// the list is read, SIGKILLs every pid of every hierarchy, thaws so the signals land, then
    /// repeats kill-and-check until the cgroup is empty.
    pub fn kill_all(&self) -> Result<()> {
        match &self.layout {
            Layout::V2(u) => Ok(v2::kill::kill_all(&u.dir, KILL_TIMEOUT).map_err(v2::Error::from)?),
            Layout::V1 { .. } => self.kill_all_v1(),
        }
    }

    fn kill_all_v1(&self) -> Result<()> {
        let freezer = self.v1_dir(Controller::Freezer).filter(|d| d.is_dir());
        let frozen = match freezer {
            Some(dir) => match v1::freezer::set(dir, true, FREEZE_TIMEOUT) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(path = %self.path, error = %e, "freeze before kill failed");
                    false
                }
            },
            None => false,
        };
        let listed = self.all_procs().map(|pids| procs::kill(&pids));
        // Thaw even when listing failed: a cgroup must not stay frozen behind our back.
        if let (true, Some(dir)) = (frozen, freezer) {
            v1::freezer::set(dir, false, FREEZE_TIMEOUT).map_err(v1::Error::from)?;
        }
        listed?;
        let mut left = Vec::new();
        let empty = wait::poll_until(KILL_TIMEOUT, || {
            left = self.all_procs()?;
            // Without a freezer, children forked meanwhile need their own signal.
            procs::kill(&left);
            Ok::<_, Error>(left.is_empty())
        })?;
        if !empty {
            return Err(Error::KillTimeout {
                dir: self.dirs().into_iter().next().unwrap_or_default(),
                pids: left,
                timeout: KILL_TIMEOUT,
            });
        }
        Ok(())
    }

    /// Every process in this cgroup and below, in every hierarchy.
    fn all_procs(&self) -> Result<Vec<u32>> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            procs::list_recursive(&dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Remove the cgroup and any child cgroups left below it, in every hierarchy. Missing
    /// directories are fine (deleting twice succeeds). A cgroup whose processes are still
    /// exiting is retried for up to two seconds; one with live processes fails with EBUSY.
    pub fn delete(&self) -> Result<()> {
        remove_all(self.dirs())?;
        tracing::debug!(path = %self.path, "cgroup deleted");
        Ok(())
    }

    fn v1_dirs(&self) -> &[V1Dir] {
        match &self.layout {
            Layout::V1 { v1, .. } => v1,
            Layout::V2(_) => &[],
        }
    }

    fn unified(&self) -> Option<&UnifiedDir> {
        match &self.layout {
            Layout::V1 { unified, .. } => unified.as_ref(),
            Layout::V2(u) => Some(u),
        }
    }

    fn v1_dir(&self, controller: Controller) -> Option<&Path> {
        self.v1_dirs()
            .iter()
            .find(|d| d.controllers.contains(&controller))
            .map(|d| d.dir.as_path())
    }

    fn need_v1(&self, controller: Controller) -> Result<&Path> {
        self.v1_dir(controller)
            .ok_or_else(|| self.missing(controller))
    }

    /// The cgroup2 directory, if the cgroup2 mount carries `controller`.
    fn unified_controller_dir(&self, controller: Controller) -> Result<&Path> {
        self.unified()
            .filter(|u| u.controllers.contains(&controller))
            .map(|u| u.dir.as_path())
            .ok_or_else(|| self.missing(controller))
    }

    fn missing(&self, controller: Controller) -> Error {
        Error::ControllerMissing {
            controller,
            path: self.path.clone(),
        }
    }
}

fn stats_v2(dir: &Path, timestamp: SystemTime) -> Result<Stats> {
    let enabled = fs::read(&dir.join(CGROUP_CONTROLLERS))?;
    let has = |c: Controller| enabled.split_whitespace().any(|n| n == c.name());
    let v2_err = |e: v2::Error| Error::V2(e);
    let cpu = v2::cpu::stats(dir).map_err(|e| v2_err(e.into()))?;
    let (memory, oom_kills) = if has(Controller::Memory) {
        let memory = v2::memory::stats(dir).map_err(|e| v2_err(e.into()))?;
        (
            memory,
            v2::memory::oom_kills(dir).map_err(|e| v2_err(e.into()))?,
        )
    } else {
        (MemoryStats::default(), 0)
    };
    let pids = if has(Controller::Pids) {
        v2::pids::stats(dir).map_err(|e| v2_err(e.into()))?
    } else {
        PidsStats::default()
    };
    let pressure = v2::pressure::stats(dir).map_err(|e| v2_err(e.into()))?;
    Ok(Stats {
        timestamp,
        cpu,
        memory,
        pids,
        oom_kills,
        pressure,
    })
}

/// Make each missing directory from the mount's root down to `path`, filling empty cpusets.
fn create_v1(d: &V1Dir, path: &CgroupPath) -> Result<()> {
    let cpuset = d.controllers.contains(&Controller::Cpuset);
    let mut parent = d.mount.dir.clone();
    for p in below_mount_root(&d.mount, path) {
        let dir = d.mount.dir_of(&p)?;
        make_dir(&dir)?;
        if cpuset {
            v1::cpuset::inherit(&dir, &parent).map_err(v1::Error::from)?;
        }
        parent = dir;
    }
    Ok(())
}

/// Make each missing directory from the mount's root down to `path`, enabling the wanted
/// controllers in each parent first.
fn create_unified(u: &UnifiedDir, path: &CgroupPath) -> Result<()> {
    let mut parent = u.mount.dir.clone();
    for p in below_mount_root(&u.mount, path) {
        v2::controllers::enable(&parent).map_err(v2::Error::from)?;
        let dir = u.mount.dir_of(&p)?;
        make_dir(&dir)?;
        parent = dir;
    }
    Ok(())
}

/// The lineage of `path` strictly below the cgroup the mount shows.
fn below_mount_root(mount: &Mount, path: &CgroupPath) -> Vec<CgroupPath> {
    path.lineage()
        .into_iter()
        .filter(|p| !p.is_ancestor_or_self_of(&mount.root))
        .collect()
}

fn make_dir(dir: &Path) -> Result<(), FsError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(FsError::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Remove each directory with its child cgroups, retrying the busy ones (processes still
/// exiting) together for up to [`REMOVE_TIMEOUT`]. Other failures are reported after every
/// directory was tried.
fn remove_all(dirs: Vec<PathBuf>) -> Result<(), FsError> {
    let mut pending = dirs;
    let mut busy = None;
    let mut failed = None;
    let removed = wait::poll_until(REMOVE_TIMEOUT, || {
        let mut still = Vec::new();
        for dir in pending.drain(..) {
            match remove_tree(&dir) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    busy = Some(e);
                    still.push(dir);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        pending = still;
        Ok::<_, FsError>(pending.is_empty())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    match busy {
        Some(e) if !removed => Err(e),
        _ => Ok(()),
    }
}

/// Remove child cgroups depth first, then `dir`. A missing directory counts as removed.
fn remove_tree(dir: &Path) -> Result<(), FsError> {
    for child in procs::subdirs(dir)? {
        remove_tree(&child)?;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FsError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
