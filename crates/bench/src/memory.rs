//! The memory a runtime holds, read from /proc: its daemon (the process listening on the CRI
//! socket) and its helpers (shims or monitors, pause or pod-init processes): every process in the
//! runtime's cgroup except the containers' own workloads.
//!
//! RSS (`VmRSS` in /proc/<pid>/status) counts every shared page in full in each process, so a sum
//! over many processes that map the same binary overstates; PSS (`Pss` in
//! /proc/<pid>/smaps_rollup) splits each shared page between its users and sums fairly. Both are
//! reported.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// /proc/net/unix flag of a listening socket (`__SO_ACCEPTCON`).
const SO_ACCEPTCON: u32 = 0x10000;
const PROC_NET_UNIX: &str = "/proc/net/unix";

/// The memory of one process, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessMemory {
    /// Process id.
    pub pid: i32,
    /// Its `comm`.
    pub name: String,
    /// Resident set size.
    pub rss: u64,
    /// Proportional set size (0 if smaps_rollup could not be read).
    pub pss: u64,
}

/// The memory of a runtime at one moment.
#[derive(Debug, Clone, Default)]
pub struct RuntimeMemory {
    /// The daemon, if found.
    pub daemon: Option<ProcessMemory>,
    /// Every other process of the runtime that is not a container's workload.
    pub helpers: Vec<ProcessMemory>,
}

impl RuntimeMemory {
    /// RSS of the daemon and every helper.
    pub fn rss(&self) -> u64 {
        self.all().map(|p| p.rss).sum()
    }

    /// PSS of the daemon and every helper.
    pub fn pss(&self) -> u64 {
        self.all().map(|p| p.pss).sum()
    }

    fn all(&self) -> impl Iterator<Item = &ProcessMemory> {
        self.daemon.iter().chain(self.helpers.iter())
    }

    /// Average RSS and PSS of the helpers of each name, by name.
    pub fn helper_averages(&self) -> Vec<(String, f64, f64)> {
        let mut by_name: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for p in &self.helpers {
            let e = by_name.entry(p.name.as_str()).or_default();
            *e = (e.0 + p.rss, e.1 + p.pss, e.2 + 1);
        }
        by_name
            .into_iter()
            .map(|(name, (rss, pss, n))| {
                (
                    name.to_string(),
                    rss as f64 / n as f64,
                    pss as f64 / n as f64,
                )
            })
            .collect()
    }

    /// How many helpers of each name (`containerd-shim: 50, pause: 50`).
    pub fn helper_names(&self) -> String {
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.helpers {
            *by_name.entry(p.name.as_str()).or_default() += 1;
        }
        let parts: Vec<String> = by_name.iter().map(|(n, c)| format!("{n}: {c}")).collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Where to find a runtime's processes.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// The CRI socket; its listener is the daemon.
    pub socket: &'a Path,
    /// The memory-controller cgroup (as /proc/<pid>/cgroup shows it) that holds the daemon and
    /// everything it starts; without it only the daemon is counted.
    pub cgroup: Option<&'a str>,
}

/// Reads the runtime's memory now. `workloads` are the ids of containers whose processes are the
/// pods' payload, not the runtime's: a process whose cgroup's last part contains one is skipped.
pub fn measure(scope: &Scope<'_>, workloads: &HashSet<String>) -> RuntimeMemory {
    let daemon_pid = socket_owner(scope.socket);
    let daemon = daemon_pid.and_then(process_memory);
    let mut helpers = Vec::new();
    if let Some(prefix) = scope.cgroup {
        for pid in all_pids() {
            if Some(pid) == daemon_pid {
                continue;
            }
            let Some(cgroup) = memory_cgroup(pid) else {
                continue;
            };
            if !is_under(&cgroup, prefix) || is_workload(&cgroup, workloads) {
                continue;
            }
            if let Some(m) = process_memory(pid) {
                helpers.push(m);
            }
        }
    }
    RuntimeMemory { daemon, helpers }
}

/// Whether `path` is `prefix` or inside it.
fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether the cgroup is a container's own (cgroupfs names it by id; systemd as `<prefix>-<id>.scope`).
fn is_workload(cgroup: &str, workloads: &HashSet<String>) -> bool {
    let leaf = cgroup.rsplit('/').next().unwrap_or("");
    !leaf.is_empty() && workloads.iter().any(|id| leaf.contains(id.as_str()))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// The process's cgroup in the memory controller (v1), or its unified cgroup (v2).
fn memory_cgroup(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_memory_cgroup(&text)
}

fn parse_memory_cgroup(text: &str) -> Option<String> {
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some(path.to_string());
        }
        if controllers.is_empty() {
            unified = Some(path.to_string());
        }
    }
    unified
}

