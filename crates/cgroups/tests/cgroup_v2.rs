//! cgroup v2 behaviour that a hybrid host cannot show: run inside a pure v2 guest by
//! `scripts/test-cgroup-v2.sh`, which passes `--ignored`.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Child, TestRoot, eventually, read};
use longshore_cgroups::{
    Cgroup, CgroupPath, Controller, Driver, Error, HugepageLimit, Mode, Resources, Version, v2,
};

const WAIT: Duration = Duration::from_secs(30);
const NEEDS_V2: &str = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh";

fn v2_root() -> TestRoot {
    let root = TestRoot::new();
    assert_eq!(root.hierarchy.mode(), Mode::Unified, "{NEEDS_V2}");
    root
}

/// Whether the cgroup2 root offers `controller`.
fn offered(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .unwrap()
        .split_whitespace()
        .any(|c| c == controller)
}

fn keyed(cgroup: &Cgroup, file: &str, key: &str) -> u64 {
    read(cgroup, file)
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key} "))
                .map(|v| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {key} in {file}"))
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn detects_a_pure_v2_host() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let h = &root.hierarchy;
    assert_eq!(h.version(), Version::V2);
    assert_eq!(h.controller_version(Controller::Memory), Some(Version::V2));
    assert_eq!(h.controller_version(Controller::Cpuacct), None);
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    assert_eq!(h.self_root().unwrap().as_str(), own);
    assert_eq!(root.cgroup.dirs().len(), 1, "one directory on v2");
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn nested_slices_enable_controllers_down_the_tree() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let pod =
        CgroupPath::resolve(&root.path, "kubepods-burstable-pod9.slice", Driver::Systemd).unwrap();
    let ctr_path = pod.child(&Driver::Systemd.container_name("c1")).unwrap();
    let ctr = Cgroup::create(&root.hierarchy, &ctr_path).unwrap();

    let wanted: Vec<&str> = ["cpuset", "cpu", "io", "memory", "pids"]
        .into_iter()
        .filter(|c| offered(c))
        .collect();
    assert!(wanted.contains(&"memory") && wanted.contains(&"cpu") && wanted.contains(&"pids"));
    // Every ancestor of the leaf, from the test root down, enables them for its children.
    let mut ancestor = ctr_path.parent().unwrap();
    loop {
        let cg = Cgroup::open(&root.hierarchy, &ancestor).unwrap();
        let enabled = read(&cg, "cgroup.subtree_control");
        for c in &wanted {
            assert!(
                enabled.split_whitespace().any(|e| e == *c),
                "{ancestor}: {enabled}"
            );
        }
        if ancestor == root.path {
            break;
        }
        ancestor = ancestor.parent().unwrap();
    }
    for f in [
        "memory.max",
        "cpu.max",
        "cpu.weight",
        "pids.max",
        "memory.events",
    ] {
        assert!(ctr.dirs()[0].join(f).exists(), "{f} missing in the leaf");
    }
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn applies_v2_limits_and_reads_them_back() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/kubepods/pod1/ctr");
    let mut resources = Resources {
        cpu_shares: 1024,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        memory_limit_in_bytes: 64 << 20,
        memory_swap_limit_in_bytes: 96 << 20,
        pids_limit: 32,
        oom_group: Some(true),
        unified: BTreeMap::from([("memory.high".to_string(), "50M".to_string())]),
        ..Default::default()
    };
    if offered("cpuset") {
        resources.cpuset_cpus = "0".to_string();
        resources.cpuset_mems = "0".to_string();
    }
    if offered("hugetlb") {
        resources.hugepage_limits = vec![HugepageLimit {
            page_size: "2MB".to_string(),
            limit: 4 << 20,
        }];
    }
    ctr.apply(&resources).unwrap();

    assert_eq!(read(&ctr, "cpu.weight"), "39", "shares 1024 -> weight 39");
    assert_eq!(read(&ctr, "cpu.max"), "50000 100000");
    assert_eq!(read(&ctr, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(read(&ctr, "memory.high"), (50u64 << 20).to_string());
    assert_eq!(read(&ctr, "pids.max"), "32");
    assert_eq!(read(&ctr, "memory.oom.group"), "1");
    if ctr.dirs()[0].join("memory.swap.max").exists() {
        assert_eq!(
            read(&ctr, "memory.swap.max"),
            (32u64 << 20).to_string(),
            "swap - memory"
        );
    }
    if offered("cpuset") {
        assert_eq!(read(&ctr, "cpuset.cpus"), "0");
    }
    if offered("hugetlb") {
        assert_eq!(read(&ctr, "hugetlb.2MB.max"), (4u64 << 20).to_string());
    }
    let stats = ctr.stats().unwrap();
    assert_eq!(stats.memory.limit_bytes, Some(64 << 20));
    assert_eq!(stats.pids.limit, Some(32));

    // Quota <= 0 with a period means no quota; negative limits mean max.
    ctr.apply(&Resources {
        cpu_period: 100_000,
        memory_limit_in_bytes: -1,
        pids_limit: -1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&ctr, "cpu.max"), "max 100000");
    assert_eq!(read(&ctr, "memory.max"), "max");
    assert_eq!(read(&ctr, "pids.max"), "max");
    if ctr.dirs()[0].join("memory.swap.max").exists() {
        assert_eq!(read(&ctr, "memory.swap.max"), "max");
    }
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn bad_unified_keys_and_refused_values_are_named() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/pod/ctr");
    for key in ["../memory.max", "a/b", "", ".."] {
        let err = ctr
            .apply(&Resources {
                unified: BTreeMap::from([(key.to_string(), "1".to_string())]),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            matches!(&err, Error::V2(v2::Error::Unified(v2::UnifiedError::BadKey(k))) if k == key),
            "{key:?}: {err}"
        );
    }
    let err = ctr
        .apply(&Resources {
            unified: BTreeMap::from([("memory.max".to_string(), "lots".to_string())]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("memory.max") && err.contains("\"lots\""),
        "{err}"
    );
    let err = ctr
        .apply(&Resources {
            memory_swap_limit_in_bytes: 1 << 20,
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("needs a memory limit"), "{err}");
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn memory_max_oom_kill_shows_in_oom_kill_count() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/pod/hog");
    ctr.apply(&Resources {
        memory_limit_in_bytes: 32 << 20,
        memory_swap_limit_in_bytes: 32 << 20,
        ..Default::default()
    })
    .unwrap();
    let events = ctr.memory_events_path().unwrap();
    assert!(events.ends_with("memory.events"));
    assert_eq!(longshore_cgroups::read_oom_kill_count(&events).unwrap(), 0);
    let mut hog = Child::spawn("exec dd if=/dev/zero of=/dev/null bs=256M count=1");
    hog.start_in(&ctr);
    assert!(hog.killed_by_sigkill(WAIT), "the hog was not OOM-killed");
    assert_eq!(
        ctr.oom_kill_count().unwrap(),
        keyed(&ctr, "memory.events", "oom_kill")
    );
    assert!(ctr.oom_kill_count().unwrap() >= 1);
    assert!(longshore_cgroups::read_oom_kill_count(&events).unwrap() >= 1);
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn pids_max_refuses_forks() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/pod/forker");
    ctr.apply(&Resources {
        pids_limit: 8,
        ..Default::default()
    })
    .unwrap();
    let mut forker =
        Child::spawn("i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i+1)); done 2>/dev/null; wait");
    forker.start_in(&ctr);
    assert!(
        eventually(WAIT, || keyed(&ctr, "pids.events", "max") >= 1),
        "no fork was refused"
    );
    let pids = ctr.stats().unwrap().pids;
    assert!(pids.current <= 8, "{pids:?}");
    assert_eq!(pids.limit, Some(8));
    ctr.kill_all().unwrap();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn cpu_max_throttles_a_burner() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/pod/throttled");
    ctr.apply(&Resources {
        cpu_quota: 10_000,
        cpu_period: 100_000,
        ..Default::default()
    })
    .unwrap();
    let mut burner = Child::burner();
    burner.start_in(&ctr);
    assert!(
        eventually(WAIT, || ctr.stats().unwrap().cpu.throttled_periods >= 3),
        "{:?}",
        ctr.stats().unwrap().cpu
    );
    let cpu = ctr.stats().unwrap().cpu;
    assert!(
        cpu.throttled_ns > 0 && cpu.periods >= cpu.throttled_periods,
        "{cpu:?}"
    );
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn freeze_and_kill_go_through_cgroup_files() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let pod = root.create("/pod");
    let ctr = root.create("/pod/ctr");
    let mut child = Child::sleeper();
    child.start_in(&ctr);

    pod.freeze().unwrap();
    assert_eq!(keyed(&pod, "cgroup.events", "frozen"), 1);
    assert_eq!(
        keyed(&ctr, "cgroup.events", "frozen"),
        1,
        "freezing is recursive"
    );
    pod.thaw().unwrap();
    assert_eq!(keyed(&ctr, "cgroup.events", "frozen"), 0);

    pod.kill_all().unwrap();
    assert!(child.killed_by_sigkill(WAIT));
    assert_eq!(keyed(&pod, "cgroup.events", "populated"), 0);
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: scripts/test-cgroup-v2.sh"]
fn stats_come_from_v2_files_with_pressure() {
    longshore_testkit::require_root!();
    let root = v2_root();
    let ctr = root.create("/pod/busy");
    let mut child = Child::spawn(
        "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready; while :; do :; done; echo ${#x}",
    );
    child.start_in(&ctr);
    assert_eq!(child.read_line(), "ready");
    assert!(eventually(WAIT, || ctr.stats().unwrap().cpu.usage_ns > 50_000_000));
    let before_us = keyed(&ctr, "cpu.stat", "usage_usec");
    let stats = ctr.stats().unwrap();
    let after_us = keyed(&ctr, "cpu.stat", "usage_usec");
    let usage_us = stats.cpu.usage_ns / 1000;
    assert!(
        before_us <= usage_us && usage_us <= after_us,
        "{before_us} {usage_us} {after_us}"
    );
    assert!(stats.memory.rss_bytes >= 8_000_000, "{:?}", stats.memory);
    assert!(stats.memory.usage_bytes >= stats.memory.rss_bytes);
    assert_eq!(stats.pids.current, 1);
    let pressure = stats.pressure.expect("PSI files in a v2 cgroup");
    assert!(pressure.cpu.is_some() && pressure.memory.is_some() && pressure.io.is_some());
}
