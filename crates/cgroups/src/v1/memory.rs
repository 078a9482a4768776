//! v1 `memory` controller: `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` written in
//! the order the kernel accepts, usage from `memory.usage_in_bytes` / `memory.stat`, and OOM
//! kills from `memory.oom_control`.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse;
use crate::resources::Resources;
use crate::stats::{self, MemoryStats};

/// Memory limit.
const MEMORY_LIMIT_IN_BYTES: &str = "memory.limit_in_bytes";
/// Memory+swap limit; absent without swap accounting.
const MEMORY_MEMSW_LIMIT_IN_BYTES: &str = "memory.memsw.limit_in_bytes";
/// Memory in use.
const MEMORY_USAGE_IN_BYTES: &str = "memory.usage_in_bytes";
/// Memory+swap in use.
const MEMORY_MEMSW_USAGE_IN_BYTES: &str = "memory.memsw.usage_in_bytes";
/// Breakdown; `total_*` keys include descendants.
const MEMORY_STAT: &str = "memory.stat";
/// OOM state, including the `oom_kill` counter (Linux 4.13+).
pub(crate) const MEMORY_OOM_CONTROL: &str = "memory.oom_control";
const MEMORY_MAX_USAGE_IN_BYTES: &str = "memory.max_usage_in_bytes";
const MEMORY_FAILCNT: &str = "memory.failcnt";
/// Kernel memory; absent where the kernel has no kmem accounting.
const MEMORY_KMEM_USAGE_IN_BYTES: &str = "memory.kmem.usage_in_bytes";

/// The v1 spelling of "unlimited" when writing.
const UNLIMITED: i64 = -1;

/// A v1 memory setting or reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// memory+swap cannot be below memory.
    #[error("memory_swap_limit_in_bytes {swap} is below memory_limit_in_bytes {memory}")]
    SwapBelowLimit {
        /// Requested memory+swap limit.
        swap: i64,
        /// Requested memory limit.
        memory: i64,
    },
}

/// Which file to write first.
#[derive(Debug, PartialEq, Eq)]
enum Order {
    LimitFirst,
    SwapFirst,
}

/// Write the memory and memory+swap limits that are set.
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), MemoryError> {
    let memory = normalize(r.memory_limit_in_bytes);
    let mut swap = normalize(r.memory_swap_limit_in_bytes);
    let memsw = dir.join(MEMORY_MEMSW_LIMIT_IN_BYTES);
    // "Memory unlimited, swap unset" lifts both, or the kernel would refuse memory > memsw.
    if memory == UNLIMITED && swap == 0 {
        swap = UNLIMITED;
    }
    if swap != 0 && !memsw.exists() {
        tracing::debug!(path = %memsw.display(), "no swap accounting; memory+swap limit skipped");
        swap = 0;
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(MemoryError::SwapBelowLimit { swap, memory });
    }
    let limit = dir.join(MEMORY_LIMIT_IN_BYTES);
    if memory == 0 {
        if swap != 0 {
            fs::write(&memsw, &swap.to_string())?;
        }
        return Ok(());
    }
    if swap == 0 {
        return Ok(fs::write(&limit, &memory.to_string())?);
    }
    match order(swap, fs::read_limit(&limit)?) {
        Order::SwapFirst => {
            fs::write(&memsw, &swap.to_string())?;
            fs::write(&limit, &memory.to_string())?;
        }
        Order::LimitFirst => {
            fs::write(&limit, &memory.to_string())?;
            fs::write(&memsw, &swap.to_string())?;
        }
    }
    Ok(())
}

/// Any negative value means unlimited; the kernel wants exactly -1.
fn normalize(value: i64) -> i64 {
    if value < 0 { UNLIMITED } else { value }
}

/// The kernel keeps `limit <= memsw` at every step: raise memsw before the limit when the new
/// memsw is at least the current limit, else lower the limit first.
fn order(new_swap: i64, current_limit: Option<u64>) -> Order {
    let swap_fits = match (u64::try_from(new_swap), current_limit) {
        (Err(_), _) => true,
        (Ok(_), None) => false,
        (Ok(swap), Some(limit)) => swap >= limit,
    };
    if swap_fits {
        Order::SwapFirst
    } else {
        Order::LimitFirst
    }
}

