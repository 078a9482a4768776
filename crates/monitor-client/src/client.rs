//! The daemon's side (tokio): start a monitor, talk to a running one, read what a finished one
//! left behind. Every call opens its own connection to `<state_dir>/monitor.sock`, so a client
//! holds no state a daemon restart could lose: [`MonitorClient::connect`] works for a monitor
//! started by an earlier daemon.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use nix::sys::socket::MsgFlags;
use tokio::io::unix::AsyncFd;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Interest, ReadBuf,
};
use tokio::net::UnixStream;

use crate::config::{
    CONFIG_FILE, EXIT_FILE, MONITOR_LOG_FILE, MonitorConfig, PID_FILE, SOCKET_FILE, START_FILE,
};
use crate::fd::{set_nonblocking, set_window_size};
use crate::fd_passing::recv_with_fds;
use crate::protocol::{
    ExecRequest, FrameBuf, MonitorStatus, ProtocolError, Request, Response, StartReport, encode,
};
use crate::records::{ExitRecord, read_exit_record, write_atomic};

/// The state dir holds sockets and the runtime's state: root only.
const STATE_DIR_MODE: u32 = 0o700;
/// How much of `monitor.log` to quote when a monitor dies without reporting.
const LOG_TAIL_BYTES: usize = 2048;

/// What went wrong talking to a monitor.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The state dir or a file in it could not be prepared.
    #[error("preparing monitor state {path}: {source}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What the filesystem said.
        source: io::Error,
    },
    /// The monitor program could not be run.
    #[error("running monitor {program}: {source}")]
    Spawn {
        /// The monitor executable.
        program: PathBuf,
        /// Why it did not run.
        source: io::Error,
    },
    /// The executor could not create or start the container.
    #[error("container {id} failed to start: {message}")]
    Start {
        /// The container id.
        id: String,
        /// The runtime's own explanation.
        message: String,
    },
    /// The monitor died before reporting.
    #[error("monitor for {state_dir} exited without reporting: {log}")]
    NoReport {
        /// The container's state dir.
        state_dir: PathBuf,
        /// The end of its `monitor.log`.
        log: String,
    },
    /// The monitor's socket could not be reached (the monitor is gone or not yet listening).
    #[error("connecting to {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why the connection failed.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("talking to {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The monitor sent something that is not the protocol.
    #[error("bad message from {path}: {source}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong with the message.
        source: ProtocolError,
    },
    /// The monitor refused the request (e.g. an exec whose command does not exist); the text
    /// is the monitor's or the runtime's.
    #[error("{0}")]
    Refused(String),
    /// The monitor closed the connection before answering.
    #[error("monitor at {0} closed the connection")]
    Closed(PathBuf),
    /// An answer that does not fit the request.
    #[error("unexpected answer from monitor at {path}: {answer}")]
    Unexpected {
        /// The socket.
        path: PathBuf,
        /// The answer, as debug text.
        answer: String,
    },
    /// The monitor is gone and left no exit record.
    #[error("monitor for {0} is gone and left no exit record")]
    NoExitRecord(PathBuf),
}

type Result<T> = std::result::Result<T, MonitorError>;

/// A container the monitor started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The container's init pid.
    pub pid: i32,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// Nanoseconds since the unix epoch.
    pub started_at: i64,
}

/// Starts monitors.
pub struct Monitor;

