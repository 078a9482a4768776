//! Running a process in a container through its monitor and moving its bytes: the streaming
//! exec behind an `Exec` URL, and (through [`run`]) `ExecSync`.
//!
//! The monitor passes the process's own stdio fds, so every byte goes straight between the
//! process and the client. An exec lives as long as its monitor connection: giving up on it
//! (dropping the session) kills the process.
//!
//! Ending the input: without a terminal, the client's stdin EOF closes the process's stdin.
//! With one, it hangs the terminal up (every handle on the pty master is closed, so the
//! process's session gets SIGHUP), as containerd closes an exec's console when its stdin ends:
//! kubectl and crictl only ask for a terminal when their own stdin is one, so a terminal exec's
//! stdin ends when the client goes away, and a shell or `top` left behind would run forever.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use longshore_monitor_client::{ExecExit, ExecSession, ExecSpec, MonitorClient};
use longshore_streaming::{BoxReader, BoxWriter, StreamIo, TerminalSize};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::copy;

/// How long a terminal exec waits for the client's first window size before starting, so the
/// command starts with the right size (client-go and crictl send it as soon as they connect;
/// a client without a terminal sends none and pays this once).
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(100);
/// The exit code reported when the monitor reports one outside 0..=255.
const UNKNOWN_EXIT: i32 = 255;

/// The other ends of an exec's stdio.
pub(crate) struct ExecIo<O, E> {
    /// Input for the process; `None` gives it an empty stdin.
    pub stdin: Option<BoxReader>,
    /// Where its stdout (the terminal's output, with a tty) goes.
    pub stdout: O,
    /// Where its stderr goes (nothing arrives with a tty).
    pub stderr: E,
    /// Terminal sizes to apply, in order (tty only).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// How an exec ended, with the writers handed back.
pub(crate) struct ExecOutput<O, E> {
    /// Exit code (128+N for signal N) and whether the timeout killed it.
    pub exit: ExecExit,
    /// The stdout writer, all output written.
    pub stdout: O,
    /// The stderr writer, all output written.
    pub stderr: E,
}

/// A streaming exec: runs `cmd` in the container of `client`, copies between the process and
/// `io`, and returns the exit code once every byte of output has been written.
pub(crate) async fn stream(
    client: &MonitorClient,
    cmd: &[String],
    env: Vec<String>,
    tty: bool,
    io: StreamIo,
) -> io::Result<i32> {
    let StreamIo {
        stdin,
        stdout,
        stderr,
        mut resize,
    } = io;
    let first_size = match (&mut resize, tty) {
        (Some(sizes), true) => first_size(sizes).await,
        _ => None,
    };
    let spec = ExecSpec {
        args: cmd.to_vec(),
        env,
        cwd: None,
        tty,
        stdin: stdin.is_some(),
        timeout: None,
        console_size: first_size.map(|s| (s.width, s.height)),
    };
    let session = client
        .exec(&spec)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    if let Some(size) = first_size {
        // Already set by the monitor before the command ran; again for a monitor started by an
        // older daemon, which ignores the first size (an unchanged size sends no SIGWINCH).
        resize_terminal(&session, size);
    }
    let io = ExecIo {
        stdin,
        stdout: stdout.unwrap_or_else(discard),
        stderr: stderr.unwrap_or_else(discard),
        resize: if tty { resize } else { None },
    };
    let done = run(session, tty, io, None).await?;
    Ok(exit_code(&done.exit))
}

/// A writer for output nobody asked for: the process must not block on a full pipe.
fn discard() -> BoxWriter {
    Box::new(tokio::io::sink())
}

/// 0..=255, as the remotecommand status carries it.
fn exit_code(exit: &ExecExit) -> i32 {
    if (0..=255).contains(&exit.exit_code) {
        exit.exit_code
    } else {
        UNKNOWN_EXIT
    }
}

/// The client's first window size (the latest, if several are queued), waiting briefly.
async fn first_size(sizes: &mut mpsc::Receiver<TerminalSize>) -> Option<TerminalSize> {
    let mut size = tokio::time::timeout(FIRST_SIZE_WAIT, sizes.recv())
        .await
        .ok()??;
    while let Ok(newer) = sizes.try_recv() {
        size = newer;
    }
    Some(size)
}

fn resize_terminal(session: &ExecSession, size: TerminalSize) {
    if let Err(e) = session.resize(size.width, size.height) {
        debug!(error = %e, "resizing the exec terminal");
    }
}

/// Moves an exec's bytes until it has exited and its output is written (or, with
/// `drain_after_exit`, until that long after the exit: a background child can hold the output
/// open forever). Fails when the client cannot be written to or the monitor is lost; the
/// process is then killed as the session drops.
pub(crate) async fn run<O, E>(
    mut session: ExecSession,
    tty: bool,
    io: ExecIo<O, E>,
    drain_after_exit: Option<Duration>,
) -> io::Result<ExecOutput<O, E>>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let ExecIo {
        stdin,
        mut stdout,
        mut stderr,
        resize,
    } = io;
    let process_stdin = session.stdin.take();
    let process_stdout = session.stdout.take();
    let process_stderr = session.stderr.take();
    let (hangup, hung_up) = watch::channel(false);
    let input = async move {
        if let (Some(mut from), Some(mut to)) = (stdin, process_stdin) {
            copy::feed(&mut from, &mut to).await;
            drop(to);
            if tty {
                let _ = hangup.send(true);
            }
        }
        std::future::pending::<Infallible>().await
    };
    let terminal_hangup = tty.then_some(hung_up);
    let exit = {
        let output = async {
            tokio::select! {
                written = copy::drain(process_stdout, &mut stdout) => written,
                // Dropping the copy closes our pty master.
                () = hangup_signal(terminal_hangup.clone()) => Ok(()),
            }
        };
        let outputs = async {
            tokio::try_join!(output, copy::drain(process_stderr, &mut stderr)).map(|_| ())
        };
        let waiting = wait(&mut session, resize, terminal_hangup.clone());
        let work = finish(waiting, outputs, drain_after_exit);
        tokio::select! {
            exit = work => exit?,
            never = input => match never {},
        }
    };
    Ok(ExecOutput {
        exit,
        stdout,
        stderr,
    })
}

