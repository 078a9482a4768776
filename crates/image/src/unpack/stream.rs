//! The byte streams of an unpack: compressed chunks from the network (digested and counted as
//! they are consumed) and the uncompressed tar (digested for the diff ID, bounded in size).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes};
use sha2::{Digest as _, Sha256};

/// Why a stream stopped on purpose, read back after the tar reader reports "some io error".
#[derive(Default)]
pub(crate) struct StopFlags {
    /// The uncompressed layer passed the size limit.
    pub too_large: AtomicBool,
    /// More compressed bytes arrived than the descriptor announced.
    pub oversize: AtomicBool,
}

/// Compressed bytes arriving from the download task through a bounded channel.
pub(crate) struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    hasher: Sha256,
    count: u64,
    expected: u64,
    flags: Arc<StopFlags>,
}

impl ChannelReader {
    pub(crate) fn new(
        rx: tokio::sync::mpsc::Receiver<Bytes>,
        expected: u64,
        flags: Arc<StopFlags>,
    ) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
            hasher: Sha256::new(),
            count: 0,
            expected,
            flags,
        }
    }

    /// Digest and byte count of everything read so far.
    pub(crate) fn finish(self) -> (Sha256, u64) {
        (self.hasher, self.count)
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.hasher.update(&buf[..n]);
        self.current.advance(n);
        self.count += n as u64;
        if self.count > self.expected {
            self.flags.oversize.store(true, Ordering::Relaxed);
            return Err(io::Error::other("layer is larger than its descriptor"));
        }
        Ok(n)
    }
}

/// The uncompressed tar stream: digested for the diff ID and cut off at `limit` bytes.
pub(crate) struct DiffReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
    flags: Arc<StopFlags>,
}

impl<R: Read> DiffReader<R> {
    pub(crate) fn new(inner: R, limit: u64, flags: Arc<StopFlags>) -> Self {
        DiffReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
            flags,
        }
    }

    pub(crate) fn finish(self) -> (Sha256, u64) {
        (self.hasher, self.count)
    }
}

impl<R: Read> Read for DiffReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            self.flags.too_large.store(true, Ordering::Relaxed);
            return Err(io::Error::other(
                "uncompressed layer exceeds the size limit",
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
