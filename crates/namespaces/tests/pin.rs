//! Pins real namespaces and checks them from inside. Needs root.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use std::os::fd::AsFd;
use std::path::PathBuf;

use longshore_namespaces::{NamespaceError, PinRequest, PodInit, pin, unpin};
use nix::sched::{CloneFlags, setns};

use longshore_testkit::mounts::mounted_under;

/// Runs `f` on a fresh thread that has joined the namespace pinned at `pin`.
fn inside<T: Send + 'static>(
    pin: PathBuf,
    flag: CloneFlags,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&pin).unwrap();
        setns(file.as_fd(), flag).unwrap();
        f()
    })
    .join()
    .unwrap()
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = unpin(&self.0);
    }
}

#[test]
fn pins_net_ipc_uts_with_hostname_and_sysctls() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let _guard = Cleanup(dir.clone());
    let host_value =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let req = PinRequest {
        net: true,
        ipc: true,
        uts: true,
        hostname: Some("pod-under-test".into()),
        sysctls: vec![
            ("net.ipv4.ip_unprivileged_port_start".into(), "80".into()),
            ("kernel.shm_rmid_forced".into(), "1".into()),
        ],
    };
    let pinned = pin(&dir, &req).unwrap();
    assert_eq!(mounted_under(&dir).len(), 3, "three pins");

    let uts = pinned.uts.clone().unwrap();
    let name = inside(uts, CloneFlags::CLONE_NEWUTS, || {
        nix::unistd::gethostname().unwrap()
    });
    assert_eq!(name.to_string_lossy(), "pod-under-test");

    let net = pinned.net.clone().unwrap();
    let (port_start, lo_up) = inside(net, CloneFlags::CLONE_NEWNET, || {
        let v = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
        // lo is up when a UDP socket can bind and send to 127.0.0.1 in this namespace.
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = s.send_to(b"x", s.local_addr().unwrap()).is_ok();
        (v.trim().to_string(), up)
    });
    assert_eq!(port_start, "80");
    assert!(lo_up, "lo is up in the pod's netns");

    let ipc = pinned.ipc.clone().unwrap();
    let rmid = inside(ipc, CloneFlags::CLONE_NEWIPC, || {
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced")
            .unwrap()
            .trim()
            .to_string()
    });
    assert_eq!(rmid, "1");

    let host_after =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_eq!(host_value, host_after, "the host's sysctl is untouched");

    unpin(&dir).unwrap();
    assert!(mounted_under(&dir).is_empty());
    assert!(!dir.exists());
    unpin(&dir).unwrap();
}

#[test]
fn refuses_node_wide_and_host_namespace_sysctls_leaving_nothing() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let req = PinRequest {
        net: true,
        sysctls: vec![("kernel.panic".into(), "1".into())],
        ..Default::default()
    };
    let err = pin(&dir, &req).unwrap_err();
    assert!(matches!(err, NamespaceError::Sysctl { .. }), "{err}");
    assert!(err.to_string().contains("kernel.panic"));
    let req = PinRequest {
        net: false,
        ipc: true,
        sysctls: vec![("net.core.somaxconn".into(), "1024".into())],
        ..Default::default()
    };
    let err = pin(&dir, &req).unwrap_err();
    assert!(err.to_string().contains("host"), "{err}");
    assert!(!dir.exists());
    assert!(mounted_under(&dir).is_empty());
}

#[test]
fn a_failing_sysctl_write_unpins_everything() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let req = PinRequest {
        net: true,
        uts: true,
        sysctls: vec![("net.ipv4.no_such_knob".into(), "1".into())],
        ..Default::default()
    };
    assert!(pin(&dir, &req).is_err());
    assert!(mounted_under(&dir).is_empty());
    assert!(!dir.exists());
}

#[test]
fn pod_init_holds_a_pid_namespace_until_stopped() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_longshore-pod-init"));
    let init = PodInit::start(&exe, &dir, None).unwrap();
    struct Stop(i32, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = PodInit::stop(self.0, &self.1);
        }
    }
    let _stop = Stop(init.pid, dir.clone());
    assert!(PodInit::is_alive(init.pid, &dir));
    // Inside its namespace the init is PID 1.
    let status = std::fs::read_to_string(format!("/proc/{}/status", init.pid)).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.split_whitespace().last() == Some("1"), "{nspid}");
    // The launcher exited, so the init was handed to another parent.
    let ppid_line = status.lines().find(|l| l.starts_with("PPid:")).unwrap();
    assert_ne!(
        ppid_line.split_whitespace().nth(1),
        Some(std::process::id().to_string().as_str())
    );

    PodInit::stop(init.pid, &dir).unwrap();
    for _ in 0..100 {
        if !PodInit::is_alive(init.pid, &dir) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!PodInit::is_alive(init.pid, &dir));
    assert!(mounted_under(&dir).is_empty());
    PodInit::stop(init.pid, &dir).unwrap();
}

#[test]
fn a_pod_init_whose_pid_was_lost_is_found_through_its_pin() {
    longshore_testkit::require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_longshore-pod-init"));
    let init = PodInit::start(&exe, &dir, None).unwrap();
    struct Stop(i32, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = PodInit::stop(self.0, &self.1);
        }
    }
    let _stop = Stop(init.pid, dir.clone());
    // As after a crash: only the pin is known.
    assert_eq!(PodInit::stop_pinned(&dir).unwrap(), 1);
    let gone = (0..100).any(|_| {
        let alive = std::fs::metadata(format!("/proc/{}", init.pid)).is_ok()
            && std::fs::read_to_string(format!("/proc/{}/stat", init.pid))
                .is_ok_and(|s| !s.contains(") Z "));
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        !alive
    });
    assert!(gone, "pod init {} still runs", init.pid);
    assert!(mounted_under(&dir).is_empty());
    assert_eq!(
        PodInit::stop_pinned(&dir).unwrap(),
        0,
        "nothing pinned any more"
    );
}
