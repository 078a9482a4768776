//! overlayfs mounts of a layer stack, whatever the length of the lowerdir list.
//!
//! mount(2) takes the options as one page (4096 bytes). Past that we use, in order:
//! 1. the new mount API with one `lowerdir+` per layer (kernel 6.8+; this host runs 6.18), where
//!    each path is a separate `fsconfig` call and there is no page limit;
//! 2. otherwise (Debian 12's 6.1): each layer opened `O_PATH` and named `/proc/self/fd/<n>`,
//!    about 18 bytes a layer, which fits overlayfs's 500-layer maximum in a page. This avoids
//!    containerd's trick of `chdir` + relative paths, which would race in a threaded daemon.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount as nix_mount, umount2};
use nix::sys::stat::Mode;
use tracing::debug;

use crate::error::{Error, Result};

const OVERLAY: &str = "overlay";
/// mount(2) copies at most one page of options.
const MOUNT_DATA_MAX: usize = 4095;
/// Keeps the same lower layers usable by many overlay mounts at once, as containerd does.
const INDEX_OFF: &str = "index=off";

// The new mount API (linux/mount.h); defined here because libc does not export all of them.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// How to pass the lowerdir list to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountStrategy {
    /// Pick by length and kernel support (the default).
    Auto,
    /// mount(2) with the paths as given (fails past one page).
    Plain,
    /// fsopen/fsconfig with `lowerdir+` per layer (kernel 6.8+).
    LowerdirPlus,
    /// mount(2) with `/proc/self/fd/<n>` for each layer.
    ProcFd,
}

/// An overlay to mount: lower layers top-most first, and an optional writable upper layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec<'a> {
    /// Lower directories, top-most first (overlayfs order).
    pub lowerdirs: &'a [PathBuf],
    /// Upper and work directory, for a writable mount.
    pub upper: Option<(&'a Path, &'a Path)>,
}

/// Mount `spec` on `target` with `strategy`.
pub fn mount_overlay(spec: &OverlaySpec<'_>, target: &Path, strategy: MountStrategy) -> Result<()> {
    if spec.lowerdirs.is_empty() {
        return Err(Error::Mount {
            target: target.into(),
            reason: "an overlay needs at least one lower directory".into(),
        });
    }
    match strategy {
        MountStrategy::Plain => mount_plain(spec, target, &display_paths(spec.lowerdirs)),
        MountStrategy::LowerdirPlus => mount_lowerdir_plus(spec, target),
        MountStrategy::ProcFd => mount_proc_fd(spec, target),
        MountStrategy::Auto => {
            let plain = display_paths(spec.lowerdirs);
            if options(spec, &plain).len() <= MOUNT_DATA_MAX {
                return mount_plain(spec, target, &plain);
            }
            match mount_lowerdir_plus(spec, target) {
                Ok(()) => Ok(()),
                Err(e) => {
                    debug!(target = %target.display(), error = %e, "lowerdir+ unavailable; using /proc/self/fd paths");
                    mount_proc_fd(spec, target)
                }
            }
        }
    }
}

/// Bind-mount `source` read-only on `target` (a one-layer read-only view needs no overlay).
pub fn bind_readonly(source: &Path, target: &Path) -> Result<()> {
    let fail = |op: &str, e: Errno| Error::Mount {
        target: target.into(),
        reason: format!("{op} of {}: {e}", source.display()),
    };
    nix_mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| fail("bind", e))?;
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = nix_mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
        let _ = umount2(target, MntFlags::MNT_DETACH);
        return Err(fail("read-only remount", e));
    }
    Ok(())
}

/// Unmount `target`; not being mounted (or not existing) is success, so this is idempotent.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        // Something still holds it open: detach now, the kernel frees it when released.
        Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH).map_err(|e| Error::Mount {
            target: target.into(),
            reason: format!("lazy umount: {e}"),
        }),
        Err(e) => Err(Error::Mount {
            target: target.into(),
            reason: format!("umount: {e}"),
        }),
    }
}

fn display_paths(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| escape(&p.to_string_lossy())).collect()
}

