//! Applying one layer tar to its (empty) snapshot directory, safely.
//!
//! Every parent directory is opened with `openat2(RESOLVE_BENEATH)` from the layer root, and
//! every entry is created relative to that fd without following its last component, so no
//! entry, symlink or hard link can make a write land outside the layer. Entries with `..` or
//! absolute paths are refused outright. Whiteouts become overlayfs whiteouts.

use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::EntryType;

use super::UnpackError;
use super::fsops;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
/// AUFS bookkeeping entries (`.wh..wh.plnk`, ...): meaningless for overlayfs.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
const OVERLAY_OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
/// A layer must not set overlayfs's own xattrs (redirects, origins) on its files.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
const COPY_BUFFER: usize = 256 * 1024;

/// Applies entries of one layer and counts what it wrote.
pub(crate) struct Applier {
    root: OwnedFd,
    /// The last parent directory opened, by path: entries come grouped by directory.
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    /// Directory mtimes, set at the end because creating entries changes them.
    dir_times: Vec<(Vec<u8>, i64)>,
    buf: Vec<u8>,
    /// Apparent bytes of regular files written.
    pub bytes: u64,
    /// Inodes created.
    pub inodes: u64,
}

/// Attributes of an entry, with PAX overrides applied.
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Applier {
    pub(crate) fn new(root: &Path) -> Result<Self, UnpackError> {
        let c = CString::new(root.as_os_str().as_bytes())
            .map_err(|_| UnpackError::Invalid("NUL in layer path".into()))?;
        let root_fd =
            fsops::open_dir(&c).map_err(|e| UnpackError::io("open layer root", root, e))?;
        Ok(Applier {
            root: root_fd,
            cached_parent: None,
            dir_times: Vec::new(),
            buf: vec![0; COPY_BUFFER],
            bytes: 0,
            inodes: 0,
        })
    }

    /// Apply one tar entry.
    pub(crate) fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let comps = clean_path(&raw_path)?;
        let attrs = attrs(entry)?;
        let Some((name, parent)) = comps.split_last() else {
            // The layer root itself ("./"): only its metadata.
            if kind == EntryType::Directory {
                self.set_meta(b"".as_slice(), c".", kind, &attrs)?;
            }
            return Ok(());
        };
        let parent_path = parent.join(&b'/');
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&parent_path, name);
        }
        let cname = cstring(name)?;
        self.ensure_parent(&parent_path)?;
        let existing = fsops::lstat_at(self.parent_fd(), &cname)
            .map_err(|e| UnpackError::io_raw("stat", &raw_path, e))?;
        let keep_dir = kind == EntryType::Directory && existing.as_ref().is_some_and(fsops::is_dir);
        if existing.is_some() && !keep_dir {
            if existing.as_ref().is_some_and(fsops::is_dir) {
                // A directory is being replaced: cached fds below it become stale.
                self.cached_parent = None;
            }
            self.ensure_parent(&parent_path)?;
            fsops::remove_all_at(self.parent_fd(), &cname)
                .map_err(|e| UnpackError::io_raw("replace", &raw_path, e))?;
        }
        self.ensure_parent(&parent_path)?;
        let dir = self.parent_fd();
        let made = |e: io::Error| UnpackError::io_raw("create", &raw_path, e);
        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    fsops::mkdir_at(dir, &cname, 0o700).map_err(made)?;
                }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = fsops::create_file_at(dir, &cname).map_err(made)?;
                self.copy(entry, &mut file, &raw_path)?;
                self.inodes += 1;
                return file_meta(&file, &attrs)
                    .map_err(|e| UnpackError::io_raw("set attributes of", &raw_path, e));
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    UnpackError::Invalid(format!("symlink {} has no target", lossy(&raw_path)))
                })?;
                // The target is stored, never followed: we only ever resolve paths beneath the root.
                fsops::symlink_at(&cstring(&target)?, dir, &cname).map_err(made)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    UnpackError::Invalid(format!("hard link {} has no target", lossy(&raw_path)))
                })?;
                return self.hard_link(&target, dir, &cname, &raw_path);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (file_type, dev) = match kind {
                    EntryType::Char => (libc::S_IFCHR, device(entry)?),
                    EntryType::Block => (libc::S_IFBLK, device(entry)?),
                    _ => (libc::S_IFIFO, 0),
                };
                fsops::mknod_at(dir, &cname, file_type | (attrs.mode & 0o777), dev)
                    .map_err(made)?;
            }
            other => {
                return Err(UnpackError::Invalid(format!(
                    "unsupported tar entry type {other:?} for {}",
                    lossy(&raw_path)
                )));
            }
        }
        self.inodes += 1;
        self.set_meta(&comps.join(&b'/'), &cname, kind, &attrs)
    }

    /// Set directory mtimes, deepest first.
    pub(crate) fn finish(mut self) -> Result<(), UnpackError> {
        self.cached_parent = None;
        let times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in times.into_iter().rev() {
            let (parent, name) = match path.iter().rposition(|b| *b == b'/') {
                Some(i) => (path[..i].to_vec(), path[i + 1..].to_vec()),
                None if path.is_empty() => (Vec::new(), b".".to_vec()),
                None => (Vec::new(), path.clone()),
            };
            let fd = self.open_beneath(&parent)?;
            fsops::set_times_at(fd.as_fd(), &cstring(&name)?, mtime)
                .map_err(|e| UnpackError::io_raw("set mtime of", &path, e))?;
        }
        Ok(())
    }

    /// Flush this layer's filesystem to disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        fsops::syncfs(self.root.as_fd())
    }

    fn whiteout(&mut self, parent_path: &[u8], name: &[u8]) -> Result<(), UnpackError> {
        let hidden = match classify_whiteout(name)? {
            Whiteout::Opaque => {
                self.ensure_parent(parent_path)?;
                return fsops::set_xattr(self.parent_fd(), OVERLAY_OPAQUE_XATTR, b"y")
                    .map_err(|e| UnpackError::io_raw("mark opaque", parent_path, e));
            }
            Whiteout::AufsMeta => return Ok(()),
            Whiteout::Hide(hidden) => hidden,
        };
        self.ensure_parent(parent_path)?;
        let cname = cstring(hidden)?;
        fsops::remove_all_at(self.parent_fd(), &cname)
            .map_err(|e| UnpackError::io_raw("whiteout", hidden, e))?;
        self.cached_parent = None;
        self.ensure_parent(parent_path)?;
        // overlayfs's whiteout: a 0:0 character device.
        fsops::mknod_at(self.parent_fd(), &cname, libc::S_IFCHR, 0)
            .map_err(|e| UnpackError::io_raw("whiteout", hidden, e))?;
        self.inodes += 1;
        Ok(())
    }

    fn hard_link(
        &self,
        target: &[u8],
        dir: BorrowedFd<'_>,
        name: &CStr,
        raw_path: &[u8],
    ) -> Result<(), UnpackError> {
        let comps = clean_path(target)?;
        let Some((tname, tparent)) = comps.split_last() else {
            return Err(UnpackError::Hostile(format!(
                "hard link {} to the layer root",
                lossy(raw_path)
            )));
        };
        let tparent_fd = self.open_beneath(&tparent.join(&b'/'))?;
        fsops::link_at(tparent_fd.as_fd(), &cstring(tname)?, dir, name).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ENOENT) => UnpackError::Invalid(format!(
                    "hard link {} to missing {}",
                    lossy(raw_path),
                    lossy(target)
                )),
                _ => UnpackError::io_raw("hard link", raw_path, e),
            }
        })
    }

    fn set_meta(
        &mut self,
        path: &[u8],
        name: &CStr,
        kind: EntryType,
        attrs: &Attrs,
    ) -> Result<(), UnpackError> {
        let parent_path = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => path[..i].to_vec(),
            None => Vec::new(),
        };
        self.ensure_parent(&parent_path)?;
        let dir = self.parent_fd();
        let fail = |op: &'static str| move |e: io::Error| UnpackError::io_raw(op, path, e);
        fsops::chown_at(dir, name, attrs.uid, attrs.gid).map_err(fail("chown"))?;
        if kind == EntryType::Symlink {
            fsops::set_times_at(dir, name, attrs.mtime).map_err(fail("set mtime of"))?;
            return Ok(());
        }
        // After chown: chown clears setuid/setgid bits.
        fsops::chmod_at(dir, name, attrs.mode & 0o7777).map_err(fail("chmod"))?;
        if !attrs.xattrs.is_empty() && kind == EntryType::Directory {
            let fd = fsops::open_entry(dir, name).map_err(fail("open"))?;
            for (k, v) in &attrs.xattrs {
                fsops::set_xattr(fd.as_fd(), k, v).map_err(fail("set xattr on"))?;
            }
        }
        if kind == EntryType::Directory {
            self.dir_times.push((path.to_vec(), attrs.mtime));
        } else {
            fsops::set_times_at(dir, name, attrs.mtime).map_err(fail("set mtime of"))?;
        }
        Ok(())
    }

    fn copy<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut std::fs::File,
        path: &[u8],
    ) -> Result<(), UnpackError> {
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::Read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| UnpackError::io_raw("write", path, e))?;
            self.bytes += n as u64;
        }
    }

    /// The parent directory fd for entries under `path`, creating missing directories (tars
    /// may omit them) and caching the last one.
    fn ensure_parent(&mut self, path: &[u8]) -> Result<(), UnpackError> {
        let hit = matches!(&self.cached_parent, Some((p, _)) if p.as_slice() == path);
        if !hit {
            let fd = self.open_or_create(path)?;
            self.cached_parent = Some((path.to_vec(), fd));
        }
        Ok(())
    }

    /// The directory [`Applier::ensure_parent`] opened last (the root if none).
    fn parent_fd(&self) -> BorrowedFd<'_> {
        match &self.cached_parent {
            Some((_, fd)) => fd.as_fd(),
            None => self.root.as_fd(),
        }
    }

    fn open_or_create(&mut self, path: &[u8]) -> Result<OwnedFd, UnpackError> {
        match self.open_beneath(path) {
            Err(UnpackError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        // Walk down, creating what is missing; each step is again resolved beneath the root.
        let mut current = self.open_beneath(b"")?;
        let mut prefix = Vec::new();
        for comp in path.split(|b| *b == b'/') {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(comp);
            match fsops::mkdir_at(current.as_fd(), &cstring(comp)?, 0o755) {
                Ok(()) => self.inodes += 1,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(UnpackError::io_raw("create parent", &prefix, e)),
            }
            current = self.open_beneath(&prefix)?;
        }
        Ok(current)
    }

    fn open_beneath(&self, path: &[u8]) -> Result<OwnedFd, UnpackError> {
        let c = if path.is_empty() {
            c".".to_owned()
        } else {
            cstring(path)?
        };
        fsops::open_dir_beneath(self.root.as_fd(), &c).map_err(|e| match e.raw_os_error() {
            Some(libc::EXDEV) => UnpackError::Hostile(format!(
                "{} resolves outside the layer (through a symlink)",
                lossy(path)
            )),
            Some(libc::ELOOP) => UnpackError::Hostile(format!("{} is a symlink loop", lossy(path))),
            Some(libc::ENOTDIR) => {
                UnpackError::Invalid(format!("{} is not a directory", lossy(path)))
            }
            _ => UnpackError::io_raw("open", path, e),
        })
    }
}

/// What a `.wh.`-prefixed entry name asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// `.wh..wh..opq`: hide everything lower layers have in the parent directory.
    Opaque,
    /// Other `.wh..wh.` names: AUFS bookkeeping, ignored.
    AufsMeta,
    /// `.wh.<name>`: hide `<name>` in the parent directory.
    Hide(&'a [u8]),
}

/// Classify a whiteout entry name (one path component starting with `.wh.`). The name it
/// hides must be a real entry name: `.wh..` and `.wh...` would otherwise remove the parent
/// directory's contents or, for a top-level entry, those of the directory above the layer.
pub(crate) fn classify_whiteout(name: &[u8]) -> Result<Whiteout<'_>, UnpackError> {
    if name == OPAQUE_WHITEOUT {
        return Ok(Whiteout::Opaque);
    }
    if name.starts_with(AUFS_META_PREFIX) {
        return Ok(Whiteout::AufsMeta);
    }
    let hidden = name.strip_prefix(WHITEOUT_PREFIX).unwrap_or(name);
    match hidden {
        b"" => Err(UnpackError::Invalid("whiteout without a name".into())),
        b"." | b".." => Err(UnpackError::Hostile(format!(
            "whiteout {} names {} instead of an entry",
            lossy(name),
            lossy(hidden)
        ))),
        _ if hidden.contains(&b'/') => Err(UnpackError::Hostile(format!(
            "whiteout {} names a path",
            lossy(name)
        ))),
        _ => Ok(Whiteout::Hide(hidden)),
    }
}

