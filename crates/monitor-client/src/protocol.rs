//! The monitor socket's wire format: each message is a 4-byte big-endian length and that many
//! bytes of JSON. File descriptors (exec and attach stdio) travel as SCM_RIGHTS on the same
//! `sendmsg` as the response frame that lists them.
//!
//! One connection carries one conversation: a short request (status, signal, resize, reopen-log)
//! gets one response; exec gets `ExecStarted` then `ExecExited`; attach gets `Attached` and the
//! session lasts until the client closes the connection; wait-exit gets `Exited` when it happens.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::records::ExitRecord;

/// The largest frame either side accepts; requests and responses are a few hundred bytes.
pub const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 4;

/// A request from the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// What the container is doing.
    Status,
    /// Send a signal to the container's init process.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// Run a process in the container.
    Exec(ExecRequest),
    /// Join the container's stdio.
    Attach {
        /// Write to its stdin.
        stdin: bool,
        /// Read its stdout.
        stdout: bool,
        /// Read its stderr.
        stderr: bool,
    },
    /// Resize the container's terminal.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// Reopen the CRI log file (after kubelet rotated it).
    ReopenLog,
    /// Answer when the container has exited.
    WaitExit,
}

/// An exec as it travels on the wire (see `client::ExecSpec` for the meaning of the fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// Extra environment, `KEY=value`.
    pub env: Vec<String>,
    /// Working directory; the container's when unset.
    pub cwd: Option<String>,
    /// Run it on a terminal.
    pub tty: bool,
    /// Give it a stdin.
    pub stdin: bool,
    /// Kill it after this long.
    pub timeout_ms: Option<u64>,
    /// Columns and rows of a terminal exec's first size; absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<(u16, u16)>,
}

/// A response from the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// The answer to `Status`.
    Status(MonitorStatus),
    /// A short request succeeded.
    Done,
    /// A request failed.
    Failed {
        /// Why.
        message: String,
    },
    /// Followed in the same `sendmsg` by the fds: stdin (if `stdin`), stdout, stderr (if not
    /// tty); or with a tty: stdin (the master again, if `stdin`) and the pty master.
    ExecStarted {
        /// The exec'd process's host pid.
        pid: i32,
        /// Whether a stdin fd follows.
        stdin: bool,
        /// Whether it runs on a terminal.
        tty: bool,
    },
    /// The exec'd process ended.
    ExecExited {
        /// Its exit code (128 + signal when killed).
        exit_code: i32,
        /// Whether the monitor killed it at its timeout.
        timed_out: bool,
    },
    /// Followed by the fds in order: stdin, stdout, stderr, each only when true.
    Attached {
        /// A stdin fd follows.
        stdin: bool,
        /// A stdout fd follows.
        stdout: bool,
        /// A stderr fd follows.
        stderr: bool,
        /// The container has a terminal.
        tty: bool,
    },
    /// The container exited (the answer to `WaitExit`).
    Exited(ExitRecord),
}

/// What a monitor reports about its container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorStatus {
    /// The container's init pid.
    pub pid: i32,
    /// The monitor's own pid.
    pub monitor_pid: i32,
    /// Nanoseconds since the unix epoch.
    pub started_at: i64,
    /// The exit, once the container has exited (the monitor is then finishing up).
    pub exit: Option<ExitRecord>,
}

/// The one line a new monitor writes on its stdout for the daemon's `Monitor::spawn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartReport {
    /// The container runs.
    Started {
        /// Its init's host pid.
        pid: i32,
        /// The monitor's pid.
        monitor_pid: i32,
        /// When it started, ns since the epoch.
        started_at: i64,
    },
    /// It could not be started.
    Failed {
        /// Why, in the executor's words.
        message: String,
    },
}

/// Errors decoding frames.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A frame claimed more than `MAX_FRAME` bytes.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The JSON did not match the protocol.
    #[error("bad message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes one message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(ProtocolError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Bytes received so far on a connection, cut into frames as they complete.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, or `None` until more bytes arrive.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtocolError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let mut len = [0u8; HEADER];
        len.copy_from_slice(&self.buf[..HEADER]);
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError::TooLarge(len));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&self.buf[HEADER..HEADER + len]);
        self.buf.drain(..HEADER + len);
        Ok(Some(msg?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_decode_whole() {
        let a = encode(&Request::Signal { signal: 15 }).unwrap();
        let b = encode(&Request::ReopenLog).unwrap();
        let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut fb = FrameBuf::default();
        let mut got = Vec::new();
        for byte in all {
            fb.push(&[byte]);
            while let Some(r) = fb.next_message::<Request>().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![Request::Signal { signal: 15 }, Request::ReopenLog]
        );
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut fb = FrameBuf::default();
        fb.push(&(u32::MAX).to_be_bytes());
        assert!(matches!(
            fb.next_message::<Request>(),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn exec_request_round_trips() {
        let req = Request::Exec(ExecRequest {
            args: vec!["sh".into()],
            env: vec!["A=1".into()],
            cwd: None,
            tty: false,
            stdin: true,
            timeout_ms: Some(5),
            console_size: Some((80, 24)),
        });
        let mut fb = FrameBuf::default();
        fb.push(&encode(&req).unwrap());
        assert_eq!(fb.next_message::<Request>().unwrap(), Some(req));
    }
}
