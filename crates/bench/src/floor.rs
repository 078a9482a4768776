//! The floor: what the kernel itself charges for the parts of a pod and its container, done by
//! this small program with no runtime, no daemon, no database, no CNI: new network, IPC and UTS
//! namespaces pinned with bind mounts, an overlay of busybox's root with a writable upper layer,
//! a cgroup in every hierarchy, and `busybox true` run inside them (fork, join the cgroup, setns,
//! a mount namespace, chroot, exec, wait). A runtime's pod + container start cannot go below it.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Debian's busybox-static (a test-host package): one static binary, the floor's whole image.
const STATIC_BUSYBOX: &str = "/bin/busybox";

/// The kinds of namespace a pod pins.
const KINDS: [(&str, CloneFlags); 3] = [
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
];

/// The time of each step of one round.
#[derive(Debug, Clone, Copy)]
pub struct FloorTimes {
    /// Namespaces made and pinned.
    pub namespaces: Duration,
    /// The overlay mounted.
    pub overlay: Duration,
    /// The cgroup made in every hierarchy.
    pub cgroup: Duration,
    /// `busybox true` run inside all of it, until it was reaped.
    pub exec: Duration,
}

/// Makes the floor's one-layer image at `dir`: `bin/busybox`, copied from busybox-static.
/// Untimed; done once.
pub fn make_image(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    std::fs::copy(STATIC_BUSYBOX, bin.join("busybox"))
        .with_context(|| format!("copying {STATIC_BUSYBOX} (install busybox-static)"))?;
    Ok(dir.to_path_buf())
}

/// One round in the folder `dir` (made and removed here), with the cgroup `cgroup` (a path
/// under this process's own) in every hierarchy mounted at `mounts`. Blocking.
pub fn one_round(
    dir: &Path,
    busybox: &Path,
    mounts: &[PathBuf],
    cgroup: &str,
) -> Result<FloorTimes> {
    if !busybox.join("bin/busybox").exists() {
        bail!(
            "no busybox at {} (run scripts/setup-test-host.sh)",
            busybox.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cgroups: Vec<PathBuf> = mounts
        .iter()
        .map(|m| m.join(cgroup.trim_start_matches('/')))
        .collect();
    let timed = run_steps(dir, busybox, &cgroups);
    clean_up(dir, &cgroups);
    timed
}

fn run_steps(dir: &Path, busybox: &Path, cgroups: &[PathBuf]) -> Result<FloorTimes> {
    let t0 = Instant::now();
    pin_namespaces(dir)?;
    let t1 = Instant::now();
    let rootfs = mount_overlay(dir, busybox)?;
    let t2 = Instant::now();
    for c in cgroups {
        make_cgroup(c)?;
    }
    let t3 = Instant::now();
    run_true(dir, &rootfs, cgroups)?;
    let t4 = Instant::now();
    Ok(FloorTimes {
        namespaces: t1 - t0,
        overlay: t2 - t1,
        cgroup: t3 - t2,
        exec: t4 - t3,
    })
}

/// unshare(2) on a throw-away thread (the caller stays where it is), pins bind-mounted.
fn pin_namespaces(dir: &Path) -> Result<()> {
    let ns = dir.join("ns");
    std::fs::create_dir_all(&ns)?;
    for (name, _) in KINDS {
        std::fs::File::create(ns.join(name))?;
    }
    let handle = std::thread::spawn(move || -> Result<()> {
        let flags = KINDS.iter().fold(CloneFlags::empty(), |f, (_, k)| f | *k);
        unshare(flags).context("unshare")?;
        nix::unistd::sethostname("floor").context("sethostname")?;
        for (name, _) in KINDS {
            let source = format!("/proc/thread-self/ns/{name}");
            mount(
                Some(source.as_str()),
                &ns.join(name),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("pinning {name}"))?;
        }
        Ok(())
    });
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the pinning thread panicked"))?
}

fn mount_overlay(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        std::fs::create_dir_all(d)?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={},index=off",
        busybox.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .context("mounting the overlay")?;
    Ok(rootfs)
}

/// mkdir, and for a v1 cpuset the parent's CPUs and memory nodes (an empty cpuset takes no task),
/// as runc does.
fn make_cgroup(c: &Path) -> Result<()> {
    std::fs::create_dir_all(c).with_context(|| format!("creating {}", c.display()))?;
    if c.join("cpuset.cpus").exists() && !c.join("cgroup.controllers").exists() {
        let parent = c.parent().context("a cgroup has a parent")?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let value = std::fs::read_to_string(parent.join(file))?;
            std::fs::write(c.join(file), value.trim())
                .with_context(|| format!("writing {}", c.join(file).display()))?;
        }
    }
    Ok(())
}

/// Forks `busybox true` into the cgroups and namespaces, chrooted in the overlay; waits.
fn run_true(dir: &Path, rootfs: &Path, cgroups: &[PathBuf]) -> Result<()> {
    let pins: Vec<(OwnedFd, CloneFlags)> = KINDS
        .iter()
        .map(|(name, flag)| {
            let file = std::fs::File::open(dir.join("ns").join(name))?;
            Ok((OwnedFd::from(file), *flag))
        })
        .collect::<Result<_>>()?;
    let procs: Vec<CString> = cgroups
        .iter()
        .map(|c| CString::new(c.join("cgroup.procs").as_os_str().as_bytes()))
        .collect::<Result<_, _>>()?;
    let root = CString::new(rootfs.as_os_str().as_bytes())?;
    let mut cmd = Command::new("/bin/busybox");
    cmd.arg("true");
    // SAFETY: the closure runs in the forked child before exec and makes only syscalls on
    // values prepared before the fork (no allocation).
    unsafe {
        cmd.pre_exec(move || {
            for path in &procs {
                join_cgroup(path)?;
            }
            for (fd, flag) in &pins {
                setns(fd.as_fd(), *flag).map_err(std::io::Error::from)?;
            }
            unshare(CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
            if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let status = cmd.status().context("running busybox true")?;
    if !status.success() {
        bail!("busybox true: {status}");
    }
    Ok(())
}

/// Writes "0" (this process) to a cgroup.procs file; async-signal-safe.
fn join_cgroup(path: &CString) -> std::io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path and a static buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let wrote = libc::write(fd, c"0".as_ptr().cast(), 1);
        libc::close(fd);
        if wrote != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Untimed: the pins, the overlay, the cgroups and the folder go.
fn clean_up(dir: &Path, cgroups: &[PathBuf]) {
    let _ = umount2(&dir.join("rootfs"), MntFlags::MNT_DETACH);
    for (name, _) in KINDS {
        let _ = umount2(&dir.join("ns").join(name), MntFlags::MNT_DETACH);
    }
    for c in cgroups {
        let _ = std::fs::remove_dir(c);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_leaves_nothing() {
        if !nix::unistd::geteuid().is_root() || !Path::new(STATIC_BUSYBOX).exists() {
            eprintln!("skipped: needs root and busybox-static");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let image = make_image(&tmp.path().join("image")).unwrap();
        let dir = tmp.path().join("floor");
        let own = crate::cgroups::own_cgroup();
        let cgroup = format!(
            "{}/bench-floor-test-{}",
            own.trim_end_matches('/'),
            std::process::id()
        );
        let mounts = crate::cgroups::cgroup_mounts();
        let times = one_round(&dir, &image, &mounts, &cgroup).unwrap();
        assert!(times.exec > Duration::ZERO);
        assert!(!dir.exists());
        for m in &mounts {
            assert!(!m.join(cgroup.trim_start_matches('/')).exists());
        }
        let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!left.contains(&dir.to_string_lossy().to_string()));
    }
}
