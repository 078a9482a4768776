//! Lets every gRPC client talk to a tonic server on a unix socket.
//!
//! gRPC's C core (Python `grpcio`, C++, Ruby, PHP) sends the socket's path, percent-encoded, as
//! the HTTP/2 `:authority` of every request, and grpc-java sends it as it is. The `h2` crate
//! under tonic checks `:authority` as RFC 9113 says and resets every such stream with
//! PROTOCOL_ERROR, so those clients cannot make a single call (hyperium/h2#487, still open).
//! containerd and CRI-O (grpc-go servers) accept them.
//!
//! [`AuthorityFix`] sits between the accepted socket and tonic: it reads the client's frames
//! until the first header block, and from there either passes every octet through (a valid
//! authority, as grpc-go sends) or rewrites every header block of the connection with the
//! authority made `localhost` ([`rewrite`]). What the server writes passes through untouched.

mod frame;
mod literal;
pub mod rewrite;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use rewrite::{Error, Rewriter};

/// How much is read from the socket at a time while frames are being looked at.
const READ_CHUNK: usize = 16 << 10;

/// A server-side connection whose client's `:authority` is made acceptable to h2.
pub struct AuthorityFix<S> {
    inner: S,
    rewriter: Rewriter,
    /// Octets from the client not yet looked at.
    input: BytesMut,
    /// Octets ready for the server to read.
    output: Vec<u8>,
    /// How much of `output` the server has read.
    taken: usize,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps a connection just accepted, before the client's preface.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::new(),
            input: BytesMut::new(),
            output: Vec::new(),
            taken: 0,
            eof: false,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// True when this connection's header blocks are being rewritten.
    pub fn rewriting(&self) -> bool {
        self.rewriter.rewriting()
    }

    fn hand_out(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let ready = &self.output[self.taken..];
        if ready.is_empty() {
            return false;
        }
        let n = ready.len().min(buf.remaining());
        buf.put_slice(&ready[..n]);
        self.taken += n;
        if self.taken == self.output.len() {
            self.output.clear();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.hand_out(buf) || this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.passing_through() && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The client went away mid-frame: h2 gets what there was, then the end.
                this.output.extend_from_slice(&this.input);
                this.input.clear();
                this.eof = true;
                continue;
            }
            this.input.extend_from_slice(read.filled());
            this.rewriter
                .feed(&mut this.input, &mut this.output)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<S>
{
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
