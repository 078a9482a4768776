//! The monitor end to end, as root: real namespaces, real cgroups, a busybox rootfs, and both
//! executors (embedded libcontainer and Debian's runc) through the same scenarios.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Harness, Kind, SpecOpts, read_all, read_until, wait_exit};
use longshore_monitor_client::{
    AttachStreams, ExecSpec, ExitReason, MonitorClient, MonitorError, read_exit_record,
    read_start_record,
};
use tokio::io::AsyncWriteExt;

const KIB: usize = 1024;

fn opts() -> SpecOpts {
    SpecOpts::default()
}

fn exec(args: &[&str]) -> ExecSpec {
    ExecSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..ExecSpec::default()
    }
}

async fn echo_hello_is_logged_and_completes(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["echo", "hello"], &opts());
    let mut cfg = h.config();
    // The runtime's debug chatter goes to monitor.log, never into the container's log.
    cfg.log_level = Some("debug".into());
    let started = h.spawn(&cfg).await.expect("spawn");
    assert!(started.pid > 0);
    h.wait_monitor_exit().await;

    let exit = read_exit_record(&h.state_dir).unwrap().expect("exit.json");
    assert_eq!(exit.exit_code, 0);
    assert_eq!(exit.signal, None);
    assert_eq!(exit.reason, ExitReason::Completed);
    assert!(exit.finished_at >= started.started_at);
    let start = read_start_record(&h.state_dir)
        .unwrap()
        .expect("started.json");
    assert_eq!(start.pid, started.pid);
    assert_eq!(
        fs::read_to_string(h.state_dir.join("pid")).unwrap(),
        started.pid.to_string()
    );

    let lines = h.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (
            lines[0].stream.as_str(),
            lines[0].tag.as_str(),
            lines[0].content.as_str()
        ),
        ("stdout", "F", "hello")
    );
    // RFC3339Nano, UTC.
    let t = &lines[0].time;
    assert!(
        t.len() == 30 && t.ends_with('Z') && &t[10..11] == "T",
        "{t}"
    );
    assert!(!h.state_dir.join("monitor.sock").exists());
    if kind == Kind::Embedded {
        assert!(h.monitor_log().contains("DEBUG"), "{}", h.monitor_log());
    }
}

async fn exit_code_3_is_an_error(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sh", "-c", "exit 3"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    h.wait_monitor_exit().await;
    let exit = read_exit_record(&h.state_dir).unwrap().expect("exit.json");
    assert_eq!((exit.exit_code, exit.reason), (3, ExitReason::Error));
}

