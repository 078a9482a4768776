//! Resources written through cgroup v1 files (the development host is hybrid: v1 controllers
//! plus hugetlb on the cgroup2 mount), read back from the kernel. On a pure v2 host these
//! tests print a skip line and return; `cgroup_v2.rs` covers that interface.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestRoot, file, read};
use longshore_cgroups::{Controller, Error, HugepageLimit, Resources, Version};

/// A test root on a host that drives resources through v1, or `None` (skip).
fn v1_root() -> Option<TestRoot> {
    let root = TestRoot::new();
    if root.hierarchy.version() != Version::V1 {
        eprintln!("skipped: this host drives cgroups through v2");
        return None;
    }
    Some(root)
}

fn has_memsw(root: &TestRoot) -> bool {
    root.cgroup
        .dirs()
        .iter()
        .any(|d| d.join("memory.memsw.limit_in_bytes").exists())
}

/// The value the kernel shows for "unlimited" in v1 byte limits (page-rounded i64::MAX).
fn is_unlimited(value: &str) -> bool {
    value.parse::<u64>().is_ok_and(|v| v >= 1 << 62)
}

#[test]
fn applies_limits_and_reads_them_back() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    let ctr = root.create("/kubepods/pod1/ctr");
    let cpus = read(&ctr, "cpuset.cpus");
    let first_cpu = cpus.split([',', '-']).next().unwrap().to_string();
    let mut resources = Resources {
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        cpuset_cpus: first_cpu.clone(),
        cpuset_mems: read(&ctr, "cpuset.mems"),
        memory_limit_in_bytes: 64 << 20,
        memory_swap_limit_in_bytes: 64 << 20,
        pids_limit: 32,
        oom_group: Some(true),
        ..Default::default()
    };
    let hugetlb = root.hierarchy.controller_version(Controller::Hugetlb);
    if hugetlb.is_some() {
        resources.hugepage_limits = vec![HugepageLimit {
            page_size: "2MB".to_string(),
            limit: 4 << 20,
        }];
    }
    ctr.apply(&resources).unwrap();

    assert_eq!(read(&ctr, "cpu.shares"), "512");
    assert_eq!(read(&ctr, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&ctr, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&ctr, "cpuset.cpus"), first_cpu);
    assert_eq!(
        read(&ctr, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    if has_memsw(&root) {
        assert_eq!(
            read(&ctr, "memory.memsw.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
    }
    assert_eq!(read(&ctr, "pids.max"), "32");
    match hugetlb {
        // Hybrid: the cgroup2 mount carries hugetlb, in v2 files.
        Some(Version::V2) => assert_eq!(read(&ctr, "hugetlb.2MB.max"), (4u64 << 20).to_string()),
        Some(Version::V1) => assert_eq!(
            read(&ctr, "hugetlb.2MB.limit_in_bytes"),
            (4u64 << 20).to_string()
        ),
        None => {}
    }
    let stats = ctr.stats().unwrap();
    assert_eq!(stats.memory.limit_bytes, Some(64 << 20));
    assert_eq!(stats.pids.limit, Some(32));
}

#[test]
fn memory_and_memsw_are_written_in_the_order_the_kernel_accepts() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    if !has_memsw(&root) {
        eprintln!("skipped: no swap accounting (memory.memsw.*)");
        return;
    }
    let ctr = root.create("/pod/ctr");
    let set = |memory: i64, swap: i64| {
        ctr.apply(&Resources {
            memory_limit_in_bytes: memory,
            memory_swap_limit_in_bytes: swap,
            ..Default::default()
        })
    };
    let check = |memory: u64, swap: u64| {
        assert_eq!(read(&ctr, "memory.limit_in_bytes"), memory.to_string());
        assert_eq!(read(&ctr, "memory.memsw.limit_in_bytes"), swap.to_string());
    };
    set(64 << 20, 64 << 20).unwrap();
    check(64 << 20, 64 << 20);
    // Raising: memsw must go first (the kernel keeps limit <= memsw).
    set(128 << 20, 256 << 20).unwrap();
    check(128 << 20, 256 << 20);
    // Lowering below the old memsw: the limit must go first.
    set(32 << 20, 32 << 20).unwrap();
    check(32 << 20, 32 << 20);
    // Unlimited memory with swap unset lifts memsw too.
    set(-1, 0).unwrap();
    assert!(is_unlimited(&read(&ctr, "memory.limit_in_bytes")));
    assert!(is_unlimited(&read(&ctr, "memory.memsw.limit_in_bytes")));
    // memory+swap below memory is refused before writing anything.
    let err = set(64 << 20, 32 << 20).unwrap_err();
    assert!(err.to_string().contains("below"), "{err}");
    assert!(is_unlimited(&read(&ctr, "memory.limit_in_bytes")));
}

#[test]
fn zero_fields_leave_the_kernel_values_alone() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    let ctr = root.create("/pod/ctr");
    ctr.apply(&Resources {
        pids_limit: 10,
        cpu_quota: 20_000,
        cpu_period: 100_000,
        ..Default::default()
    })
    .unwrap();
    ctr.apply(&Resources {
        cpu_shares: 256,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&ctr, "pids.max"), "10");
    assert_eq!(read(&ctr, "cpu.cfs_quota_us"), "20000");
    assert_eq!(read(&ctr, "cpu.shares"), "256");
    // A period with quota 0 (kubelet's "no CPU limit") lifts the quota, as on v2.
    ctr.apply(&Resources {
        cpu_period: 100_000,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&ctr, "cpu.cfs_quota_us"), "-1");
    ctr.apply(&Resources {
        pids_limit: -1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&ctr, "pids.max"), "max");
}

#[test]
fn unified_is_refused_on_v1_before_anything_is_written() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    let ctr = root.create("/pod/ctr");
    let err = ctr
        .apply(&Resources {
            pids_limit: 7,
            unified: BTreeMap::from([("memory.high".to_string(), "1G".to_string())]),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnifiedOnV1 { key } if key == "memory.high"),
        "{err}"
    );
    assert!(err.to_string().contains("memory.high"), "{err}");
    assert_eq!(read(&ctr, "pids.max"), "max");
}

#[test]
fn a_refused_write_names_the_file_and_the_value() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    let ctr = root.create("/pod/ctr");
    let err = ctr
        .apply(&Resources {
            cpuset_cpus: "4095".to_string(),
            ..Default::default()
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&file(&ctr, "cpuset.cpus").display().to_string()),
        "{text}"
    );
    assert!(text.contains("\"4095\""), "{text}");

    let err = ctr
        .apply(&Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "3MB".to_string(),
                limit: 1,
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("3MB"), "{err}");
}

#[test]
fn oom_kills_are_read_from_memory_oom_control() {
    longshore_testkit::require_root!();
    let Some(root) = v1_root() else { return };
    let ctr = root.create("/pod/ctr");
    let path = ctr.memory_events_path().unwrap();
    assert_eq!(path.file_name().unwrap(), "memory.oom_control");
    assert!(Path::new(&path).exists());
    assert_eq!(ctr.oom_kill_count().unwrap(), 0);
}
