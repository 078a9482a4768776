//! v2 `memory` controller: `memory.max`, `memory.swap.max`, `memory.oom.group`, and usage from
//! `memory.current` / `memory.stat` / `memory.events`.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse::{self, MAX};
use crate::resources::Resources;
use crate::stats::{self, MemoryStats};

/// Hard memory limit.
const MEMORY_MAX: &str = "memory.max";
/// Swap limit (swap only, unlike v1's memory+swap).
const MEMORY_SWAP_MAX: &str = "memory.swap.max";
/// Swap in use.
const MEMORY_SWAP_CURRENT: &str = "memory.swap.current";
/// Whether the OOM killer takes the whole cgroup.
const MEMORY_OOM_GROUP: &str = "memory.oom.group";
/// Memory in use.
const MEMORY_CURRENT: &str = "memory.current";
/// Breakdown and fault counters.
const MEMORY_STAT: &str = "memory.stat";
/// Limit events, including `oom_kill`.
pub(crate) const MEMORY_EVENTS: &str = "memory.events";
/// The highest usage (Linux 5.19+).
const MEMORY_PEAK: &str = "memory.peak";
/// What `kernel` in memory.stat (Linux 5.18+) sums, for older kernels.
const KERNEL_PARTS: [&str; 5] = ["kernel_stack", "pagetables", "percpu", "sock", "slab"];

/// A v2 memory setting or reading that failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The kernel refused or a file was unreadable.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A swap limit needs a memory limit to subtract from.
    #[error(
        "memory_swap_limit_in_bytes {swap} needs a memory limit, but memory_limit_in_bytes is {memory}"
    )]
    SwapWithoutLimit {
        /// Requested memory+swap limit.
        swap: i64,
        /// Requested memory limit.
        memory: i64,
    },
    /// memory+swap cannot be below memory.
    #[error("memory_swap_limit_in_bytes {swap} is below memory_limit_in_bytes {memory}")]
    SwapBelowLimit {
        /// Requested memory+swap limit.
        swap: i64,
        /// Requested memory limit.
        memory: i64,
    },
    /// A swap limit was asked for but the kernel does not account swap.
    #[error("{} is absent (no swap accounting); cannot limit swap to {value}", path.display())]
    NoSwapAccounting {
        /// The missing file.
        path: std::path::PathBuf,
        /// The value that would have been written.
        value: String,
    },
}

/// Write the memory files for the fields that are set.
pub(crate) fn apply(dir: &Path, r: &Resources) -> Result<(), MemoryError> {
    let memory = r.memory_limit_in_bytes;
    if let Some(swap) = swap_max(memory, r.memory_swap_limit_in_bytes)? {
        write_swap_max(dir, &limit_text(swap))?;
    }
    if memory != 0 {
        fs::write(&dir.join(MEMORY_MAX), &limit_text(memory))?;
    }
    if let Some(group) = r.oom_group {
        fs::write(&dir.join(MEMORY_OOM_GROUP), if group { "1" } else { "0" })?;
    }
    Ok(())
}

fn write_swap_max(dir: &Path, value: &str) -> Result<(), MemoryError> {
    let path = dir.join(MEMORY_SWAP_MAX);
    if path.exists() {
        return Ok(fs::write(&path, value)?);
    }
    // Without swap accounting no swap is charged to cgroups; "no swap" and "unlimited" both
    // hold already, as kubelet's usual memory+swap == memory request asks.
    if value == "0" || value == MAX {
        tracing::debug!(path = %path.display(), value, "no swap accounting; swap limit skipped");
        return Ok(());
    }
    Err(MemoryError::NoSwapAccounting {
        path,
        value: value.to_string(),
    })
}

/// `memory.swap.max` from CRI's memory and memory+swap limits, as runc converts them:
/// `None` leaves it alone, `Some(-1)` is `max`.
pub(crate) fn swap_max(memory: i64, memory_swap: i64) -> Result<Option<i64>, MemoryError> {
    // "Memory unlimited, swap unset" means both unlimited, as on v1.
    if memory < 0 && memory_swap == 0 {
        return Ok(Some(-1));
    }
    if memory_swap == 0 {
        return Ok(None);
    }
    if memory_swap < 0 {
        return Ok(Some(-1));
    }
    if memory <= 0 {
        return Err(MemoryError::SwapWithoutLimit {
            swap: memory_swap,
            memory,
        });
    }
    if memory_swap < memory {
        return Err(MemoryError::SwapBelowLimit {
            swap: memory_swap,
            memory,
        });
    }
    Ok(Some(memory_swap - memory))
}

fn limit_text(value: i64) -> String {
    if value < 0 {
        MAX.to_string()
    } else {
        value.to_string()
    }
}