/// Read usage, working set, faults, limit and swap (descendants included).
pub(crate) fn stats(dir: &Path) -> Result<MemoryStats, MemoryError> {
    let usage = fs::read_u64(&dir.join(MEMORY_USAGE_IN_BYTES))?;
    let stat = fs::read(&dir.join(MEMORY_STAT))?;
    let key = |k| parse::keyed(&stat, k).unwrap_or(0);
    let limit = fs::read_limit(&dir.join(MEMORY_LIMIT_IN_BYTES))?;
    let memsw_usage_path = dir.join(MEMORY_MEMSW_USAGE_IN_BYTES);
    let memsw_usage = fs::read_optional(&memsw_usage_path)?
        .map(|t| fs::parse_with(&memsw_usage_path, &t, parse::single_u64))
        .transpose()?;
    let memsw_limit_path = dir.join(MEMORY_MEMSW_LIMIT_IN_BYTES);
    let memsw_limit = fs::read_optional(&memsw_limit_path)?
        .map(|t| fs::parse_with(&memsw_limit_path, &t, parse::limit))
        .transpose()?
        .flatten();
    Ok(MemoryStats {
        usage_bytes: usage,
        working_set_bytes: stats::working_set(usage, key("total_inactive_file")),
        rss_bytes: key("total_rss"),
        page_faults: key("total_pgfault"),
        major_page_faults: key("total_pgmajfault"),
        limit_bytes: limit,
        swap_usage_bytes: memsw_usage.map(|both| both.saturating_sub(usage)),
        swap_limit_bytes: memsw_limit
            .zip(limit)
            .map(|(both, mem)| both.saturating_sub(mem)),
        cache_bytes: key("total_cache"),
        mapped_file_bytes: key("total_mapped_file"),
        kernel_bytes: optional_u64(&dir.join(MEMORY_KMEM_USAGE_IN_BYTES))?.unwrap_or(0),
        max_usage_bytes: optional_u64(&dir.join(MEMORY_MAX_USAGE_IN_BYTES))?.unwrap_or(usage),
        failcnt: optional_u64(&dir.join(MEMORY_FAILCNT))?.unwrap_or(0),
    })
}

/// A single-number file that a kernel may not have.
fn optional_u64(path: &Path) -> Result<Option<u64>, MemoryError> {
    Ok(fs::read_optional(path)?
        .map(|t| fs::parse_with(path, &t, parse::single_u64))
        .transpose()?)
}

/// `oom_kill` from `memory.oom_control` (0 on kernels before 4.13, which lack the counter).
pub(crate) fn oom_kills(dir: &Path) -> Result<u64, MemoryError> {
    Ok(fs::read_keyed(&dir.join(MEMORY_OOM_CONTROL), "oom_kill")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_order_keeps_limit_below_memsw() {
        // Raising 100M -> 200M (memsw 200M): memsw must go first.
        assert_eq!(order(200, Some(100)), Order::SwapFirst);
        // Lowering 200M -> 100M (memsw 100M): the limit must go first.
        assert_eq!(order(100, Some(200)), Order::LimitFirst);
        assert_eq!(order(100, Some(100)), Order::SwapFirst);
        // From unlimited, a finite memsw cannot go first.
        assert_eq!(order(100, None), Order::LimitFirst);
        // An unlimited memsw always fits.
        assert_eq!(order(-1, Some(100)), Order::SwapFirst);
        assert_eq!(order(-1, None), Order::SwapFirst);
    }

    #[test]
    fn negative_means_unlimited() {
        assert_eq!(normalize(-5), -1);
        assert_eq!(normalize(0), 0);
        assert_eq!(normalize(42), 42);
    }

    #[test]
    fn stats_from_sample_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            (MEMORY_USAGE_IN_BYTES, "20971520\n"),
            (
                MEMORY_STAT,
                "cache 100\nrss 5\ninactive_file 1\ntotal_cache 8388608\ntotal_rss 12582912\n\
                 total_inactive_file 4194304\ntotal_pgfault 900\ntotal_pgmajfault 2\n",
            ),
            (MEMORY_LIMIT_IN_BYTES, "67108864\n"),
            (MEMORY_MEMSW_USAGE_IN_BYTES, "20975616\n"),
            (MEMORY_MEMSW_LIMIT_IN_BYTES, "9223372036854771712\n"),
            (
                MEMORY_OOM_CONTROL,
                "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let got = stats(dir.path()).unwrap();
        assert_eq!(got.usage_bytes, 20_971_520);
        assert_eq!(
            got.working_set_bytes,
            20_971_520 - 4_194_304,
            "total_ keys, not local"
        );
        assert_eq!(got.rss_bytes, 12_582_912);
        assert_eq!(got.page_faults, 900);
        assert_eq!(got.major_page_faults, 2);
        assert_eq!(got.limit_bytes, Some(67_108_864));
        assert_eq!(got.swap_usage_bytes, Some(4096));
        assert_eq!(got.swap_limit_bytes, None, "memsw unlimited");
        assert_eq!(oom_kills(dir.path()).unwrap(), 4);
    }
}
