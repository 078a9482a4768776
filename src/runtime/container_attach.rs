//! `Attach`: a single-use URL on the streaming server for attaching to a running container's
//! stdio.

use std::sync::Arc;

use crate::server::RpcError;

use super::container_exec::{running, validate_streams};
use crate::api::{AttachRequest, AttachResponse};
use crate::daemon::Daemon;
use crate::streaming_backend;

pub(super) async fn attach(
    d: &Arc<Daemon>,
    req: AttachRequest,
) -> Result<AttachResponse, RpcError> {
    let container = running(d, &req.container_id)?;
    validate_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
    let url = streaming_backend::server(d)?.attach_url(longshore_streaming::AttachRequest {
        container_id: container.id.clone(),
        tty: req.tty,
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
    })?;
    Ok(AttachResponse { url })
}
