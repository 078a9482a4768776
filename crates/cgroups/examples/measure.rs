//! Prints what the cgroup operations the daemon runs per pod and container cost on this host:
//! `cargo run -p longshore-cgroups --example measure --release`. Works under this process's own
//! cgroup and removes everything it made.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use longshore_cgroups::{Cgroup, CgroupPath, Driver, Hierarchy, Resources};

const STATS_ROUNDS: u32 = 2000;

fn main() -> Result<(), Box<dyn Error>> {
    let (hierarchy, detect) = timed(Hierarchy::detect)?;
    let base = hierarchy
        .self_root()?
        .child(&format!("longshore-measure-{}", std::process::id()))?;
    println!("mode {:?}, base {base}", hierarchy.mode());
    println!("detect              {:>9.1} µs", micros(detect));

    let created = missing_dirs(&hierarchy, &base)?;
    let subtree = subtree_controls(&hierarchy, &base)?;
    let result = run(&hierarchy, &base);
    // Put back what creating the base changed above it.
    Cgroup::open(&hierarchy, &base)?.delete()?;
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    for (file, before) in subtree {
        let now = std::fs::read_to_string(&file)?;
        let added: Vec<String> = now
            .split_whitespace()
            .filter(|c| !before.split_whitespace().any(|b| b == *c))
            .map(|c| format!("-{c}"))
            .collect();
        if !added.is_empty() {
            std::fs::write(&file, added.join(" "))?;
        }
    }
    result
}

/// Directories above `path` (in any hierarchy) that do not exist yet, top first.
fn missing_dirs(h: &Hierarchy, path: &CgroupPath) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut out = Vec::new();
    for p in path.parent().map(|p| p.lineage()).unwrap_or_default() {
        out.extend(
            Cgroup::open(h, &p)?
                .dirs()
                .into_iter()
                .filter(|d| !d.is_dir()),
        );
    }
    Ok(out)
}

/// `cgroup.subtree_control` of the existing cgroup2 ancestors of `path`.
fn subtree_controls(
    h: &Hierarchy,
    path: &CgroupPath,
) -> Result<Vec<(PathBuf, String)>, Box<dyn Error>> {
    let mut lineage = vec![CgroupPath::root()];
    lineage.extend(path.parent().map(|p| p.lineage()).unwrap_or_default());
    let mut out = Vec::new();
    for p in lineage {
        for dir in Cgroup::open(h, &p)?.dirs() {
            let file = dir.join("cgroup.subtree_control");
            if let Ok(text) = std::fs::read_to_string(&file) {
                out.push((file, text));
            }
        }
    }
    Ok(out)
}

fn run(hierarchy: &Hierarchy, base: &CgroupPath) -> Result<(), Box<dyn Error>> {
    let pod_path = CgroupPath::resolve(base, "/kubepods/burstable/pod1", Driver::Cgroupfs)?;
    let ctr_path = pod_path.child("ctr1")?;
    let (_, first) = timed(|| Cgroup::create(hierarchy, &pod_path))?;
    let (ctr, create) = timed(|| Cgroup::create(hierarchy, &ctr_path))?;
    println!("create pod (+base)  {:>9.1} µs", micros(first));
    println!("create container    {:>9.1} µs", micros(create));

    let resources = Resources {
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        memory_limit_in_bytes: 256 << 20,
        pids_limit: 1024,
        ..Default::default()
    };
    let (_, apply) = timed(|| ctr.apply(&resources))?;
    println!("apply (4 fields)    {:>9.1} µs", micros(apply));

    let start = Instant::now();
    for _ in 0..STATS_ROUNDS {
        ctr.stats()?;
    }
    println!(
        "stats               {:>9.1} µs",
        micros(start.elapsed() / STATS_ROUNDS)
    );

    let (_, kill) = timed(|| ctr.kill_all())?;
    println!("kill_all (empty)    {:>9.1} µs", micros(kill));
    let (_, delete) = timed(|| ctr.delete())?;
    println!("delete container    {:>9.1} µs", micros(delete));
    Ok(())
}

fn timed<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(T, Duration), E> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed()))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
