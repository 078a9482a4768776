//! End-to-end tests: the real server, a backend running real host processes and a real TCP
//! echo server, driven by the crate's client over SPDY and over WebSocket.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::Duration;

use common::{echo_server, sizes, start_server};
use longshore_streaming::client::{
    CommandOutcome, PortForwarder, RemoteCommandIo, Transport, WsPortForward, WsProtocol,
    run_remote_command,
};
use longshore_streaming::{
    AttachRequest, ClientError, ExecRequest, PortForwardRequest, StreamingConfig, StreamingServer,
    TerminalSize,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

const TRANSPORTS: &[Transport] = &[Transport::Spdy, Transport::WebSocket(WsProtocol::V5)];

/// An exec request; the client must then open exactly these streams (the server waits for
/// them, as kubelet does).
fn exec_req(cmd: &[&str], stdin: bool, stderr: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr,
    }
}

/// A writer for the client and a task collecting what it receives.
fn sink() -> (DuplexStream, JoinHandle<Vec<u8>>) {
    let (w, mut r) = tokio::io::duplex(64 * 1024);
    let collect = tokio::spawn(async move {
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.expect("collect");
        out
    });
    (w, collect)
}

async fn exec_output(
    server: &StreamingServer,
    transport: Transport,
    cmd: &[&str],
) -> (CommandOutcome, Vec<u8>, Vec<u8>) {
    let url = server.exec_url(exec_req(cmd, false, true, false)).unwrap();
    let (out, out_task) = sink();
    let (err, err_task) = sink();
    let io = RemoteCommandIo {
        stdout: Some(Box::new(out)),
        stderr: Some(Box::new(err)),
        ..Default::default()
    };
    let outcome = run_remote_command(&url, transport, io).await.unwrap();
    (outcome, out_task.await.unwrap(), err_task.await.unwrap())
}

#[tokio::test]
async fn exit_codes_and_output_come_back() {
    let server = start_server(StreamingConfig::default()).await;
    let all = [
        Transport::Spdy,
        Transport::WebSocket(WsProtocol::V5),
        Transport::WebSocket(WsProtocol::V4),
        Transport::WebSocket(WsProtocol::V4Base64),
    ];
    for transport in all {
        let (outcome, out, err) = exec_output(
            &server,
            transport,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        )
        .await;
        assert_eq!(outcome, CommandOutcome::ExitCode(3), "{transport:?}");
        assert_eq!(out, b"out\n", "{transport:?}");
        assert_eq!(err, b"err\n", "{transport:?}");
        let (outcome, _, _) = exec_output(&server, transport, &["true"]).await;
        assert_eq!(outcome, CommandOutcome::Success, "{transport:?}");
    }
    // channel.k8s.io reports failures as text, not exit codes.
    let (outcome, _, _) = exec_output(
        &server,
        Transport::WebSocket(WsProtocol::V1),
        &["sh", "-c", "exit 3"],
    )
    .await;
    assert_eq!(
        outcome,
        CommandOutcome::Failure("command terminated with non-zero exit code: exit status 3".into())
    );
}

