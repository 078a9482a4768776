//! The monitor proper: start the container, then one poll loop until it has exited and its
//! output is drained, then write the exit record and leave.
//!
//! The loop watches the SIGCHLD signalfd, the listening socket, the container's output, client
//! connections, attach sessions and exec connections. Nothing in it blocks for long: client reads
//! are non-blocking, responses are small, attach copies are buffered per client, and exec
//! creation runs in a child process.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::attach::{AttachFd, Attaches, Want};
use crate::child_reaper::{ChildExit, ChildReaper};
use crate::config::{MonitorConfig, SOCKET_FILE};
use crate::connection::{Conn, Incoming, reply, send};
use crate::container_log::{ContainerLog, Stream};
use crate::exec::{Execs, OrphanExits};
use crate::executor::{self, Executor, ProcessIo};
use crate::oom::{oom_killed, read_oom_kill_count};
use crate::protocol::{MonitorStatus, Request, Response, StartReport};
use crate::records::{
    ExitRecord, StartRecord, unix_nanos_now, write_exit_record, write_start_record,
};
use crate::stdio::{ContainerIo, ReadOutcome, read_some};
use crate::terminal::{ConsoleSocket, send_eof, set_window_size};

/// The container's console socket in the state dir.
const CONSOLE_SOCKET_FILE: &str = "console.sock";
/// How long the runtime has to deliver the container's pty master after start.
const MASTER_TIMEOUT: Duration = Duration::from_secs(5);
/// After the container exits, stop waiting for more output after this long without any
/// (a background process outside a pid namespace may keep a pipe open forever).
const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// ... and after this long in any case.
const DRAIN_MAX: Duration = Duration::from_secs(30);
/// Bytes read from the container's output per read.
const READ_CHUNK: usize = 32 * 1024;
/// Reads per stream per wake-up, so one busy stream cannot starve the loop.
const READS_PER_WAKE: usize = 8;

/// Starts the container and runs the monitor until it is done; returns the exit code.
pub(crate) fn run(cfg: MonitorConfig, reporter: crate::detach::Reporter) -> i32 {
    let socket_path = cfg.state_dir.join(SOCKET_FILE);
    match Server::start(cfg) {
        Ok(server) => {
            reporter.report(&StartReport::Started {
                pid: server.pid.as_raw(),
                monitor_pid: std::process::id() as i32,
                started_at: server.started_at,
            });
            server.serve()
        }
        Err(message) => {
            tracing::error!(%message, "container failed to start");
            let _ = fs::remove_file(&socket_path);
            reporter.report(&StartReport::Failed { message });
            1
        }
    }
}

/// What the poll set entries are.
#[derive(Debug, Clone, Copy)]
enum Token {
    Oom,
    Reaper,
    Listener,
    Output(usize),
    Conn(u64),
    Attach(AttachFd),
    Exec(u64),
    Console(u64),
}

/// The fds one poll call watches, and what each one is.
#[derive(Default)]
struct PollSet<'a> {
    tokens: Vec<Token>,
    fds: Vec<PollFd<'a>>,
}

impl<'a> PollSet<'a> {
    fn add(&mut self, token: Token, fd: BorrowedFd<'a>, flags: PollFlags) {
        self.tokens.push(token);
        self.fds.push(PollFd::new(fd, flags));
    }

    /// Waits and returns the entries that have events.
    fn poll(mut self, timeout: PollTimeout) -> nix::Result<Vec<(Token, PollFlags)>> {
        loop {
            match poll(&mut self.fds, timeout) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(self
            .tokens
            .into_iter()
            .zip(self.fds.iter())
            .filter_map(|(t, fd)| fd.revents().filter(|r| !r.is_empty()).map(|r| (t, r)))
            .collect())
    }
}

/// Draining the output after the container exited.
struct Drain {
    idle_until: Instant,
    hard_until: Instant,
}

impl Drain {
    fn expired(&self, now: Instant) -> bool {
        now >= self.idle_until || now >= self.hard_until
    }

