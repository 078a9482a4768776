//! exec/attach over SPDY: the client opens one stream per `streamType`; we wait for those the
//! request implies (as kubelet's `waitForStreams`), run, then close every stream and GOAWAY.

use std::time::Duration;

use longshore_spdy::{Incoming, Role, Session, Stream, StreamReader, StreamWriter};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Channels, Command, run};
use crate::backend::StreamBackend;
use crate::protocol::{Version, stream_type};
use crate::requests::StreamOptions;

#[derive(Default)]
struct Collected {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Serves one upgraded SPDY connection for exec or attach.
pub(crate) async fn serve<T>(
    io: T,
    version: Version,
    opts: StreamOptions,
    creation_timeout: Duration,
    backend: &dyn StreamBackend,
    command: Command,
) where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (session, mut incoming) = Session::new(io, Role::Server);
    let expected = 1
        + usize::from(opts.stdin)
        + usize::from(opts.stdout)
        + usize::from(opts.stderr)
        + usize::from(opts.tty && version.resize());
    let collected =
        match tokio::time::timeout(creation_timeout, collect(&mut incoming, expected)).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::debug!("client went away before creating its streams");
                session.close().await;
                return;
            }
            Err(_) => {
                tracing::warn!("timed out waiting for client to create streams");
                session.close().await;
                return;
            }
        };
    drop(incoming);
    let (channels, keep) = split(collected, version);
    run(backend, &command, opts.tty, channels).await;
    // Dropping the halves we held sends FIN on the streams still open our way.
    drop(keep);
    session.close().await;
}

async fn collect(incoming: &mut Incoming, expected: usize) -> Option<Collected> {
    let mut c = Collected::default();
    let mut received = 0;
    while received < expected {
        let stream = incoming.next().await?;
        let kind = stream
            .headers()
            .get(stream_type::HEADER)
            .unwrap_or("")
            .to_string();
        let stream = stream.accept();
        let slot = match kind.as_str() {
            stream_type::ERROR => &mut c.error,
            stream_type::STDIN => &mut c.stdin,
            stream_type::STDOUT => &mut c.stdout,
            stream_type::STDERR => &mut c.stderr,
            stream_type::RESIZE => &mut c.resize,
            other => {
                tracing::debug!(stream_type = other, "unexpected stream type");
                continue;
            }
        };
        *slot = Some(stream);
        received += 1;
    }
    Some(c)
}

/// Halves kept open until the end: closing the write half of the stdin stream early would
/// make client-go close its stdin (it watches for that), and so on.
struct Kept {
    _readers: Vec<StreamReader>,
    _writers: Vec<StreamWriter>,
}

fn split(c: Collected, version: Version) -> (Channels, Kept) {
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let mut input = |s: Option<Stream>| {
        s.map(|s| {
            let (r, w) = s.into_split();
            writers.push(w);
            Box::new(r) as crate::backend::BoxReader
        })
    };
    let stdin = input(c.stdin);
    let resize = input(c.resize);
    let mut output = |s: Option<Stream>| {
        s.map(|s| {
            let (r, w) = s.into_split();
            readers.push(r);
            Box::new(w) as crate::backend::BoxWriter
        })
    };
    let stdout = output(c.stdout);
    let stderr = output(c.stderr);
    let error = output(c.error);
    let channels = Channels {
        stdin,
        stdout,
        stderr,
        resize,
        error,
        version,
    };
    (
        channels,
        Kept {
            _readers: readers,
            _writers: writers,
        },
    )
}
