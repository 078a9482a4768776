//! Restoring a checkpointed container with the embedded executor. youki's libcontainer 0.7 can
//! checkpoint but has no restore, so this drives CRIU itself (its RPC through `rust-criu`, the
//! crate libcontainer's checkpoint uses), the way runc's restore does, and then writes the
//! libcontainer state a started container would have, so exec and delete work as for any other.
//!
//! Runs in the creator child (a fork of the monitor), which first joins the container's cgroups:
//! CRIU and the process it restores are then in them, and CRIU is told to leave cgroups alone.
//! The restored process is made a sibling of CRIU (`rst_sibling`), i.e. the creator's child, and
//! passes to the monitor (a child subreaper) when the creator exits, as a started one does.
//!
//! What CRIU is given:
//! - `root`: the container's root file system, mounted by the daemon (with the checkpoint's
//!   writable-layer changes already in it);
//! - every bind mount of the new spec as an external mount, key = destination (how libcontainer
//!   and runc name them at the dump), value = the new source; runc's dumps also name masked
//!   files (`/dev/null`) and device nodes;
//! - the new pod's network (and shared PID) namespace for the external namespaces of the dump
//!   (`extRootNetNS`, `extRootPidNS`), through inherited descriptors;
//! - the container's new stdio pipes in place of the pipes the checkpointed process had
//!   (`descriptors.json`).

use std::fs::{self, DirBuilder, File};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use rust_criu::rust_criu_protobuf::rpc::Criu_notify;

use super::Stdio;

/// The restored process's host pid, from CRIU's `post-restore` notification (the callback is a
/// plain function; this runs in a single-threaded creator child).
static RESTORED_PID: AtomicI32 = AtomicI32::new(0);

/// Where the container's stdio pipes sit for CRIU to inherit (criu swrk gets /dev/null as its
/// own stdin, so fds 0-2 cannot be used).
const INHERITED_STDIO: [RawFd; 3] = [200, 201, 202];

/// What a restore needs besides the bundle.
pub(crate) struct RestoreInput<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    /// libcontainer's state root (the container's state is made at `root/<id>`).
    pub root: &'a Path,
    /// The CRIU images.
    pub images: &'a Path,
    /// CRIU's work folder (its `restore.log`).
    pub work: &'a Path,
    /// The container's cgroup folders, one per hierarchy.
    pub cgroup_dirs: &'a [PathBuf],
}

fn on_notify(script: &str, notify: &Criu_notify, _fd: Option<RawFd>) -> i32 {
    if script == "post-restore" {
        RESTORED_PID.store(notify.pid(), Ordering::SeqCst);
    }
    0
}

/// Restores the container; returns the restored process's host pid. Runs in the creator child.
pub(crate) fn restore(input: &RestoreInput<'_>, stdio: Stdio) -> Result<i32, String> {
    join_cgroups(input.cgroup_dirs)?;
    let config = input.bundle.join("config.json");
    let spec = Spec::load(&config).map_err(|e| format!("reading {}: {e}", config.display()))?;
    let root = rootfs(input.bundle, &spec)?;
    let _stdio = place_stdio(stdio)?;

    let mut criu = rust_criu::Criu::new().map_err(|e| format!("criu: {e}"))?;
    let images =
        File::open(input.images).map_err(|e| format!("opening {}: {e}", input.images.display()))?;
    criu.set_images_dir_fd(images.as_raw_fd());
    fs::create_dir_all(input.work).map_err(|e| format!("{}: {e}", input.work.display()))?;
    let work = File::open(input.work).map_err(|e| format!("{}: {e}", input.work.display()))?;
    criu.set_work_dir_fd(work.as_raw_fd());
    criu.set_log_file(super::CRIU_RESTORE_LOG.into());
    criu.set_log_level(4);
    criu.set_root(root.to_string_lossy().into_owned());
    criu.set_rst_sibling(true);
    criu.set_manage_cgroups(true);
    criu.cgroups_mode(rust_criu::CgMode::IGNORE);
    criu.set_notify_scripts(true);
    criu.set_notify_cb(on_notify);
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "bind" || o == "rbind");
        if let (true, Some(source)) = (bind, m.source()) {
            criu.set_external_mount(
                m.destination().to_string_lossy().into_owned(),
                source.to_string_lossy().into_owned(),
            );
        }
    }
    // What runc's dump also calls external: masked files (bind mounts of /dev/null, all named
    // `/dev/null` in the images) and device nodes. A mapping the images do not use is ignored.
    let linux = spec.linux().as_ref();
    if linux.is_some_and(|l| l.masked_paths().as_ref().is_some_and(|m| !m.is_empty())) {
        criu.set_external_mount("/dev/null".into(), "/dev/null".into());
    }
    for dev in linux.and_then(|l| l.devices().clone()).unwrap_or_default() {
        let path = dev.path().to_string_lossy().into_owned();
        criu.set_external_mount(path.clone(), path);
    }
    let _namespaces = inherit_namespaces(&mut criu, &spec)?;
    for (i, fd) in descriptors(input.images)?.iter().enumerate() {
        if fd.contains("pipe:") {
            criu.add_inherit_fd(INHERITED_STDIO[i], fd.clone())
                .map_err(|e| e.to_string())?;
        }
    }
    criu.restore().map_err(|e| {
        let log = input.work.join(super::CRIU_RESTORE_LOG);
        format!("criu restore: {e}{}", super::criu_errors(&[log]))
    })?;
    let pid = RESTORED_PID.load(Ordering::SeqCst);
    if pid <= 0 {
        return Err("criu restored the container but reported no pid".into());
    }
    save_state(input, &spec, pid)?;
    Ok(pid)
}

