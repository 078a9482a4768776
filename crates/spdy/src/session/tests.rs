use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

use super::*;
use crate::frame::{FLAG_FIN, FrameDecoder, FrameEncoder};

fn pair() -> ((Session, Incoming), (Session, Incoming)) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    (Session::new(a, Role::Client), Session::new(b, Role::Server))
}

fn headers(kind: &str) -> Headers {
    let mut h = Headers::new();
    h.set("streamType", kind);
    h
}

#[tokio::test]
async fn open_accept_exchange_and_half_close() {
    let ((client, _ci), (_server, mut si)) = pair();
    let open = tokio::spawn(async move {
        let mut s = client.open_stream(headers("stdin")).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        back
    });
    let incoming = si.next().await.unwrap();
    assert_eq!(incoming.id(), 1);
    assert_eq!(incoming.headers().get("streamtype"), Some("stdin"));
    let mut s = incoming.accept();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    s.write_all(b"pong").await.unwrap();
    drop(s);
    assert_eq!(open.await.unwrap(), b"pong");
}

#[tokio::test]
async fn flow_controlled_peers_move_many_windows() {
    let ((client, _ci), (_server, mut si)) = pair();
    let size = 3 * 1024 * 1024 + 17;
    let sender = tokio::spawn(async move {
        let s = client.open_stream(headers("stdout")).await.unwrap();
        let (_r, mut w) = s.into_split();
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        client
    });
    let mut s = si.next().await.unwrap().accept();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), size);
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    let client = sender.await.unwrap();
    // Both ends announced SETTINGS, so the client kept the server's windows.
    assert!(client.shared.with(|st| st.peer_flow_control));
}