impl Monitor {
    /// Writes `<state_dir>/monitor.json`, runs the monitor command, and waits until the
    /// container runs its command — or returns the executor's error (e.g. runc's message for a
    /// command path that does not exist). The monitor stays behind, detached.
    pub async fn spawn(config: &MonitorConfig) -> Result<Started> {
        let state_dir = &config.state_dir;
        prepare_state_dir(config)?;
        let log_path = state_dir.join(MONITOR_LOG_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| MonitorError::State {
                path: log_path.clone(),
                source,
            })?;
        let program = &config.command.program;
        let mut child = tokio::process::Command::new(program)
            .args(&config.command.args)
            .arg("--state-dir")
            .arg(state_dir)
            // The daemon's own systemd service variables are not the container's: runc would
            // take NOTIFY_SOCKET as a request to proxy sd_notify for the container.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("INVOCATION_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| MonitorError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(out) => BufReader::new(out).read_line(&mut line).await,
            None => Ok(0),
        };
        // The direct child exits right after forking the monitor; reap it.
        let _ = child.wait().await;
        if let Err(source) = read {
            return Err(MonitorError::Io {
                path: state_dir.clone(),
                source,
            });
        }
        match serde_json::from_str::<StartReport>(line.trim()) {
            Ok(StartReport::Started {
                pid,
                monitor_pid,
                started_at,
            }) => Ok(Started {
                pid,
                monitor_pid,
                started_at,
            }),
            Ok(StartReport::Failed { message }) => Err(MonitorError::Start {
                id: config.container_id.clone(),
                message,
            }),
            Err(_) => Err(MonitorError::NoReport {
                state_dir: state_dir.clone(),
                log: log_tail(&log_path),
            }),
        }
    }
}

fn prepare_state_dir(config: &MonitorConfig) -> Result<()> {
    let dir = &config.state_dir;
    let state_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MonitorError::State { path, source }
    };
    DirBuilder::new()
        .recursive(true)
        .mode(STATE_DIR_MODE)
        .create(dir)
        .map_err(state_err(dir))?;
    // Records of an earlier run in the same dir must not be mistaken for this one's.
    for stale in [EXIT_FILE, START_FILE, PID_FILE, SOCKET_FILE] {
        match fs::remove_file(dir.join(stale)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(state_err(&dir.join(stale))(e));
            }
            _ => {}
        }
    }
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| MonitorError::State {
        path: dir.join(CONFIG_FILE),
        source: io::Error::other(e),
    })?;
    write_atomic(&dir.join(CONFIG_FILE), &bytes).map_err(state_err(&dir.join(CONFIG_FILE)))
}

fn log_tail(path: &Path) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[start..]).trim().to_owned()
}

/// One connection to a monitor, with the fds that arrived on it.
struct Connection {
    path: PathBuf,
    stream: UnixStream,
    frames: FrameBuf,
    fds: Vec<OwnedFd>,
}

impl Connection {
    async fn open(path: &Path) -> Result<Self> {
        let short =
            crate::sockpath::SocketPath::new(path).map_err(|source| MonitorError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let stream = UnixStream::connect(short.as_path())
            .await
            .map_err(|source| MonitorError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Connection {
            path: path.to_path_buf(),
            stream,
            frames: FrameBuf::default(),
            fds: Vec::new(),
        })
    }

    async fn send(&mut self, req: &Request) -> Result<()> {
        let frame = encode(req).map_err(|source| self.protocol_error(source))?;
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| self.io_error(source))
    }

    /// The next message, or `None` when the monitor closed the connection.
    async fn next(&mut self) -> Result<Option<Response>> {
        loop {
            match self.frames.next_message::<Response>() {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(source) => return Err(self.protocol_error(source)),
            }
            let mut buf = [0u8; 4096];
            let stream = &self.stream;
            let fds = &mut self.fds;
            let n = stream
                .async_io(Interest::READABLE, || {
                    recv_with_fds(stream.as_fd(), &mut buf, fds, MsgFlags::MSG_DONTWAIT)
                        .map_err(io::Error::from)
                })
                .await
                .map_err(|source| self.io_error(source))?;
            if n == 0 {
                return Ok(None);
            }
            self.frames.push(&buf[..n]);
        }
    }

    /// The next message, which must be there.
    async fn answer(&mut self) -> Result<Response> {
        match self.next().await? {
            Some(Response::Failed { message }) => Err(MonitorError::Refused(message)),
            Some(msg) => Ok(msg),
            None => Err(MonitorError::Closed(self.path.clone())),
        }
    }