/// overlayfs splits options on ',' and layers on ':'; escape both.
fn escape(path: &str) -> String {
    path.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

fn options(spec: &OverlaySpec<'_>, lowers: &[String]) -> String {
    let mut opts = format!("lowerdir={}", lowers.join(":"));
    if let Some((upper, work)) = spec.upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            escape(&upper.to_string_lossy()),
            escape(&work.to_string_lossy())
        ));
    }
    opts.push(',');
    opts.push_str(INDEX_OFF);
    opts
}

fn flags(spec: &OverlaySpec<'_>) -> MsFlags {
    if spec.upper.is_some() {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    }
}

fn mount_plain(spec: &OverlaySpec<'_>, target: &Path, lowers: &[String]) -> Result<()> {
    let opts = options(spec, lowers);
    nix_mount(
        Some(OVERLAY),
        target,
        Some(OVERLAY),
        flags(spec),
        Some(opts.as_str()),
    )
    .map_err(|e| Error::Mount {
        target: target.into(),
        reason: format!(
            "overlay mount ({} layers, {} option bytes): {e}",
            spec.lowerdirs.len(),
            opts.len()
        ),
    })
}

fn mount_proc_fd(spec: &OverlaySpec<'_>, target: &Path) -> Result<()> {
    let mut fds = Vec::with_capacity(spec.lowerdirs.len());
    for dir in spec.lowerdirs {
        let fd = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open lower layer", dir)(e.into()))?;
        fds.push(fd);
    }
    let lowers: Vec<String> = fds
        .iter()
        .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .collect();
    // The fds stay open until the mount call returns (dropped at the end of this function).
    mount_plain(spec, target, &lowers)
}

fn cstring(s: &str, target: &Path) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Mount {
        target: target.into(),
        reason: format!("NUL byte in {s:?}"),
    })
}

fn mount_lowerdir_plus(spec: &OverlaySpec<'_>, target: &Path) -> Result<()> {
    let fail = |what: String| Error::Mount {
        target: target.into(),
        reason: what,
    };
    let fstype = cstring(OVERLAY, target)?;
    // SAFETY: fsopen takes a NUL-terminated string and flags; it returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if raw < 0 {
        return Err(fail(format!("fsopen(overlay): {}", Errno::last())));
    }
    // SAFETY: raw is a fresh fd we own.
    let fs = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let set = |key: &str, value: Option<&[u8]>| -> Result<()> {
        let k = cstring(key, target)?;
        let v =
            value.map(|v| CString::new(v).map_err(|_| fail(format!("NUL byte in {key} value"))));
        let v = v.transpose()?;
        let (cmd, vptr) = match &v {
            Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
            None => (FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: fs is an fs-context fd; key and value are NUL-terminated and outlive the call.
        let rc =
            unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, k.as_ptr(), vptr, 0) };
        if rc < 0 {
            return Err(fail(format!("fsconfig({key}): {}", Errno::last())));
        }
        Ok(())
    };
    for dir in spec.lowerdirs {
        set("lowerdir+", Some(dir.as_os_str().as_bytes()))?;
    }
    if let Some((upper, work)) = spec.upper {
        set("upperdir", Some(upper.as_os_str().as_bytes()))?;
        set("workdir", Some(work.as_os_str().as_bytes()))?;
    }
    set("index", Some(b"off"))?;
    // SAFETY: fs is a valid fs-context fd; CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if rc < 0 {
        return Err(fail(format!("fsconfig(create): {}", Errno::last())));
    }
    let attrs = if spec.upper.is_some() {
        0
    } else {
        MOUNT_ATTR_RDONLY
    };
    // SAFETY: fsmount on a created fs context returns a detached mount fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if raw < 0 {
        return Err(fail(format!("fsmount: {}", Errno::last())));
    }
    // SAFETY: raw is a fresh mount fd we own.
    let mnt = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let empty = cstring("", target)?;
    let to = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| fail("NUL byte in target".into()))?;
    // SAFETY: move_mount from the detached mount fd (empty path) to an absolute target path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(fail(format!("move_mount: {}", Errno::last())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_and_order() {
        let lowers = vec![PathBuf::from("/a:b"), PathBuf::from("/c")];
        let spec = OverlaySpec {
            lowerdirs: &lowers,
            upper: Some((Path::new("/u"), Path::new("/w,x"))),
        };
        assert_eq!(
            options(&spec, &display_paths(&lowers)),
            "lowerdir=/a\\:b:/c,upperdir=/u,workdir=/w\\,x,index=off"
        );
    }
}
