//! The CRI unix socket: created fresh at start with mode 0660, removed at clean shutdown.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;

/// Binds `path`, replacing a stale socket left by a crash but never another kind of file.
pub(super) fn bind(path: &Path, group: &str) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating socket folder {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "socket {} is in use by another running daemon",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode 0660 on {}", path.display()))?;
    if !group.is_empty() {
        let gid = nix::unistd::Group::from_name(group)
            .with_context(|| format!("looking up group {group:?}"))?
            .with_context(|| format!("grpc.group: no group named {group:?}"))?
            .gid;
        nix::unistd::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to group {group}", path.display()))?;
    }
    Ok(listener)
}

/// Removes the socket at shutdown; a missing file is fine.
pub(super) fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket");
        }
    }
}