/// Split a tar path into components, refusing absolute paths and `..`.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Vec<&[u8]>, UnpackError> {
    if raw.first() == Some(&b'/') {
        return Err(UnpackError::Hostile(format!(
            "absolute path {}",
            lossy(raw)
        )));
    }
    let mut comps = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(UnpackError::Hostile(format!("'..' in path {}", lossy(raw)))),
            c => comps.push(c),
        }
    }
    Ok(comps)
}

fn attrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Attrs, UnpackError> {
    let h = entry.header();
    let bad = |what: &str| UnpackError::Invalid(format!("bad {what} in tar header"));
    let mut a = Attrs {
        mode: h.mode().map_err(|_| bad("mode"))?,
        uid: h.uid().map_err(|_| bad("uid"))? as u32,
        gid: h.gid().map_err(|_| bad("gid"))? as u32,
        mtime: h.mtime().map_err(|_| bad("mtime"))? as i64,
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions().map_err(|_| bad("PAX header"))? {
        for ext in exts {
            let ext = ext.map_err(|_| bad("PAX record"))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let number = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
            };
            match key {
                "uid" => a.uid = number().ok_or_else(|| bad("PAX uid"))? as u32,
                "gid" => a.gid = number().ok_or_else(|| bad("PAX gid"))? as u32,
                "mtime" => a.mtime = number().ok_or_else(|| bad("PAX mtime"))?,
                k if k.starts_with(PAX_XATTR_PREFIX) => {
                    let name = &k[PAX_XATTR_PREFIX.len()..];
                    if !name.starts_with(OVERLAY_XATTR_PREFIX) {
                        a.xattrs.push((cstring(name.as_bytes())?, value.to_vec()));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(a)
}

fn file_meta(file: &std::fs::File, a: &Attrs) -> io::Result<()> {
    std::os::unix::fs::fchown(file, Some(a.uid), Some(a.gid))?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(a.mode & 0o7777))?;
    for (k, v) in &a.xattrs {
        fsops::set_xattr(file.as_fd(), k, v)?;
    }
    let t = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(a.mtime.max(0) as u64))
        .unwrap_or(std::time::UNIX_EPOCH);
    file.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
}

fn device<R: Read>(entry: &tar::Entry<'_, R>) -> Result<libc::dev_t, UnpackError> {
    let h = entry.header();
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    Ok(libc::makedev(major, minor))
}

fn cstring(b: &[u8]) -> Result<CString, UnpackError> {
    CString::new(b).map_err(|_| UnpackError::Invalid(format!("NUL byte in {}", lossy(b))))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths() {
        assert_eq!(
            clean_path(b"./a//b/./c").unwrap(),
            vec![b"a".as_slice(), b"b", b"c"]
        );
        assert!(clean_path(b"./").unwrap().is_empty());
        assert!(matches!(clean_path(b"../x"), Err(UnpackError::Hostile(_))));
        assert!(matches!(
            clean_path(b"a/../../x"),
            Err(UnpackError::Hostile(_))
        ));
        assert!(matches!(
            clean_path(b"/etc/passwd"),
            Err(UnpackError::Hostile(_))
        ));
    }
}

/// Tar entry paths and whiteouts under attack: arbitrary names never panic, and nothing that is
/// accepted can name or touch anything outside the layer root.
#[cfg(test)]
mod props {
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    /// Components an attacker would try, plus arbitrary bytes without `/`.
    fn component() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"".to_vec()),
            Just(b".".to_vec()),
            Just(b"..".to_vec()),
            Just(b"...".to_vec()),
            Just(b"a".to_vec()),
            Just(b"b".to_vec()),
            Just(b".wh.a".to_vec()),
            Just(b".wh.".to_vec()),
            Just(b".wh..".to_vec()),
            Just(b".wh...".to_vec()),
            Just(OPAQUE_WHITEOUT.to_vec()),
            Just(b".wh..wh.plnk".to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("no slash", |b| *b != b'/'), 1..8),
        ]
    }

    fn path() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just(&b""[..]), Just(&b"/"[..]), Just(&b"./"[..])],
            proptest::collection::vec(component(), 0..6),
            any::<bool>(),
        )
            .prop_map(|(lead, comps, trailing)| {
                let mut p = lead.to_vec();
                p.extend(comps.join(&b'/'));
                if trailing {
                    p.push(b'/');
                }
                p
            })
    }

    /// What `clean_path` promises, checked against an independent reading of `raw`.
    fn check_clean(raw: &[u8]) -> Result<(), TestCaseError> {
        let hostile = raw.first() == Some(&b'/') || raw.split(|b| *b == b'/').any(|c| c == b"..");
        match clean_path(raw) {
            Ok(comps) => {
                prop_assert!(!hostile, "accepted {:?}", lossy(raw));
                let expected: Vec<&[u8]> = raw
                    .split(|b| *b == b'/')
                    .filter(|c| !c.is_empty() && *c != b".")
                    .collect();
                prop_assert_eq!(&comps, &expected);
                let root = Path::new("/layer");
                let mut joined = root.to_path_buf();
                for c in &comps {
                    prop_assert!(!c.contains(&b'/'));
                    joined.push(std::ffi::OsStr::from_bytes(c));
                }
                prop_assert!(joined.starts_with(root));
                prop_assert!(
                    joined
                        .components()
                        .skip(2)
                        .all(|c| matches!(c, Component::Normal(_)))
                );
                prop_assert_eq!(joined.components().count(), 2 + comps.len());
            }
            Err(e) => {
                prop_assert!(hostile, "refused {:?}: {e:?}", lossy(raw));
                prop_assert!(matches!(e, UnpackError::Hostile(_)));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn clean_path_of_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_clean(&raw)?;
        }

        #[test]
        fn clean_path_of_hostile_component_sequences(raw in path()) {
            check_clean(&raw)?;
        }

        #[test]
        fn whiteouts_only_hide_entry_names(name in component(), tail in component()) {
            let mut name = name;
            name.extend(tail);
            if !name.starts_with(WHITEOUT_PREFIX) {
                return Ok(());
            }
            match classify_whiteout(&name) {
                Ok(Whiteout::Hide(hidden)) => {
                    prop_assert!(!hidden.is_empty());
                    prop_assert!(hidden != b"." && hidden != b"..");
                    prop_assert!(!hidden.contains(&b'/'));
                    prop_assert_eq!([WHITEOUT_PREFIX, hidden].concat(), name);
                }
                Ok(Whiteout::Opaque) => prop_assert_eq!(name, OPAQUE_WHITEOUT),
                Ok(Whiteout::AufsMeta) => prop_assert!(name.starts_with(AUFS_META_PREFIX)),
                Err(_) => {}
            }
        }
    }

    /// One tar entry: its raw name, kind and link target.
    #[derive(Debug, Clone)]
    struct RawEntry {
        name: Vec<u8>,
        kind: u8,
        link: Vec<u8>,
    }

    fn raw_entry() -> impl Strategy<Value = RawEntry> {
        let short = |p: &Vec<u8>| p.len() <= 100;
        (
            path().prop_filter("fits a ustar name", short),
            prop_oneof![Just(b'0'), Just(b'5'), Just(b'2'), Just(b'1')],
            path().prop_filter("fits a ustar link name", short),
        )
            .prop_map(|(name, kind, link)| RawEntry { name, kind, link })
    }

    fn tar_of(entries: &[RawEntry]) -> Vec<u8> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_old();
            {
                let old = h.as_old_mut();
                old.name[..e.name.len()].copy_from_slice(&e.name);
                old.linkname[..e.link.len()].copy_from_slice(&e.link);
            }
            h.set_entry_type(tar::EntryType::new(e.kind));
            h.set_mode(if e.kind == b'5' { 0o755 } else { 0o644 });
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
            h.set_mtime(1);
            let data: &[u8] = if e.kind == b'0' { b"data" } else { b"" };
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Hostile layers applied for real: whatever fails, nothing beside the layer root (in
        /// its parent directory) is created, changed or removed.
        #[test]
        fn applying_hostile_entries_stays_in_the_root(
            entries in proptest::collection::vec(raw_entry(), 1..12)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("layer");
            std::fs::create_dir(&root).unwrap();
            std::fs::write(dir.path().join("sentinel"), b"keep").unwrap();
            std::fs::create_dir(dir.path().join("sibling")).unwrap();
            std::fs::write(dir.path().join("sibling/a"), b"keep").unwrap();
            let tar = tar_of(&entries);
            let mut applier = Applier::new(&root).unwrap();
            let mut archive = tar::Archive::new(&tar[..]);
            // Keep going after errors: every entry gets its chance to escape.
            for entry in archive.entries().unwrap() {
                let Ok(mut entry) = entry else { break };
                let _ = applier.apply(&mut entry);
            }
            let _ = applier.finish();
            let mut beside: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            beside.sort();
            prop_assert_eq!(beside, ["layer", "sentinel", "sibling"]);
            prop_assert_eq!(std::fs::read(dir.path().join("sentinel")).unwrap(), b"keep");
            prop_assert_eq!(std::fs::read(dir.path().join("sibling/a")).unwrap(), b"keep");
            let meta = std::fs::symlink_metadata(&root).unwrap();
            prop_assert!(meta.is_dir());
        }
    }
}
