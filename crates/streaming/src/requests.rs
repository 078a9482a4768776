//! The CRI requests a streaming URL stands for, validated as kubelet's streaming server does.

use crate::error::StreamingError;

/// A CRI `ExecRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The container to run in.
    pub container_id: String,
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Stream stdin.
    pub stdin: bool,
    /// Stream stdout.
    pub stdout: bool,
    /// Stream stderr (not with `tty`).
    pub stderr: bool,
}

/// A CRI `AttachRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    /// The container whose stdio to attach to.
    pub container_id: String,
    /// The container has a terminal.
    pub tty: bool,
    /// Stream stdin.
    pub stdin: bool,
    /// Stream stdout.
    pub stdout: bool,
    /// Stream stderr (not with `tty`).
    pub stderr: bool,
}

/// A CRI `PortForwardRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardRequest {
    /// The pod whose network namespace to connect in.
    pub pod_sandbox_id: String,
    /// Ports for WebSocket clients (kubelet passes none for SPDY, where each stream names
    /// its port).
    pub ports: Vec<u16>,
}

/// Which streams a remote command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

fn validate_stdio(container_id: &str, opts: StreamOptions) -> Result<(), StreamingError> {
    if container_id.is_empty() {
        return Err(StreamingError::InvalidRequest(
            "missing required container_id",
        ));
    }
    if opts.tty && opts.stderr {
        return Err(StreamingError::InvalidRequest(
            "tty and stderr cannot both be true",
        ));
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err(StreamingError::InvalidRequest(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    Ok(())
}

impl ExecRequest {
    pub(crate) fn options(&self) -> StreamOptions {
        StreamOptions {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            tty: self.tty,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StreamingError> {
        if self.cmd.is_empty() {
            return Err(StreamingError::InvalidRequest("missing required cmd"));
        }
        validate_stdio(&self.container_id, self.options())
    }
}

impl AttachRequest {
    pub(crate) fn options(&self) -> StreamOptions {
        StreamOptions {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            tty: self.tty,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StreamingError> {
        validate_stdio(&self.container_id, self.options())
    }
}

impl PortForwardRequest {
    pub(crate) fn validate(&self) -> Result<(), StreamingError> {
        if self.pod_sandbox_id.is_empty() {
            return Err(StreamingError::InvalidRequest(
                "missing required pod_sandbox_id",
            ));
        }
        if self.ports.contains(&0) {
            return Err(StreamingError::InvalidRequest("port 0 cannot be forwarded"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> ExecRequest {
        ExecRequest {
            container_id: "c".into(),
            cmd: vec!["ls".into()],
            tty,
            stdin,
            stdout,
            stderr,
        }
    }

    #[test]
    fn exec_validation_matches_kubelet() {
        assert!(exec(false, false, true, true).validate().is_ok());
        assert!(exec(true, true, true, false).validate().is_ok());
        assert!(exec(true, true, true, true).validate().is_err());
        assert!(exec(false, false, false, false).validate().is_err());
        let mut e = exec(false, false, true, false);
        e.container_id.clear();
        assert!(e.validate().is_err());
    }

    #[test]
    fn port_forward_needs_a_pod() {
        let pf = PortForwardRequest {
            pod_sandbox_id: String::new(),
            ports: vec![],
        };
        assert!(pf.validate().is_err());
        let pf = PortForwardRequest {
            pod_sandbox_id: "p".into(),
            ports: vec![80],
        };
        assert!(pf.validate().is_ok());
    }
}
