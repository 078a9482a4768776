//! Making a pod's network, IPC and UTS namespaces and pinning them with bind mounts.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use crate::sysctl::{SysctlNamespace, classify_sysctl, write_sysctl};
use crate::{NamespaceError, NamespaceKind, loopback};

/// What to make for a pod. Kinds left `false` are shared with the host.
#[derive(Debug, Clone, Default)]
pub struct PinRequest {
    /// A new network namespace (false for hostNetwork pods).
    pub net: bool,
    /// A new IPC namespace (false for hostIPC pods).
    pub ipc: bool,
    /// A new UTS namespace (false for hostNetwork pods, as kubelet expects).
    pub uts: bool,
    /// Hostname set in the new UTS namespace.
    pub hostname: Option<String>,
    /// Namespaced sysctls to set, in order.
    pub sysctls: Vec<(String, String)>,
}

impl PinRequest {
    /// The kinds of new namespace asked for, net, IPC, UTS in that order.
    pub(crate) fn kinds(&self) -> Vec<NamespaceKind> {
        [
            (self.net, NamespaceKind::Net),
            (self.ipc, NamespaceKind::Ipc),
            (self.uts, NamespaceKind::Uts),
        ]
        .into_iter()
        .filter_map(|(wanted, kind)| wanted.then_some(kind))
        .collect()
    }
}

/// Bind-mounts the namespace file `source` (`/proc/<pid>/ns/<kind>`) on `target`, which exists.
pub(crate) fn bind_namespace(source: &Path, target: &Path) -> Result<(), NamespaceError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NamespaceError::Path {
        op: "bind-mount namespace to",
        path: target.to_path_buf(),
        source: e,
    })
}

/// The pin files of a pod's namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedNamespaces {
    /// The folder holding the pin files.
    pub dir: PathBuf,
    /// Pinned network namespace, if the pod has its own.
    pub net: Option<PathBuf>,
    /// Pinned IPC namespace, if the pod has its own.
    pub ipc: Option<PathBuf>,
    /// Pinned UTS namespace, if the pod has its own.
    pub uts: Option<PathBuf>,
    /// Pinned user namespace, for a pod with one (see [`crate::pin_with_user_namespace`]).
    pub user: Option<PathBuf>,
}

impl PinnedNamespaces {
    /// The pin file of one kind, if that namespace is the pod's own.
    pub fn path(&self, kind: NamespaceKind) -> Option<&Path> {
        match kind {
            NamespaceKind::Net => self.net.as_deref(),
            NamespaceKind::Ipc => self.ipc.as_deref(),
            NamespaceKind::Uts => self.uts.as_deref(),
            NamespaceKind::User => self.user.as_deref(),
            NamespaceKind::Pid => None,
        }
    }
}

/// Makes the namespaces `req` asks for and pins them under `dir` (`dir/net`, `dir/ipc`,
/// `dir/uts`). On failure nothing is left pinned.
pub fn pin(dir: &Path, req: &PinRequest) -> Result<PinnedNamespaces, NamespaceError> {
    check_sysctls(req)?;
    let kinds = req.kinds();
    let mut pinned = PinnedNamespaces {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    if kinds.is_empty() {
        return Ok(pinned);
    }
    fs::create_dir_all(dir).map_err(|e| path_err("create", dir, e))?;
    for kind in &kinds {
        let file = dir.join(kind.file_name());
        File::create(&file).map_err(|e| path_err("create", &file, e))?;
    }
    let result = run_on_new_thread(dir.to_path_buf(), kinds.clone(), req.clone());
    if let Err(e) = result {
        let _ = unpin(dir);
        return Err(e);
    }
    for kind in kinds {
        let file = Some(dir.join(kind.file_name()));
        match kind {
            NamespaceKind::Net => pinned.net = file,
            NamespaceKind::Ipc => pinned.ipc = file,
            NamespaceKind::Uts => pinned.uts = file,
            NamespaceKind::User | NamespaceKind::Pid => {}
        }
    }
    Ok(pinned)
}

/// Refuses sysctls that would land in a namespace the pod shares with the host.
pub(crate) fn check_sysctls(req: &PinRequest) -> Result<(), NamespaceError> {
    for (name, _) in &req.sysctls {
        let (owned, what) = match classify_sysctl(name)? {
            SysctlNamespace::Net => (req.net, "network"),
            SysctlNamespace::Ipc => (req.ipc, "IPC"),
            SysctlNamespace::Uts => (req.uts, "UTS"),
        };
        if !owned {
            return Err(NamespaceError::Sysctl {
                name: name.clone(),
                reason: format!(
                    "needs the pod's own {what} namespace, but the pod uses the host's"
                ),
            });
        }
    }
    Ok(())
}

/// unshare(2) of these kinds only changes the calling thread, so a throw-away thread can enter
/// the new namespaces, set them up and pin them while the rest of the daemon stays where it is.
fn run_on_new_thread(
    dir: PathBuf,
    kinds: Vec<NamespaceKind>,
    req: PinRequest,
) -> Result<(), NamespaceError> {
    let handle = std::thread::Builder::new()
        .name("ns-pin".into())
        .spawn(move || setup_in_new_namespaces(&dir, &kinds, &req))
        .map_err(|e| NamespaceError::Thread(e.to_string()))?;
    handle
        .join()
        .map_err(|_| NamespaceError::Thread("panicked".into()))?
}

fn setup_in_new_namespaces(
    dir: &Path,
    kinds: &[NamespaceKind],
    req: &PinRequest,
) -> Result<(), NamespaceError> {
    setup_namespaces(kinds, req)?;
    for kind in kinds {
        let source = PathBuf::from(format!("/proc/thread-self/ns/{}", kind.file_name()));
        bind_namespace(&source, &dir.join(kind.file_name()))?;
    }
    Ok(())
}

/// Unshares `kinds` in the calling thread, then sets the hostname, brings `lo` up and writes
/// the sysctls inside them.
pub(crate) fn setup_namespaces(
    kinds: &[NamespaceKind],
    req: &PinRequest,
) -> Result<(), NamespaceError> {
    let flags = kinds
        .iter()
        .fold(CloneFlags::empty(), |f, k| f | k.clone_flag());
    unshare(flags).map_err(|source| NamespaceError::Sys {
        op: "unshare",
        source,
    })?;
    if let (true, Some(name)) = (req.uts, &req.hostname) {
        nix::unistd::sethostname(name).map_err(|source| NamespaceError::Sys {
            op: "sethostname",
            source,
        })?;
    }
    if req.net {
        loopback::bring_up_lo()?;
    }
    for (name, value) in &req.sysctls {
        write_sysctl(name, value)?;
    }
    Ok(())
}

/// Releases every pin under `dir` and removes the folder's pin files. Safe to repeat; a missing
/// folder is fine.
pub fn unpin(dir: &Path) -> Result<(), NamespaceError> {
    for kind in [
        NamespaceKind::Net,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Pid,
        NamespaceKind::User,
    ] {
        let file = dir.join(kind.file_name());
        match umount2(&file, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (never pinned, or already released).
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(NamespaceError::Path {
                    op: "unmount",
                    path: file,
                    source,
                });
            }
        }
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(path_err("remove", &file, e)),
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // Something else lives there (the caller's own files): leave the folder to the caller.
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
        Err(e) => Err(path_err("remove", dir, e)),
    }
}

/// A file operation's error on `path`, as a [`NamespaceError::Path`].
pub(crate) fn path_err(op: &'static str, path: &Path, e: std::io::Error) -> NamespaceError {
    let source = nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    NamespaceError::Path {
        op,
        path: path.to_path_buf(),
        source,
    }
}
