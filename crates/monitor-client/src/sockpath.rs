//! Unix socket paths short enough for `sun_path`.
//!
//! A socket address holds at most 107 bytes of path, and a state dir with a 64-character
//! container id under a long root is longer than that. For such paths we open the parent folder
//! and name the socket through `/proc/<pid>/fd/<dirfd>/<name>` (as conmon does): short, and it
//! resolves for any root process, including an OCI runtime we hand a console socket to.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// Longest path we bind or connect as is (sun_path is 108 bytes with its NUL).
const MAX_DIRECT: usize = 100;

/// A socket path usable in `bind`/`connect`, keeping the folder fd it may go through alive.
#[derive(Debug)]
pub struct SocketPath {
    path: PathBuf,
    _dir: Option<OwnedFd>,
}

impl SocketPath {
    /// The short form of `full` (which need not exist yet; its parent must).
    pub fn new(full: &Path) -> io::Result<SocketPath> {
        if full.as_os_str().len() <= MAX_DIRECT {
            return Ok(SocketPath {
                path: full.to_path_buf(),
                _dir: None,
            });
        }
        let (parent, name) = match (full.parent(), full.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "socket path has no folder",
                ));
            }
        };
        let raw = open(
            parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let dir = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut short =
            format!("/proc/{}/fd/{}/", std::process::id(), dir.as_raw_fd()).into_bytes();
        short.extend_from_slice(name.as_bytes());
        if short.len() > MAX_DIRECT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket name too long",
            ));
        }
        Ok(SocketPath {
            path: PathBuf::from(OsStr::from_bytes(&short)),
            _dir: Some(dir),
        })
    }

    /// The path to bind or connect.
    pub fn as_path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_bind_and_connect() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let full = deep.join("monitor.sock");
        let short = SocketPath::new(&full).unwrap();
        assert!(short.as_path().as_os_str().len() <= MAX_DIRECT);
        let listener = std::os::unix::net::UnixListener::bind(short.as_path()).unwrap();
        assert!(full.exists(), "the socket lives at the long path");
        let again = SocketPath::new(&full).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(again.as_path()).unwrap();
        let _ = listener.accept().unwrap();
    }

    #[test]
    fn short_paths_stay_as_they_are() {
        let p = Path::new("/run/x/monitor.sock");
        assert_eq!(SocketPath::new(p).unwrap().as_path(), p);
    }
}
