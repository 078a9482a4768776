//! Snapshotter against real overlay mounts. Needs root; no registry.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use std::path::{Path, PathBuf};
use std::sync::Arc;

use longshore_snapshot::{LayerRecord, MountStrategy, Snapshotter, image_lease};

/// Unmounts on drop, so a failing test leaves no mount behind.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = longshore_snapshot::unmount(&self.0);
    }
}

fn open(root: &Path) -> Snapshotter {
    let db = Arc::new(redb::Database::create(root.join("test.db")).unwrap());
    Snapshotter::open(root, db).unwrap()
}

fn chain(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn record() -> LayerRecord {
    LayerRecord {
        parent: None,
        diff_id: chain(0),
        size_bytes: 1,
        inodes: 1,
    }
}

/// Commit a layer holding `files` (path, content) under lease `owner`.
fn make_layer(s: &Snapshotter, id: &str, files: &[(&str, &str)], owner: &str) {
    let w = s.begin_layer(id).unwrap();
    for (path, content) in files {
        let p = w.fs_dir().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    w.commit(record(), owner).unwrap();
}

#[test]
fn container_overlay_sees_layers_and_writes_to_upper() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    make_layer(&s, &chain(1), &[("a", "base"), ("b", "base")], "image:x");
    make_layer(&s, &chain(2), &[("a", "top")], "image:x");
    let rootfs = s.prepare("ctr1", &[chain(1), chain(2)]).unwrap();
    assert_eq!(
        rootfs.lowerdirs[0],
        s.layer_dir(&chain(2)).unwrap(),
        "top layer first"
    );
    let target = dir.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    s.mount(&rootfs, &target).unwrap();
    let guard = MountGuard(target.clone());
    assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "top");
    assert_eq!(std::fs::read_to_string(target.join("b")).unwrap(), "base");
    std::fs::write(target.join("new"), vec![7u8; 100_000]).unwrap();
    assert!(rootfs.upperdir.join("new").exists());
    assert!(!s.layer_dir(&chain(1)).unwrap().join("new").exists());
    let (bytes, inodes) = s.usage("ctr1").unwrap();
    assert!(bytes >= 100_000 && inodes >= 2, "{bytes} {inodes}");
    drop(guard);
    s.unmount(&target).unwrap(); // idempotent
    s.remove("ctr1").unwrap();
    s.remove("ctr1").unwrap();
    assert!(!rootfs.upperdir.exists());
    assert!(s.prepare("../evil", &[]).is_err());
}

#[test]
fn leases_keep_layers_until_the_last_user_goes() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    make_layer(&s, &chain(1), &[("shared", "1")], &image_lease("A"));
    make_layer(&s, &chain(2), &[("only-a", "1")], &image_lease("A"));
    s.add_lease(&image_lease("B"), &[chain(1)]).unwrap();
    s.prepare("ctr", &[chain(1)]).unwrap();

    s.remove_lease(&image_lease("A")).unwrap();
    let report = s.gc().unwrap();
    assert_eq!(report.removed, vec![chain(2)]);
    assert!(!s.layer_dir(&chain(2)).unwrap().exists());
    assert!(s.layer_dir(&chain(1)).unwrap().exists());

    s.remove_lease(&image_lease("B")).unwrap();
    assert!(
        s.gc().unwrap().removed.is_empty(),
        "the container still holds the layer"
    );
    s.remove("ctr").unwrap();
    assert_eq!(s.gc().unwrap().removed, vec![chain(1)]);
    assert!(s.layers().unwrap().is_empty());
    assert!(
        s.prepare("ctr2", &[chain(1)]).is_err(),
        "a freed layer cannot be used"
    );
}

#[test]
fn unfinished_layers_leave_nothing() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    {
        let w = s.begin_layer(&chain(5)).unwrap();
        std::fs::write(w.fs_dir().join("partial"), "x").unwrap();
        // dropped without commit
    }
    assert_eq!(std::fs::read_dir(s.snapshots_dir()).unwrap().count(), 0);
    // A directory without a record (a crash after rename) is removed on open.
    std::fs::create_dir_all(s.layer_dir(&chain(6)).unwrap()).unwrap();
    drop(s);
    let s = open(dir.path());
    assert!(!s.layer_dir(&chain(6)).unwrap().exists());
    assert!(s.begin_layer("sha256:../../etc").is_err());
}

#[test]
fn read_only_mounts_of_one_and_many_layers() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    make_layer(&s, &chain(1), &[("a", "1")], "image:x");
    make_layer(&s, &chain(2), &[("b", "2")], "image:x");
    for layers in [vec![chain(1)], vec![chain(1), chain(2)]] {
        let target = dir.path().join(format!("ro{}", layers.len()));
        std::fs::create_dir(&target).unwrap();
        s.mount_readonly(&layers, &target).unwrap();
        let _guard = MountGuard(target.clone());
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "1");
        assert_eq!(target.join("b").exists(), layers.len() == 2);
        let err = std::fs::write(target.join("c"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }
}

