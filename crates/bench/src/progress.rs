//! Progress on stderr for long runs: one line rewritten in place on a terminal, a line per
//! finished step otherwise (CI logs), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// The progress display.
pub struct Progress {
    terminal: bool,
    quiet: bool,
    started: Instant,
}

impl Progress {
    /// A display on stderr.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            quiet,
            started: Instant::now(),
        }
    }

    /// `done` of `total` steps of a scenario are done on `endpoint`.
    pub fn step(&self, scenario: &str, endpoint: &str, done: usize, total: usize) {
        if self.quiet {
            return;
        }
        let line = format!(
            "[{:>5.0}s] {scenario:<13} {endpoint:<12} {done}/{total}",
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
        } else if done == total {
            let _ = writeln!(err, "{line}");
        }
    }

    /// A message of its own line (a phase starting, a figure worth seeing early, a warning).
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let clear = if self.terminal { "\r\x1b[K" } else { "" };
        let _ = writeln!(
            err,
            "{clear}[{:>5.0}s] {message}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Ends the in-place line.
    pub fn finish(&self) {
        if !self.quiet && self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
