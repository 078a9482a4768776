//! What the streaming server needs from the runtime: run a command, attach to a container's
//! stdio, and connect to a port in a pod's network namespace.

use std::io;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// A boxed byte source (the client's stdin).
pub type BoxReader = Box<dyn AsyncRead + Send + Unpin>;
/// A boxed byte sink (the client's stdout or stderr).
pub type BoxWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A bidirectional byte stream: the forwarded connection of one port-forward request.
/// `shutdown()` half-closes towards the client; reading returns EOF when the client is done.
pub trait DuplexStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> DuplexStream for T {}

/// The boxed stream handed to [`StreamBackend::port_forward`].
pub type PortStream = Box<dyn DuplexStream>;

/// A terminal size from the client (`{"Width":..,"Height":..}` on the resize stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width", alias = "width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height", alias = "height")]
    pub height: u16,
}

/// The exit status of an exec'd process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// 0..=255; a process killed by signal N reports 128+N, as shells and runc do.
    pub code: i32,
}

/// The client's streams for one exec or attach. Only the ones the CRI request asked for are
/// present. With `tty`, there is no stderr (it shares the terminal) and `resize` carries the
/// client's window sizes; without, `resize` is `None`.
pub struct StreamIo {
    /// The client's input; EOF when the client closes stdin.
    pub stdin: Option<BoxReader>,
    /// Where the process's stdout (or the terminal's output) goes.
    pub stdout: Option<BoxWriter>,
    /// Where the process's stderr goes.
    pub stderr: Option<BoxWriter>,
    /// Terminal resize events, in order; closed when the client closes its resize stream.
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

impl std::fmt::Debug for StreamIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// The runtime side of streaming. The daemon implements it by talking to the container's
/// monitor process (exec, attach) and by dialling into the pod's network namespace
/// (port-forward).
///
/// Contract for `exec` and `attach`: return only once all output has been written to the
/// writers in [`StreamIo`], and drop them (or let them drop) before returning; the server then
/// sends the final status and closes the connection. Errors become a Kubernetes
/// `InternalError` status the client shows to the user.
pub trait StreamBackend: Send + Sync + 'static {
    /// Runs `cmd` in container `container_id` (with a terminal when `tty`), streaming its stdio,
    /// and returns its exit status.
    fn exec<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<ExitStatus>>;

    /// Attaches to the stdio of container `container_id`'s main process until the client
    /// detaches (stdin EOF) or the process exits.
    fn attach<'a>(
        &'a self,
        container_id: &'a str,
        tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Connects `stream` to `port` on 127.0.0.1 inside pod `pod_sandbox_id`'s network
    /// namespace and copies both ways until both directions end. `EPIPE`/`ECONNRESET` errors
    /// keep the client's connection open, as kubelet does; other errors close it.
    fn port_forward<'a>(
        &'a self,
        pod_sandbox_id: &'a str,
        port: u16,
        stream: PortStream,
    ) -> BoxFuture<'a, io::Result<()>>;
}
