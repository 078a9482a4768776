//! Byte copies: between the client's streams and a process's stdio (telling apart the two
//! ends' failures: a process pipe that fails ends like EOF, a client that fails is gone), and
//! between a forwarded connection and the pod's socket.

use std::io;
use std::pin::pin;
use std::time::Duration;

use longshore_monitor_client::FdStream;
use longshore_streaming::PortStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// Bytes moved per read (client-go and kubelet copy with 32 KiB buffers too).
const COPY_BUFFER: usize = 32 * 1024;

/// Copies a process's output stream to the client until the stream ends, then flushes and
/// half-closes the client's side. A missing stream is done at once. Fails only when writing to
/// the client fails: the client is gone and the caller should give up.
pub(crate) async fn drain<W>(from: Option<FdStream>, to: &mut W) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let Some(mut from) = from else { return Ok(()) };
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "process output ended with an error");
                break;
            }
        };
        to.write_all(&buf[..n]).await?;
    }
    drop(from);
    if let Err(e) = to.flush().await {
        debug!(error = %e, "flushing output to the client");
    }
    if let Err(e) = to.shutdown().await {
        debug!(error = %e, "closing an output stream to the client");
    }
    Ok(())
}

/// Copies the client's input into a process's stdin until either side ends.
pub(crate) async fn feed<R>(from: &mut R, to: &mut FdStream)
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "client input ended with an error");
                return;
            }
        };
        if let Err(e) = to.write_all(&buf[..n]).await {
            // The process closed its stdin or exited; the rest of the input has nowhere to go.
            debug!(error = %e, "process stdin closed");
            return;
        }
    }
}

/// How long a forwarded connection waits for the client to finish once the pod's side has
/// closed (as containerd does): clients such as client-go only close their side when their
/// local connection closes, which may wait for us.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Copies a forwarded connection both ways, half-closing each side as the other ends. Once the
/// pod's side is done the client gets [`CLIENT_GRACE`] to finish; once the client's side is
/// done the pod's answer is copied to its end. I/O errors (EPIPE, ECONNRESET among them) are
/// returned as they are.
pub(crate) async fn splice(client: PortStream, pod: TcpStream) -> io::Result<()> {
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut pod_in, mut pod_out) = pod.into_split();
    let mut upstream = pin!(async {
        tokio::io::copy(&mut client_in, &mut pod_out).await?;
        pod_out.shutdown().await
    });
    let mut downstream = pin!(async {
        tokio::io::copy(&mut pod_in, &mut client_out).await?;
        client_out.shutdown().await
    });
    tokio::select! {
        done = &mut downstream => {
            done?;
            match tokio::time::timeout(CLIENT_GRACE, upstream).await {
                Ok(done) => done,
                Err(_) => {
                    debug!("client kept its side of a forwarded connection open; closing it");
                    Ok(())
                }
            }
        }
        done = &mut upstream => {
            done?;
            downstream.await
        }
    }
}
