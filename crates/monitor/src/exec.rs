//! Exec sessions on the monitor's side.
//!
//! An exec runs the container's own `process` (user, capabilities, env, rlimits...) from the
//! bundle's `config.json`, with the args, extra env, cwd and terminal the request asks for,
//! written to `exec-<n>.json` for the executor. Its stdio are fresh pipes (or a pty from the
//! runtime); the daemon's ends are passed to the client with SCM_RIGHTS, so no exec bytes go
//! through the monitor. The monitor only reaps the process and reports its exit code on the
//! connection. The exec lives as long as its connection: if the client goes away the process is
//! killed, and so it is when the request's timeout passes (ExecSync).
//!
//! Starting is asynchronous: the executor's creator (a fork or `runc exec`) runs while the poll
//! loop goes on, and is finished when the reaper collects it.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::child_reaper::ChildExit;
use crate::connection::{peer_closed, reply, send_fds};
use crate::executor::{Executor, PendingExec, ProcessIo, Stdio};
use crate::protocol::{ExecRequest, Response};
use crate::records::write_atomic;
use crate::stdio::{dev_null, pipe};
use crate::terminal::{ConsoleSocket, set_window_size};

/// The bundle's spec, whose `process` an exec starts from.
const BUNDLE_CONFIG: &str = "config.json";
/// How long to wait for a runtime's pty master after it reported the exec started.
const MASTER_TIMEOUT: Duration = Duration::from_secs(2);
/// Remembered exits of children nobody claimed yet (an exec process can be reaped before its
/// creator, which tells us its pid).
const MAX_ORPHAN_EXITS: usize = 128;

/// Exits the reaper saw for pids nobody knew yet, with the reap sequence number.
#[derive(Default)]
pub(crate) struct OrphanExits {
    exits: Vec<(Pid, ChildExit, u64)>,
}

impl OrphanExits {
    pub(crate) fn record(&mut self, pid: Pid, exit: ChildExit, seq: u64) {
        if self.exits.len() == MAX_ORPHAN_EXITS {
            self.exits.remove(0);
        }
        self.exits.push((pid, exit, seq));
    }

    /// Takes `pid`'s exit if it was reaped after `since` (older entries are a reused pid).
    fn take(&mut self, pid: Pid, since: u64) -> Option<ChildExit> {
        let pos = self
            .exits
            .iter()
            .position(|&(p, _, seq)| p == pid && seq > since)?;
        Some(self.exits.remove(pos).1)
    }
}

/// An exec whose creator is still at work.
struct Pending {
    id: u64,
    creation: Box<dyn PendingExec>,
    conn: UnixStream,
    client_fds: Vec<OwnedFd>,
    stdin: bool,
    console: Option<ConsoleSocket>,
    /// The pty master, taken from the console socket as soon as the runtime sent it.
    master: Option<OwnedFd>,
    /// The console socket failed; `creator_done` reports it.
    console_failed: bool,
    /// The terminal's first size (columns, rows).
    console_size: Option<(u16, u16)>,
    deadline: Option<Instant>,
    process_file: PathBuf,
    since: u64,
    client_gone: bool,
    /// The deadline passed while the runtime was still starting it; the creator was killed.
    timed_out: bool,
}

/// An exec process that is running.
struct Running {
    id: u64,
    pid: Pid,
    conn: UnixStream,
    deadline: Option<Instant>,
    timed_out: bool,
    client_gone: bool,
    since: u64,
}

/// All execs of this container.
#[derive(Default)]
pub(crate) struct Execs {
    next_id: u64,
    pending: Vec<Pending>,
    running: Vec<Running>,
}