    fn deadline(&self) -> Instant {
        self.idle_until.min(self.hard_until)
    }
}

struct Server {
    cfg: MonitorConfig,
    executor: Box<dyn Executor>,
    reaper: ChildReaper,
    listener: UnixListener,
    socket_path: PathBuf,
    pid: Pid,
    started_at: i64,
    oom_before: Option<u64>,
    oom: Option<crate::oom::OomWatch>,
    exit: Option<ExitRecord>,
    drain: Option<Drain>,
    io: ContainerIo,
    log: ContainerLog,
    log_failing: bool,
    conns: Vec<Conn>,
    next_conn: u64,
    attaches: Attaches,
    execs: Execs,
    orphans: OrphanExits,
    reap_seq: u64,
    waiters: Vec<UnixStream>,
    stdin_once_done: bool,
    buf: Vec<u8>,
}

impl Server {
    /// Sets everything up and starts the container; the error is the message for the daemon.
    fn start(cfg: MonitorConfig) -> Result<Server, String> {
        let reaper = ChildReaper::new().map_err(|e| format!("signalfd for SIGCHLD: {e}"))?;
        let socket_path = cfg.state_dir.join(SOCKET_FILE);
        let _ = fs::remove_file(&socket_path);
        let listener = crate::sockpath::SocketPath::new(&socket_path)
            .and_then(|short| UnixListener::bind(short.as_path()))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("binding {}: {e}", socket_path.display()))?;
        let log = ContainerLog::open(cfg.log_path.as_deref(), cfg.max_log_line)
            .map_err(|e| format!("opening log file {:?}: {e}", cfg.log_path))?;
        let executor = executor::from_config(&cfg);
        let oom_before = cfg.memory_events.as_deref().and_then(read_oom_kill_count);
        let oom = cfg
            .memory_events
            .as_deref()
            .and_then(crate::oom::OomWatch::new);
        let (pid, io) = start_container(&cfg, executor.as_ref())?;
        let started_at = unix_nanos_now();
        let record = StartRecord {
            pid: pid.as_raw(),
            monitor_pid: std::process::id() as i32,
            started_at,
        };
        if let Err(e) = write_start_record(&cfg.state_dir, &record) {
            tracing::warn!(error = %e, "cannot write start record");
        }
        tracing::info!(pid = pid.as_raw(), id = %cfg.container_id, "container started");
        Ok(Server {
            cfg,
            executor,
            reaper,
            listener,
            socket_path,
            pid,
            started_at,
            oom_before,
            oom,
            exit: None,
            drain: None,
            io,
            log,
            log_failing: false,
            conns: Vec::new(),
            next_conn: 0,
            attaches: Attaches::default(),
            execs: Execs::default(),
            orphans: OrphanExits::default(),
            reap_seq: 0,
            waiters: Vec::new(),
            stdin_once_done: false,
            buf: vec![0; READ_CHUNK],
        })
    }

