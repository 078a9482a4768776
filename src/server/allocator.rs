//! How the daemon's allocator gives memory back.
//!
//! glibc raises its mmap threshold after large frees (up to 32 MiB), so after an image pull the
//! large decompression and copy buffers of the pull's worker threads come from per-thread arenas
//! and stay in the daemon's RSS: measured 62–87 MB idle after a 162 MiB pull instead of 13 MB
//! (docs/benchmarks.md). Fixing both thresholds turns the dynamic adjustment off: buffers over
//! 128 KiB are mmapped and returned at free, and free memory above 128 KiB at the top of a heap
//! is trimmed. The same pull then leaves the daemon at ~17 MB, its duration unchanged.

#[cfg(target_env = "gnu")]
/// Above this size an allocation gets its own mapping; also the heap-top trim threshold.
const THRESHOLD: libc::c_int = 128 * 1024;

/// Sets the thresholds; call before the async runtime starts its threads.
#[cfg(target_env = "gnu")]
pub(super) fn return_memory_promptly() {
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
    }
}

/// Other C libraries (musl) keep no arenas this way; nothing to tune.
#[cfg(not(target_env = "gnu"))]
pub(super) fn return_memory_promptly() {}

/// How often the daemon gives freed heap memory back after it served requests.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Returns free pages inside the heaps to the kernel every [`TRIM_EVERY`] in which the daemon
/// served an RPC.
///
/// The thresholds above only cover large buffers and the heaps' tops; the small records of many
/// containers freed together (a node draining, 500 containers removed) leave whole free pages in
/// the middle of the heaps, which only `malloc_trim` releases. It walks the free lists (well
/// under a millisecond for the daemon's heaps) on a blocking thread; an idle daemon skips it.
pub(super) fn spawn_trimmer() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = super::rpc::calls_so_far();
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let calls = super::rpc::calls_so_far();
            if calls == seen {
                continue;
            }
            seen = calls;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

#[cfg(target_env = "gnu")]
fn trim() {
    // SAFETY: malloc_trim only releases free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn trim() {}