    /// Takes the fds received so far as streams, in order.
    fn take_streams(&mut self, count: usize) -> Result<Vec<OwnedFd>> {
        if self.fds.len() < count {
            return Err(self.unexpected(format!(
                "{} file descriptors, expected {count}",
                self.fds.len()
            )));
        }
        Ok(self.fds.drain(..count).collect())
    }

    fn io_error(&self, source: io::Error) -> MonitorError {
        MonitorError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn protocol_error(&self, source: ProtocolError) -> MonitorError {
        MonitorError::Protocol {
            path: self.path.clone(),
            source,
        }
    }

    fn unexpected(&self, answer: impl Into<String>) -> MonitorError {
        MonitorError::Unexpected {
            path: self.path.clone(),
            answer: answer.into(),
        }
    }
}

/// A handle on a running monitor, found by its state dir.
#[derive(Debug, Clone)]
pub struct MonitorClient {
    state_dir: PathBuf,
    socket: PathBuf,
}

/// What to run with exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing those in) the container's environment.
    pub env: Vec<String>,
    /// Working directory; the container's when `None`.
    pub cwd: Option<String>,
    /// Run on a new terminal.
    pub tty: bool,
    /// Give the process a stdin the caller writes to.
    pub stdin: bool,
    /// Kill the process (SIGKILL) when it runs longer than this (ExecSync's timeout).
    pub timeout: Option<Duration>,
    /// With `tty`: the terminal's size (columns, rows) before the process runs, so that a
    /// command reading it at once (`stty size`, a shell's first prompt) sees the client's
    /// window rather than 0×0. Later changes go through [`ExecSession::resize`].
    pub console_size: Option<(u16, u16)>,
}

/// How an exec process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecExit {
    /// Exit code, or 128 + signal.
    pub exit_code: i32,
    /// The timeout killed it.
    pub timed_out: bool,
}

/// A running exec process. Its stdio fds come straight from the process; drop (or `take`) the
/// stdin stream to close the process's stdin.
pub struct ExecSession {
    /// The exec process's pid.
    pub pid: i32,
    /// Writes to the process's stdin (the pty master with a terminal), if asked for.
    pub stdin: Option<FdStream>,
    /// The process's stdout (the pty master with a terminal: all output).
    pub stdout: Option<FdStream>,
    /// The process's stderr (none with a terminal).
    pub stderr: Option<FdStream>,
    terminal: Option<OwnedFd>,
    conn: Connection,
}

impl ExecSession {
    /// Waits for the process to exit. Only the first call gets the answer.
    pub async fn wait(&mut self) -> Result<ExecExit> {
        match self.conn.answer().await? {
            Response::ExecExited {
                exit_code,
                timed_out,
            } => Ok(ExecExit {
                exit_code,
                timed_out,
            }),
            other => Err(self.conn.unexpected(format!("{other:?}"))),
        }
    }

    /// Closes the session's own handle on the exec's terminal, kept for [`Self::resize`].
    /// Once the caller has dropped the terminal streams it took as well, the terminal hangs
    /// up: the kernel sends SIGHUP to the process's session, as when a terminal window closes
    /// (how a terminal exec ends when its client goes away). Resizing fails afterwards.
    pub fn close_terminal(&mut self) {
        self.terminal = None;
    }

    /// Sets the exec terminal's size (columns × rows).
    pub fn resize(&self, width: u16, height: u16) -> io::Result<()> {
        match &self.terminal {
            Some(master) => set_window_size(master.as_fd(), width, height),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "exec has no terminal",
            )),
        }
    }
}

/// Which container streams to attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachStreams {
    /// Write to the container's stdin (if it has one).
    pub stdin: bool,
    /// Receive a copy of stdout (all output with a terminal).
    pub stdout: bool,
    /// Receive a copy of stderr (nothing separate with a terminal).
    pub stderr: bool,
}

