//! The daemon as a systemd service: `READY=1` on `$NOTIFY_SOCKET` once the CRI socket serves,
//! `STOPPING=1` at shutdown, and under journald (`JOURNAL_STREAM`) log lines that start with their
//! syslog priority and carry no colour codes.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::TestDaemon;
use longshore::api::*;

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_and_stopping_and_journald_gets_priorities() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let path = d.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let notify = path.to_string_lossy().into_owned();
    d.stop_process(libc::SIGTERM);
    let log_before = d.daemon_log().len();
    d.restart_with_env(&[("NOTIFY_SOCKET", &notify), ("JOURNAL_STREAM", "8:12345")])
        .await;

    let ready = receive(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let pid = d.daemon_pid().unwrap();
    assert!(
        ready.lines().any(|l| l == format!("MAINPID={pid}")),
        "{ready:?}"
    );
    // Ready means answering.
    d.client
        .runtime
        .version(VersionRequest::default())
        .await
        .unwrap();

    d.stop_process(libc::SIGTERM);
    let stopping = receive(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");

    let log = d.daemon_log()[log_before..].to_string();
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with(' ')).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let prefixed = ["<3>", "<4>", "<6>", "<7>"]
            .iter()
            .any(|p| line.starts_with(p));
        assert!(prefixed && !line.contains('\u{1b}'), "{line:?}");
    }
    assert!(log.contains("<6> INFO") || log.contains("<6>INFO"), "{log}");
}
