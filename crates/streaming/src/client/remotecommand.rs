//! exec/attach from the client side, mirroring client-go's remotecommand v1-v5.

use std::collections::HashMap;

use futures::{SinkExt, StreamExt};
use longshore_spdy::{Headers, Session};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{Transport, WsProtocol, connect};
use crate::backend::{BoxReader, BoxWriter, TerminalSize};
use crate::error::ClientError;
use crate::protocol::{self, Version, stream_type};
use crate::remotecommand::websocket::channel;
use crate::ws::{Inbound, STREAM_CLOSE, channel_message, parse_message};

/// The client's side of a remote command. Present streams are requested from the server.
#[derive(Default)]
pub struct RemoteCommandIo {
    /// Sent to the process; at EOF the remote stdin is closed.
    pub stdin: Option<BoxReader>,
    /// Receives the process's stdout.
    pub stdout: Option<BoxWriter>,
    /// Receives the process's stderr (ignored with `tty`).
    pub stderr: Option<BoxWriter>,
    /// The command has a terminal.
    pub tty: bool,
    /// Terminal sizes to send (with `tty`).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// How the remote command ended, from the error stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Exit code 0 (or attach ended normally).
    Success,
    /// `NonZeroExitCode` with this code.
    ExitCode(u8),
    /// Any other failure, with the server's message.
    Failure(String),
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    causes: Vec<Cause>,
}

#[derive(Deserialize)]
struct Cause {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

/// client-go's `errorDecoderV4` (JSON) or `errorDecoderV2` (text).
fn decode_status(version: Version, message: &[u8]) -> Result<CommandOutcome, ClientError> {
    if message.is_empty() {
        return Ok(CommandOutcome::Success);
    }
    if !version.json_status() {
        let text = String::from_utf8_lossy(message).into_owned();
        return Ok(CommandOutcome::Failure(text));
    }
    let status: Status = serde_json::from_slice(message).map_err(|e| {
        ClientError::ErrorStream(format!("{e} in {:?}", String::from_utf8_lossy(message)))
    })?;
    match status.status.as_str() {
        "Success" => Ok(CommandOutcome::Success),
        "Failure" if status.reason == "NonZeroExitCode" => {
            let details = status
                .details
                .ok_or_else(|| ClientError::ErrorStream("details must be set".into()))?;
            let cause = details
                .causes
                .iter()
                .find(|c| c.reason == "ExitCode")
                .ok_or_else(|| ClientError::ErrorStream("no ExitCode cause given".into()))?;
            let code = cause.message.parse::<u8>().map_err(|_| {
                ClientError::ErrorStream(format!("invalid exit code value {:?}", cause.message))
            })?;
            Ok(CommandOutcome::ExitCode(code))
        }
        "Failure" => Ok(CommandOutcome::Failure(status.message)),
        _ => Err(ClientError::ErrorStream("unknown error".into())),
    }
}

/// Runs the remote command at `url` (from a CRI `Exec` or `Attach` response) and returns how it
/// ended once all output has arrived.
pub async fn run_remote_command(
    url: &str,
    transport: Transport,
    io: RemoteCommandIo,
) -> Result<CommandOutcome, ClientError> {
    match transport {
        Transport::Spdy => spdy(url, io).await,
        Transport::WebSocket(p) => websocket(url, p, io).await,
    }
}

const SPDY_PROTOCOLS: &[&str] = &[
    protocol::STREAM_PROTOCOL_V5,
    protocol::STREAM_PROTOCOL_V4,
    protocol::STREAM_PROTOCOL_V3,
    protocol::STREAM_PROTOCOL_V2,
    protocol::STREAM_PROTOCOL_V1,
];

async fn open(session: &Session, kind: &str) -> Result<longshore_spdy::Stream, ClientError> {
    let mut h = Headers::new();
    h.set(stream_type::HEADER, kind);
    Ok(session.open_stream(h).await?)
}

fn copy_task<R, W>(mut from: R, mut to: W) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from, &mut to).await;
        let _ = to.flush().await;
    })
}

fn resize_task<W>(mut rx: mpsc::Receiver<TerminalSize>, mut to: W) -> JoinHandle<()>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(size) = rx.recv().await {
            let mut line = serde_json::to_vec(&size).unwrap_or_default();
            line.push(b'\n');
            if to.write_all(&line).await.is_err() {
                return;
            }
        }
    })
}

async fn spdy(url: &str, io: RemoteCommandIo) -> Result<CommandOutcome, ClientError> {
    let (session, _incoming, chosen) = connect::spdy(url, SPDY_PROTOCOLS).await?;
    let version = Version::from_name(&chosen);
    let result = spdy_streams(&session, version, io).await;
    session.close().await;
    result
}

