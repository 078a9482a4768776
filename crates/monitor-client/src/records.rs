//! The files a monitor leaves in its state dir for the daemon: the start record and the exit
//! record. Both are written atomically (temp file + rename) so a reader never sees half a file,
//! even if the monitor dies while writing.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{EXIT_FILE, PID_FILE, START_FILE};

/// Why the container stopped, in kubelet's words.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// Any other exit code or signal.
    Error,
    /// The cgroup's `oom_kill` count rose while the container ran.
    #[serde(rename = "OOMKilled")]
    OomKilled,
}

/// How the container's process ended (`<state_dir>/exit.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code, or 128 + signal number when a signal killed it (as kubelet expects).
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When the monitor reaped it, in nanoseconds since the unix epoch.
    pub finished_at: i64,
    /// Completed, Error or OOMKilled.
    pub reason: ExitReason,
}

impl ExitRecord {
    /// Builds a record from an exit code or killing signal and whether an OOM kill was seen.
    pub fn new(code: i32, signal: Option<i32>, finished_at: i64, oom_killed: bool) -> Self {
        let exit_code = match signal {
            Some(sig) => 128 + sig,
            None => code,
        };
        let reason = if oom_killed {
            ExitReason::OomKilled
        } else if exit_code == 0 {
            ExitReason::Completed
        } else {
            ExitReason::Error
        };
        ExitRecord {
            exit_code,
            signal,
            finished_at,
            reason,
        }
    }
}

/// When and as which pid the container started (`<state_dir>/started.json`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartRecord {
    /// The container's init process, as seen from the host.
    pub pid: i32,
    /// The monitor's own pid.
    pub monitor_pid: i32,
    /// Nanoseconds since the unix epoch, taken when the runtime's start returned.
    pub started_at: i64,
}

/// Nanoseconds since the unix epoch now.
pub fn unix_nanos_now() -> i64 {
    unix_nanos(SystemTime::now())
}

/// Nanoseconds since the unix epoch of `t` (0 before the epoch, which a sane clock never is).
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads the exit record, `None` if the monitor has not written one (yet).
pub fn read_exit_record(state_dir: &Path) -> io::Result<Option<ExitRecord>> {
    read_json(&state_dir.join(EXIT_FILE))
}

/// Reads the start record, `None` if the container never started.
pub fn read_start_record(state_dir: &Path) -> io::Result<Option<StartRecord>> {
    read_json(&state_dir.join(START_FILE))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path:?}: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `exit.json` atomically (the monitor's last act).
pub fn write_exit_record(state_dir: &Path, record: &ExitRecord) -> io::Result<()> {
    write_atomic(&state_dir.join(EXIT_FILE), &to_json(record)?)
}

/// Writes `pid` and `started.json` atomically, once the container runs.
pub fn write_start_record(state_dir: &Path, record: &StartRecord) -> io::Result<()> {
    write_atomic(&state_dir.join(PID_FILE), record.pid.to_string().as_bytes())?;
    write_atomic(&state_dir.join(START_FILE), &to_json(record)?)
}

fn to_json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

/// Writes `path` so that readers see either the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_exit_is_128_plus_signal() {
        let r = ExitRecord::new(0, Some(15), 1, false);
        assert_eq!(r.exit_code, 143);
        assert_eq!(r.reason, ExitReason::Error);
    }

    #[test]
    fn reasons() {
        assert_eq!(
            ExitRecord::new(0, None, 1, false).reason,
            ExitReason::Completed
        );
        assert_eq!(ExitRecord::new(3, None, 1, false).reason, ExitReason::Error);
        assert_eq!(
            ExitRecord::new(0, Some(9), 1, true).reason,
            ExitReason::OomKilled
        );
    }

    #[test]
    fn exit_record_round_trips_and_names_oom_like_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit_record(dir.path()).unwrap(), None);
        let r = ExitRecord::new(0, Some(9), 42, true);
        write_exit_record(dir.path(), &r).unwrap();
        assert_eq!(read_exit_record(dir.path()).unwrap(), Some(r));
        let text = fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap();
        assert!(text.contains("\"OOMKilled\""), "{text}");
        assert!(!dir.path().join("exit.json.tmp").exists());
    }
}
