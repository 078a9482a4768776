//! exec and attach: collect the client's streams (SPDY or WebSocket), run the command through
//! the backend, write the final status, close.

pub(crate) mod spdy;
pub(crate) mod websocket;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::backend::{BoxReader, BoxWriter, StreamBackend, StreamIo};
use crate::protocol::Version;
use crate::resize::decode_resizes;
use crate::status::Status;

/// Resize events buffered between the resize stream and the backend.
const RESIZE_QUEUE: usize = 16;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Exec {
        container_id: String,
        cmd: Vec<String>,
    },
    Attach {
        container_id: String,
    },
}

/// The server ends of the client's streams, whatever the transport.
pub(crate) struct Channels {
    pub stdin: Option<BoxReader>,
    pub stdout: Option<BoxWriter>,
    pub stderr: Option<BoxWriter>,
    pub resize: Option<BoxReader>,
    pub error: Option<BoxWriter>,
    pub version: Version,
}

/// Runs `command` with `channels` and writes its status on the error stream.
pub(crate) async fn run(backend: &dyn StreamBackend, command: &Command, tty: bool, ch: Channels) {
    let resize = match (tty, ch.resize) {
        (true, Some(stream)) => {
            let (tx, rx) = mpsc::channel(RESIZE_QUEUE);
            tokio::spawn(decode_resizes(stream, tx));
            Some(rx)
        }
        _ => None,
    };
    let io = StreamIo {
        stdin: ch.stdin,
        stdout: ch.stdout,
        stderr: ch.stderr,
        resize,
    };
    let status = match command {
        Command::Exec { container_id, cmd } => {
            match backend.exec(container_id, cmd, tty, io).await {
                Ok(exit) if exit.code == 0 => Status::success(),
                Ok(exit) => Status::exit_code(exit.code),
                Err(e) => {
                    tracing::warn!(container_id, error = %e, "exec failed");
                    Status::internal_error(&format!("error executing command in container: {e}"))
                }
            }
        }
        Command::Attach { container_id } => match backend.attach(container_id, tty, io).await {
            Ok(()) => Status::success(),
            Err(e) => {
                tracing::warn!(container_id, error = %e, "attach failed");
                Status::internal_error(&format!("error attaching to container: {e}"))
            }
        },
    };
    let Some(mut error) = ch.error else { return };
    let bytes = if ch.version.json_status() {
        status.to_json()
    } else {
        status.to_text()
    };
    if !bytes.is_empty()
        && let Err(e) = error.write_all(&bytes).await
    {
        tracing::debug!(error = %e, "cannot write the final status");
    }
    let _ = error.shutdown().await;
}
