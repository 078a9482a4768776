//! Safe access to a container's root filesystem from the host.
//!
//! The rootfs comes from an image, so it is untrusted: `/etc/passwd` may be a symlink to
//! `/etc/shadow` of the host, `..` may try to climb out. Every path here is resolved with
//! `openat2(RESOLVE_IN_ROOT)`, which makes the rootfs directory the `/` of the lookup, so no
//! symlink or `..` can reach a host file.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

/// An open container root filesystem.
pub(crate) struct Rootfs {
    dir: OwnedFd,
    path: PathBuf,
}

impl Rootfs {
    /// Opens the rootfs directory at `path` (a host path the daemon controls).
    pub(crate) fn open(path: &Path) -> io::Result<Rootfs> {
        let dir = File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "rootfs is not a directory",
            ));
        }
        Ok(Rootfs {
            dir: dir.into(),
            path: path.to_path_buf(),
        })
    }

    /// The host path of the rootfs.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a regular file inside the rootfs (`name` is taken relative to the rootfs `/`).
    /// `Ok(None)` when it does not exist. Files longer than `limit` bytes, and anything that is
    /// not a regular file (a FIFO would block us, a device could be anything), are errors.
    pub(crate) fn read_file(&self, name: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
        let fd = match self.resolve(name, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let st = fstat(fd.as_raw_fd())?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        if st.st_size as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ));
        }
        let mut data = Vec::with_capacity(st.st_size as usize);
        File::from(fd).take(limit + 1).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ));
        }
        Ok(Some(data))
    }

    /// Creates directory `name` and its missing parents inside the rootfs, mode 0755, like
    /// `mkdir -p` run in a chroot. Existing directories (also ones reached through symlinks that
    /// stay inside the rootfs) are accepted.
    pub(crate) fn mkdir_all(&self, name: &Path) -> io::Result<()> {
        let mut done = PathBuf::from("/");
        for part in name.components() {
            let Component::Normal(part) = part else {
                continue;
            };
            let parent = self.resolve_dir(&done)?;
            done.push(part);
            match mkdirat(
                Some(parent.as_raw_fd()),
                part,
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Proves the result is a directory (a file at the path fails here with ENOTDIR).
        self.resolve_dir(&done).map(drop)
    }

    fn resolve_dir(&self, name: &Path) -> io::Result<OwnedFd> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        self.resolve(name, flags).map_err(io::Error::from)
    }

    fn resolve<P: ?Sized + nix::NixPath>(&self, name: &P, flags: OFlag) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.dir.as_raw_fd(), name, how)?;
        // SAFETY: openat2 just returned this descriptor and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_cannot_leave_the_rootfs() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret"), "host-secret\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        // Absolute and relative escapes both land inside the rootfs, where nothing exists.
        symlink(host.path().join("secret"), root.path().join("etc/abs")).unwrap();
        symlink(
            "../../../../../../../../../..".to_string() + host.path().to_str().unwrap() + "/secret",
            root.path().join("etc/rel"),
        )
        .unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        assert_eq!(rootfs.read_file("etc/abs", 1024).unwrap(), None);
        assert_eq!(rootfs.read_file("/etc/rel", 1024).unwrap(), None);
        // A symlink that stays inside is followed.
        std::fs::write(root.path().join("etc/real"), "inside\n").unwrap();
        symlink("/etc/real", root.path().join("etc/link")).unwrap();
        assert_eq!(
            rootfs.read_file("/etc/link", 1024).unwrap().unwrap(),
            b"inside\n"
        );
    }

    #[test]
    fn refuses_fifos_and_large_files() {
        let root = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&root.path().join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        std::fs::write(root.path().join("big"), vec![b'x'; 100]).unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        assert!(rootfs.read_file("fifo", 1024).is_err());
        assert!(rootfs.read_file("big", 99).is_err());
        assert_eq!(rootfs.read_file("big", 100).unwrap().unwrap().len(), 100);
    }

    #[test]
    fn mkdir_all_stays_inside() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(host.path(), root.path().join("escape")).unwrap();
        let rootfs = Rootfs::open(root.path()).unwrap();
        // The symlink resolves to "<rootfs><host path>", which does not exist: like `mkdir -p`
        // in a chroot this fails, and the host directory is never touched.
        assert!(rootfs.mkdir_all(Path::new("/escape/data/x")).is_err());
        assert!(!host.path().join("data").exists());
        // Once the target exists inside the rootfs, the symlink is followed there.
        let inside = root.path().join(host.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        rootfs.mkdir_all(Path::new("/escape/data/x")).unwrap();
        assert!(inside.join("data/x").is_dir());
        assert!(!host.path().join("data").exists());
        rootfs.mkdir_all(Path::new("/var/lib/app")).unwrap();
        assert!(root.path().join("var/lib/app").is_dir());
        std::fs::write(root.path().join("file"), "").unwrap();
        assert!(rootfs.mkdir_all(Path::new("/file/sub")).is_err());
    }
}
