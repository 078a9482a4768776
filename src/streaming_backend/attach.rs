//! Attaching a client to a running container's stdio through its monitor.
//!
//! Input and output use two monitor sessions, so that the input can end on its own: the monitor
//! closes a `stdin_once` container's stdin when the first session that wrote to it ends, and
//! the output session goes on carrying what the container prints until it exits (as
//! containerd keeps an attach's output open after a `stdin_once` stdin closes).
//!
//! The attach ends when the output ends (the container exited), when the client's input ends
//! (except for a `stdin_once` container without a terminal, whose remaining output is still
//! wanted), or when the client cannot be written to.

use std::convert::Infallible;
use std::io;
use std::pin::pin;

use longshore_monitor_client::{AttachSession, AttachStreams, MonitorClient};
use longshore_streaming::{BoxReader, BoxWriter, StreamIo, TerminalSize};
use tokio::sync::mpsc;
use tracing::debug;

use super::copy;

/// How the container was made: that, not the request, decides how its stdio behaves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
    /// The container has a terminal.
    pub tty: bool,
    /// The container's stdin closes after the first attach that wrote to it ends.
    pub stdin_once: bool,
}

/// Attaches `io` to the container of `client` and returns when the attach is over.
pub(super) async fn attach(client: &MonitorClient, mode: Mode, io: StreamIo) -> io::Result<()> {
    let StreamIo {
        stdin,
        stdout,
        stderr,
        resize,
    } = io;
    // With a terminal everything arrives as stdout.
    let stderr = if mode.tty { None } else { stderr };
    let output = if stdout.is_some() || stderr.is_some() {
        let streams = AttachStreams {
            stdin: false,
            stdout: stdout.is_some(),
            stderr: stderr.is_some(),
        };
        Some(client.attach(streams).await.map_err(attach_failed)?)
    } else {
        None
    };
    let input = match stdin {
        Some(reader) => {
            let streams = AttachStreams {
                stdin: true,
                stdout: false,
                stderr: false,
            };
            Some((reader, client.attach(streams).await.map_err(attach_failed)?))
        }
        None => None,
    };

    let mut outputs = pin!(copy_output(client, output, stdout, stderr));
    let mut resizes = pin!(apply_resizes(client, mode.tty, resize));
    let input = copy_input(input);
    tokio::select! {
        written = &mut outputs => return written,
        () = input => {}
        never = &mut resizes => match never {},
    }
    let keep_output = mode.stdin_once && !mode.tty;
    if !keep_output {
        return Ok(());
    }
    tokio::select! {
        written = outputs => written,
        never = resizes => match never {},
    }
}

fn attach_failed(e: longshore_monitor_client::MonitorError) -> io::Error {
    io::Error::other(format!("attaching: {e}"))
}

fn discard() -> BoxWriter {
    Box::new(tokio::io::sink())
}

/// Copies the container's output until it ends; without output streams, waits for the
/// container to exit instead.
async fn copy_output(
    client: &MonitorClient,
    session: Option<AttachSession>,
    stdout: Option<BoxWriter>,
    stderr: Option<BoxWriter>,
) -> io::Result<()> {
    let Some(mut session) = session else {
        if let Err(e) = client.wait_exit().await {
            debug!(error = %e, "waiting for the attached container to exit");
        }
        return Ok(());
    };
    let mut stdout = stdout.unwrap_or_else(discard);
    let mut stderr = stderr.unwrap_or_else(discard);
    let (out, err) = (session.stdout.take(), session.stderr.take());
    tokio::try_join!(copy::drain(out, &mut stdout), copy::drain(err, &mut stderr))?;
    Ok(())
}

/// Copies the client's input to the container's stdin until either ends, then ends the input
/// session. A container without stdin grants none; then the input never ends the attach.
async fn copy_input(input: Option<(BoxReader, AttachSession)>) {
    let Some((mut reader, mut session)) = input else {
        return std::future::pending().await;
    };
    let Some(mut stdin) = session.stdin.take() else {
        return std::future::pending().await;
    };
    copy::feed(&mut reader, &mut stdin).await;
    // Both our copy of the stdin writer and the session must go for `stdin_once` to close it.
    drop(stdin);
    drop(session);
}

/// Resizes the container's terminal as the client's window changes; never returns.
async fn apply_resizes(
    client: &MonitorClient,
    tty: bool,
    resize: Option<mpsc::Receiver<TerminalSize>>,
) -> Infallible {
    if let (true, Some(mut sizes)) = (tty, resize) {
        while let Some(size) = sizes.recv().await {
            if let Err(e) = client.resize(size.width, size.height).await {
                debug!(error = %e, "resizing the container's terminal");
            }
        }
    }
    std::future::pending().await
}