    /// The poll loop; returns the monitor's exit code.
    fn serve(mut self) -> i32 {
        while !self.done(Instant::now()) {
            let events = match self.wait() {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "poll failed");
                    break;
                }
            };
            for (token, revents) in events {
                self.handle(token, revents);
            }
            self.execs.expire(Instant::now());
        }
        self.finish()
    }

    fn wait(&self) -> nix::Result<Vec<(Token, PollFlags)>> {
        let mut set = PollSet::default();
        // Before the reaper: a change of the OOM count is read before the exit it causes.
        if let Some(oom) = &self.oom {
            set.add(Token::Oom, oom.fd(), PollFlags::POLLIN);
        }
        set.add(Token::Reaper, self.reaper.fd(), PollFlags::POLLIN);
        set.add(Token::Listener, self.listener.as_fd(), PollFlags::POLLIN);
        for (i, out) in self.io.out.iter().enumerate() {
            if let Some(fd) = out {
                set.add(Token::Output(i), fd.as_fd(), PollFlags::POLLIN);
            }
        }
        for c in &self.conns {
            set.add(Token::Conn(c.id), c.stream.as_fd(), PollFlags::POLLIN);
        }
        for (what, fd) in self.attaches.poll_fds() {
            let flags = match what {
                AttachFd::Conn(_) => PollFlags::POLLIN,
                AttachFd::Out(..) => PollFlags::POLLOUT,
            };
            set.add(Token::Attach(what), fd, flags);
        }
        for (id, conn) in self.execs.poll_conns() {
            set.add(Token::Exec(id), conn.as_fd(), PollFlags::POLLIN);
        }
        for (id, fd) in self.execs.poll_consoles() {
            set.add(Token::Console(id), fd, PollFlags::POLLIN);
        }
        set.poll(self.poll_timeout())
    }

    fn poll_timeout(&self) -> PollTimeout {
        let deadlines = [
            self.execs.next_deadline(),
            self.drain.as_ref().map(Drain::deadline),
        ];
        match deadlines.into_iter().flatten().min() {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we do not wake a millisecond early and spin.
                let ms = left.as_millis().saturating_add(1);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn handle(&mut self, token: Token, revents: PollFlags) {
        match token {
            Token::Oom => {
                if let Some(oom) = self.oom.as_mut() {
                    oom.changed();
                }
            }
            Token::Reaper => self.reap(),
            Token::Listener => self.accept(),
            Token::Output(i) => self.read_output(i),
            Token::Conn(id) => self.read_conn(id),
            Token::Attach(AttachFd::Conn(id)) => {
                if let Some(had_stdin) = self.attaches.check_hangup(id) {
                    self.attach_ended(had_stdin);
                }
            }
            Token::Attach(AttachFd::Out(id, index)) => {
                let _ = revents;
                self.attaches.flush(id, index);
            }
            Token::Exec(id) => self.execs.check_hangup(id),
            Token::Console(id) => self.execs.console_ready(id),
        }
    }

    fn done(&self, now: Instant) -> bool {
        let Some(drain) = &self.drain else {
            return false;
        };
        let drained = self.io.outputs_closed() || drain.expired(now);
        let execs_gone = self.execs.is_empty() || drain.expired(now);
        drained && execs_gone
    }

    fn reap(&mut self) {
        for (pid, exit) in self.reaper.reap() {
            self.reap_seq += 1;
            if pid == self.pid && self.exit.is_none() {
                self.container_exited(exit);
            } else if !self.execs.child_exited(pid, exit) {
                self.orphans.record(pid, exit, self.reap_seq);
            }
        }
        self.execs.claim(&mut self.orphans);
    }

    fn container_exited(&mut self, exit: ChildExit) {
        let finished_at = unix_nanos_now();
        // Read before the executor's delete removes the cgroup.
        let oom_after = match self.oom.as_mut() {
            Some(oom) => oom.count(),
            None => self
                .cfg
                .memory_events
                .as_deref()
                .and_then(read_oom_kill_count),
        };
        self.oom = None;
        let (code, signal) = match exit {
            ChildExit::Exited(code) => (code, None),
            ChildExit::Signaled(sig) => (0, Some(sig)),
        };
        let oom = oom_killed(self.oom_before, oom_after);
        let record = ExitRecord::new(code, signal, finished_at, oom);
        tracing::info!(exit_code = record.exit_code, reason = ?record.reason, "container exited");
        self.exit = Some(record);
        self.execs.kill_all();
        self.kill_leftovers();
        let now = Instant::now();
        self.drain = Some(Drain {
            idle_until: now + DRAIN_IDLE,
            hard_until: now + DRAIN_MAX,
        });
    }

    /// The container is over once its main process is: SIGKILL the rest of its cgroup now, so
    /// its output closes and the exit is reported at once, not after a drain timeout.
    fn kill_leftovers(&self) {
        if self.cfg.cgroup_dirs.is_empty() {
            return;
        }
        match longshore_cgroups::kill_now(&self.cfg.cgroup_dirs) {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "killed what the main process left in its cgroup"),
            Err(e) => tracing::warn!(error = %e, "cannot kill the rest of the container's cgroup"),
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.next_conn += 1;
                    match Conn::new(self.next_conn, stream) {
                        Ok(conn) => self.conns.push(conn),
                        Err(e) => tracing::warn!(error = %e, "cannot set up connection"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn read_output(&mut self, index: usize) {
        let stream = if index == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        for _ in 0..READS_PER_WAKE {
            let Some(fd) = &self.io.out[index] else {
                return;
            };
            match read_some(fd.as_fd(), &mut self.buf) {
                Ok(ReadOutcome::Data(n)) => {
                    let data = &self.buf[..n];
                    let written = self.log.write(stream, data, SystemTime::now());
                    self.attaches.broadcast(index, data);
                    self.note_log_result(written);
                    if let Some(drain) = &mut self.drain {
                        drain.idle_until = Instant::now() + DRAIN_IDLE;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::Eof) => {
                    self.io.out[index] = None;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?stream, "reading container output failed");
                    self.io.out[index] = None;
                    return;
                }
            }
        }
    }

    /// Logs a failing log file once, not once per line.
    fn note_log_result(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.log_failing = false,
            Err(e) if !self.log_failing => {
                tracing::warn!(error = %e, path = ?self.cfg.log_path, "writing container log failed");
                self.log_failing = true;
            }
            Err(_) => {}
        }
    }

    fn read_conn(&mut self, id: u64) {
        let Some(pos) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        let requests = match self.conns[pos].read() {
            Incoming::Closed => {
                self.conns.swap_remove(pos);
                return;
            }
            Incoming::Requests(r) if r.is_empty() => return,
            Incoming::Requests(r) => r,
        };
        let mut conn = Some(self.conns.swap_remove(pos));
        for req in requests {
            match conn.take() {
                Some(c) => conn = self.dispatch(c, req),
                None => tracing::debug!("request after a session began; ignored"),
            }
        }
        if let Some(c) = conn {
            self.conns.push(c);
        }
    }

    /// Answers one request; returns the connection unless a session took it over.
    fn dispatch(&mut self, conn: Conn, req: Request) -> Option<Conn> {
        let response = match req {
            Request::Status => Response::Status(self.status()),
            Request::Signal { signal } => self.signal(signal),
            Request::Resize { width, height } => self.resize(width, height),
            Request::ReopenLog => match self.log.reopen() {
                Ok(()) => Response::Done,
                Err(e) => failed(format!("reopening log {:?}: {e}", self.cfg.log_path)),
            },
            Request::WaitExit => {
                // Answered when exit.json is on disk, just before the monitor exits.
                self.waiters.push(conn.stream);
                return None;
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                return self.attach(
                    conn,
                    Want {
                        stdin,
                        stdout,
                        stderr,
                    },
                );
            }
            Request::Exec(exec) => {
                if self.exit.is_some() {
                    failed("container is not running".to_owned())
                } else {
                    let result = self.execs.begin(
                        self.executor.as_ref(),
                        &self.cfg.bundle,
                        &self.cfg.state_dir,
                        exec,
                        conn.stream,
                        self.reap_seq,
                    );
                    return match result {
                        Ok(()) => None,
                        Err((stream, message)) => {
                            reply(&stream, &failed(message));
                            None
                        }
                    };
                }
            }
        };
        reply(&conn.stream, &response);
        Some(conn)
    }

    fn status(&self) -> MonitorStatus {
        MonitorStatus {
            pid: self.pid.as_raw(),
            monitor_pid: std::process::id() as i32,
            started_at: self.started_at,
            exit: self.exit.clone(),
        }
    }

    fn signal(&self, signal: i32) -> Response {
        let sig = match Signal::try_from(signal) {
            Ok(sig) => sig,
            Err(_) => return failed(format!("invalid signal {signal}")),
        };
        // Once reaped the pid may belong to someone else: never signal it again.
        if self.exit.is_some() {
            return Response::Done;
        }
        match kill(self.pid, sig) {
            Ok(()) | Err(Errno::ESRCH) => Response::Done,
            Err(e) => failed(format!("kill({}, {sig}): {e}", self.pid)),
        }
    }

    fn resize(&self, width: u16, height: u16) -> Response {
        match &self.io.master {
            Some(master) => match set_window_size(master.as_fd(), width, height) {
                Ok(()) => Response::Done,
                Err(e) => failed(format!("resizing terminal: {e}")),
            },
            None => failed("container has no terminal".to_owned()),
        }
    }

    fn attach(&mut self, conn: Conn, want: Want) -> Option<Conn> {
        if self.exit.is_some() {
            reply(&conn.stream, &failed("container is not running".to_owned()));
            return Some(conn);
        }
        if let Err(e) = self.attaches.add(conn.stream, want, &self.io, self.cfg.tty) {
            tracing::warn!(error = %e, "attach failed");
        }
        None
    }

    /// `stdin_once`: the first attach session that wrote to stdin has ended, so close it.
    fn attach_ended(&mut self, had_stdin: bool) {
        if !had_stdin || !self.cfg.stdin_once || self.stdin_once_done {
            return;
        }
        self.stdin_once_done = true;
        if let (Some(master), Some(_)) = (&self.io.master, &self.io.stdin) {
            if let Err(e) = send_eof(master.as_fd()) {
                tracing::warn!(error = %e, "cannot send EOF to the terminal");
            }
        }
        self.io.stdin = None;
    }

    /// Flushes the log, cleans up the executor, writes exit.json and answers the waiters.
    fn finish(mut self) -> i32 {
        if let Err(e) = self.log.flush_partial(SystemTime::now()) {
            tracing::warn!(error = %e, "flushing container log failed");
        }
        self.execs.abandon();
        self.executor.delete();
        let Some(record) = self.exit.clone() else {
            tracing::error!("monitor stopping without a container exit");
            let _ = fs::remove_file(&self.socket_path);
            return 1;
        };
        if let Err(e) = write_exit_record(&self.cfg.state_dir, &record) {
            tracing::error!(error = %e, "cannot write exit record");
        }
        for waiter in self.waiters.drain(..) {
            if let Err(e) = send(&waiter, &Response::Exited(record.clone())) {
                tracing::debug!(error = %e, "waiter went away");
            }
        }
        self.attaches.close_all();
        let _ = fs::remove_file(&self.socket_path);
        tracing::info!("monitor done");
        0
    }
}

fn failed(message: String) -> Response {
    Response::Failed { message }
}

/// Creates the stdio (or console socket) and has the executor start the container.
fn start_container(
    cfg: &MonitorConfig,
    executor: &dyn Executor,
) -> Result<(Pid, ContainerIo), String> {
    if !cfg.tty {
        let (theirs, ours) =
            ContainerIo::pipes(cfg.stdin).map_err(|e| format!("creating stdio pipes: {e}"))?;
        let pid = executor
            .start(ProcessIo::Pipes(theirs))
            .map_err(|e| e.to_string())?;
        return Ok((pid, ours));
    }
    let path = cfg.state_dir.join(CONSOLE_SOCKET_FILE);
    let mut console =
        ConsoleSocket::bind(&path).map_err(|e| format!("binding {}: {e}", path.display()))?;
    let pid = executor
        .start(ProcessIo::Terminal {
            console_socket: console.path(),
        })
        .map_err(|e| e.to_string())?;
    let io = console
        .receive_master(MASTER_TIMEOUT)
        .and_then(|master| ContainerIo::terminal(master, cfg.stdin));
    match io {
        Ok(io) => Ok((pid, io)),
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            executor.delete();
            Err(format!("receiving the container's pty master: {e}"))
        }
    }
}
