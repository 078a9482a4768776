//! One reading of a container's or pod's cgroup, with the CPU rate derived from the previous
//! one. Shared by the stats RPCs and the metrics RPCs. Blocking (cgroupfs reads): call it from
//! [`blocking`].

use crate::server::RpcError;
use longshore_cgroups::{Cgroup, CgroupPath, Hierarchy, Stats};
use tracing::debug;

use super::cache::{StatsCache, cache};
use super::convert::nanos;
use crate::daemon::Daemon;

/// A cgroup's accounting and its CPU rate.
pub(crate) struct Sample {
    /// What the kernel's files say.
    pub stats: Stats,
    /// `usage_nano_cores`: core-ns per second since the previous sample.
    pub nano_cores: Option<u64>,
}

/// Reads the cgroup at `path` (an absolute path in the hierarchy), with the daemon's cache.
/// `Ok(None)` when it does not exist (a container that exited, a pod being torn down); `Err`
/// names the path and what failed. `key` names the CPU rate's history; `since` (ns since the
/// epoch, 0 if unknown) is the start of the window for a first sample.
pub(crate) fn read(
    d: &Daemon,
    path: &str,
    key: &str,
    since: i64,
) -> Result<Option<Sample>, String> {
    read_with(&d.hierarchy, cache(), path, key, since)
}

fn read_with(
    hierarchy: &Hierarchy,
    cache: &StatsCache,
    path: &str,
    key: &str,
    since: i64,
) -> Result<Option<Sample>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    let cgroup_path = CgroupPath::new(path).map_err(|e| format!("cgroup {path:?}: {e}"))?;
    let cgroup =
        Cgroup::open(hierarchy, &cgroup_path).map_err(|e| format!("cgroup {path}: {e}"))?;
    let stats = match cgroup.stats() {
        Ok(stats) => stats,
        Err(e) if e.is_not_found() => {
            debug!(cgroup = path, "no cgroup, no stats");
            return Ok(None);
        }
        Err(e) => return Err(format!("reading cgroup {path}: {e}")),
    };
    let nano_cores = cache.cpu_rate(key, nanos(stats.timestamp), stats.cpu.usage_ns, since);
    Ok(Some(Sample { stats, nano_cores }))
}

/// Runs blocking stats work (cgroupfs, netns threads, directory walks) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RpcError> {
    crate::server::blocking("reading stats", work).await
}

/// Drops the cached history of pods and containers that no longer exist.
pub(crate) fn forget_the_gone(d: &Daemon) {
    let pods = d.all_pods();
    let containers = d.all_containers();
    let live = pods
        .iter()
        .map(|p| p.id.as_str())
        .chain(containers.iter().map(|c| c.id.as_str()))
        .collect();
    cache().retain(&live);
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use longshore_cgroups::{Resources, Version};

    use super::*;
    use crate::runtime::stats::convert::{cpu_usage, io_usage, memory_usage};
    use crate::state::now_nanos;

    const MIB: u64 = 1 << 20;
    const BUSYBOX: &str = "/bin/busybox";

    /// A cgroup under this process's own; its processes are killed and it is deleted on drop.
    struct TestCgroup(Cgroup);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = self.0.kill_all();
            let _ = self.0.delete();
        }
    }

    /// A tmpfs of our own: pages written there are charged to the writer's cgroup as shmem.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        fn mount(dir: &Path) -> Tmpfs {
            std::fs::create_dir_all(dir).unwrap();
            nix::mount::mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some("size=64m"),
            )
            .unwrap();
            Tmpfs(dir.to_path_buf())
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// Reaps a child on drop (after the cgroup kill).
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A real cgroup with a CPU burner and 32 MiB written to a tmpfs from inside it, read and
    /// converted as the stats RPCs do. Runs on this (hybrid) host, and on a pure cgroup v2
    /// kernel through `scripts/test-cgroup-v2.sh`.
    #[test]
    #[allow(clippy::disallowed_methods)] // a test thread, not an async worker
    fn a_real_cgroup_in_cri_terms() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let hierarchy = Hierarchy::detect().unwrap();
        let name = format!("longshore-stats-test-{:08x}", rand::random::<u32>());
        let path = hierarchy.self_root().unwrap().child(&name).unwrap();
        let group = TestCgroup(Cgroup::create(&hierarchy, &path).unwrap());
        let limit = 128 * MIB;
        let resources = Resources {
            memory_limit_in_bytes: limit as i64,
            ..Default::default()
        };
        group.0.apply(&resources).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let shm = Tmpfs::mount(&dir.path().join("shm"));

        let since = now_nanos();
        let burner = Reaped(
            Command::new(BUSYBOX)
                .args(["sh", "-c", "while :; do :; done"])
                .spawn()
                .unwrap(),
        );
        group.0.add_process(burner.0.id()).unwrap();
        let script = "read go; dd if=/dev/zero of=\"$1/blob\" bs=1M count=32 2>/dev/null; echo done; read end";
        let mut writer = Reaped(
            Command::new(BUSYBOX)
                .args(["sh", "-c", script, "sh"])
                .arg(&shm.0)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        group.0.add_process(writer.0.id()).unwrap();
        writer.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        BufReader::new(writer.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "done");

        let cache = StatsCache::default();
        let key = path.as_str();
        std::thread::sleep(Duration::from_millis(300));
        let first = read_with(&hierarchy, &cache, key, key, since)
            .unwrap()
            .unwrap();
        assert!(
            first.nano_cores.is_some(),
            "a first sample averages since the start"
        );
        std::thread::sleep(Duration::from_millis(1200));
        let second = read_with(&hierarchy, &cache, key, key, since)
            .unwrap()
            .unwrap();

        let cpu = cpu_usage(&second.stats, second.nano_cores);
        let used = cpu.usage_core_nano_seconds.unwrap().value;
        assert!(used > first.stats.cpu.usage_ns, "{cpu:?}");
        // Lenient: the VM's CPU is slow and the host's is shared.
        let rate = cpu.usage_nano_cores.unwrap().value;
        assert!(
            rate >= 10_000_000,
            "a burner runs at least 0.01 cores: {rate}"
        );
        let memory = memory_usage(&second.stats);
        let ws = memory.working_set_bytes.unwrap().value;
        assert!(
            (32 * MIB..=48 * MIB).contains(&ws),
            "32 MiB of shmem in the working set: {memory:?}"
        );
        assert_eq!(memory.available_bytes.unwrap().value, limit - ws);
        assert!(memory.usage_bytes.unwrap().value >= ws);
        assert!(second.stats.pids.current >= 2, "{:?}", second.stats.pids);
        if hierarchy.version() == Version::V2 {
            assert!(cpu.psi.is_some(), "v2 cgroups have cpu.pressure");
            assert!(memory.psi.is_some(), "v2 cgroups have memory.pressure");
            assert!(
                io_usage(&second.stats).is_some(),
                "v2 cgroups have io.pressure"
            );
        }

        group.0.kill_all().unwrap();
        group.0.delete().unwrap();
        assert!(
            read_with(&hierarchy, &cache, key, key, since)
                .unwrap()
                .is_none(),
            "gone is None"
        );
        assert!(
            read_with(&hierarchy, &cache, "", key, since)
                .unwrap()
                .is_none()
        );
    }
}