fn join_cgroups(dirs: &[PathBuf]) -> Result<(), String> {
    let me = std::process::id().to_string();
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        fs::write(&procs, &me).map_err(|e| format!("joining {}: {e}", procs.display()))?;
    }
    Ok(())
}

fn rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf, String> {
    let root = spec
        .root()
        .as_ref()
        .ok_or("the spec has no root")?
        .path()
        .clone();
    Ok(if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    })
}

/// The stdio pipes at [`INHERITED_STDIO`], without close-on-exec, for criu swrk to inherit.
fn place_stdio(stdio: Stdio) -> Result<Vec<OwnedFd>, String> {
    let mut placed = Vec::new();
    for (fd, at) in [stdio.stdin, stdio.stdout, stdio.stderr]
        .into_iter()
        .zip(INHERITED_STDIO)
    {
        // SAFETY: dup2 onto a fixed number this single-threaded child does not otherwise use;
        // the new descriptor is owned by the returned OwnedFd.
        let rc = unsafe { libc::dup2(fd.as_raw_fd(), at) };
        if rc < 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `at` was just made by dup2 and nothing else owns it.
        placed.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(at) });
    }
    Ok(placed)
}

/// The new pod's namespaces for the dump's external ones; the descriptors stay open (and
/// inheritable) until CRIU is done.
fn inherit_namespaces(criu: &mut rust_criu::Criu, spec: &Spec) -> Result<Vec<OwnedFd>, String> {
    let mut open_fds = Vec::new();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in namespaces {
        let name = match ns.typ() {
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Pid => "pid",
            _ => continue,
        };
        let Some(path) = ns.path() else { continue };
        let fd = open(path.as_path(), OFlag::O_RDONLY, Mode::empty())
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        criu.add_inherit_fd(fd.as_raw_fd(), rust_criu::criu_ns_to_key(name))
            .map_err(|e| e.to_string())?;
        open_fds.push(fd);
    }
    Ok(open_fds)
}

/// `descriptors.json`: where the checkpointed process's stdin, stdout and stderr pointed.
fn descriptors(images: &Path) -> Result<Vec<String>, String> {
    let path = images.join("descriptors.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The libcontainer state of a running container, as its create and start would leave it.
fn save_state(input: &RestoreInput<'_>, spec: &Spec, pid: i32) -> Result<(), String> {
    let dir = input.root.join(input.id);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    YoukiConfig::from_spec(spec, input.id)
        .and_then(|c| c.save(&dir))
        .map_err(|e| format!("saving libcontainer config: {e}"))?;
    let mut container = Container::new(
        input.id,
        ContainerStatus::Running,
        Some(pid),
        input.bundle,
        &dir,
    )
    .map_err(|e| super::error_chain(&e))?;
    container.set_systemd(false);
    container.save().map_err(|e| super::error_chain(&e))
}
