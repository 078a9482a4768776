//! The writer task: encodes queued frames in order and writes them to the connection.

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::state::{Outbound, Shared};
use crate::frame::FrameEncoder;

/// Writes frames until `Outbound::Shutdown` or a write error.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut io: W) {
    if let Err(e) = run(&shared, &mut io).await {
        tracing::debug!(error = %e, "SPDY writer stopped");
    }
    shared.with(|st| {
        st.write_closed = true;
        st.out.clear();
        st.out_bytes = 0;
        st.wake_writers();
    });
    shared.writer_done.send_replace(true);
}

/// Runs one I/O step unless `close` gave up on the peer meanwhile.
async fn guarded(
    abort: &mut watch::Receiver<bool>,
    step: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    tokio::select! {
        r = step => r,
        _ = abort.wait_for(|a| *a) => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading; SPDY close gave up"))
        }
    }
}

async fn run<W: AsyncWrite + Unpin>(shared: &Shared, io: &mut W) -> io::Result<()> {
    let mut abort = shared.abort.subscribe();
    let mut encoder = FrameEncoder::new().map_err(io::Error::other)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let (batch, queued) = shared.with(|st| {
            let batch: Vec<Outbound> = st.out.drain(..).collect();
            (batch, st.out_bytes)
        });
        if batch.is_empty() {
            shared.writer_wake.notified().await;
            continue;
        }
        buf.clear();
        let mut shutdown = false;
        for item in &batch {
            match item {
                Outbound::Frame(frame) => {
                    encoder.encode(frame, &mut buf).map_err(io::Error::other)?
                }
                Outbound::Shutdown => shutdown = true,
            }
        }
        guarded(&mut abort, io.write_all(&buf)).await?;
        guarded(&mut abort, io.flush()).await?;
        shared.with(|st| {
            st.out_bytes = st.out_bytes.saturating_sub(queued);
            for w in st.queue_waiters.drain(..) {
                w.wake();
            }
        });
        if shutdown {
            guarded(&mut abort, io.shutdown()).await?;
            return Ok(());
        }
    }
}