/// Read usage, working set, faults, limit and swap.
pub(crate) fn stats(dir: &Path) -> Result<MemoryStats, MemoryError> {
    let usage = fs::read_u64(&dir.join(MEMORY_CURRENT))?;
    let stat = fs::read(&dir.join(MEMORY_STAT))?;
    let key = |k| parse::keyed(&stat, k).unwrap_or(0);
    let swap_usage = fs::read_optional(&dir.join(MEMORY_SWAP_CURRENT))?;
    let swap_limit = fs::read_optional(&dir.join(MEMORY_SWAP_MAX))?;
    let swap_path = dir.join(MEMORY_SWAP_CURRENT);
    Ok(MemoryStats {
        usage_bytes: usage,
        working_set_bytes: stats::working_set(usage, key("inactive_file")),
        rss_bytes: key("anon"),
        page_faults: key("pgfault"),
        major_page_faults: key("pgmajfault"),
        limit_bytes: fs::read_limit(&dir.join(MEMORY_MAX))?,
        swap_usage_bytes: swap_usage
            .map(|t| fs::parse_with(&swap_path, &t, parse::single_u64))
            .transpose()?,
        swap_limit_bytes: swap_limit
            .map(|t| fs::parse_with(&dir.join(MEMORY_SWAP_MAX), &t, parse::limit))
            .transpose()?
            .flatten(),
        cache_bytes: key("file"),
        mapped_file_bytes: key("file_mapped"),
        kernel_bytes: parse::keyed(&stat, "kernel")
            .unwrap_or_else(|| KERNEL_PARTS.iter().map(|k| key(k)).sum()),
        max_usage_bytes: match fs::read_optional(&dir.join(MEMORY_PEAK))? {
            Some(t) => fs::parse_with(&dir.join(MEMORY_PEAK), &t, parse::single_u64)?,
            None => usage,
        },
        failcnt: fs::read_optional(&dir.join(MEMORY_EVENTS))?
            .and_then(|t| parse::keyed(&t, "max"))
            .unwrap_or(0),
    })
}

/// `oom_kill` from `memory.events`.
pub(crate) fn oom_kills(dir: &Path) -> Result<u64, MemoryError> {
    Ok(fs::read_keyed(&dir.join(MEMORY_EVENTS), "oom_kill")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_max(0, 0).unwrap(), None);
        assert_eq!(swap_max(100, 0).unwrap(), None);
        assert_eq!(swap_max(-1, 0).unwrap(), Some(-1));
        assert_eq!(swap_max(100, -1).unwrap(), Some(-1));
        assert_eq!(swap_max(100, 100).unwrap(), Some(0));
        assert_eq!(swap_max(100, 250).unwrap(), Some(150));
        assert!(matches!(
            swap_max(0, 100),
            Err(MemoryError::SwapWithoutLimit { .. })
        ));
        assert!(matches!(
            swap_max(-1, 100),
            Err(MemoryError::SwapWithoutLimit { .. })
        ));
        assert!(matches!(
            swap_max(200, 100),
            Err(MemoryError::SwapBelowLimit { .. })
        ));
    }

    #[test]
    fn limit_texts() {
        assert_eq!(limit_text(-1), "max");
        assert_eq!(limit_text(33_554_432), "33554432");
    }

    fn sample_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn stats_from_sample_files() {
        let dir = sample_dir(&[
            (MEMORY_CURRENT, "10485760\n"),
            (
                MEMORY_STAT,
                "anon 4194304\nfile 6291456\ninactive_file 2097152\nactive_file 4194304\n\
                 pgfault 1200\npgmajfault 3\n",
            ),
            (MEMORY_MAX, "33554432\n"),
            (MEMORY_SWAP_CURRENT, "4096\n"),
            (MEMORY_SWAP_MAX, "max\n"),
            (
                MEMORY_EVENTS,
                "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n",
            ),
        ]);
        let got = stats(dir.path()).unwrap();
        assert_eq!(got.usage_bytes, 10_485_760);
        assert_eq!(got.working_set_bytes, 10_485_760 - 2_097_152);
        assert_eq!(got.rss_bytes, 4_194_304);
        assert_eq!(got.page_faults, 1200);
        assert_eq!(got.major_page_faults, 3);
        assert_eq!(got.limit_bytes, Some(33_554_432));
        assert_eq!(got.swap_usage_bytes, Some(4096));
        assert_eq!(got.swap_limit_bytes, None);
        assert_eq!(oom_kills(dir.path()).unwrap(), 2);
    }

    #[test]
    fn stats_without_swap_accounting() {
        let dir = sample_dir(&[
            (MEMORY_CURRENT, "100\n"),
            (MEMORY_STAT, "anon 10\n"),
            (MEMORY_MAX, "max\n"),
        ]);
        let got = stats(dir.path()).unwrap();
        assert_eq!(got.limit_bytes, None);
        assert_eq!(got.swap_usage_bytes, None);
        assert_eq!(got.working_set_bytes, 100, "no inactive_file: all of usage");
    }

    #[test]
    fn malformed_file_is_named_in_the_error() {
        let dir = sample_dir(&[(MEMORY_CURRENT, "lots\n"), (MEMORY_STAT, "")]);
        let err = stats(dir.path()).unwrap_err().to_string();
        assert!(err.contains("memory.current"), "{err}");
        assert!(err.contains("lots"), "{err}");
    }
}
