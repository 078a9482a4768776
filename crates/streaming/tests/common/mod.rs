//! A real backend for the integration tests: exec and attach run host processes (with a real
//! pty for `tty`), port-forward dials 127.0.0.1.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use futures::future::BoxFuture;
use longshore_streaming::{
    BoxReader, BoxWriter, ExitStatus, PortStream, StreamBackend, StreamIo, StreamingConfig,
    StreamingServer, TerminalSize,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Runs commands on the host. `attach` starts the "main process" registered for the
/// container id and streams its stdio until it exits.
pub struct HostBackend {
    pub main_processes: HashMap<String, Vec<String>>,
}

pub async fn start_server(config: StreamingConfig) -> StreamingServer {
    let mut main_processes = HashMap::new();
    main_processes.insert("cat-container".to_string(), vec!["cat".to_string()]);
    let backend = Arc::new(HostBackend { main_processes });
    StreamingServer::start(config, backend)
        .await
        .expect("start streaming server")
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255);
    ExitStatus { code }
}

async fn pump<R, W>(mut from: R, mut to: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

async fn run_pipes(cmd: &[String], io: StreamIo) -> io::Result<ExitStatus> {
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(piped(io.stdin.is_some()))
        .stdout(piped(io.stdout.is_some()))
        .stderr(piped(io.stderr.is_some()))
        .kill_on_drop(true)
        .spawn()?;
    let stdin_task = match (io.stdin, child.stdin.take()) {
        (Some(from), Some(to)) => Some(tokio::spawn(pump(from, to))),
        _ => None,
    };
    let mut outputs = Vec::new();
    if let (Some(to), Some(from)) = (io.stdout, child.stdout.take()) {
        outputs.push(tokio::spawn(pump(from, to)));
    }
    if let (Some(to), Some(from)) = (io.stderr, child.stderr.take()) {
        outputs.push(tokio::spawn(pump(from, to)));
    }
    let status = child.wait().await?;
    for o in outputs {
        let _ = o.await;
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    Ok(exit_status(status))
}

fn set_window_size(fd: &OwnedFd, size: TerminalSize) {
    let ws = libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own from a valid pty master descriptor.
    unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

async fn run_tty(cmd: &[String], io: StreamIo) -> io::Result<ExitStatus> {
    let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
    let slave = pty.slave;
    let mut command = Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?))
        .kill_on_drop(true);
    // SAFETY: between fork and exec we only call setsid and ioctl, both async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // The Command keeps its Stdio (slave copies) until dropped; the master only reports EIO
    // once every slave descriptor is closed.
    drop(command);
    drop(slave);
    let master = pty.master;
    let reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let resizer = master;
    let mut tasks = Vec::new();
    if let Some(mut sizes) = io.resize {
        tasks.push(tokio::spawn(async move {
            while let Some(size) = sizes.recv().await {
                set_window_size(&resizer, size);
            }
        }));
    }
    if let Some(stdin) = io.stdin {
        tasks.push(tokio::spawn(copy_into_tty(stdin, writer)));
    }
    let output = io
        .stdout
        .map(|out| tokio::spawn(copy_from_tty(reader, out)));
    let status = child.wait().await?;
    if let Some(o) = output {
        let _ = o.await;
    }
    for t in tasks {
        t.abort();
    }
    Ok(exit_status(status))
}

async fn copy_into_tty(mut from: BoxReader, mut to: tokio::fs::File) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.flush().await;
}

/// Copies terminal output until the pty reports EIO (every slave descriptor closed).
async fn copy_from_tty(mut from: tokio::fs::File, mut to: BoxWriter) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

impl StreamBackend for HostBackend {
    fn exec<'a>(
        &'a self,
        _container_id: &'a str,
        cmd: &'a [String],
        tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<ExitStatus>> {
        Box::pin(async move {
            if tty {
                run_tty(cmd, io).await
            } else {
                run_pipes(cmd, io).await
            }
        })
    }

    fn attach<'a>(
        &'a self,
        container_id: &'a str,
        tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let cmd = self.main_processes.get(container_id).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("container {container_id} not found"),
                )
            })?;
            if tty {
                run_tty(cmd, io).await?
            } else {
                run_pipes(cmd, io).await?
            };
            Ok(())
        })
    }

    fn port_forward<'a>(
        &'a self,
        _pod_sandbox_id: &'a str,
        port: u16,
        mut stream: PortStream,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            tokio::io::copy_bidirectional(&mut stream, &mut tcp).await?;
            Ok(())
        })
    }
}

/// A TCP echo server on 127.0.0.1; returns its port. Each connection is echoed until EOF.
pub async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A channel of terminal sizes for the client side.
pub fn sizes() -> (mpsc::Sender<TerminalSize>, mpsc::Receiver<TerminalSize>) {
    mpsc::channel(4)
}