#[tokio::test]
async fn backend_errors_become_internal_error_status() {
    let server = start_server(StreamingConfig::default()).await;
    for transport in TRANSPORTS {
        let (outcome, _, _) =
            exec_output(&server, *transport, &["/nonexistent/binary-for-test"]).await;
        match outcome {
            CommandOutcome::Failure(msg) => assert!(
                msg.starts_with("Internal error occurred: error executing command in container:"),
                "{msg}"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn ten_mib_of_stdout_arrives_intact() {
    let server = start_server(StreamingConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload");
    let payload: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &payload).unwrap();
    let want = Sha256::digest(&payload);
    for transport in TRANSPORTS {
        let url = server
            .exec_url(exec_req(
                &["cat", path.to_str().unwrap()],
                false,
                false,
                false,
            ))
            .unwrap();
        let (out, mut r) = tokio::io::duplex(64 * 1024);
        let hasher = tokio::spawn(async move {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n_total = 0usize;
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                n_total += n;
                h.update(&buf[..n]);
            }
            (n_total, h.finalize())
        });
        let io = RemoteCommandIo {
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let outcome = run_remote_command(&url, *transport, io).await.unwrap();
        let (n, got) = hasher.await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{transport:?}: 10 MiB stdout in {secs:.3} s ({:.0} MiB/s)",
            10.0 / secs
        );
        assert_eq!(outcome, CommandOutcome::Success);
        assert_eq!(n, payload.len(), "{transport:?}");
        assert_eq!(got, want, "{transport:?}");
    }
}

#[tokio::test]
async fn closing_stdin_mid_stream_ends_cat() {
    let server = start_server(StreamingConfig::default()).await;
    for transport in TRANSPORTS {
        let url = server
            .exec_url(exec_req(&["cat"], true, false, false))
            .unwrap();
        let (mut stdin_w, stdin_r) = tokio::io::duplex(1024);
        let (out, mut out_r) = tokio::io::duplex(1024);
        let io = RemoteCommandIo {
            stdin: Some(Box::new(stdin_r)),
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        let run = tokio::spawn(async move { run_remote_command(&url, *transport, io).await });
        stdin_w.write_all(b"first part\n").await.unwrap();
        let mut echoed = vec![0u8; 11];
        out_r.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, b"first part\n");
        // cat is still running; closing stdin must end it.
        drop(stdin_w);
        let outcome = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("cat did not finish after stdin closed")
            .unwrap()
            .unwrap();
        assert_eq!(outcome, CommandOutcome::Success, "{transport:?}");
        let mut rest = Vec::new();
        out_r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}

#[tokio::test]
async fn terminal_resize_reaches_the_process() {
    let server = start_server(StreamingConfig::default()).await;
    for transport in TRANSPORTS {
        let cmd = ["sh", "-c", "while read x; do stty size; done"];
        let url = server.exec_url(exec_req(&cmd, true, false, true)).unwrap();
        let (mut stdin_w, stdin_r) = tokio::io::duplex(1024);
        let (out, mut out_r) = tokio::io::duplex(64 * 1024);
        let (size_tx, size_rx) = sizes();
        let io = RemoteCommandIo {
            stdin: Some(Box::new(stdin_r)),
            stdout: Some(Box::new(out)),
            tty: true,
            resize: Some(size_rx),
            ..Default::default()
        };
        let run = tokio::spawn(async move { run_remote_command(&url, *transport, io).await });
        size_tx
            .send(TerminalSize {
                width: 77,
                height: 33,
            })
            .await
            .unwrap();
        // Ask for the size until the resize has been applied (the two streams race).
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..100 {
            stdin_w.write_all(b"\n").await.unwrap();
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), out_r.read(&mut buf)).await
            {
                seen.extend_from_slice(&buf[..n]);
            }
            if String::from_utf8_lossy(&seen).contains("33 77") {
                break;
            }
        }
        assert!(
            String::from_utf8_lossy(&seen).contains("33 77"),
            "{transport:?}: {seen:?}"
        );
        // ^D at the start of a line is EOF for `read`: the loop and the shell end.
        stdin_w.write_all(b"\x04").await.unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.unwrap(), CommandOutcome::Success, "{transport:?}");
    }
}

#[tokio::test]
async fn attach_streams_the_main_process() {
    let server = start_server(StreamingConfig::default()).await;
    for transport in TRANSPORTS {
        let req = AttachRequest {
            container_id: "cat-container".into(),
            tty: false,
            stdin: true,
            stdout: true,
            stderr: false,
        };
        let url = server.attach_url(req).unwrap();
        let (out, out_task) = sink();
        let io = RemoteCommandIo {
            stdin: Some(Box::new(&b"attached\n"[..])),
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        let outcome = run_remote_command(&url, *transport, io).await.unwrap();
        assert_eq!(outcome, CommandOutcome::Success);
        assert_eq!(out_task.await.unwrap(), b"attached\n");
    }
    // An unknown container is an internal error, reported on the error stream.
    let req = AttachRequest {
        container_id: "missing".into(),
        tty: false,
        stdin: false,
        stdout: true,
        stderr: false,
    };
    let url = server.attach_url(req).unwrap();
    let (out, _t) = sink();
    let io = RemoteCommandIo {
        stdout: Some(Box::new(out)),
        ..Default::default()
    };
    match run_remote_command(&url, Transport::Spdy, io).await.unwrap() {
        CommandOutcome::Failure(msg) => {
            assert!(msg.contains("container missing not found"), "{msg}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn assert_404(result: Result<CommandOutcome, ClientError>) {
    match result {
        Err(ClientError::UpgradeRefused { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn reused_and_expired_tokens_get_404() {
    let config = StreamingConfig {
        token_ttl: Duration::from_millis(300),
        ..Default::default()
    };
    let server = start_server(config).await;
    for transport in TRANSPORTS {
        let url = server
            .exec_url(exec_req(&["true"], false, false, false))
            .unwrap();
        let (out, _t) = sink();
        let io = RemoteCommandIo {
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        assert_eq!(
            run_remote_command(&url, *transport, io).await.unwrap(),
            CommandOutcome::Success
        );
        let (out, _t) = sink();
        let io = RemoteCommandIo {
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        assert_404(run_remote_command(&url, *transport, io).await);

        let url = server
            .exec_url(exec_req(&["true"], false, false, false))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (out, _t) = sink();
        let io = RemoteCommandIo {
            stdout: Some(Box::new(out)),
            ..Default::default()
        };
        assert_404(run_remote_command(&url, *transport, io).await);
    }
    // A token of the wrong kind is consumed and refused too.
    let url = server
        .port_forward_url(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            ports: vec![],
        })
        .unwrap()
        .replace("/portforward/", "/exec/");
    let (out, _t) = sink();
    let io = RemoteCommandIo {
        stdout: Some(Box::new(out)),
        ..Default::default()
    };
    assert_404(run_remote_command(&url, Transport::Spdy, io).await);
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) >> 13) as u8)
        .collect()
}

/// Writes `data` into `conn` while reading the echo back; returns what came back.
async fn echo_through<S>(conn: S, data: Vec<u8>, half_close: bool) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let len = data.len();
    let (mut r, mut w) = tokio::io::split(conn);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        if half_close {
            w.shutdown().await.unwrap();
        }
        w
    });
    let mut back = Vec::with_capacity(len);
    if half_close {
        r.read_to_end(&mut back).await.unwrap();
    } else {
        back.resize(len, 0);
        r.read_exact(&mut back).await.unwrap();
    }
    drop(writer.await.unwrap());
    back
}

#[tokio::test]
async fn port_forward_echoes_one_mib_over_spdy() {
    let server = start_server(StreamingConfig::default()).await;
    let port = echo_server().await;
    for tunneled in [false, true] {
        let url = server
            .port_forward_url(PortForwardRequest {
                pod_sandbox_id: "pod".into(),
                ports: vec![],
            })
            .unwrap();
        let pf = if tunneled {
            PortForwarder::connect_tunneled(&url).await.unwrap()
        } else {
            PortForwarder::connect(&url).await.unwrap()
        };
        // Two forwarded connections on one session, concurrently.
        let (a, b) = tokio::join!(pf.open(port), pf.open(port));
        let (a, b) = (a.unwrap(), b.unwrap());
        let (da, db) = (pattern(1 << 20, 2654435761), pattern(1 << 20, 40503));
        let (ea, eb) = (da.clone(), db.clone());
        let started = std::time::Instant::now();
        let (back_a, back_b) = tokio::join!(
            echo_through(a.data, da, true),
            echo_through(b.data, db, true)
        );
        println!(
            "tunneled={tunneled}: 2x1 MiB echoed in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(Sha256::digest(&back_a), Sha256::digest(&ea));
        assert_eq!(Sha256::digest(&back_b), Sha256::digest(&eb));
        pf.close().await;
    }
}

#[tokio::test]
async fn port_forward_reports_refused_connections() {
    let server = start_server(StreamingConfig::default()).await;
    // A port nobody listens on: bind, learn the port, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = server
        .port_forward_url(PortForwardRequest {
            pod_sandbox_id: "pod".into(),
            ports: vec![],
        })
        .unwrap();
    let pf = PortForwarder::connect(&url).await.unwrap();
    let conn = pf.open(closed).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), conn.error())
        .await
        .unwrap()
        .unwrap()
        .expect("an error message");
    let json: serde_json::Value = serde_json::from_str(message.trim_end()).unwrap();
    assert_eq!(json["closeConnection"], true);
    let text = json["message"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("error forwarding port {closed} to pod pod")),
        "{text}"
    );
    pf.close().await;
}

#[tokio::test]
async fn port_forward_echoes_one_mib_over_websocket_channels() {
    let server = start_server(StreamingConfig::default()).await;
    let (p1, p2) = (echo_server().await, echo_server().await);
    for protocol in [WsProtocol::V4, WsProtocol::V4Base64] {
        let url = server
            .port_forward_url(PortForwardRequest {
                pod_sandbox_id: "pod".into(),
                ports: vec![p1, p2],
            })
            .unwrap();
        let mut pf = WsPortForward::connect(&url, protocol, 2).await.unwrap();
        assert_eq!(
            pf.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
            vec![p1, p2]
        );
        let second = pf.ports.pop().unwrap();
        let first = pf.ports.pop().unwrap();
        let (d1, d2) = (pattern(1 << 20, 7919), pattern(1 << 20, 104729));
        let (e1, e2) = (d1.clone(), d2.clone());
        let (b1, b2) = tokio::join!(
            echo_through(first.data, d1, false),
            echo_through(second.data, d2, false)
        );
        assert_eq!(Sha256::digest(&b1), Sha256::digest(&e1), "{protocol:?}");
        assert_eq!(Sha256::digest(&b2), Sha256::digest(&e2), "{protocol:?}");
        pf.close().await;
    }
}

/// Sends a raw HTTP request and returns the response head.
async fn raw_request(server: &StreamingServer, path: &str, headers: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let req = format!("POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_string()
}

#[tokio::test]
async fn spdy_negotiation_failures_are_reported_like_kubelet() {
    let server = start_server(StreamingConfig::default()).await;
    let upgrade = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    let url = server
        .exec_url(exec_req(&["true"], false, false, false))
        .unwrap();
    let head = raw_request(&server, &path_of(&url), upgrade).await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.contains("X-Stream-Protocol-Version does not exist"),
        "{head}"
    );

    let url = server
        .exec_url(exec_req(&["true"], false, false, false))
        .unwrap();
    let headers = format!("{upgrade}X-Stream-Protocol-Version: v9.channel.k8s.io\r\n");
    let head = raw_request(&server, &path_of(&url), &headers).await;
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert!(
        head.contains("X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"),
        "{head}"
    );

    let url = server
        .exec_url(exec_req(&["true"], false, false, false))
        .unwrap();
    let head = raw_request(
        &server,
        &path_of(&url),
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("missing upgrade headers"), "{head}");

    let url = server
        .exec_url(exec_req(&["true"], false, false, false))
        .unwrap();
    let headers = format!("{upgrade}X-Stream-Protocol-Version: v9, v4.channel.k8s.io\r\n");
    let head = raw_request(&server, &path_of(&url), &headers).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"),
        "{head}"
    );
    assert!(head.contains("Upgrade: SPDY/3.1\r\n"), "{head}");
}
