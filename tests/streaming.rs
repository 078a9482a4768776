//! Exec, attach, port-forward and ExecSync end to end: a real daemon, real containers, and the
//! project's own streaming client speaking SPDY/3.1 and WebSocket (v5, v4, v4 base64) to the
//! URLs the CRI RPCs hand out.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestDaemon;
use longshore::api::*;
use longshore_streaming::client::{
    CommandOutcome, PortForwarder, RemoteCommandIo, Transport, WsPortForward, WsProtocol,
    run_remote_command,
};
use longshore_streaming::{ClientError, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tonic::Code;

/// Every transport crictl and kubectl use, and the older WebSocket ones.
const ALL: [Transport; 4] = [
    Transport::Spdy,
    Transport::WebSocket(WsProtocol::V5),
    Transport::WebSocket(WsProtocol::V4),
    Transport::WebSocket(WsProtocol::V4Base64),
];
/// The transports that can tell the server the client's stdin ended.
const STDIN_CLOSE: [Transport; 2] = [Transport::Spdy, Transport::WebSocket(WsProtocol::V5)];
const TEN_MIB: usize = 10 << 20;
const WAIT: Duration = Duration::from_secs(20);

/// Output collected from a stream, readable while the command runs.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Collected {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
    async fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?}; got {:?}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl AsyncWrite for Collected {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// One remote command's client side: collected outputs, a stdin writer, a resize sender.
struct Session {
    stdout: Collected,
    stderr: Collected,
    stdin: Option<DuplexStream>,
    resize: Option<mpsc::Sender<TerminalSize>>,
    task: tokio::task::JoinHandle<Result<CommandOutcome, ClientError>>,
    what: String,
}

impl Session {
    /// Connects to `url`; `stdin` and `tty` must match what the CRI request asked for.
    fn start(url: String, transport: Transport, stdin: bool, tty: bool) -> Session {
        let (stdout, stderr) = (Collected::default(), Collected::default());
        let (writer, reader) = if stdin {
            let (w, r) = tokio::io::duplex(256 * 1024);
            (Some(w), Some(Box::new(r) as longshore_streaming::BoxReader))
        } else {
            (None, None)
        };
        let (resize_tx, resize_rx) = if tty {
            let (tx, rx) = mpsc::channel(8);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let io = RemoteCommandIo {
            stdin: reader,
            stdout: Some(Box::new(stdout.clone())),
            stderr: (!tty).then(|| Box::new(stderr.clone()) as longshore_streaming::BoxWriter),
            tty,
            resize: resize_rx,
        };
        let what = format!("{transport:?} {url}");
        let task = tokio::spawn(async move { run_remote_command(&url, transport, io).await });
        Session {
            stdout,
            stderr,
            stdin: writer,
            resize: resize_tx,
            task,
            what,
        }
    }

    async fn write(&mut self, data: &[u8]) {
        self.stdin
            .as_mut()
            .expect("a stdin")
            .write_all(data)
            .await
            .unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    async fn outcome(self) -> CommandOutcome {
        let what = self.what;
        let (out, err) = (self.stdout.clone(), self.stderr.clone());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{what}: did not finish; stdout {:?}, stderr {:?}",
                    out.text(),
                    err.text()
                )
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: failed: {e}"))
    }
}

async fn exec_url(d: &mut TestDaemon, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    d.client
        .runtime
        .exec(ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            stderr: !tty,
        })
        .await
        .unwrap_or_else(|e| panic!("Exec: {e}"))
        .into_inner()
        .url
}

async fn run(
    d: &mut TestDaemon,
    id: &str,
    t: Transport,
    cmd: &[&str],
) -> (CommandOutcome, Collected, Collected) {
    let url = exec_url(d, id, cmd, false, false).await;
    let s = Session::start(url, t, false, false);
    let (out, err) = (s.stdout.clone(), s.stderr.clone());
    (s.outcome().await, out, err)
}

/// A pod with one long-running busybox container; returns (pod config, pod id, container id).
async fn pod_with_sleeper(d: &mut TestDaemon, name: &str) -> (PodSandboxConfig, String, String) {
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config(name);
    let pod_id = d.run_pod(&pod).await;
    let config = TestDaemon::container_config("sleeper", &["sleep", "3600"]);
    let ctr = d.run_container(&pod_id, &pod, config).await;
    (pod, pod_id, ctr)
}

/// Deterministic bytes that no pattern in the pipeline could fake.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_over_spdy_and_websocket() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let (_pod, _pod_id, ctr) = pod_with_sleeper(&mut d, "exec").await;

    for t in ALL {
        let (outcome, out, err) =
            run(&mut d, &ctr, t, &["sh", "-c", "echo out; echo err >&2"]).await;
        assert_eq!(outcome, CommandOutcome::Success, "{t:?}");
        assert_eq!(
            (out.text(), err.text()),
            ("out\n".into(), "err\n".into()),
            "{t:?}"
        );

        let (outcome, _, _) = run(&mut d, &ctr, t, &["sh", "-c", "exit 3"]).await;
        assert_eq!(outcome, CommandOutcome::ExitCode(3), "{t:?}");
        let (outcome, _, _) = run(&mut d, &ctr, t, &["sh", "-c", "kill -9 $$"]).await;
        assert_eq!(outcome, CommandOutcome::ExitCode(137), "{t:?}");

        // 10 MiB of stdout, every byte in place.
        let script = format!("yes 0123456789abcde | head -c {TEN_MIB}");
        let (outcome, out, _) = run(&mut d, &ctr, t, &["sh", "-c", &script]).await;
        assert_eq!(outcome, CommandOutcome::Success, "{t:?}");
        let got = out.bytes();
        assert_eq!(got.len(), TEN_MIB, "{t:?}");
        assert!(
            got.chunks(16)
                .all(|c| c == &b"0123456789abcde\n"[..c.len()]),
            "{t:?}: corrupted output"
        );
    }

    for t in STDIN_CLOSE {
        // 10 MiB through stdin and back out of `cat`.
        let url = exec_url(&mut d, &ctr, &["cat"], true, false).await;
        let mut s = Session::start(url, t, true, false);
        let data = noise(TEN_MIB);
        let mut stdin = s.stdin.take().unwrap();
        let input = data.clone();
        let feeder = tokio::spawn(async move {
            stdin.write_all(&input).await.unwrap();
        });
        let out = s.stdout.clone();
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");
        feeder.await.unwrap();
        assert!(
            out.bytes() == data,
            "{t:?}: cat gave back {} bytes, not the same",
            out.bytes().len()
        );

        // stdin closed mid-stream: the process sees EOF and goes on; its later output arrives.
        let url = exec_url(
            &mut d,
            &ctr,
            &["sh", "-c", "cat; echo after-eof"],
            true,
            false,
        )
        .await;
        let mut s = Session::start(url, t, true, false);
        s.write(b"part one\n").await;
        s.stdout.wait_for("part one\n").await;
        s.close_stdin();
        let out = s.stdout.clone();
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");
        assert_eq!(out.text(), "part one\nafter-eof\n", "{t:?}");

        // A terminal: the first size applies before the command runs...
        let url = exec_url(&mut d, &ctr, &["stty", "size"], true, true).await;
        let s = Session::start(url, t, true, true);
        s.resize
            .as_ref()
            .unwrap()
            .send(TerminalSize {
                width: 77,
                height: 33,
            })
            .await
            .unwrap();
        let out = s.stdout.clone();
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");
        assert_eq!(out.text(), "33 77\r\n", "{t:?}");

        // ...and a resize reaches a shell already running.
        let url = exec_url(&mut d, &ctr, &["sh"], true, true).await;
        let mut s = Session::start(url, t, true, true);
        s.resize
            .as_ref()
            .unwrap()
            .send(TerminalSize {
                width: 100,
                height: 40,
            })
            .await
            .unwrap();
        s.write(b"stty size\n").await;
        s.stdout.wait_for("40 100").await;
        s.resize
            .as_ref()
            .unwrap()
            .send(TerminalSize {
                width: 50,
                height: 20,
            })
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while !s.stdout.text().contains("20 50") {
            assert!(
                Instant::now() < deadline,
                "{t:?}: resize never seen: {:?}",
                s.stdout.text()
            );
            s.write(b"stty size\n").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.write(b"exit 0\n").await;
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");

        // A terminal exec whose client's stdin ends is hung up (SIGHUP): nothing is left
        // running for a client that went away.
        let url = exec_url(&mut d, &ctr, &["sleep", "1000"], true, true).await;
        let mut s = Session::start(url, t, true, true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.close_stdin();
        assert_eq!(s.outcome().await, CommandOutcome::ExitCode(129), "{t:?}");
    }

    // A URL works once.
    let url = exec_url(&mut d, &ctr, &["true"], false, false).await;
    let s = Session::start(url.clone(), Transport::Spdy, false, false);
    assert_eq!(s.outcome().await, CommandOutcome::Success);
    for t in ALL {
        let again = Session::start(url.clone(), t, false, false);
        let err = again.task.await.unwrap().unwrap_err();
        assert!(
            matches!(err, ClientError::UpgradeRefused { status: 404, .. }),
            "{t:?}: {err}"
        );
    }

    // A command that does not exist is a failure the client can show.
    let (outcome, _, _) = run(&mut d, &ctr, Transport::Spdy, &["/no/such/command"]).await;
    assert!(
        matches!(&outcome, CommandOutcome::Failure(m) if m.contains("/no/such/command")),
        "{outcome:?}"
    );

    // Nothing is left behind by all those execs once the pod is gone.
    d.remove_all_pods().await;
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_to_running_containers() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("attach");
    let pod_id = d.run_pod(&pod).await;

    for (i, t) in STDIN_CLOSE.into_iter().enumerate() {
        // stdin_once without a terminal: closing the attach's stdin closes the container's, and
        // what it prints afterwards still arrives.
        let script = "echo ready; while read l; do echo \"got $l\"; done; echo bye";
        let mut config =
            TestDaemon::container_config(&format!("reader-{i}"), &["sh", "-c", script]);
        config.stdin = true;
        config.stdin_once = true;
        let ctr = d.run_container(&pod_id, &pod, config).await;
        let url = attach_url(&mut d, &ctr, false).await;
        let mut s = Session::start(url, t, true, false);
        s.write(b"one\n").await;
        s.stdout.wait_for("got one\n").await;
        s.write(b"two\n").await;
        s.stdout.wait_for("got two\n").await;
        s.close_stdin();
        let (out, err) = (s.stdout.clone(), s.stderr.clone());
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");
        assert_eq!(
            out.text(),
            "got one\ngot two\nbye\n",
            "{t:?}: only output after the attach"
        );
        assert_eq!(err.text(), "", "{t:?}");
        let status = d.wait_exited(&ctr, WAIT).await;
        assert_eq!(status.exit_code, 0, "{t:?}");
    }

    // A terminal container: resizes reach it; the attach ends with the client's stdin and the
    // container goes on.
    let mut config = TestDaemon::container_config("shell", &["sh"]);
    config.stdin = true;
    config.tty = true;
    let ctr = d.run_container(&pod_id, &pod, config).await;
    for t in STDIN_CLOSE {
        let url = attach_url(&mut d, &ctr, true).await;
        let mut s = Session::start(url, t, true, true);
        s.resize
            .as_ref()
            .unwrap()
            .send(TerminalSize {
                width: 61,
                height: 17,
            })
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while !s.stdout.text().contains("17 61") {
            assert!(
                Instant::now() < deadline,
                "{t:?}: resize never seen: {:?}",
                s.stdout.text()
            );
            s.write(b"stty size\n").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.close_stdin();
        assert_eq!(s.outcome().await, CommandOutcome::Success, "{t:?}");
        assert_eq!(
            d.status(&ctr).await.state,
            ContainerState::ContainerRunning as i32,
            "{t:?}"
        );
    }

    // Only output: the attach lasts until the container exits.
    let config = TestDaemon::container_config(
        "ticker",
        &["sh", "-c", "sleep 1; echo tick; sleep 1; echo tock"],
    );
    let ctr = d.run_container(&pod_id, &pod, config).await;
    let url = d
        .client
        .runtime
        .attach(AttachRequest {
            container_id: ctr.clone(),
            stdin: false,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let s = Session::start(url, Transport::Spdy, false, false);
    let out = s.stdout.clone();
    assert_eq!(s.outcome().await, CommandOutcome::Success);
    assert!(out.text().ends_with("tock\n"), "{:?}", out.text());

    let err = d
        .client
        .runtime
        .attach(AttachRequest {
            container_id: ctr,
            stdin: false,
            tty: false,
            stdout: true,
            stderr: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
}

async fn attach_url(d: &mut TestDaemon, id: &str, tty: bool) -> String {
    d.client
        .runtime
        .attach(AttachRequest {
            container_id: id.into(),
            stdin: true,
            tty,
            stdout: true,
            stderr: !tty,
        })
        .await
        .unwrap_or_else(|e| panic!("Attach: {e}"))
        .into_inner()
        .url
}

const HTTP_PORT: u16 = 18080;
const CLOSED_PORT: u16 = 18099;
const PAGE: &str = "hello-from-the-pod";

async fn port_forward_url(d: &mut TestDaemon, pod_id: &str, ports: &[i32]) -> String {
    d.client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_id.into(),
            port: ports.to_vec(),
        })
        .await
        .unwrap_or_else(|e| panic!("PortForward: {e}"))
        .into_inner()
        .url
}

/// One HTTP/1.0 exchange over a forwarded connection, the request side half-closed after it
/// when `half_close`; returns the response (all of it, up to the pod's EOF, when `until_eof`).
async fn http_get<S>(conn: &mut S, half_close: bool, until_eof: bool) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    if half_close {
        conn.shutdown().await.unwrap();
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let n = tokio::time::timeout_at(deadline.into(), conn.read(&mut buf))
            .await
            .expect("no response")
            .unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if !until_eof && String::from_utf8_lossy(&response).contains(PAGE) {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn port_forward_into_the_pod_network() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(common::BUSYBOX).await;
    let pod = d.pod_config("portforward");
    let pod_id = d.run_pod(&pod).await;
    // Listening on the pod's own loopback: reachable only from inside its network namespace.
    let script = format!(
        "mkdir -p /tmp/www && echo {PAGE} > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:{HTTP_PORT} -h /tmp/www"
    );
    let config = TestDaemon::container_config("httpd", &["sh", "-c", &script]);
    d.run_container(&pod_id, &pod, config).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", HTTP_PORT)).is_err(),
        "something on the host's port"
    );
    wait_listening(&mut d, &pod_id).await;

    // SPDY, as kubectl and crictl speak it: several connections on one session.
    let url = port_forward_url(&mut d, &pod_id, &[]).await;
    let forwarder = PortForwarder::connect(&url).await.unwrap();
    for i in 0..3 {
        // The first keeps its side open: the pod closing ends it anyway.
        let mut conn = forwarder.open(HTTP_PORT).await.unwrap();
        let response = http_get(&mut conn.data, i > 0, true).await;
        assert!(
            response.starts_with("HTTP/1.") && response.contains(PAGE),
            "{response}"
        );
        assert_eq!(conn.error().await.unwrap(), None);
    }
    // Nothing listening: the error stream says so.
    let conn = forwarder.open(CLOSED_PORT).await.unwrap();
    let message = conn
        .error()
        .await
        .unwrap()
        .expect("an error for a closed port");
    assert!(
        message.contains(&format!("error forwarding port {CLOSED_PORT}")),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    forwarder.close().await;

    // SPDY tunnelled in WebSocket (crictl --transport websocket).
    let url = port_forward_url(&mut d, &pod_id, &[]).await;
    let forwarder = PortForwarder::connect_tunneled(&url).await.unwrap();
    let mut conn = forwarder.open(HTTP_PORT).await.unwrap();
    let response = http_get(&mut conn.data, true, true).await;
    assert!(response.contains(PAGE), "{response}");
    assert_eq!(conn.error().await.unwrap(), None);
    forwarder.close().await;

    // kubelet's WebSocket channels, ports named in the request.
    for protocol in [WsProtocol::V4, WsProtocol::V4Base64] {
        let url = port_forward_url(&mut d, &pod_id, &[HTTP_PORT as i32]).await;
        let mut pf = WsPortForward::connect(&url, protocol, 1).await.unwrap();
        assert_eq!(pf.ports[0].port, HTTP_PORT);
        let response = http_get(&mut pf.ports[0].data, false, false).await;
        assert!(response.contains(PAGE), "{protocol:?}: {response}");
        pf.close().await;
    }

    // A host-network pod forwards to the host's loopback (critest's "portforward in host
    // network"), here to an httpd the pod runs there.
    let host_port = 20000 + (std::process::id() % 20000) as u16;
    let mut host_pod = d.pod_config("portforward-hostnet");
    host_pod.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(NamespaceOption {
                network: NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let host_pod_id = d.run_pod(&host_pod).await;
    let script = format!(
        "mkdir -p /tmp/www && echo {PAGE} > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:{host_port} -h /tmp/www"
    );
    let config = TestDaemon::container_config("httpd-hostnet", &["sh", "-c", &script]);
    d.run_container(&host_pod_id, &host_pod, config).await;
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", host_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "httpd never listened on the host"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = port_forward_url(&mut d, &host_pod_id, &[]).await;
    let forwarder = PortForwarder::connect(&url).await.unwrap();
    let mut conn = forwarder.open(host_port).await.unwrap();
    let response = http_get(&mut conn.data, true, true).await;
    assert!(response.contains(PAGE), "{response}");
    forwarder.close().await;

    // Refusals: a bad port, an unknown pod, a stopped pod.
    let err = d
        .client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_id.clone(),
            port: vec![70000],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = d
        .client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: "feedface".into(),
            port: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    let err = d
        .client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_id,
            port: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
}

/// Waits until httpd listens, asking from inside the container.
async fn wait_listening(d: &mut TestDaemon, pod_id: &str) {
    let ctr = d
        .client
        .runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .into_iter()
        .find(|c| c.pod_sandbox_id == pod_id)
        .unwrap()
        .id;
    let deadline = Instant::now() + WAIT;
    loop {
        let probe = format!("echo | nc 127.0.0.1 {HTTP_PORT}");
        let resp = d
            .client
            .runtime
            .exec_sync(ExecSyncRequest {
                container_id: ctr.clone(),
                cmd: vec!["sh".into(), "-c".into(), probe],
                timeout: 5,
            })
            .await
            .unwrap()
            .into_inner();
        if resp.exit_code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "httpd never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec_sync(
    d: &mut TestDaemon,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<ExecSyncResponse, tonic::Status> {
    d.client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sync_and_request_checks() {
    longshore_testkit::require_root!();
    let opts = common::Options {
        extra_config: "[streaming]\ntoken_ttl = \"1s\"\n".into(),
        ..Default::default()
    };
    let mut d = TestDaemon::start_with(opts).await;
    let (pod, pod_id, ctr) = pod_with_sleeper(&mut d, "execsync").await;

    let resp = exec_sync(
        &mut d,
        &ctr,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            resp.stdout.as_slice(),
            resp.stderr.as_slice(),
            resp.exit_code
        ),
        (&b"out\n"[..], &b"err\n"[..], 3)
    );
    let resp = exec_sync(&mut d, &ctr, &["echo", "hello"], 10)
        .await
        .unwrap();
    assert_eq!(
        (resp.stdout.as_slice(), resp.exit_code),
        (&b"hello\n"[..], 0)
    );

    // critest's "execSync with timeout": DeadlineExceeded, and the process is gone.
    let err = exec_sync(&mut d, &ctr, &["sleep", "4321"], 1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    let resp = exec_sync(&mut d, &ctr, &["ps"], 10).await.unwrap();
    assert!(
        !String::from_utf8_lossy(&resp.stdout).contains("4321"),
        "{resp:?}"
    );

    // A background child holding stdout open does not hold the answer forever.
    let resp = tokio::time::timeout(
        WAIT,
        exec_sync(&mut d, &ctr, &["sh", "-c", "sleep 300 & echo started"], 0),
    )
    .await
    .expect("ExecSync waited on a background child")
    .unwrap();
    assert_eq!(
        (resp.stdout.as_slice(), resp.exit_code),
        (&b"started\n"[..], 0)
    );

    let err = exec_sync(&mut d, &ctr, &["/no/such/command"], 0)
        .await
        .unwrap_err();
    assert!(err.message().contains("/no/such/command"), "{err}");
    let err = exec_sync(&mut d, &ctr, &[], 0).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // Exec requests kubelet would refuse.
    let bad = |tty, stdin, stdout, stderr| ExecRequest {
        container_id: ctr.clone(),
        cmd: vec!["true".into()],
        tty,
        stdin,
        stdout,
        stderr,
    };
    for req in [bad(true, true, true, true), bad(false, false, false, false)] {
        let err = d.client.runtime.exec(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    }
    let err = d
        .client
        .runtime
        .exec(ExecRequest {
            cmd: vec![],
            ..bad(false, false, true, false)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // An expired URL is refused like an unknown one.
    let url = exec_url(&mut d, &ctr, &["true"], false, false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for t in [Transport::Spdy, Transport::WebSocket(WsProtocol::V5)] {
        let s = Session::start(url.clone(), t, false, false);
        let err = s.task.await.unwrap().unwrap_err();
        assert!(
            matches!(err, ClientError::UpgradeRefused { status: 404, .. }),
            "{t:?}: {err}"
        );
    }

    // Not running: no exec, no ExecSync.
    let config = TestDaemon::container_config("done", &["true"]);
    let done = d.run_container(&pod_id, &pod, config).await;
    d.wait_exited(&done, WAIT).await;
    let err = exec_sync(&mut d, &done, &["true"], 0).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    let err = d
        .client
        .runtime
        .exec(ExecRequest {
            container_id: done,
            ..bad(false, false, true, false)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
}

/// Figures, not checks: `cargo test --test streaming -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn streaming_figures() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let (_pod, _pod_id, ctr) = pod_with_sleeper(&mut d, "figures").await;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };

    let mut times = Vec::new();
    for _ in 0..20 {
        let begun = Instant::now();
        exec_sync(&mut d, &ctr, &["true"], 10).await.unwrap();
        times.push(begun.elapsed());
    }
    println!("ExecSync `true`: median {:?}", median(times));

    for t in [Transport::Spdy, Transport::WebSocket(WsProtocol::V5)] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let begun = Instant::now();
            let (outcome, _, _) = run(&mut d, &ctr, t, &["true"]).await;
            assert_eq!(outcome, CommandOutcome::Success);
            times.push(begun.elapsed());
        }
        println!(
            "{t:?} exec `true` (Exec RPC, connect, run, status): median {:?}",
            median(times)
        );

        let size = 256 << 20;
        let script = format!("head -c {size} /dev/zero");
        let begun = Instant::now();
        let (outcome, out, _) = run(&mut d, &ctr, t, &["sh", "-c", &script]).await;
        let elapsed = begun.elapsed();
        assert_eq!(
            (outcome, out.bytes().len()),
            (CommandOutcome::Success, size)
        );
        let mib_s = (size >> 20) as f64 / elapsed.as_secs_f64();
        println!("{t:?} exec stdout 256 MiB: {elapsed:?} ({mib_s:.0} MiB/s)");
    }
}
