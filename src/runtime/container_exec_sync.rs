//! `ExecSync`: runs a command in a container and answers with its output and exit code
//! (kubelet's exec probes, `crictl exec -s`).
//!
//! It goes through the same monitor exec as a streaming exec, with no stdin and no terminal.
//! Each output is capped at 16 MiB as kubelet and containerd cap it (the rest is read and
//! dropped, so the command never blocks on a full pipe). With a timeout the monitor kills the
//! process when it passes and the RPC fails with `DeadlineExceeded`, which kubelet reads as a
//! timed-out probe (containerd answers the same way).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::server::RpcError;
use crate::server::status::RpcContext;
use longshore_monitor_client::{ExecSpec, MonitorClient};
use tokio::io::AsyncWrite;
use tracing::debug;

use super::container_exec::running;
use crate::api::{ExecSyncRequest, ExecSyncResponse};
use crate::daemon::Daemon;
use crate::streaming_backend::exec::{self, ExecIo};

/// kubelet's and containerd's cap on each of stdout and stderr.
const MAX_OUTPUT: usize = 16 << 20;
/// How long to keep reading output after the command exited, when something it started in the
/// background still holds its stdout or stderr open (a probe must not hang on it).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

pub(super) async fn exec_sync(
    d: &Arc<Daemon>,
    req: ExecSyncRequest,
) -> Result<ExecSyncResponse, RpcError> {
    let container = running(d, &req.container_id)?;
    if req.cmd.is_empty() {
        return Err(RpcError::invalid_argument("cmd is required"));
    }
    if req.timeout < 0 {
        return Err(RpcError::invalid_argument(format!(
            "timeout {} is negative",
            req.timeout
        )));
    }
    let timeout = (req.timeout > 0).then(|| Duration::from_secs(req.timeout as u64));
    let client = MonitorClient::connect(&container.snapshot().state_dir)
        .await
        .with_context(|| format!("container {} monitor", container.id))?;
    let spec = ExecSpec {
        args: req.cmd.clone(),
        timeout,
        ..ExecSpec::default()
    };
    let session = client
        .exec(&spec)
        .await
        .with_context(|| format!("exec in container {}", container.id))?;
    let io = ExecIo {
        stdin: None,
        stdout: CappedBuffer::default(),
        stderr: CappedBuffer::default(),
        resize: None,
    };
    let done = exec::run(session, false, io, Some(DRAIN_AFTER_EXIT))
        .await
        .with_context(|| format!("exec in container {}", container.id))?;
    if done.exit.timed_out {
        return Err(RpcError::deadline_exceeded(format!(
            "command {:?} timed out after {}s",
            req.cmd, req.timeout
        )));
    }
    debug!(container = %container.id, exit_code = done.exit.exit_code, "exec sync done");
    Ok(ExecSyncResponse {
        stdout: done.stdout.bytes,
        stderr: done.stderr.bytes,
        exit_code: done.exit.exit_code,
    })
}

/// Keeps the first [`MAX_OUTPUT`] bytes written to it and drops the rest.
#[derive(Default)]
struct CappedBuffer {
    bytes: Vec<u8>,
}

impl AsyncWrite for CappedBuffer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let room = MAX_OUTPUT.saturating_sub(self.bytes.len());
        let kept = data.len().min(room);
        self.bytes.extend_from_slice(&data[..kept]);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn output_is_capped_and_the_rest_dropped() {
        let mut buf = CappedBuffer::default();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..17 {
            buf.write_all(&chunk).await.unwrap();
        }
        assert_eq!(buf.bytes.len(), MAX_OUTPUT);
    }
}
