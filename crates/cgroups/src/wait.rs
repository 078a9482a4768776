//! Polling the kernel's state files until a condition holds: freezing, emptying, removal.

use std::thread;
use std::time::{Duration, Instant};

/// First pause between polls; doubled each round up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause between polls.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Call `check` until it returns `true` or `timeout` passes. Returns whether it held.
pub(crate) fn poll_until<E>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if check()? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_the_condition_holds_or_time_runs_out() {
        let mut n = 0;
        let held: Result<bool, ()> = poll_until(Duration::from_secs(5), || {
            n += 1;
            Ok(n == 3)
        });
        assert_eq!(held, Ok(true));
        assert_eq!(n, 3);
        let never: Result<bool, ()> = poll_until(Duration::from_millis(10), || Ok(false));
        assert_eq!(never, Ok(false));
        let failed: Result<bool, &str> = poll_until(Duration::from_secs(1), || Err("boom"));
        assert_eq!(failed, Err("boom"));
    }
}