async fn long_line_is_split_into_partial_records(kind: Kind) {
    let mut h = Harness::new(kind);
    let script = "head -c 102400 /dev/zero | tr '\\0' a; echo; echo after";
    h.write_spec(&["sh", "-c", script], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    h.wait_monitor_exit().await;
    let lines = h.log_lines();
    let tags: Vec<&str> = lines.iter().map(|l| l.tag.as_str()).collect();
    assert_eq!(tags, ["P", "P", "P", "P", "P", "P", "F", "F"], "{tags:?}");
    assert!(lines[..6].iter().all(|l| l.content.len() == 16 * KIB));
    let joined: String = lines[..7].iter().map(|l| l.content.as_str()).collect();
    assert_eq!(joined, "a".repeat(100 * KIB));
    assert_eq!(lines[7].content, "after");
}

async fn stderr_lines_are_tagged_stderr(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(
        &["sh", "-c", "echo out; echo err >&2; printf tail"],
        &opts(),
    );
    h.spawn(&h.config()).await.expect("spawn");
    h.wait_monitor_exit().await;
    let lines: Vec<(String, String, String)> = h
        .log_lines()
        .into_iter()
        .map(|l| (l.stream, l.tag, l.content))
        .collect();
    let has = |s: &str, t: &str, c: &str| lines.contains(&(s.into(), t.into(), c.into()));
    assert!(has("stdout", "F", "out"), "{lines:?}");
    assert!(has("stderr", "F", "err"), "{lines:?}");
    // The last unterminated line is flushed as a full record at exit.
    assert!(has("stdout", "F", "tail"), "{lines:?}");
}

async fn sigterm_to_sleep_gives_143(kind: Kind) {
    let mut h = Harness::new(kind);
    // In a pod's shared pid namespace `sleep` is not the namespace's init, so SIGTERM's default
    // action applies (an init without a handler would ignore it).
    let pid_ns = h.pid_namespace_holder();
    let spec = SpecOpts {
        pid_ns: Some(pid_ns),
        ..opts()
    };
    h.write_spec(&["sleep", "1000"], &spec);
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    client.signal(15).await.expect("signal");
    let exit = wait_exit(&client).await;
    assert_eq!(exit.exit_code, 143);
    assert_eq!(exit.signal, Some(15));
    assert_eq!(exit.reason, ExitReason::Error);
    h.wait_monitor_exit().await;
}

async fn sigkill_to_init_gives_137(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let status = client.status().await.expect("status");
    assert_eq!(status.exit, None);
    client.signal(9).await.expect("signal");
    let exit = wait_exit(&client).await;
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    h.wait_monitor_exit().await;
}

async fn tty_container_logs_through_the_pty(kind: Kind) {
    let mut h = Harness::new(kind);
    let spec = SpecOpts {
        tty: true,
        ..opts()
    };
    h.write_spec(&["sh", "-c", "echo tty-hello; tty"], &spec);
    let mut cfg = h.config();
    cfg.tty = true;
    h.spawn(&cfg).await.expect("spawn");
    h.wait_monitor_exit().await;
    let lines = h.log_lines();
    let contents: Vec<&str> = lines
        .iter()
        .map(|l| l.content.trim_end_matches('\r'))
        .collect();
    assert!(contents.contains(&"tty-hello"), "{lines:?}");
    assert!(
        contents
            .iter()
            .any(|c| c.starts_with("/dev/pts/") || *c == "/dev/console"),
        "stdin is not a terminal: {lines:?}"
    );
    assert!(lines.iter().all(|l| l.stream == "stdout"));
    let exit = read_exit_record(&h.state_dir).unwrap().expect("exit.json");
    assert_eq!(exit.exit_code, 0);
}

async fn exec_returns_output_and_exit_code(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");

    let mut spec = exec(&["sh", "-c", "echo execout; echo $GREETING >&2; exit 3"]);
    spec.env = vec!["GREETING=hi-from-env".into()];
    let mut session = client.exec(&spec).await.expect("exec");
    assert!(session.stdin.is_none());
    let out = read_all(session.stdout.as_mut().unwrap()).await;
    let err = read_all(session.stderr.as_mut().unwrap()).await;
    assert_eq!(out, "execout\n");
    assert_eq!(err, "hi-from-env\n");
    let done = session.wait().await.expect("wait");
    assert_eq!((done.exit_code, done.timed_out), (3, false));

    // The runtime's own error for a command that does not exist.
    match client.exec(&exec(&["/does/not/exist"])).await {
        Err(MonitorError::Refused(message)) => {
            assert!(message.contains("/does/not/exist"), "{message}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("exec of a missing command started"),
    }
    // Exec output never reaches the container log.
    assert!(!h.log_text().contains("execout"));
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn exec_with_stdin_closed_midway(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let mut spec = exec(&["cat"]);
    spec.stdin = true;
    let mut session = client.exec(&spec).await.expect("exec");
    let mut stdin = session.stdin.take().expect("stdin");
    let mut stdout = session.stdout.take().expect("stdout");
    stdin.write_all(b"first\n").await.unwrap();
    assert_eq!(read_until(&mut stdout, "first\n").await, "first\n");
    stdin.write_all(b"second\n").await.unwrap();
    drop(stdin);
    assert_eq!(read_all(&mut stdout).await, "second\n");
    let done = session.wait().await.expect("wait");
    assert_eq!(done.exit_code, 0);
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn exec_timeout_kills_the_process(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let mut spec = exec(&["sleep", "100"]);
    spec.timeout = Some(Duration::from_millis(300));
    let begun = Instant::now();
    let mut session = client.exec(&spec).await.expect("exec");
    let done = session.wait().await.expect("wait");
    assert!(done.timed_out);
    assert_eq!(done.exit_code, 137);
    assert!(begun.elapsed() < Duration::from_secs(30));
    // The container itself is untouched.
    assert_eq!(client.status().await.unwrap().exit, None);
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn exec_with_a_terminal(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let mut spec = exec(&["sh", "-c", "read x; stty size; tty; echo got-$x"]);
    spec.tty = true;
    spec.stdin = true;
    let mut session = client.exec(&spec).await.expect("exec");
    assert!(session.stderr.is_none());
    session.resize(120, 33).expect("resize");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"in\n").await.unwrap();
    let mut out = session.stdout.take().expect("terminal");
    let text = read_until(&mut out, "got-in").await;
    assert!(text.contains("33 120"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    let done = session.wait().await.expect("wait");
    assert_eq!(done.exit_code, 0);
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn exec_terminal_starts_with_its_first_size(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    // `stty size` reads the size at once: it must be there before the command runs.
    for _ in 0..5 {
        let mut spec = exec(&["stty", "size"]);
        spec.tty = true;
        spec.console_size = Some((77, 33));
        let mut session = client.exec(&spec).await.expect("exec");
        let mut out = session.stdout.take().expect("terminal");
        assert_eq!(read_all(&mut out).await, "33 77\r\n");
        assert_eq!(session.wait().await.expect("wait").exit_code, 0);
    }
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn exec_terminal_hangs_up_when_closed(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let mut spec = exec(&["sleep", "1000"]);
    spec.tty = true;
    spec.stdin = true;
    let mut session = client.exec(&spec).await.expect("exec");
    drop(session.stdin.take());
    drop(session.stdout.take());
    session.close_terminal();
    assert!(session.resize(80, 24).is_err());
    let done = tokio::time::timeout(Duration::from_secs(20), session.wait())
        .await
        .expect("the process outlived its terminal")
        .expect("wait");
    assert_eq!(done.exit_code, 129, "SIGHUP");
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

const ECHO_LOOP: &str = "while read l; do echo got:$l; done; echo stdin-closed";

async fn attach_sees_new_output_and_writes_stdin(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sh", "-c", ECHO_LOOP], &opts());
    let mut cfg = h.config();
    cfg.stdin = true;
    h.spawn(&cfg).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let all = AttachStreams {
        stdin: true,
        stdout: true,
        stderr: true,
    };
    {
        let mut session = client.attach(all).await.expect("attach");
        assert!(!session.tty);
        let mut stdin = session.stdin.take().expect("stdin");
        stdin.write_all(b"ping\n").await.unwrap();
        read_until(session.stdout.as_mut().unwrap(), "got:ping").await;
    }
    h.wait_for_log("stdout F got:ping").await;
    // Without stdin_once a second session still reaches the same stdin, and only sees output
    // written after it attached.
    let mut session = client.attach(all).await.expect("attach again");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"pong\n").await.unwrap();
    let text = read_until(session.stdout.as_mut().unwrap(), "got:pong").await;
    assert!(!text.contains("got:ping"), "{text:?}");
    // Closing the session's stdin is not closing the container's.
    drop(stdin);
    drop(session);
    assert_eq!(client.status().await.unwrap().exit, None);
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn stdin_once_closes_stdin_after_the_first_attach(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sh", "-c", ECHO_LOOP], &opts());
    let mut cfg = h.config();
    cfg.stdin = true;
    cfg.stdin_once = true;
    h.spawn(&cfg).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let all = AttachStreams {
        stdin: true,
        stdout: true,
        stderr: false,
    };
    let mut session = client.attach(all).await.expect("attach");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"one\n").await.unwrap();
    read_until(session.stdout.as_mut().unwrap(), "got:one").await;
    // Ending the session (its connection, its stdin dup and its output copies) closes the
    // container's stdin: it sees EOF and exits on its own.
    drop(stdin);
    drop(session);
    let exit = wait_exit(&client).await;
    assert_eq!(exit.exit_code, 0);
    h.wait_monitor_exit().await;
    assert!(h.log_text().contains("stdout F stdin-closed"));
}

async fn stdin_once_on_a_terminal_types_eof(kind: Kind) {
    let mut h = Harness::new(kind);
    let spec = SpecOpts {
        tty: true,
        ..opts()
    };
    h.write_spec(
        &[
            "sh",
            "-c",
            "while read l; do echo got:$l; done; echo eof-seen",
        ],
        &spec,
    );
    let mut cfg = h.config();
    cfg.tty = true;
    cfg.stdin = true;
    cfg.stdin_once = true;
    h.spawn(&cfg).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let streams = AttachStreams {
        stdin: true,
        stdout: true,
        stderr: false,
    };
    let mut session = client.attach(streams).await.expect("attach");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"one\n").await.unwrap();
    read_until(session.stdout.as_mut().unwrap(), "got:one").await;
    drop(stdin);
    drop(session);
    // A terminal cannot be half-closed: the monitor types ^D, which ends `read`.
    let exit = wait_exit(&client).await;
    assert_eq!(exit.exit_code, 0);
    h.wait_monitor_exit().await;
    assert!(h.log_text().contains("eof-seen"));
}

async fn tty_attach_and_resize(kind: Kind) {
    let mut h = Harness::new(kind);
    let spec = SpecOpts {
        tty: true,
        ..opts()
    };
    h.write_spec(&["sh", "-c", "read x; stty size; echo bye-$x"], &spec);
    let mut cfg = h.config();
    cfg.tty = true;
    cfg.stdin = true;
    h.spawn(&cfg).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    client.resize(100, 40).await.expect("resize");
    let all = AttachStreams {
        stdin: true,
        stdout: true,
        stderr: true,
    };
    let mut session = client.attach(all).await.expect("attach");
    assert!(session.tty);
    assert!(session.stderr.is_none());
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").await.unwrap();
    let text = read_until(session.stdout.as_mut().unwrap(), "bye-go").await;
    assert!(text.contains("40 100"), "{text:?}");
    let exit = wait_exit(&client).await;
    assert_eq!(exit.exit_code, 0);
    h.wait_monitor_exit().await;
    assert!(h.log_text().contains("40 100"));
}

async fn reopen_log_after_rename_continues_in_the_new_file(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sh", "-c", ECHO_LOOP], &opts());
    let mut cfg = h.config();
    cfg.stdin = true;
    h.spawn(&cfg).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let streams = AttachStreams {
        stdin: true,
        stdout: false,
        stderr: false,
    };
    let mut session = client.attach(streams).await.expect("attach");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"one\n").await.unwrap();
    h.wait_for_log("got:one").await;
    let rotated = h.log_path.with_extension("log.1");
    fs::rename(&h.log_path, &rotated).unwrap();
    client.reopen_log().await.expect("reopen");
    assert!(h.log_path.exists());
    stdin.write_all(b"two\n").await.unwrap();
    h.wait_for_log("got:two").await;
    let old = fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("got:one") && !old.contains("got:two"), "{old}");
    assert!(!h.log_text().contains("got:one"));
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

async fn monitor_outlives_its_client(kind: Kind) {
    let mut h = Harness::new(kind);
    let script = "echo first; sleep 0.5; echo second; sleep 1000";
    h.write_spec(&["sh", "-c", script], &opts());
    let started = h.spawn(&h.config()).await.expect("spawn");
    // No client at all while the container runs: the monitor keeps logging.
    h.wait_for_log("stdout F second").await;
    // A "restarted daemon" finds the monitor through the state dir.
    let client = MonitorClient::connect(&h.state_dir)
        .await
        .expect("reconnect");
    let status = client.status().await.expect("status");
    assert_eq!(status.pid, started.pid);
    assert_eq!(status.monitor_pid, started.monitor_pid);
    assert_eq!(status.started_at, started.started_at);
    assert_eq!(status.exit, None);
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { wait_exit(&client).await })
    };
    client.signal(9).await.expect("kill");
    let exit = waiter.await.unwrap();
    assert_eq!(exit.exit_code, 137);
    h.wait_monitor_exit().await;
}

async fn exit_without_a_client_leaves_a_correct_record(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["sh", "-c", "sleep 0.3; echo bye; exit 7"], &opts());
    let started = h.spawn(&h.config()).await.expect("spawn");
    h.wait_monitor_exit().await;
    let exit = read_exit_record(&h.state_dir).unwrap().expect("exit.json");
    assert_eq!(
        (exit.exit_code, exit.signal, exit.reason),
        (7, None, ExitReason::Error)
    );
    assert!(exit.finished_at > started.started_at);
    assert!(h.log_text().contains("stdout F bye"));
    assert!(!h.state_dir.join("exit.json.tmp").exists());
    // A client arriving now finds no monitor, and the record says it all.
    assert!(MonitorClient::connect(&h.state_dir).await.is_err());
    // The executor's state is gone.
    match kind {
        Kind::Embedded => assert!(!h.state_dir.join("runtime").join(&h.id).exists()),
        Kind::Runc => assert!(!h.runc_root.join(&h.id).exists()),
    }
}

async fn missing_command_fails_the_start(kind: Kind) {
    let mut h = Harness::new(kind);
    h.write_spec(&["/does/not/exist"], &opts());
    match h.spawn(&h.config()).await {
        Err(MonitorError::Start { message, .. }) => {
            assert!(message.contains("/does/not/exist"), "{message}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(s) => panic!("a missing command started: {s:?}"),
    }
    assert!(read_exit_record(&h.state_dir).unwrap().is_none());
}

async fn oom_kill_is_reported(kind: Kind) {
    let mut h = Harness::new(kind);
    let spec = SpecOpts {
        memory_limit: Some(32 << 20),
        ..opts()
    };
    h.write_spec(
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
        &spec,
    );
    let mut cfg = h.config();
    cfg.memory_events = Some(h.cgroup.memory_events(&h.id));
    h.spawn(&cfg).await.expect("spawn");
    h.wait_monitor_exit().await;
    let exit = read_exit_record(&h.state_dir).unwrap().expect("exit.json");
    assert_eq!(exit.reason, ExitReason::OomKilled, "{exit:?}");
    assert_eq!(exit.exit_code, 137);
}

/// The `SigBlk` and `SigIgn` masks in a /proc/<pid>/status text.
fn signal_masks(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("SigBlk:") || l.starts_with("SigIgn:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

const CLEAN_MASKS: [&str; 2] = ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"];

async fn processes_start_with_a_clean_signal_state(kind: Kind) {
    // The monitor blocks SIGCHLD and ignores SIGPIPE; both survive exec, so neither may reach
    // the container's or an exec's process.
    let mut h = Harness::new(kind);
    h.write_spec(&["cat", "/proc/self/status"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    h.wait_monitor_exit().await;
    let contents: Vec<String> = h.log_lines().into_iter().map(|l| l.content).collect();
    assert_eq!(signal_masks(&contents.join("\n")), CLEAN_MASKS);

    let mut h = Harness::new(kind);
    h.write_spec(&["sleep", "1000"], &opts());
    h.spawn(&h.config()).await.expect("spawn");
    let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
    let mut session = client
        .exec(&exec(&["cat", "/proc/self/status"]))
        .await
        .expect("exec");
    let status = read_all(session.stdout.as_mut().unwrap()).await;
    assert_eq!(signal_masks(&status), CLEAN_MASKS);
    session.wait().await.expect("exec wait");
    client.signal(9).await.expect("kill");
    h.wait_monitor_exit().await;
}

/// Prints (does not assert) what monitors cost while their containers run: VmRSS, and from
/// smaps_rollup the proportional (Pss) and private parts; the file-backed rest is the binary and
/// libc, shared with every other monitor and the daemon.
async fn report_monitor_rss(kind: Kind) {
    const MONITORS: usize = 4;
    let mut harnesses = Vec::new();
    for _ in 0..MONITORS {
        let mut h = Harness::new(kind);
        let script = "while true; do echo tick; sleep 0.05; done";
        h.write_spec(&["sh", "-c", script], &opts());
        h.spawn(&h.config()).await.expect("spawn");
        harnesses.push(h);
    }
    for h in &harnesses {
        h.wait_for_log("tick").await;
        let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
        let mut session = client.exec(&exec(&["true"])).await.expect("exec");
        session.wait().await.expect("exec wait");
        let _ = client
            .attach(AttachStreams {
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    for h in &harnesses {
        println!(
            "monitor ({kind:?}, {build} build, {MONITORS} running): {} KiB VmRSS | {} | {}",
            h.monitor_rss_kib(),
            h.monitor_memory(),
            h.monitor_smaps_rollup()
        );
    }
    if std::env::var_os("LONGSHORE_MONITOR_SMAPS").is_some() {
        let smaps = fs::read_to_string(format!("/proc/{}/smaps", harnesses[0].monitor_pid()));
        println!("{}", smaps.unwrap_or_default());
    }
    for h in &harnesses {
        let client = MonitorClient::connect(&h.state_dir).await.expect("connect");
        client.signal(9).await.expect("kill");
        h.wait_monitor_exit().await;
    }
}

macro_rules! both_executors {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    longshore_testkit::require_root!();
                    super::$name(super::Kind::Embedded).await
                }
            )*
        }
        mod runc {
            $(
                #[tokio::test]
                async fn $name() {
                    longshore_testkit::require_root!();
                    super::$name(super::Kind::Runc).await
                }
            )*
        }
    };
}

both_executors!(
    echo_hello_is_logged_and_completes,
    exit_code_3_is_an_error,
    long_line_is_split_into_partial_records,
    stderr_lines_are_tagged_stderr,
    sigterm_to_sleep_gives_143,
    sigkill_to_init_gives_137,
    tty_container_logs_through_the_pty,
    exec_returns_output_and_exit_code,
    exec_with_stdin_closed_midway,
    exec_timeout_kills_the_process,
    exec_with_a_terminal,
    exec_terminal_starts_with_its_first_size,
    exec_terminal_hangs_up_when_closed,
    attach_sees_new_output_and_writes_stdin,
    stdin_once_closes_stdin_after_the_first_attach,
    stdin_once_on_a_terminal_types_eof,
    tty_attach_and_resize,
    reopen_log_after_rename_continues_in_the_new_file,
    monitor_outlives_its_client,
    exit_without_a_client_leaves_a_correct_record,
    missing_command_fails_the_start,
    oom_kill_is_reported,
    processes_start_with_a_clean_signal_state,
    report_monitor_rss,
);
