//! `longshore-monitor checkpoint --state-dir D --image-path I --work-path W [--stop]`: a one-shot
//! run (not the monitor's poll loop) that dumps the running container of the monitor in `D` with
//! CRIU, through the container's own executor: libcontainer's checkpoint for the embedded one,
//! `<rt> checkpoint` for an OCI runtime handler. It exits 0 when the CRIU images are in `I`;
//! otherwise it prints why on stderr (CRIU's own error lines included) and exits 1.
//!
//! Why a separate process and not a monitor request: a dump freezes the container for as long as
//! CRIU needs, and the monitor must keep draining the container's other streams meanwhile; the
//! daemon can also kill this process at the CRI request's timeout without touching the monitor.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;

use crate::executor::{self, CheckpointRequest};

const USAGE: &str = "usage: longshore-monitor checkpoint --state-dir <dir> --image-path <dir> \
                     --work-path <dir> [--stop]";

/// Runs the checkpoint subcommand; `args` follow the word `checkpoint`.
pub(crate) fn main<I, S>(args: I) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let (state_dir, request) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("longshore-monitor checkpoint: {message}\n{USAGE}");
            return 2;
        }
    };
    let cfg = match crate::load_config(&state_dir) {
        Ok(cfg) => cfg,
        Err(message) => {
            eprintln!("longshore-monitor checkpoint: {message}");
            return 1;
        }
    };
    match executor::from_config(&cfg).checkpoint(&request) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}{}", criu_errors(&request));
            1
        }
    }
}

fn parse_args<I, S>(args: I) -> Result<(PathBuf, CheckpointRequest), String>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let (mut state_dir, mut image_path, mut work_path) = (None, None, None);
    let mut leave_running = true;
    while let Some(arg) = args.next() {
        let slot = match arg.to_str() {
            Some("--state-dir") => &mut state_dir,
            Some("--image-path") => &mut image_path,
            Some("--work-path") => &mut work_path,
            Some("--stop") => {
                leave_running = false;
                continue;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        };
        *slot = Some(PathBuf::from(
            args.next()
                .ok_or_else(|| format!("{arg:?} needs a value"))?,
        ));
    }
    let need = |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("{flag} is required"));
    Ok((
        need(state_dir, "--state-dir")?,
        CheckpointRequest {
            image_path: need(image_path, "--image-path")?,
            work_path: need(work_path, "--work-path")?,
            leave_running,
        },
    ))
}

/// CRIU's own error lines from its dump log, where the executor's message does not carry them.
fn criu_errors(request: &CheckpointRequest) -> String {
    let lines: Vec<String> = [&request.work_path, &request.image_path]
        .iter()
        .map(|dir| dir.join(executor::CRIU_DUMP_LOG))
        .filter_map(|log| fs::read_to_string(log).ok())
        .flat_map(|text| error_lines(&text))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (criu: {})", lines.join("; "))
    }
}

/// The `Error (...)` lines of a CRIU log, the last few.
fn error_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter(|l| l.contains("Error (") || l.starts_with("Error"))
        .map(|l| l.trim().to_owned())
        .collect();
    let keep = lines.len().saturating_sub(4);
    lines.drain(..keep);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_name_every_path() {
        let (dir, req) = parse_args([
            "--state-dir",
            "/s",
            "--image-path",
            "/i",
            "--work-path",
            "/w",
        ])
        .unwrap();
        assert_eq!(dir, PathBuf::from("/s"));
        assert_eq!(req.image_path, PathBuf::from("/i"));
        assert_eq!(req.work_path, PathBuf::from("/w"));
        assert!(req.leave_running);
        let (_, req) = parse_args([
            "--state-dir",
            "/s",
            "--image-path",
            "/i",
            "--work-path",
            "/w",
            "--stop",
        ])
        .unwrap();
        assert!(!req.leave_running);
        assert!(parse_args(["--state-dir", "/s"]).is_err());
        assert!(parse_args(["--image-path"]).is_err());
        assert!(parse_args(["--bogus"]).is_err());
    }

    #[test]
    fn criu_error_lines_are_the_last_errors() {
        let log = "(00.001) ok\n(00.002) Error (criu/vdso.c:381): vdso: bad\nx\n\
                   (00.003) Error (criu/kerndat.c:1615): failed\n";
        assert_eq!(
            error_lines(log),
            vec![
                "(00.002) Error (criu/vdso.c:381): vdso: bad",
                "(00.003) Error (criu/kerndat.c:1615): failed"
            ]
        );
        assert!(error_lines("all good\n").is_empty());
    }
}