impl Execs {
    /// Starts an exec; on failure hands the connection back with the reason.
    pub(crate) fn begin(
        &mut self,
        executor: &dyn Executor,
        bundle: &Path,
        state_dir: &Path,
        req: ExecRequest,
        conn: UnixStream,
        seq: u64,
    ) -> Result<(), (UnixStream, String)> {
        self.next_id += 1;
        let id = self.next_id;
        let deadline = req
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let process_file = state_dir.join(format!("exec-{id}.json"));
        let prepared = exec_process(bundle, &req)
            .and_then(|process| {
                let bytes = serde_json::to_vec(&process).map_err(|e| e.to_string())?;
                write_atomic(&process_file, &bytes)
                    .map_err(|e| format!("writing {}: {e}", process_file.display()))
            })
            .and_then(|()| self.start(executor, id, &req, &process_file, state_dir));
        match prepared {
            Ok((creation, client_fds, console)) => {
                self.pending.push(Pending {
                    id,
                    creation,
                    conn,
                    client_fds,
                    stdin: req.stdin,
                    console,
                    master: None,
                    console_failed: false,
                    console_size: req.console_size,
                    deadline,
                    process_file,
                    since: seq,
                    client_gone: false,
                    timed_out: false,
                });
                Ok(())
            }
            Err(message) => {
                let _ = fs::remove_file(&process_file);
                Err((conn, message))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn start(
        &self,
        executor: &dyn Executor,
        id: u64,
        req: &ExecRequest,
        process_file: &Path,
        state_dir: &Path,
    ) -> Result<(Box<dyn PendingExec>, Vec<OwnedFd>, Option<ConsoleSocket>), String> {
        if req.tty {
            let path = state_dir.join(format!("exec-{id}.sock"));
            let console = ConsoleSocket::bind(&path)
                .map_err(|e| format!("binding console socket {}: {e}", path.display()))?;
            let io = ProcessIo::Terminal {
                console_socket: console.path(),
            };
            let creation = executor
                .begin_exec(process_file, io)
                .map_err(|e| e.to_string())?;
            return Ok((creation, Vec::new(), Some(console)));
        }
        let pipes = || -> std::io::Result<(Stdio, Vec<OwnedFd>)> {
            let mut client = Vec::new();
            let stdin = if req.stdin {
                let (r, w) = pipe()?;
                client.push(w);
                r
            } else {
                dev_null()?
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            client.push(out_r);
            client.push(err_r);
            let theirs = Stdio {
                stdin,
                stdout: out_w,
                stderr: err_w,
            };
            Ok((theirs, client))
        };
        let (theirs, client) = pipes().map_err(|e| format!("creating exec pipes: {e}"))?;
        // The process's ends are dropped (closed in the monitor) when `begin_exec` returns.
        let creation = executor
            .begin_exec(process_file, ProcessIo::Pipes(theirs))
            .map_err(|e| e.to_string())?;
        Ok((creation, client, None))
    }

    /// Handles a reaped child if it is one of ours (a creator or an exec process).
    pub(crate) fn child_exited(&mut self, pid: Pid, exit: ChildExit) -> bool {
        if let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.creation.creator() == pid)
        {
            let pending = self.pending.swap_remove(pos);
            self.creator_done(pending, exit);
            return true;
        }
        if let Some(pos) = self.running.iter().position(|r| r.pid == pid) {
            let running = self.running.swap_remove(pos);
            report_exit(&running, exit);
            return true;
        }
        false
    }

    /// Matches remembered orphan exits to exec processes that started since.
    pub(crate) fn claim(&mut self, orphans: &mut OrphanExits) {
        let mut i = 0;
        while i < self.running.len() {
            let r = &self.running[i];
            match orphans.take(r.pid, r.since) {
                Some(exit) => {
                    let running = self.running.swap_remove(i);
                    report_exit(&running, exit);
                }
                None => i += 1,
            }
        }
    }

    fn creator_done(&mut self, pending: Pending, exit: ChildExit) {
        let _ = fs::remove_file(&pending.process_file);
        let Pending {
            id,
            creation,
            conn,
            mut client_fds,
            stdin,
            mut console,
            master,
            console_size,
            deadline,
            since,
            client_gone,
            timed_out,
            ..
        } = pending;
        let pid = match creation.finish(exit) {
            Ok(pid) => pid,
            Err(e) => {
                let message = if timed_out {
                    format!("exec timed out while starting: {e}")
                } else {
                    e.to_string()
                };
                reply(&conn, &Response::Failed { message });
                return;
            }
        };
        if let Some(console) = &mut console {
            let received = match master {
                Some(master) => Ok(master),
                None => console.receive_master(MASTER_TIMEOUT).inspect(|master| {
                    apply_console_size(master.as_fd(), console_size);
                }),
            };
            match received {
                Ok(master) => {
                    if stdin {
                        match master.try_clone() {
                            Ok(dup) => client_fds.push(dup),
                            Err(e) => tracing::warn!(error = %e, "cannot dup exec pty master"),
                        }
                    }
                    client_fds.push(master);
                }
                Err(e) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    reply(
                        &conn,
                        &Response::Failed {
                            message: format!("exec terminal: {e}"),
                        },
                    );
                    self.track(id, pid, conn, None, true, since);
                    return;
                }
            }
        }
        let fds: Vec<RawFd> = client_fds.iter().map(AsRawFd::as_raw_fd).collect();
        let started = Response::ExecStarted {
            pid: pid.as_raw(),
            stdin,
            tty: console.is_some(),
        };
        let sent = !client_gone && send_fds(&conn, &started, &fds).is_ok();
        if !sent {
            // Nobody to hand the streams to: the exec must not outlive its client.
            let _ = kill(pid, Signal::SIGKILL);
        }
        self.track(id, pid, conn, deadline, !sent, since);
    }

    fn track(
        &mut self,
        id: u64,
        pid: Pid,
        conn: UnixStream,
        deadline: Option<Instant>,
        client_gone: bool,
        since: u64,
    ) {
        self.running.push(Running {
            id,
            pid,
            conn,
            deadline,
            timed_out: false,
            client_gone,
            since,
        });
    }

    /// Kills exec processes whose timeout has passed (or their creator, if the runtime is still
    /// starting them: a hung runtime must not hold the client forever).
    pub(crate) fn expire(&mut self, now: Instant) {
        for p in &mut self.pending {
            if !p.timed_out && p.deadline.is_some_and(|d| now >= d) {
                tracing::warn!(
                    creator = p.creation.creator().as_raw(),
                    "exec start timed out"
                );
                p.timed_out = true;
                let _ = kill(p.creation.creator(), Signal::SIGKILL);
            }
        }
        for r in &mut self.running {
            if !r.timed_out && r.deadline.is_some_and(|d| now >= d) {
                tracing::info!(pid = r.pid.as_raw(), "exec timed out; killing it");
                r.timed_out = true;
                let _ = kill(r.pid, Signal::SIGKILL);
            }
        }
    }

    /// The next exec deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let pending = self
            .pending
            .iter()
            .filter(|p| !p.timed_out)
            .map(|p| p.deadline);
        let running = self
            .running
            .iter()
            .filter(|r| !r.timed_out)
            .map(|r| r.deadline);
        pending.chain(running).flatten().min()
    }

    /// Console sockets of terminal execs whose pty master has not arrived yet.
    pub(crate) fn poll_consoles(&self) -> impl Iterator<Item = (u64, BorrowedFd<'_>)> {
        self.pending
            .iter()
            .filter(|p| p.master.is_none() && !p.console_failed)
            .filter_map(|p| p.console.as_ref().map(|c| (p.id, c.poll_fd())))
    }

    /// Exec `id`'s console socket is readable: take the pty master the moment the runtime
    /// sends it and give the terminal its first size. The runtime sends the master early in
    /// the process's setup, well before it runs the command, so the command starts with the
    /// client's size rather than 0×0 (libcontainer has no `consoleSize`; runc gets it in the
    /// process file as well).
    pub(crate) fn console_ready(&mut self, id: u64) {
        let Some(p) = self.pending.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let Some(console) = p.console.as_mut() else {
            return;
        };
        match console.try_receive_master() {
            Ok(Some(master)) => {
                apply_console_size(master.as_fd(), p.console_size);
                p.master = Some(master);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "exec console socket failed");
                p.console_failed = true;
            }
        }
    }