#[tokio::test]
async fn refused_stream_fails_open() {
    let ((client, _ci), (_server, mut si)) = pair();
    let open = tokio::spawn(async move { client.open_stream(headers("bogus")).await });
    si.next().await.unwrap().refuse();
    match open.await.unwrap() {
        Err(SessionError::StreamRefused {
            stream_id: 1,
            status: 3,
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn peer_reset_gives_eof_and_write_error() {
    let ((client, _ci), (_server, mut si)) = pair();
    let open = tokio::spawn(async move { client.open_stream(headers("data")).await.unwrap() });
    let mut server_side = si.next().await.unwrap().accept();
    let client_side = open.await.unwrap();
    client_side.reset();
    let mut buf = [0u8; 8];
    assert_eq!(server_side.read(&mut buf).await.unwrap(), 0);
    let err = loop {
        match server_side.write_all(b"late").await {
            Err(e) => break e,
            Ok(()) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn ping_round_trip() {
    let ((client, _ci), (server, _si)) = pair();
    client.ping().await.unwrap();
    server.ping().await.unwrap();
}

/// A raw peer that speaks frames directly, like Go's spdystream: it never sends SETTINGS or
/// WINDOW_UPDATE.
struct RawPeer {
    frames: FramedRead<ReadHalf<DuplexStream>, FrameDecoder>,
    write: WriteHalf<DuplexStream>,
    encoder: FrameEncoder,
}

impl RawPeer {
    fn new(io: DuplexStream) -> Self {
        let (r, w) = tokio::io::split(io);
        RawPeer {
            frames: FramedRead::new(r, FrameDecoder::new()),
            write: w,
            encoder: FrameEncoder::new().unwrap(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        self.encoder.encode(&frame, &mut buf).unwrap();
        self.write.write_all(&buf).await.unwrap();
    }

    async fn next(&mut self) -> Option<Frame> {
        self.frames.next().await.map(|f| f.unwrap())
    }

    /// Next frame that is not SETTINGS or WINDOW_UPDATE.
    async fn next_significant(&mut self) -> Option<Frame> {
        loop {
            match self.next().await? {
                Frame::Settings { .. } | Frame::WindowUpdate { .. } => continue,
                f => return Some(f),
            }
        }
    }
}

#[tokio::test]
async fn peer_without_flow_control_is_not_stalled() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (_server, mut si) = Session::new(b, Role::Server);
    let mut peer = RawPeer::new(a);
    peer.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: headers("stdout"),
    })
    .await;
    let s = si.next().await.unwrap().accept();
    let size = 1024 * 1024;
    let writer = tokio::spawn(async move {
        let (_r, mut w) = s.into_split();
        w.write_all(&vec![7u8; size]).await.unwrap();
        w.shutdown().await.unwrap();
    });
    assert_eq!(
        peer.next_significant().await,
        Some(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Headers::new()
        })
    );
    let mut total = 0;
    loop {
        match peer.next_significant().await.unwrap() {
            Frame::Data {
                stream_id: 1,
                flags,
                data,
            } => {
                total += data.len();
                assert!(data.len() <= 32 * 1024);
                if flags & FLAG_FIN != 0 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(total, size);
    writer.await.unwrap();
}

#[tokio::test]
async fn answers_peer_pings_and_rejects_bad_stream_ids() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (_server, _si) = Session::new(b, Role::Server);
    let mut peer = RawPeer::new(a);
    peer.send(Frame::Ping { id: 1 }).await;
    assert_eq!(peer.next_significant().await, Some(Frame::Ping { id: 1 }));
    // An even id from a client is a protocol error.
    peer.send(Frame::SynStream {
        stream_id: 2,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: Headers::new(),
    })
    .await;
    assert_eq!(
        peer.next_significant().await,
        Some(Frame::RstStream {
            stream_id: 2,
            status: rst_status::PROTOCOL_ERROR
        })
    );
}

#[tokio::test]
async fn data_before_accept_is_buffered_and_close_sends_goaway() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (server, mut si) = Session::new(b, Role::Server);
    let mut peer = RawPeer::new(a);
    peer.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: headers("stdin"),
    })
    .await;
    peer.send(Frame::Data {
        stream_id: 1,
        flags: FLAG_FIN,
        data: Bytes::from_static(b"early"),
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut s = si.next().await.unwrap().accept();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"early");
    drop(s);
    server.close().await;
    let mut rest = Vec::new();
    while let Some(f) = peer.next_significant().await {
        rest.push(f);
    }
    assert_eq!(
        rest,
        vec![
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Headers::new()
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new()
            },
            Frame::GoAway {
                last_good_stream_id: 1,
                status: 0
            },
        ]
    );
}

#[tokio::test]
async fn peer_eof_ends_streams_and_incoming() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (server, mut si) = Session::new(b, Role::Server);
    let mut peer = RawPeer::new(a);
    peer.send(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: headers("stdin"),
    })
    .await;
    let mut s = si.next().await.unwrap().accept();
    drop(peer);
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty());
    assert!(si.next().await.is_none());
    server.closed().await;
}

/// What client-go v0.36 (crictl 1.36's `exec -i`, SPDY) sent after the upgrade, recorded
/// through a TCP proxy: SYN_STREAM error/stdin/stdout/stderr, stdin data, stdin FIN, then
/// RST_STREAM(CANCEL) for the streams it tears down.
const CLIENT_GO_EXEC: &[u8] = include_bytes!("../testdata/client_go_exec.bin");

#[tokio::test]
async fn replays_a_recorded_client_go_exec() {
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let (_server, mut si) = Session::new(ours, Role::Server);
    // Drain what the server answers so its writer never blocks.
    let (mut peer_r, mut peer_w) = tokio::io::split(&mut peer);
    let drain = async {
        let mut sink = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_millis(300), peer_r.read_to_end(&mut sink)).await;
    };
    let feed = async {
        peer_w.write_all(CLIENT_GO_EXEC).await.unwrap();
    };
    let accept = async {
        let mut kinds = Vec::new();
        let mut stdin = None;
        for _ in 0..4 {
            let inc = si.next().await.unwrap();
            kinds.push((
                inc.id(),
                inc.headers().get("streamType").unwrap().to_string(),
            ));
            let s = inc.accept();
            if s.headers().get("streamtype") == Some("stdin") {
                stdin = Some(s);
            }
        }
        let mut data = Vec::new();
        stdin.unwrap().read_to_end(&mut data).await.unwrap();
        (kinds, data)
    };
    let (_, _, (kinds, data)) = tokio::join!(drain, feed, accept);
    assert_eq!(
        kinds,
        vec![
            (1, "error".to_string()),
            (3, "stdin".to_string()),
            (5, "stdout".to_string()),
            (7, "stderr".to_string())
        ]
    );
    assert_eq!(data, b"hello from client-go\n");
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_on_a_peer_that_does_not_read() {
    // A tiny pipe the peer never reads: the writer blocks until close gives up.
    let (_peer, ours) = tokio::io::duplex(1024);
    let (server, _si) = Session::new(ours, Role::Server);
    server.shared.with(|st| {
        st.push(Frame::Data {
            stream_id: 2,
            flags: 0,
            data: Bytes::from(vec![0u8; 64 * 1024]),
        })
    });
    tokio::time::timeout(Duration::from_secs(60), server.close())
        .await
        .expect("close returned");
    assert!(server.shared.with(|st| st.write_closed));
}