/// An attach session: lasts until dropped (which, with `stdin_once`, closes the container's
/// stdin the first time). Output streams reach EOF when the container is done.
pub struct AttachSession {
    /// Writes to the container's stdin, if granted.
    pub stdin: Option<FdStream>,
    /// Output copied from the container's stdout.
    pub stdout: Option<FdStream>,
    /// Output copied from the container's stderr.
    pub stderr: Option<FdStream>,
    /// The container has a terminal.
    pub tty: bool,
    _conn: Connection,
}

impl MonitorClient {
    /// Finds the monitor for `state_dir` and checks that it answers.
    pub async fn connect(state_dir: impl AsRef<Path>) -> Result<Self> {
        let state_dir = state_dir.as_ref().to_path_buf();
        let client = MonitorClient {
            socket: state_dir.join(SOCKET_FILE),
            state_dir,
        };
        client.status().await?;
        Ok(client)
    }

    /// The state dir this client talks about.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    async fn call(&self, req: Request) -> Result<(Connection, Response)> {
        let mut conn = Connection::open(&self.socket).await?;
        conn.send(&req).await?;
        let answer = conn.answer().await?;
        Ok((conn, answer))
    }

    async fn call_done(&self, req: Request) -> Result<()> {
        match self.call(req).await? {
            (_, Response::Done) => Ok(()),
            (conn, other) => Err(conn.unexpected(format!("{other:?}"))),
        }
    }

    /// The container's pid, start time and, once it has exited, its exit.
    pub async fn status(&self) -> Result<MonitorStatus> {
        match self.call(Request::Status).await? {
            (_, Response::Status(status)) => Ok(status),
            (conn, other) => Err(conn.unexpected(format!("{other:?}"))),
        }
    }

    /// Sends a signal to the container's init (kill(2)); a no-op once it has exited.
    pub async fn signal(&self, signal: i32) -> Result<()> {
        self.call_done(Request::Signal { signal }).await
    }

    /// Sets the container terminal's size (columns × rows).
    pub async fn resize(&self, width: u16, height: u16) -> Result<()> {
        self.call_done(Request::Resize { width, height }).await
    }

    /// Reopens the log file (after kubelet renamed it).
    pub async fn reopen_log(&self) -> Result<()> {
        self.call_done(Request::ReopenLog).await
    }

    /// Waits until the container has exited and `exit.json` is written. Works when the monitor
    /// is already gone too (reads the record).
    pub async fn wait_exit(&self) -> Result<ExitRecord> {
        let answer = match Connection::open(&self.socket).await {
            Ok(mut conn) => match conn.send(&Request::WaitExit).await {
                Ok(()) => conn.next().await.unwrap_or(None),
                Err(_) => None,
            },
            Err(_) => None,
        };
        match answer {
            Some(Response::Exited(record)) => Ok(record),
            Some(other) => Err(MonitorError::Unexpected {
                path: self.socket.clone(),
                answer: format!("{other:?}"),
            }),
            None => read_exit_record(&self.state_dir)
                .map_err(|source| MonitorError::State {
                    path: self.state_dir.join(EXIT_FILE),
                    source,
                })?
                .ok_or_else(|| MonitorError::NoExitRecord(self.state_dir.clone())),
        }
    }

    /// Runs a process in the container.
    pub async fn exec(&self, spec: &ExecSpec) -> Result<ExecSession> {
        let req = Request::Exec(ExecRequest {
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            tty: spec.tty,
            stdin: spec.stdin,
            timeout_ms: spec
                .timeout
                .map(|t| t.as_millis().min(u64::MAX as u128) as u64),
            console_size: spec.console_size.filter(|_| spec.tty),
        });
        let (mut conn, answer) = self.call(req).await?;
        let Response::ExecStarted { pid, stdin, tty } = answer else {
            return Err(conn.unexpected(format!("{answer:?}")));
        };
        let count = usize::from(stdin) + if tty { 1 } else { 2 };
        let mut fds = conn.take_streams(count)?.into_iter();
        let io_err = |source| MonitorError::Io {
            path: self.socket.clone(),
            source,
        };
        let stdin_stream = if stdin { fds.next() } else { None };
        let stdin_stream = stdin_stream
            .map(FdStream::new)
            .transpose()
            .map_err(io_err)?;
        let (stdout, stderr, terminal) = if tty {
            let master = fds.next().ok_or_else(|| conn.unexpected("no pty master"))?;
            let resize = master.try_clone().map_err(io_err)?;
            (
                Some(FdStream::new(master).map_err(io_err)?),
                None,
                Some(resize),
            )
        } else {
            let out = fds.next().map(FdStream::new).transpose().map_err(io_err)?;
            let err = fds.next().map(FdStream::new).transpose().map_err(io_err)?;
            (out, err, None)
        };
        Ok(ExecSession {
            pid,
            stdin: stdin_stream,
            stdout,
            stderr,
            terminal,
            conn,
        })
    }

    /// Attaches to the container's stdio.
    pub async fn attach(&self, streams: AttachStreams) -> Result<AttachSession> {
        let req = Request::Attach {
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let (mut conn, answer) = self.call(req).await?;
        let Response::Attached {
            stdin,
            stdout,
            stderr,
            tty,
        } = answer
        else {
            return Err(conn.unexpected(format!("{answer:?}")));
        };
        let count = [stdin, stdout, stderr].into_iter().filter(|b| *b).count();
        let mut fds = conn.take_streams(count)?.into_iter();
        let mut next = |wanted: bool| -> Result<Option<FdStream>> {
            if !wanted {
                return Ok(None);
            }
            let fd = fds.next().ok_or_else(|| conn.unexpected("missing fd"))?;
            FdStream::new(fd)
                .map(Some)
                .map_err(|source| MonitorError::Io {
                    path: self.socket.clone(),
                    source,
                })
        };
        let stdin = next(stdin)?;
        let stdout = next(stdout)?;
        let stderr = next(stderr)?;
        Ok(AttachSession {
            stdin,
            stdout,
            stderr,
            tty,
            _conn: conn,
        })
    }
}