    /// Connections to watch for a client hanging up.
    pub(crate) fn poll_conns(&self) -> impl Iterator<Item = (u64, &UnixStream)> {
        let pending = self
            .pending
            .iter()
            .filter(|p| !p.client_gone)
            .map(|p| (p.id, &p.conn));
        let running = self
            .running
            .iter()
            .filter(|r| !r.client_gone)
            .map(|r| (r.id, &r.conn));
        pending.chain(running)
    }

    /// The client of exec `id` may have hung up: kill its process if so.
    pub(crate) fn check_hangup(&mut self, id: u64) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.id == id)
            && peer_closed(&p.conn)
        {
            p.client_gone = true;
        }
        if let Some(r) = self.running.iter_mut().find(|r| r.id == id)
            && peer_closed(&r.conn)
        {
            r.client_gone = true;
            let _ = kill(r.pid, Signal::SIGKILL);
        }
    }

    /// Kills every exec process (the container has exited).
    pub(crate) fn kill_all(&self) {
        for r in &self.running {
            let _ = kill(r.pid, Signal::SIGKILL);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.running.is_empty()
    }

    /// Tells remaining clients their exec is lost (the monitor is exiting).
    pub(crate) fn abandon(&mut self) {
        for p in self.pending.drain(..) {
            let _ = fs::remove_file(&p.process_file);
            let message = "container exited before the exec started".to_owned();
            reply(&p.conn, &Response::Failed { message });
        }
        for r in self.running.drain(..) {
            let message = "container exited; exec process not reaped".to_owned();
            reply(&r.conn, &Response::Failed { message });
        }
    }
}

