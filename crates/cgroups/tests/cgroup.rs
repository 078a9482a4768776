//! The `Cgroup` handle against the real kernel, on whatever hierarchy this host has (the
//! development host is hybrid; `scripts/test-cgroup-v2.sh` also runs these on pure v2).
//! Everything happens under this process's own cgroup.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{Child, TestRoot, eventually, read};
use longshore_cgroups::{
    Cgroup, CgroupPath, Controller, Driver, Error, FsError, Resources, Version, read_oom_kill_count,
};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn creates_pod_and_container_nesting_in_every_hierarchy() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let pod_path =
        CgroupPath::resolve(&root.path, "/kubepods/burstable/pod123", Driver::Cgroupfs).unwrap();
    let ctr_path = pod_path
        .child(&Driver::Cgroupfs.container_name("abc"))
        .unwrap();
    assert!(!Cgroup::open(&root.hierarchy, &ctr_path).unwrap().exists());

    let ctr = Cgroup::create(&root.hierarchy, &ctr_path).unwrap();
    let pod = Cgroup::open(&root.hierarchy, &pod_path).unwrap();
    assert!(ctr.exists() && pod.exists());
    for dir in ctr.dirs().iter().chain(pod.dirs().iter()) {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    // Creating again is harmless.
    Cgroup::create(&root.hierarchy, &ctr_path).unwrap();
    if root.hierarchy.controller_version(Controller::Cpuset) == Some(Version::V1) {
        // A v1 cpuset child starts empty; create copies the parent's lists down.
        assert!(!read(&ctr, "cpuset.cpus").is_empty());
        assert_eq!(read(&ctr, "cpuset.cpus"), read(&root.cgroup, "cpuset.cpus"));
        assert_eq!(read(&ctr, "cpuset.mems"), read(&root.cgroup, "cpuset.mems"));
    }

    // Deleting the pod removes the container cgroup below it too, everywhere.
    pod.delete().unwrap();
    for dir in ctr.dirs().iter().chain(pod.dirs().iter()) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert!(!pod.exists());
    pod.delete().unwrap();
}

#[test]
fn systemd_naming_is_created_on_cgroupfs() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let pod_path = CgroupPath::resolve(
        &root.path,
        "kubepods-burstable-pod123.slice",
        Driver::Systemd,
    )
    .unwrap();
    let ctr_path = pod_path
        .child(&Driver::Systemd.container_name("abc"))
        .unwrap();
    assert!(ctr_path.as_str().ends_with(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice/longshore-abc.scope"
    ));
    let ctr = Cgroup::create(&root.hierarchy, &ctr_path).unwrap();
    for dir in ctr.dirs() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
}

#[test]
fn moves_a_process_in_and_lists_it() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/ctr");
    let mut child = Child::sleeper();
    child.start_in(&ctr);
    assert_eq!(ctr.procs().unwrap(), vec![child.pid()]);
    assert!(
        root.cgroup.procs().unwrap().is_empty(),
        "procs lists direct members only"
    );

    // The kernel agrees, in every hierarchy the process is in.
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid())).unwrap();
    let memory = own
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
                || (root.hierarchy.version() == Version::V2 && l.starts_with("0::"))
        })
        .expect("memory line in /proc/pid/cgroup");
    assert!(memory.ends_with(ctr.path().as_str()), "{memory}");
    for line in own.lines().filter(|l| !l.contains("name=")) {
        assert!(
            line.ends_with(ctr.path().as_str()),
            "{line} not in {}",
            ctr.path()
        );
    }
    let pids = ctr.stats().unwrap().pids;
    if root
        .hierarchy
        .controller_version(Controller::Pids)
        .is_some()
    {
        assert_eq!(pids.current, 1);
    }
}

#[test]
fn cpu_usage_grows_while_a_child_burns() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/burn");
    let before = ctr.stats().unwrap();
    assert_eq!(before.cpu.usage_ns, 0, "a new cgroup has used no CPU");
    let mut burner = Child::burner();
    burner.start_in(&ctr);
    assert!(
        eventually(WAIT, || ctr.stats().unwrap().cpu.usage_ns > 200_000_000),
        "cpu usage stayed at {}",
        ctr.stats().unwrap().cpu.usage_ns
    );
    let after = ctr.stats().unwrap();
    assert!(after.cpu.user_ns > 0, "{:?}", after.cpu);
    assert!(after.timestamp > before.timestamp);
    // The parent's accounting includes its children.
    assert!(root.cgroup.stats().unwrap().cpu.usage_ns >= after.cpu.usage_ns);
}

#[test]
fn memory_stats_follow_an_allocating_child() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/mem");
    assert_eq!(ctr.stats().unwrap().memory.usage_bytes, 0);
    // The shell keeps a 24 MB string alive until it is killed.
    let mut child = Child::spawn(
        "x=$(head -c 24000000 /dev/zero | tr '\\0' a); echo ready; sleep 600; echo ${#x}",
    );
    child.start_in(&ctr);
    assert_eq!(child.read_line(), "ready");
    let m = ctr.stats().unwrap().memory;
    assert!(m.rss_bytes >= 24_000_000, "{m:?}");
    assert!(m.usage_bytes >= m.rss_bytes, "{m:?}");
    assert!(
        m.working_set_bytes >= m.rss_bytes && m.working_set_bytes <= m.usage_bytes,
        "{m:?}"
    );
    // How many faults 24 MB take depends on the kernel's page sizes (transparent huge pages,
    // large folios: 2 460 on a 6.18 guest, against 5 860 4-KiB pages), so only "some".
    assert!(m.page_faults > 0, "{m:?}");
    assert_eq!(m.limit_bytes, None, "no limit applied");
}

