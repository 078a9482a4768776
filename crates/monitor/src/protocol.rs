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
pub(crate) const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 4;

/// A request from the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub(crate) enum Request {
    Status,
    Signal {
        signal: i32,
    },
    Exec(ExecRequest),
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Resize {
        width: u16,
        height: u16,
    },
    ReopenLog,
    WaitExit,
}

/// An exec as it travels on the wire (see `client::ExecSpec` for the meaning of the fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub timeout_ms: Option<u64>,
    /// Columns and rows of a terminal exec's first size; absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<(u16, u16)>,
}

/// A response from the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "response", rename_all = "snake_case")]
pub(crate) enum Response {
    Status(MonitorStatus),
    Done,
    Failed {
        message: String,
    },
    /// Followed in the same `sendmsg` by the fds: stdin (if `stdin`), stdout, stderr (if not
    /// tty); or with a tty: stdin (the master again, if `stdin`) and the pty master.
    ExecStarted {
        pid: i32,
        stdin: bool,
        tty: bool,
    },
    ExecExited {
        exit_code: i32,
        timed_out: bool,
    },
    /// Followed by the fds in order: stdin, stdout, stderr, each only when true.
    Attached {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    },
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
pub(crate) enum StartReport {
    Started {
        pid: i32,
        monitor_pid: i32,
        started_at: i64,
    },
    Failed {
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
pub(crate) fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
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
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, or `None` until more bytes arrive.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtocolError> {
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
            while let Some(r) = fb.next::<Request>().unwrap() {
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
            fb.next::<Request>(),
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
        assert_eq!(fb.next::<Request>().unwrap(), Some(req));
    }
}