/// Resolves when the terminal is to hang up; never without a terminal or a hang-up.
async fn hangup_signal(hangup: Option<watch::Receiver<bool>>) {
    if let Some(mut hangup) = hangup
        && hangup.wait_for(|hung_up| *hung_up).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// The next terminal size; never once there are no more.
async fn next_size(sizes: &mut Option<mpsc::Receiver<TerminalSize>>) -> Option<TerminalSize> {
    match sizes {
        Some(sizes) => sizes.recv().await,
        None => std::future::pending().await,
    }
}

/// The exit, once the output is written too (as far as `drain_after_exit` allows).
async fn finish(
    waiting: impl Future<Output = io::Result<ExecExit>>,
    outputs: impl Future<Output = io::Result<()>>,
    drain_after_exit: Option<Duration>,
) -> io::Result<ExecExit> {
    let mut waiting = pin!(waiting);
    let mut outputs = pin!(outputs);
    let exit = tokio::select! {
        exit = &mut waiting => exit?,
        written = &mut outputs => {
            written?;
            return waiting.await;
        }
    };
    // A process the timeout killed answers with an error; its output is not wanted.
    let limit = if exit.timed_out {
        Some(Duration::ZERO)
    } else {
        drain_after_exit
    };
    match limit {
        None => outputs.await?,
        Some(limit) => match tokio::time::timeout(limit, outputs).await {
            Ok(written) => written?,
            Err(_) => debug!("exec output is still held open by other processes; not waiting"),
        },
    }
    Ok(exit)
}

/// Waits for the exit, applying terminal sizes meanwhile, and closing the session's handle
/// on the terminal when it is to hang up.
async fn wait(
    session: &mut ExecSession,
    mut resize: Option<mpsc::Receiver<TerminalSize>>,
    mut hangup: Option<watch::Receiver<bool>>,
) -> io::Result<ExecExit> {
    loop {
        // `ExecSession::wait` reads whole frames without an await in between, so dropping it
        // for a resize or the hang-up loses nothing.
        tokio::select! {
            exit = session.wait() => return exit.map_err(monitor_lost),
            size = next_size(&mut resize) => match size {
                Some(size) => resize_terminal(session, size),
                None => resize = None,
            },
            () = hangup_signal(hangup.clone()) => {
                session.close_terminal();
                hangup = None;
            }
        }
    }
}

fn monitor_lost(e: longshore_monitor_client::MonitorError) -> io::Error {
    io::Error::other(format!("waiting for the exec to finish: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_stay_in_a_byte() {
        let exit = |exit_code| ExecExit {
            exit_code,
            timed_out: false,
        };
        assert_eq!(exit_code(&exit(0)), 0);
        assert_eq!(exit_code(&exit(137)), 137);
        assert_eq!(exit_code(&exit(-1)), UNKNOWN_EXIT);
        assert_eq!(exit_code(&exit(300)), UNKNOWN_EXIT);
    }

    #[tokio::test]
    async fn first_size_takes_the_latest_queued() {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(TerminalSize {
            width: 10,
            height: 5,
        })
        .await
        .unwrap();
        tx.send(TerminalSize {
            width: 80,
            height: 24,
        })
        .await
        .unwrap();
        assert_eq!(
            first_size(&mut rx).await,
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
        drop(tx);
        assert_eq!(first_size(&mut rx).await, None);
    }
}
