//! Idmapped mounts (`mount_setattr(MOUNT_ATTR_IDMAP)`, kernel 5.12+; overlayfs takes idmapped
//! layers from 5.19): a layer's files, owned by host ids on disk, appear owned by the ids a
//! user namespace maps them to, without copying or chowning a single file. A container in a
//! pod with its own user namespace gets its overlay over idmapped views of the shared layers,
//! as containerd 2.x does; the layers stay as they are for every other container.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};

use crate::error::{Error, Result};
use crate::mount::{MountStrategy, OverlaySpec, mount_overlay};

// linux/mount.h; libc has the syscall numbers but not all of these.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Mount {
        target: path.into(),
        reason: "NUL byte in path".into(),
    })
}

/// A detached copy of the mount tree at `source` (recursive when `recursive`), idmapped with
/// the user namespace `userns`; attach it with [`attach`].
pub fn idmapped_tree(source: &Path, userns: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd> {
    let fail = |op: &str| Error::Mount {
        target: source.into(),
        reason: format!("{op}: {}", Errno::last()),
    };
    let path = c_path(source)?;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree takes a dirfd, a NUL-terminated path and flags; returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if raw < 0 {
        return Err(fail("open_tree"));
    }
    // SAFETY: raw is a fresh fd we own.
    let tree = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    let at = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr on the detached tree fd (empty path) with a valid mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            at,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(fail("mount_setattr(MOUNT_ATTR_IDMAP)"));
    }
    Ok(tree)
}

/// Attaches a detached mount (from [`idmapped_tree`]) at `target`.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<()> {
    let to = c_path(target)?;
    let empty = c"";
    // SAFETY: move_mount from a detached mount fd (empty path) to an absolute target path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(Error::Mount {
            target: target.into(),
            reason: format!("move_mount: {}", Errno::last()),
        });
    }
    Ok(())
}

/// Bind-mounts `source` at `target` idmapped with `userns` (recursively).
pub fn idmapped_bind(source: &Path, target: &Path, userns: BorrowedFd<'_>) -> Result<()> {
    let tree = idmapped_tree(source, userns, true)?;
    attach(&tree, target)
}

/// Mounts an overlay whose lower layers are idmapped views of `spec.lowerdirs`. The views are
/// attached under `scratch` only for the mount call (overlayfs takes layers by path and keeps
/// its own private clones of them), then detached and their folders removed.
pub fn mount_overlay_idmapped(
    spec: &OverlaySpec<'_>,
    target: &Path,
    strategy: MountStrategy,
    userns: BorrowedFd<'_>,
    scratch: &Path,
) -> Result<()> {
    std::fs::create_dir_all(scratch).map_err(Error::io("create", scratch))?;
    let mut views: Vec<PathBuf> = Vec::with_capacity(spec.lowerdirs.len());
    let made = (|| {
        for (i, lower) in spec.lowerdirs.iter().enumerate() {
            let view = scratch.join(i.to_string());
            std::fs::create_dir(&view).map_err(Error::io("create", &view))?;
            views.push(view.clone());
            let tree = idmapped_tree(lower, userns, false)?;
            attach(&tree, &view)?;
        }
        let idmapped = OverlaySpec {
            lowerdirs: &views,
            upper: spec.upper,
        };
        mount_overlay(&idmapped, target, strategy)
    })();
    for view in &views {
        let _ = umount2(view, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(view);
    }
    let _ = std::fs::remove_dir(scratch);
    made
}