/// 150 layers under a long root: the lowerdir option is far over a page.
#[test]
fn many_layers_mount_with_every_long_option_strategy() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let long_root = dir
        .path()
        .join("a-rather-long-directory-name-to-make-every-layer-path-longer-than-usual");
    std::fs::create_dir_all(&long_root).unwrap();
    let s = open(&long_root);
    let ids: Vec<String> = (1..=150).map(chain).collect();
    for (i, id) in ids.iter().enumerate() {
        make_layer(
            &s,
            id,
            &[(&format!("f{i}"), &i.to_string()), ("top", &i.to_string())],
            "image:x",
        );
    }
    let total: usize = ids
        .iter()
        .map(|id| s.layer_dir(id).unwrap().as_os_str().len() + 1)
        .sum();
    assert!(
        total > 4096,
        "option string should exceed a page, is {total}"
    );
    drop(s);
    for (n, strategy) in [
        MountStrategy::Auto,
        MountStrategy::LowerdirPlus,
        MountStrategy::ProcFd,
    ]
    .into_iter()
    .enumerate()
    {
        let s = open(&long_root).with_mount_strategy(strategy);
        let id = format!("ctr{n}");
        let rootfs = s.prepare(&id, &ids).unwrap();
        let target = dir.path().join(format!("mnt{n}"));
        std::fs::create_dir(&target).unwrap();
        s.mount(&rootfs, &target)
            .unwrap_or_else(|e| panic!("{strategy:?}: {e}"));
        let _guard = MountGuard(target.clone());
        assert_eq!(
            std::fs::read_to_string(target.join("f0")).unwrap(),
            "0",
            "{strategy:?}"
        );
        assert_eq!(std::fs::read_to_string(target.join("f149")).unwrap(), "149");
        assert_eq!(
            std::fs::read_to_string(target.join("top")).unwrap(),
            "149",
            "top layer wins"
        );
        std::fs::write(target.join("written"), "w").unwrap();
        assert!(rootfs.upperdir.join("written").exists());
    }
    let s = open(&long_root).with_mount_strategy(MountStrategy::Plain);
    let rootfs = s.prepare("plain", &ids).unwrap();
    let target = dir.path().join("plain");
    std::fs::create_dir(&target).unwrap();
    assert!(
        s.mount(&rootfs, &target).is_err(),
        "plain mount(2) cannot take more than a page"
    );
}

/// A process in a fresh user namespace mapping ids 0..65536 to `host`..; killed on drop.
struct UserNs(std::process::Child);

impl UserNs {
    fn new(host: u32) -> UserNs {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("60");
        // SAFETY: unshare in the forked child before exec; no allocation.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        let child = cmd.spawn().unwrap();
        for file in ["uid_map", "gid_map"] {
            std::fs::write(
                format!("/proc/{}/{file}", child.id()),
                format!("0 {host} 65536\n"),
            )
            .unwrap();
        }
        UserNs(child)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.0.id()))
    }
}

impl Drop for UserNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn idmapped_overlay_shows_shared_layers_owned_by_the_namespace_root() {
    use std::os::unix::fs::MetadataExt;
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    make_layer(
        &s,
        &chain(1),
        &[("etc/a", "base"), ("b", "base")],
        "image:x",
    );
    make_layer(&s, &chain(2), &[("etc/a", "top")], "image:x");
    let rootfs = s.prepare("ctr-u", &[chain(1), chain(2)]).unwrap();
    let target = dir.path().join("ctr-u").join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    let ns = UserNs::new(200_000);
    s.mount_idmapped(&rootfs, &target, &ns.path(), (200_000, 200_000))
        .unwrap();
    let guard = MountGuard(target.clone());
    // Owned by host root on disk, by the namespace's root through the mount.
    for f in ["etc/a", "b", "."] {
        let m = std::fs::metadata(target.join(f)).unwrap();
        assert_eq!((m.uid(), m.gid()), (200_000, 200_000), "{f}");
    }
    let on_disk = std::fs::metadata(s.layer_dir(&chain(1)).unwrap().join("b")).unwrap();
    assert_eq!(on_disk.uid(), 0, "the layer itself is untouched");
    assert_eq!(
        std::fs::read_to_string(target.join("etc/a")).unwrap(),
        "top"
    );
    // A copy-up keeps the owner the namespace sees.
    std::fs::write(target.join("b"), "changed").unwrap();
    assert_eq!(
        std::fs::metadata(rootfs.upperdir.join("b")).unwrap().uid(),
        200_000
    );
    // The idmapped views were only needed for the mount call.
    assert!(!dir.path().join("ctr-u").join("idmapped-layers").exists());
    let mounts = longshore_testkit::mounts::mounted_under(dir.path());
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    drop(guard);
    s.remove("ctr-u").unwrap();
}
