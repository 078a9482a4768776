//! What stats remember between calls:
//!
//! - the previous CPU sample of each container and pod, so `usage_nano_cores` is a rate over the
//!   window since the last call (as containerd computes it), shared by every caller;
//! - the measured size of each writable layer. Walking an upper dir costs a `stat` per file, so a
//!   stats call never waits for it once a first figure exists: a figure older than
//!   [`LAYER_TTL`] is served as is (with the time it was measured) while a blocking task
//!   measures again.
//!
//! One cache per process (the daemon is one per process). Entries of pods and containers that
//! no longer exist are dropped by [`StatsCache::retain`], which the list RPCs call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use longshore_snapshot::Snapshotter;
use tracing::{debug, warn};

use crate::state::now_nanos;

/// Samples closer together than this keep the previous rate: a window of a few milliseconds
/// (two callers back to back) says nothing about a container's CPU use.
const MIN_RATE_WINDOW_NS: i64 = 1_000_000_000;

/// How old a writable layer figure may be before a stats call measures it again (in the
/// background). kubelet asks every 10 s; containerd refreshes every 10 s too.
pub(crate) const LAYER_TTL: Duration = Duration::from_secs(5);

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// One CPU reading and the rate it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuSample {
    /// When it was read, ns since the epoch.
    at: i64,
    /// Cumulative CPU time then, ns.
    usage: u64,
    /// The rate computed with it, core-ns per second.
    rate: Option<u64>,
}

/// A writable layer's size as last measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerUsage {
    /// Bytes allocated.
    pub bytes: u64,
    /// Inodes used.
    pub inodes: u64,
    /// When it was measured, ns since the epoch.
    pub at: i64,
}

struct LayerEntry {
    usage: LayerUsage,
    measured: Instant,
    refreshing: bool,
}

/// The process-wide stats memory.
#[derive(Default)]
pub(crate) struct StatsCache {
    cpu: Mutex<HashMap<String, CpuSample>>,
    layers: Mutex<HashMap<String, LayerEntry>>,
}

static CACHE: LazyLock<Arc<StatsCache>> = LazyLock::new(|| Arc::new(StatsCache::default()));

/// The daemon's stats cache.
pub(crate) fn cache() -> &'static Arc<StatsCache> {
    &CACHE
}

impl StatsCache {
    /// `usage_nano_cores` for `key` read at `at` with cumulative `usage`: the rate since the
    /// previous sample, or for a first sample the average since `since` (the container's start),
    /// or `None` when there is no window to average over.
    pub(crate) fn cpu_rate(&self, key: &str, at: i64, usage: u64, since: i64) -> Option<u64> {
        let mut samples = self.cpu.lock().unwrap_or_else(|p| p.into_inner());
        let (stored, rate) = next_rate(samples.get(key).copied(), at, usage, since);
        samples.insert(key.to_string(), stored);
        rate
    }

    /// The writable layer of `container_id`: measured now the first time, else the last figure
    /// (refreshed in the background when older than [`LAYER_TTL`]). `None` when it cannot be
    /// measured.
    pub(crate) fn writable_layer(
        self: &Arc<Self>,
        snapshots: &Arc<Snapshotter>,
        container_id: &str,
    ) -> Option<LayerUsage> {
        {
            let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = layers.get_mut(container_id) {
                if entry.measured.elapsed() >= LAYER_TTL && !entry.refreshing {
                    entry.refreshing = true;
                    self.refresh_later(snapshots.clone(), container_id.to_string());
                }
                return Some(entry.usage);
            }
        }
        let usage = measure(snapshots, container_id)?;
        let entry = LayerEntry {
            usage,
            measured: Instant::now(),
            refreshing: false,
        };
        self.layers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(container_id.to_string(), entry);
        Some(usage)
    }

    fn refresh_later(self: &Arc<Self>, snapshots: Arc<Snapshotter>, id: String) {
        let cache = self.clone();
        let refresh = move || {
            let usage = measure(&snapshots, &id);
            let mut layers = cache.layers.lock().unwrap_or_else(|p| p.into_inner());
            // The container may have been removed (and its entry dropped) meanwhile.
            if let Some(entry) = layers.get_mut(&id) {
                entry.refreshing = false;
                if let Some(usage) = usage {
                    entry.usage = usage;
                    entry.measured = Instant::now();
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(refresh)),
            Err(_) => refresh(),
        }
    }

    /// Forgets every pod and container not in `live`.
    pub(crate) fn retain(&self, live: &HashSet<&str>) {
        self.cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| live.contains(k.as_str()));
        self.layers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| live.contains(k.as_str()));
    }
}

fn measure(snapshots: &Snapshotter, container_id: &str) -> Option<LayerUsage> {
    match snapshots.usage(container_id) {
        Ok((bytes, inodes)) => Some(LayerUsage {
            bytes,
            inodes,
            at: now_nanos(),
        }),
        Err(e) => {
            warn!(container = container_id, error = %e, "cannot measure the writable layer");
            None
        }
    }
}

