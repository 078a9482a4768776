//! Errors of the SPDY framing layer and of sessions.

use std::io;

/// A frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A control frame carried a version other than 3.
    #[error("unsupported SPDY version {0} (want 3)")]
    UnsupportedVersion(u16),
    /// A control frame is larger than the configured limit.
    #[error("control frame of {0} bytes exceeds the limit")]
    ControlFrameTooLarge(u32),
    /// A control frame's payload is shorter than its fixed fields.
    #[error("control frame type {frame_type} has invalid length {length}")]
    InvalidLength {
        /// The control frame type.
        frame_type: u16,
        /// The payload length it announced.
        length: u32,
    },
    /// A frame that needs a stream id carried zero.
    #[error("stream id zero is not allowed in frame type {0}")]
    ZeroStreamId(u16),
    /// The header block ended early.
    #[error("header block is truncated")]
    TruncatedHeaderBlock,
    /// A header block has more entries than allowed.
    #[error("header block has {0} entries, more than allowed")]
    TooManyHeaders(u32),
    /// A header name or value is longer than allowed.
    #[error("header field of {0} bytes is too long")]
    HeaderFieldTooLong(u32),
    /// A header name or value is not UTF-8.
    #[error("header name or value is not UTF-8")]
    HeaderNotUtf8,
    /// A header has an empty name.
    #[error("header with an empty name")]
    EmptyHeaderName,
    /// Bytes remain after the last header entry.
    #[error("{0} stray bytes after the header block")]
    TrailingHeaderBytes(usize),
    /// The decompressed header block is larger than allowed.
    #[error("decompressed header block exceeds {0} bytes")]
    HeaderBlockTooLarge(usize),
    /// zlib refused the compressed header block.
    #[error("header decompression failed: {0}")]
    Decompress(String),
    /// zlib failed to compress a header block.
    #[error("header compression failed: {0}")]
    Compress(String),
    /// A DATA frame payload exceeds 2^24-1 bytes.
    #[error("data frame of {0} bytes exceeds the 24-bit length")]
    DataTooLarge(usize),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A session-level operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection is closed or failed; no new streams can be opened.
    #[error("SPDY connection is closed")]
    Closed,
    /// The peer sent GOAWAY, so no new streams may be opened.
    #[error("peer sent GOAWAY")]
    GoneAway,
    /// The peer answered SYN_STREAM with RST_STREAM.
    #[error("peer reset stream {stream_id} with status {status}")]
    StreamRefused {
        /// Our stream id.
        stream_id: u32,
        /// The RST_STREAM status code.
        status: u32,
    },
    /// Stream ids are exhausted on this connection.
    #[error("no stream ids left on this connection")]
    StreamIdsExhausted,
}
