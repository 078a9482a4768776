//! One reading of a container's or pod's cgroup, with the CPU rate derived from the previous
//! one. Shared by the stats RPCs and the metrics RPCs. Blocking (cgroupfs reads): call it from
//! [`blocking`].

use longshore_cgroups::{Cgroup, CgroupPath, Stats};
use tonic::Status;
use tracing::debug;

use super::stats_cache::cache;
use super::stats_convert::nanos;
use crate::daemon::Daemon;

/// A cgroup's accounting and its CPU rate.
pub(crate) struct Sample {
    /// What the kernel's files say.
    pub stats: Stats,
    /// `usage_nano_cores`: core-ns per second since the previous sample.
    pub nano_cores: Option<u64>,
}

/// Reads the cgroup at `path` (an absolute path in the hierarchy). `Ok(None)` when it does not
/// exist (a container that exited, a pod being torn down); `Err` names the path and what failed.
/// `key` names the CPU rate's history; `since` (ns since the epoch, 0 if unknown) is the start
/// of the window for a first sample.
pub(crate) fn read(
    d: &Daemon,
    path: &str,
    key: &str,
    since: i64,
) -> Result<Option<Sample>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    let cgroup_path = CgroupPath::new(path).map_err(|e| format!("cgroup {path:?}: {e}"))?;
    let cgroup =
        Cgroup::open(&d.hierarchy, &cgroup_path).map_err(|e| format!("cgroup {path}: {e}"))?;
    let stats = match cgroup.stats() {
        Ok(stats) => stats,
        Err(e) if e.is_not_found() => {
            debug!(cgroup = path, "no cgroup, no stats");
            return Ok(None);
        }
        Err(e) => return Err(format!("reading cgroup {path}: {e}")),
    };
    let nano_cores = cache().cpu_rate(key, nanos(stats.timestamp), stats.cpu.usage_ns, since);
    Ok(Some(Sample { stats, nano_cores }))
}

/// Runs blocking stats work (cgroupfs, netns threads, directory walks) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("stats task failed: {e}")))
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
