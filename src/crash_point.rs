//! Crash points, for the tests of crash ordering: with `LONGSHORE_CRASH_AT=<name>` in its
//! environment the daemon aborts when it reaches the point `name`, exactly as a daemon killed
//! there would stop: no cleanup, no unwinding. The end-to-end tests use them to prove that a
//! restarted daemon undoes what the crash left (tests/crash.rs). Unset, a point costs one
//! comparison with a string read once.

use std::sync::OnceLock;

/// The environment variable naming the point to abort at.
pub const CRASH_AT_ENV: &str = "LONGSHORE_CRASH_AT";

/// Aborts the daemon if `name` is the configured crash point.
pub(crate) fn crash_point(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok());
    if at.as_deref() == Some(name) {
        tracing::error!(point = name, "crash point reached: aborting");
        std::process::abort();
    }
}