fn apply_console_size(master: BorrowedFd<'_>, size: Option<(u16, u16)>) {
    if let Some((width, height)) = size
        && let Err(e) = set_window_size(master, width, height)
    {
        tracing::warn!(error = %e, "setting the exec terminal's first size");
    }
}

fn report_exit(running: &Running, exit: ChildExit) {
    if running.client_gone {
        return;
    }
    let msg = Response::ExecExited {
        exit_code: exit.code(),
        timed_out: running.timed_out,
    };
    reply(&running.conn, &msg);
}

/// The OCI `process` for an exec: the container's own, with the request's args, env, cwd and
/// terminal.
pub(crate) fn exec_process(bundle: &Path, req: &ExecRequest) -> Result<Value, String> {
    let path = bundle.join(BUNDLE_CONFIG);
    let text = fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let spec: Value =
        serde_json::from_slice(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    let base = spec
        .get("process")
        .cloned()
        .ok_or_else(|| format!("{} has no process", path.display()))?;
    merge_process(base, req)
}

fn merge_process(mut process: Value, req: &ExecRequest) -> Result<Value, String> {
    if req.args.is_empty() {
        return Err("exec needs a command".to_owned());
    }
    let obj = process
        .as_object_mut()
        .ok_or_else(|| "bundle process is not an object".to_owned())?;
    obj.insert("args".into(), Value::from(req.args.clone()));
    obj.insert("terminal".into(), Value::from(req.tty));
    match req.console_size.filter(|_| req.tty) {
        Some((width, height)) => {
            let size = serde_json::json!({ "width": width, "height": height });
            obj.insert("consoleSize".into(), size);
        }
        None => {
            obj.remove("consoleSize");
        }
    }
    if let Some(cwd) = &req.cwd {
        obj.insert("cwd".into(), Value::from(cwd.clone()));
    }
    let mut env: Vec<String> = obj
        .get("env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for entry in &req.env {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    obj.insert("env".into(), Value::from(env));
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(args: &[&str], env: &[&str], cwd: Option<&str>) -> ExecRequest {
        ExecRequest {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: cwd.map(str::to_owned),
            tty: true,
            stdin: false,
            timeout_ms: None,
            console_size: None,
        }
    }

    #[test]
    fn exec_keeps_the_containers_process_and_overrides_what_was_asked() {
        let base = json!({
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sleep", "100"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/",
            "consoleSize": {"height": 1, "width": 1},
            "capabilities": {"bounding": ["CAP_KILL"]}
        });
        let p = merge_process(base, &req(&["ls", "-l"], &["A=2", "B=3"], Some("/tmp"))).unwrap();
        assert_eq!(p["args"], json!(["ls", "-l"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(p["cwd"], json!("/tmp"));
        assert_eq!(p["terminal"], json!(true));
        assert_eq!(p["user"]["uid"], json!(1000));
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_KILL"]));
        assert!(p.get("consoleSize").is_none());
    }

    #[test]
    fn a_terminal_exec_gets_its_first_size() {
        let mut r = req(&["sh"], &[], None);
        r.console_size = Some((120, 40));
        let p = merge_process(json!({}), &r).unwrap();
        assert_eq!(p["consoleSize"], json!({"width": 120, "height": 40}));
        r.tty = false;
        let p = merge_process(json!({"consoleSize": {"width": 1, "height": 1}}), &r).unwrap();
        assert!(p.get("consoleSize").is_none());
    }

    #[test]
    fn exec_without_args_is_refused() {
        assert!(merge_process(json!({}), &req(&[], &[], None)).is_err());
    }

    #[test]
    fn orphan_exits_ignore_entries_older_than_the_exec() {
        let mut o = OrphanExits::default();
        let pid = Pid::from_raw(42);
        o.record(pid, ChildExit::Exited(1), 5);
        assert_eq!(o.take(pid, 5), None);
        o.record(pid, ChildExit::Exited(2), 7);
        assert_eq!(o.take(pid, 5), Some(ChildExit::Exited(2)));
    }
}