async fn spdy_streams(
    session: &Session,
    version: Version,
    io: RemoteCommandIo,
) -> Result<CommandOutcome, ClientError> {
    // Same order as client-go: error, stdin, stdout, stderr, resize.
    let error = open(session, stream_type::ERROR).await?;
    let mut tasks = Vec::new();
    if let Some(stdin) = io.stdin {
        let (_r, w) = open(session, stream_type::STDIN).await?.into_split();
        tasks.push(tokio::spawn(async move {
            let mut stdin = stdin;
            let mut w = w;
            let _ = tokio::io::copy(&mut stdin, &mut w).await;
            let _ = w.shutdown().await;
        }));
    }
    let mut outputs = Vec::new();
    if let Some(stdout) = io.stdout {
        let (r, _w) = open(session, stream_type::STDOUT).await?.into_split();
        outputs.push(copy_task(r, stdout));
    }
    if let (Some(stderr), false) = (io.stderr, io.tty) {
        let (r, _w) = open(session, stream_type::STDERR).await?.into_split();
        outputs.push(copy_task(r, stderr));
    }
    if io.tty && version.resize() {
        let (_r, w) = open(session, stream_type::RESIZE).await?.into_split();
        if let Some(rx) = io.resize {
            tasks.push(resize_task(rx, w));
        }
    }
    let (mut error_reader, _error_writer) = error.into_split();
    let status = tokio::spawn(async move {
        let mut message = Vec::new();
        error_reader
            .read_to_end(&mut message)
            .await
            .map(|_| message)
    });
    for t in outputs {
        let _ = t.await;
    }
    let message = status
        .await
        .map_err(|e| ClientError::Io(std::io::Error::other(e)))??;
    for t in tasks {
        t.abort();
    }
    decode_status(version, &message)
}

async fn websocket(
    url: &str,
    proto: WsProtocol,
    io: RemoteCommandIo,
) -> Result<CommandOutcome, ClientError> {
    let ws = connect::websocket(url, proto.name()).await?;
    let codec = proto.codec();
    let version = Version::from_name(proto.name());
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut tasks = Vec::new();
    if let Some(mut stdin) = io.stdin {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(channel_message(codec, channel::STDIN, &buf[..n]))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            if proto == WsProtocol::V5 {
                let _ = tx
                    .send(Message::binary(vec![STREAM_CLOSE, channel::STDIN]))
                    .await;
            }
        }));
    }
    if let (true, Some(mut sizes)) = (io.tty, io.resize) {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(size) = sizes.recv().await {
                let json = serde_json::to_vec(&size).unwrap_or_default();
                if tx
                    .send(channel_message(codec, channel::RESIZE, &json))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }));
    }
    let mut outputs: HashMap<u8, BoxWriter> = HashMap::new();
    if let Some(w) = io.stdout {
        outputs.insert(channel::STDOUT, w);
    }
    if let (Some(w), false) = (io.stderr, io.tty) {
        outputs.insert(channel::STDERR, w);
    }
    let mut message = Vec::new();
    let mut failure = None;
    while let Some(msg) = stream.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                failure = Some(ClientError::WebSocket(e.to_string()));
                break;
            }
        };
        match parse_message(codec, false, msg) {
            Ok(Inbound::Data(channel::ERROR, data)) => message.extend_from_slice(&data),
            Ok(Inbound::Data(ch, data)) => {
                if let Some(w) = outputs.get_mut(&ch)
                    && w.write_all(&data).await.is_err()
                {
                    outputs.remove(&ch);
                }
            }
            Ok(Inbound::End) => break,
            Ok(_) => {}
            Err(e) => {
                failure = Some(ClientError::WebSocket(e));
                break;
            }
        }
    }
    for w in outputs.values_mut() {
        let _ = w.flush().await;
    }
    for t in tasks {
        t.abort();
    }
    drop(tx);
    let _ = writer.await;
    if let Some(e) = failure {
        return Err(e);
    }
    decode_status(version, &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status as ServerStatus;

    #[test]
    fn decodes_what_the_server_writes() {
        let v4 = Version::V4;
        assert_eq!(
            decode_status(v4, &ServerStatus::success().to_json()).unwrap(),
            CommandOutcome::Success
        );
        assert_eq!(
            decode_status(v4, &ServerStatus::exit_code(3).to_json()).unwrap(),
            CommandOutcome::ExitCode(3)
        );
        assert_eq!(
            decode_status(v4, &ServerStatus::internal_error("x").to_json()).unwrap(),
            CommandOutcome::Failure("Internal error occurred: x".into())
        );
        assert_eq!(decode_status(v4, b"").unwrap(), CommandOutcome::Success);
        assert!(decode_status(v4, b"{not json").is_err());
        assert_eq!(
            decode_status(Version::V2, b"boom").unwrap(),
            CommandOutcome::Failure("boom".into())
        );
    }
}