/// The sample to keep and the rate to report, given the previous sample.
fn next_rate(prev: Option<CpuSample>, at: i64, usage: u64, since: i64) -> (CpuSample, Option<u64>) {
    if let Some(prev) = prev.filter(|p| usage >= p.usage && at > p.at) {
        if at - prev.at < MIN_RATE_WINDOW_NS && prev.rate.is_some() {
            return (prev, prev.rate);
        }
        let rate = per_second(usage - prev.usage, at - prev.at);
        return (CpuSample { at, usage, rate }, rate);
    }
    // First sample, or the counter went back (a new cgroup under the same id): average over
    // the life so far.
    if prev.is_some() {
        debug!(at, usage, "cpu counter went back; rate restarts");
    }
    let rate = (since > 0 && at > since)
        .then(|| per_second(usage, at - since))
        .flatten();
    (CpuSample { at, usage, rate }, rate)
}

/// `delta` core-ns over `window` ns, per second.
fn per_second(delta: u64, window: i64) -> Option<u64> {
    let window = u128::try_from(window).ok().filter(|w| *w > 0)?;
    u64::try_from(u128::from(delta) * NANOS_PER_SEC / window).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn first_sample_averages_over_the_life_so_far() {
        let (kept, rate) = next_rate(None, 10 * S, 5 * S as u64, 8 * S);
        assert_eq!(rate, Some(2_500_000_000), "5 s of CPU in 2 s: 2.5 cores");
        assert_eq!(
            kept,
            CpuSample {
                at: 10 * S,
                usage: 5 * S as u64,
                rate
            }
        );
        assert_eq!(
            next_rate(None, 10 * S, 5, 0).1,
            None,
            "no start time, no window"
        );
        assert_eq!(
            next_rate(None, 10 * S, 5, 11 * S).1,
            None,
            "start after the sample"
        );
    }

    #[test]
    fn later_samples_give_the_rate_over_the_window() {
        let prev = CpuSample {
            at: 10 * S,
            usage: 1_000,
            rate: Some(7),
        };
        let (kept, rate) = next_rate(Some(prev), 12 * S, 1_000 + S as u64, 0);
        assert_eq!(rate, Some(500_000_000), "1 s of CPU in 2 s: half a core");
        assert_eq!(kept.at, 12 * S);
        let idle = next_rate(Some(kept), 14 * S, kept.usage, 0).1;
        assert_eq!(idle, Some(0));
    }

    #[test]
    fn a_short_window_keeps_the_previous_rate_and_sample() {
        let prev = CpuSample {
            at: 10 * S,
            usage: 1_000,
            rate: Some(42),
        };
        let (kept, rate) = next_rate(Some(prev), 10 * S + S / 100, 9_000_000, 0);
        assert_eq!(rate, Some(42));
        assert_eq!(kept, prev, "the window keeps growing from the older sample");
        // Without a previous rate, even a short window is better than none.
        let fresh = CpuSample { rate: None, ..prev };
        assert_eq!(
            next_rate(Some(fresh), 10 * S + S / 100, 1_000 + 1_000_000, 0).1,
            Some(100_000_000)
        );
    }

    #[test]
    fn a_counter_going_back_restarts_the_rate() {
        let prev = CpuSample {
            at: 10 * S,
            usage: 9 * S as u64,
            rate: Some(1),
        };
        let (kept, rate) = next_rate(Some(prev), 12 * S, S as u64, 11 * S);
        assert_eq!(rate, Some(S as u64), "1 s of CPU in the 1 s since start");
        assert_eq!(kept.usage, S as u64);
    }

    #[test]
    fn cache_keeps_samples_per_key_and_forgets_the_dead() {
        let cache = StatsCache::default();
        assert_eq!(cache.cpu_rate("a", 10 * S, 0, 9 * S), Some(0));
        assert_eq!(cache.cpu_rate("a", 12 * S, 2 * S as u64, 0), Some(S as u64));
        assert_eq!(cache.cpu_rate("b", 12 * S, 0, 0), None);
        cache.retain(&HashSet::from(["b"]));
        assert_eq!(
            cache.cpu_rate("a", 14 * S, 4 * S as u64, 0),
            None,
            "a was forgotten"
        );
    }

    #[test]
    fn writable_layer_is_measured_then_served_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(redb::Database::create(dir.path().join("db")).unwrap());
        let snapshots = Arc::new(Snapshotter::open(dir.path(), db).unwrap());
        let cache = Arc::new(StatsCache::default());
        let none = cache.writable_layer(&snapshots, "c1").unwrap();
        assert_eq!((none.bytes, none.inodes), (0, 0), "no upper dir yet");
        let upper = dir.path().join("containers/c2/upper");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("f"), vec![7u8; 1 << 20]).unwrap();
        let first = cache.writable_layer(&snapshots, "c2").unwrap();
        assert!(first.bytes >= 1 << 20, "{first:?}");
        assert_eq!(first.inodes, 2);
        std::fs::write(upper.join("g"), vec![7u8; 1 << 20]).unwrap();
        let cached = cache.writable_layer(&snapshots, "c2").unwrap();
        assert_eq!(cached, first, "younger than the TTL: served from memory");
        cache.retain(&HashSet::new());
        let again = cache.writable_layer(&snapshots, "c2").unwrap();
        assert!(again.bytes >= 2 << 20 && again.inodes == 3, "{again:?}");
    }
}