/// A pipe end or pty master as a tokio stream (AsyncRead + AsyncWrite). A pty master reports
/// EOF (rather than EIO) once the other side is closed.
pub struct FdStream {
    inner: AsyncFd<OwnedFd>,
}

impl FdStream {
    fn new(fd: OwnedFd) -> io::Result<Self> {
        set_nonblocking(fd.as_fd())?;
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same descriptor until
        // the AsyncFd is dropped.
        let inner = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(FdStream { inner })
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let result =
                guard.try_io(
                    |fd| match nix::unistd::read(fd.get_ref().as_raw_fd(), unfilled) {
                        Err(nix::errno::Errno::EIO) => Ok(0),
                        other => other.map_err(io::Error::from),
                    },
                );
            match result {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.inner.poll_write_ready(cx))?;
            let result =
                guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from));
            match result {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Nothing to do: the fd closes when the stream is dropped.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl longshore_error::Classify for MonitorError {
    fn kind(&self) -> longshore_error::Kind {
        use longshore_error::{Kind, kind_of_io};
        match self {
            MonitorError::Start { .. } | MonitorError::Refused(_) => Kind::Unknown,
            MonitorError::Connect { .. } | MonitorError::Io { .. } | MonitorError::Closed(_) => {
                Kind::Unavailable
            }
            MonitorError::State { source, .. } | MonitorError::Spawn { source, .. } => {
                match kind_of_io(source) {
                    Kind::NotFound => Kind::Internal,
                    kind => kind,
                }
            }
            MonitorError::NoReport { .. }
            | MonitorError::Protocol { .. }
            | MonitorError::Unexpected { .. }
            | MonitorError::NoExitRecord(_) => Kind::Internal,
        }
    }
}
