//! A pod's user namespace, made by the real `pod-userns` helper, with the pod's other namespaces
//! owned by it. Needs root.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use longshore_namespaces::{
    IdMap, PinRequest, PodInit, UserNamespaceRequest, pin_with_user_namespace, unpin,
};
use longshore_testkit::mounts::mounted_under;

/// linux/nsfs.h: the user namespace owning a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_longshore-pod-userns"))
}

fn maps(host: u32) -> UserNamespaceRequest {
    let map = IdMap {
        container_id: 0,
        host_id: host,
        size: 65536,
    };
    UserNamespaceRequest {
        uids: vec![map],
        gids: vec![map],
    }
}

/// (dev, inode) of the user namespace that owns the namespace file `ns`.
fn owner(ns: &Path) -> (u64, u64) {
    let file = std::fs::File::open(ns).unwrap();
    // SAFETY: NS_GET_USERNS on an nsfs fd returns a new fd or -1.
    let fd = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_USERNS) };
    assert!(fd >= 0, "NS_GET_USERNS {}", std::io::Error::last_os_error());
    // SAFETY: fd is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let m = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    (m.dev(), m.ino())
}

fn id(path: &Path) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

fn nsenter(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--user={}", dir.join("user").display()))
        .arg(format!("--net={}", dir.join("net").display()))
        .arg(format!("--uts={}", dir.join("uts").display()))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = unpin(&self.0);
    }
}

#[test]
fn the_pods_namespaces_belong_to_its_user_namespace() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let _guard = Cleanup(dir.clone());
    let req = PinRequest {
        net: true,
        ipc: true,
        uts: true,
        hostname: Some("userns-pod".into()),
        sysctls: vec![("net.ipv4.ip_unprivileged_port_start".into(), "80".into())],
    };
    let pinned = pin_with_user_namespace(&helper(), &dir, &req, &maps(300_000)).unwrap();
    let user = pinned.user.clone().unwrap();
    for ns in [&pinned.net, &pinned.ipc, &pinned.uts] {
        assert_eq!(owner(ns.as_ref().unwrap()), id(&user));
    }
    assert_eq!(
        nsenter(&dir, &["cat", "/proc/self/uid_map"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "300000", "65536"]
    );
    assert_eq!(nsenter(&dir, &["hostname"]).trim(), "userns-pod");
    let port = nsenter(
        &dir,
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    );
    assert_eq!(port.trim(), "80");
    // The helper is gone: the pins alone hold the namespaces.
    unpin(&dir).unwrap();
    assert!(mounted_under(&dir).is_empty());
    assert!(!dir.exists());
}

#[test]
fn pod_init_runs_as_root_of_the_user_namespace() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let _guard = Cleanup(dir.clone());
    let req = PinRequest {
        net: true,
        ..Default::default()
    };
    let pinned = pin_with_user_namespace(&helper(), &dir, &req, &maps(400_000)).unwrap();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_longshore-pod-init"));
    let init = PodInit::start(&exe, &dir, pinned.user.as_deref()).unwrap();
    struct Stop(i32, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = PodInit::stop(self.0, &self.1);
        }
    }
    let _stop = Stop(init.pid, dir.clone());
    assert_eq!(owner(&init.pin), id(pinned.user.as_ref().unwrap()));
    let status = std::fs::read_to_string(format!("/proc/{}/status", init.pid)).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("400000"), "{uid}");
    PodInit::stop(init.pid, &dir).unwrap();
}

#[test]
fn a_refused_sysctl_leaves_nothing() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let req = PinRequest {
        net: true,
        sysctls: vec![("net.ipv4.no_such_knob".into(), "1".into())],
        ..Default::default()
    };
    let err = pin_with_user_namespace(&helper(), &dir, &req, &maps(500_000)).unwrap_err();
    assert!(err.to_string().contains("no_such_knob"), "{err}");
    assert!(mounted_under(&dir).is_empty());
    assert!(!dir.exists());
}
