//! `Exec`: a single-use URL on the streaming server for running a command in a container with
//! its stdio streamed (SPDY or WebSocket). The command starts when the client connects.

use std::sync::Arc;

use crate::server::RpcError;

use super::lookup;
use crate::api::{ExecRequest, ExecResponse};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState};
use crate::streaming_backend;

pub(super) async fn exec(d: &Arc<Daemon>, req: ExecRequest) -> Result<ExecResponse, RpcError> {
    let container = running(d, &req.container_id)?;
    if req.cmd.is_empty() {
        return Err(RpcError::invalid_argument("cmd is required"));
    }
    validate_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
    let url = streaming_backend::server(d)?.exec_url(longshore_streaming::ExecRequest {
        container_id: container.id.clone(),
        cmd: req.cmd,
        tty: req.tty,
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
    })?;
    Ok(ExecResponse { url })
}

/// The container, which must be running: exec and attach need its process.
pub(super) fn running(d: &Daemon, id: &str) -> Result<Arc<Container>, RpcError> {
    let container = lookup::container(d, id)?;
    let state = container.state();
    if state != ContainerState::Running {
        return Err(RpcError::failed_precondition(format!(
            "container {} is {state:?}; only a running container can be exec'd into or attached to",
            container.id
        )));
    }
    Ok(container)
}

/// kubelet's checks on the streams of an exec or attach.
pub(super) fn validate_streams(
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<(), RpcError> {
    if tty && stderr {
        return Err(RpcError::invalid_argument(
            "tty and stderr cannot both be true",
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(RpcError::invalid_argument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_checked_as_kubelet_does() {
        assert!(validate_streams(false, false, true, true).is_ok());
        assert!(validate_streams(true, true, true, false).is_ok());
        assert!(validate_streams(false, true, false, false).is_ok());
        let err = validate_streams(true, true, true, true).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let err = validate_streams(false, false, false, false).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
}