/// RSS and PSS of a live process; `None` for a kernel thread, a zombie or a process gone meanwhile.
pub fn process_memory(pid: i32) -> Option<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = kib_field(&status, "VmRSS:")?;
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| kib_field(&t, "Pss:"))
        .unwrap_or(0);
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Some(ProcessMemory {
        pid,
        name,
        rss: rss * 1024,
        pss: pss * 1024,
    })
}

/// A `Name:   1234 kB` field.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The process listening on a unix socket: the socket's inode from /proc/net/unix, then the
/// process holding a descriptor to it.
pub fn socket_owner(socket: &Path) -> Option<i32> {
    let table = std::fs::read_to_string(PROC_NET_UNIX).ok()?;
    let canonical = std::fs::canonicalize(socket).ok();
    let inodes = listening_inodes(&table, |p| {
        Path::new(p) == socket || canonical.as_deref().is_some_and(|c| Path::new(p) == c)
    });
    if inodes.is_empty() {
        return None;
    }
    let targets: HashSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids = all_pids();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|t| targets.contains(&*t.to_string_lossy()))
            })
    })
}

/// Inodes of listening sockets whose path passes `matches`.
fn listening_inodes(table: &str, matches: impl Fn(&str) -> bool) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let path = f.get(7)?;
            (flags & SO_ACCEPTCON != 0 && matches(path)).then(|| f.get(6)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_controller_line_wins_on_hybrid_hosts() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        assert_eq!(
            parse_memory_cgroup(hybrid).as_deref(),
            Some("/process_api/abc")
        );
        let combined = "5:cpuacct,memory:/x\n0::/\n";
        assert_eq!(parse_memory_cgroup(combined).as_deref(), Some("/x"));
        assert_eq!(
            parse_memory_cgroup("0::/user.slice/a\n").as_deref(),
            Some("/user.slice/a")
        );
    }

    #[test]
    fn prefixes_match_whole_components() {
        assert!(is_under(
            "/a/bench/containerd/daemon",
            "/a/bench/containerd"
        ));
        assert!(is_under("/a/bench/containerd", "/a/bench/containerd/"));
        assert!(!is_under("/a/bench/containerd2/x", "/a/bench/containerd"));
        assert!(is_under("/anything", "/"));
    }

    #[test]
    fn workloads_are_known_by_their_cgroup_leaf() {
        let ids: HashSet<String> = ["abc123".to_string()].into();
        assert!(is_workload("/k/pod1/abc123", &ids));
        assert!(is_workload("/k/pod1/cri-containerd-abc123.scope", &ids));
        assert!(!is_workload("/k/pod1/def456", &ids));
        assert!(!is_workload("/k/abc123/pause", &ids));
    }

    #[test]
    fn helpers_average_by_name() {
        let p = |name: &str, rss: u64| ProcessMemory {
            pid: 1,
            name: name.into(),
            rss,
            pss: rss / 2,
        };
        let m = RuntimeMemory {
            daemon: Some(p("d", 100)),
            helpers: vec![p("shim", 10), p("shim", 20), p("pause", 4)],
        };
        assert_eq!(m.rss(), 134);
        assert_eq!(m.helper_names(), "pause: 1, shim: 2");
        assert_eq!(
            m.helper_averages(),
            vec![
                ("pause".to_string(), 4.0, 2.0),
                ("shim".to_string(), 15.0, 7.5)
            ]
        );
    }

    #[test]
    fn listening_sockets_by_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/x.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4243 /run/x.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4244 /run/y.sock\n";
        assert_eq!(listening_inodes(table, |p| p == "/run/x.sock"), vec![4242]);
    }

    #[test]
    fn finds_our_own_listener_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(socket_owner(&path), Some(std::process::id() as i32));
        let me = process_memory(std::process::id() as i32).unwrap();
        assert!(me.rss > 0 && me.pss > 0 && me.pss <= me.rss, "{me:?}");
    }
}