#[test]
fn memory_limit_shows_in_stats() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/limited");
    ctr.apply(&Resources {
        memory_limit_in_bytes: 64 << 20,
        ..Default::default()
    })
    .unwrap();
    let m = ctr.stats().unwrap().memory;
    assert_eq!(m.limit_bytes, Some(64 << 20));
    assert_eq!(m.available_bytes(), Some((64 << 20) - m.working_set_bytes));
}

#[test]
fn freeze_stops_and_thaw_resumes_a_burner() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/frozen");
    let mut burner = Child::burner();
    burner.start_in(&ctr);
    assert!(eventually(WAIT, || ctr.stats().unwrap().cpu.usage_ns > 0));

    ctr.freeze().unwrap();
    // Thawed before the burner is reaped, even when an assertion fails: a v1-frozen task cannot
    // die of SIGKILL, and the test would hang in the burner's drop.
    struct ThawOnDrop<'a>(&'a longshore_cgroups::Cgroup);
    impl Drop for ThawOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.thaw();
        }
    }
    let _thaw = ThawOnDrop(&ctr);
    let frozen_at = ctr.stats().unwrap().cpu.usage_ns;
    thread::sleep(Duration::from_millis(300));
    // A burner uses ~300 ms of CPU in 300 ms; CPU time of its last slice before the freeze may
    // be accounted a little after it (seen: 0.3 ms), so a few ms are not a frozen cgroup's.
    let used = ctr.stats().unwrap().cpu.usage_ns - frozen_at;
    assert!(used < 20_000_000, "a frozen cgroup used {used} ns of CPU");

    ctr.thaw().unwrap();
    assert!(
        eventually(WAIT, || ctr.stats().unwrap().cpu.usage_ns > frozen_at),
        "no CPU used after thaw"
    );
}

#[test]
fn kill_all_kills_every_process_below() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let pod = root.create("/pod");
    let a = root.create("/pod/a");
    let b = root.create("/pod/b");
    let mut children = [Child::sleeper(), Child::sleeper(), Child::burner()];
    children[0].start_in(&a);
    children[1].start_in(&a);
    children[2].start_in(&b);

    pod.kill_all().unwrap();
    for child in &mut children {
        assert!(
            child.killed_by_sigkill(WAIT),
            "{} not SIGKILLed",
            child.pid()
        );
    }
    assert!(a.procs().unwrap().is_empty() && b.procs().unwrap().is_empty());
    pod.delete().unwrap();
    assert!(!a.exists() && !pod.exists());
    // Killing an empty cgroup is fine.
    root.cgroup.kill_all().unwrap();
}

#[test]
fn delete_refuses_a_cgroup_with_live_processes() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/busy");
    let mut child = Child::sleeper();
    child.start_in(&ctr);
    let err = ctr.delete().unwrap_err();
    let Error::Fs(FsError::Remove { path, source }) = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(source.raw_os_error(), Some(libc::EBUSY), "{err}");
    assert!(
        ctr.dirs().contains(path),
        "{err} names a directory of the cgroup"
    );

    ctr.kill_all().unwrap();
    assert!(child.killed_by_sigkill(WAIT));
    ctr.delete().unwrap();
    ctr.delete().unwrap();
    for dir in ctr.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn stats_of_a_removed_cgroup_say_not_found() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/gone");
    ctr.stats().unwrap();
    ctr.delete().unwrap();
    let err = ctr.stats().unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A refusal that is not ENOENT is not "gone".
    let busy = root.create("/busy");
    let mut child = Child::sleeper();
    child.start_in(&busy);
    let err = busy.delete().unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    busy.kill_all().unwrap();
    assert!(child.killed_by_sigkill(WAIT));
}

#[test]
fn oom_kill_count_counts_a_memory_hog() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/hog");
    ctr.apply(&Resources {
        memory_limit_in_bytes: 32 << 20,
        memory_swap_limit_in_bytes: 32 << 20,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ctr.oom_kill_count().unwrap(), 0);
    let mut hog = Child::spawn("exec dd if=/dev/zero of=/dev/null bs=256M count=1");
    hog.start_in(&ctr);
    assert!(hog.killed_by_sigkill(WAIT), "the hog was not OOM-killed");
    assert!(ctr.oom_kill_count().unwrap() >= 1);
    let events = ctr.memory_events_path().unwrap();
    assert!(read_oom_kill_count(&events).unwrap() >= 1);
    assert!(ctr.stats().unwrap().oom_kills >= 1);
}

#[test]
fn pressure_is_reported_where_the_kernel_has_psi() {
    longshore_testkit::require_root!();
    let root = TestRoot::new();
    let ctr = root.create("/pod/psi");
    let mut burner = Child::burner();
    burner.start_in(&ctr);
    let stats = ctr.stats().unwrap();
    // PSI is per cgroup only on cgroup2 mounts (pure v2, or the unified mount of a hybrid).
    let has_psi = Path::new("/proc/pressure/cpu").exists()
        && ctr.dirs().iter().any(|d| d.join("cpu.pressure").exists());
    assert_eq!(stats.pressure.is_some(), has_psi, "{:?}", stats.pressure);
    if let Some(p) = stats.pressure {
        assert!(
            p.cpu.is_some() && p.memory.is_some() && p.io.is_some(),
            "{p:?}"
        );
    }
}
