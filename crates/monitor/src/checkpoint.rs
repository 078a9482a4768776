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
            let logs =
                [&request.work_path, &request.image_path].map(|d| d.join(executor::CRIU_DUMP_LOG));
            eprintln!("{e}{}", executor::criu_errors(&logs));
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
}
