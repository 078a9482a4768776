//! SPDY/3 frames and their wire format.
//!
//! Control frame: `1 | version(15) | type(16) | flags(8) | length(24) | payload`.
//! Data frame:    `0 | stream-id(31) | flags(8) | length(24) | payload`.
//! Header blocks in SYN_STREAM, SYN_REPLY and HEADERS are zlib-compressed (see `compression`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::compression::{HeaderCompressor, HeaderDecompressor};
use crate::error::FrameError;
use crate::headers::{HeaderLimits, Headers};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// Size of the fixed frame header.
const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a 24-bit length can describe.
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;
/// Mask of the 31-bit stream id.
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// Control frame type numbers.
pub mod frame_type {
    /// SYN_STREAM opens a stream.
    pub const SYN_STREAM: u16 = 1;
    /// SYN_REPLY accepts a stream.
    pub const SYN_REPLY: u16 = 2;
    /// RST_STREAM aborts a stream.
    pub const RST_STREAM: u16 = 3;
    /// SETTINGS carries connection parameters.
    pub const SETTINGS: u16 = 4;
    /// PING asks for an echo.
    pub const PING: u16 = 6;
    /// GOAWAY ends the connection.
    pub const GOAWAY: u16 = 7;
    /// HEADERS adds headers to a stream.
    pub const HEADERS: u16 = 8;
    /// WINDOW_UPDATE grows a flow-control window.
    pub const WINDOW_UPDATE: u16 = 9;
}

/// FLAG_FIN on control and data frames: the sender is done sending on the stream.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver may not send on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// RST_STREAM status codes.
pub mod rst_status {
    /// Generic protocol error.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// The stream is not active.
    pub const INVALID_STREAM: u32 = 2;
    /// The stream was refused before any processing.
    pub const REFUSED_STREAM: u32 = 3;
    /// The endpoint is no longer interested in the stream (spdystream's Reset).
    pub const CANCEL: u32 = 5;
    /// The peer overran its flow-control window.
    pub const FLOW_CONTROL_ERROR: u32 = 7;
}

/// SETTINGS id of the initial per-stream window size.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// FLAG_SETTINGS_PERSIST_VALUE (1) or FLAG_SETTINGS_PERSISTED (2), usually 0.
    pub flags: u8,
    /// The 24-bit setting id.
    pub id: u32,
    /// Its value.
    pub value: u32,
}

/// A decoded SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// Odd for client-initiated, even for server-initiated streams.
        stream_id: u32,
        /// Parent stream, 0 for none.
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        /// Credential slot, 0.
        slot: u8,
        /// FLAG_FIN / FLAG_UNIDIRECTIONAL.
        flags: u8,
        /// The stream's headers.
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        /// The accepted stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// Reply headers (kubelet sends none).
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream {
        /// The aborted stream.
        stream_id: u32,
        /// One of [`rst_status`].
        status: u32,
    },
    /// Connection settings.
    Settings {
        /// FLAG_SETTINGS_CLEAR_SETTINGS (1) or 0.
        flags: u8,
        /// The entries.
        entries: Vec<Setting>,
    },
    /// Ping or its echo.
    Ping {
        /// Odd from clients, even from servers.
        id: u32,
    },
    /// The sender will accept no new streams.
    GoAway {
        /// Highest peer stream id the sender processed.
        last_good_stream_id: u32,
        /// 0 OK, 1 protocol error, 2 internal error.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// The headers.
        headers: Headers,
    },
    /// Grows a send window (stream 0: the SPDY/3.1 session window).
    WindowUpdate {
        /// The stream, or 0 for the session.
        stream_id: u32,
        /// Bytes to add.
        delta: u32,
    },
    /// Stream payload.
    Data {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// The bytes.
        data: Bytes,
    },
}

impl Frame {
    /// Bytes this frame adds to the outgoing queue (payload of DATA, small constant otherwise).
    pub(crate) fn queued_len(&self) -> usize {
        match self {
            Frame::Data { data, .. } => data.len() + FRAME_HEADER_LEN,
            _ => FRAME_HEADER_LEN,
        }
    }
}

/// Encodes frames, compressing header blocks with the connection's sending context.
pub struct FrameEncoder {
    compressor: HeaderCompressor,
    block: BytesMut,
    compressed: Vec<u8>,
}

impl FrameEncoder {
    /// A new encoder with a fresh compression context.
    pub fn new() -> Result<Self, FrameError> {
        Ok(FrameEncoder {
            compressor: HeaderCompressor::new()?,
            block: BytesMut::new(),
            compressed: Vec::new(),
        })
    }

    /// Appends the wire form of `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                check_stream_id(*stream_id, frame_type::SYN_STREAM)?;
                self.compress(headers)?;
                let len = 10 + self.compressed.len();
                put_control_header(out, frame_type::SYN_STREAM, *flags, len)?;
                out.put_u32(stream_id & STREAM_ID_MASK);
                out.put_u32(associated_to & STREAM_ID_MASK);
                out.put_u8((priority & 0x07) << 5);
                out.put_u8(*slot);
                out.put_slice(&self.compressed);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                self.encode_stream_headers(
                    frame_type::SYN_REPLY,
                    *stream_id,
                    *flags,
                    headers,
                    out,
                )?;
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                self.encode_stream_headers(frame_type::HEADERS, *stream_id, *flags, headers, out)?;
            }
            Frame::RstStream { stream_id, status } => {
                check_stream_id(*stream_id, frame_type::RST_STREAM)?;
                put_control_header(out, frame_type::RST_STREAM, 0, 8)?;
                out.put_u32(stream_id & STREAM_ID_MASK);
                out.put_u32(*status);
            }
            Frame::Settings { flags, entries } => {
                put_control_header(out, frame_type::SETTINGS, *flags, 4 + entries.len() * 8)?;
                out.put_u32(entries.len() as u32);
                for e in entries {
                    out.put_u32((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff));
                    out.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                put_control_header(out, frame_type::PING, 0, 4)?;
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                put_control_header(out, frame_type::GOAWAY, 0, 8)?;
                out.put_u32(last_good_stream_id & STREAM_ID_MASK);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                put_control_header(out, frame_type::WINDOW_UPDATE, 0, 8)?;
                out.put_u32(stream_id & STREAM_ID_MASK);
                out.put_u32(delta & STREAM_ID_MASK);
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                check_stream_id(*stream_id, 0)?;
                if data.len() > MAX_FRAME_PAYLOAD {
                    return Err(FrameError::DataTooLarge(data.len()));
                }
                out.reserve(FRAME_HEADER_LEN + data.len());
                out.put_u32(stream_id & STREAM_ID_MASK);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.put_slice(data);
            }
        }
        Ok(())
    }

    fn encode_stream_headers(
        &mut self,
        kind: u16,
        stream_id: u32,
        flags: u8,
        headers: &Headers,
        out: &mut BytesMut,
    ) -> Result<(), FrameError> {
        check_stream_id(stream_id, kind)?;
        self.compress(headers)?;
        put_control_header(out, kind, flags, 4 + self.compressed.len())?;
        out.put_u32(stream_id & STREAM_ID_MASK);
        out.put_slice(&self.compressed);
        Ok(())
    }

    fn compress(&mut self, headers: &Headers) -> Result<(), FrameError> {
        self.block.clear();
        headers.encode_block(&mut self.block);
        self.compressed.clear();
        self.compressor.compress(&self.block, &mut self.compressed)
    }
}

fn check_stream_id(stream_id: u32, kind: u16) -> Result<(), FrameError> {
    if stream_id & STREAM_ID_MASK == 0 {
        return Err(FrameError::ZeroStreamId(kind));
    }
    Ok(())
}

fn put_control_header(
    out: &mut BytesMut,
    kind: u16,
    flags: u8,
    len: usize,
) -> Result<(), FrameError> {
    if len > MAX_FRAME_PAYLOAD {
        return Err(FrameError::ControlFrameTooLarge(len as u32));
    }
    out.reserve(FRAME_HEADER_LEN + len);
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | len as u32);
    Ok(())
}

/// Decodes frames, decompressing header blocks with the connection's receiving context.
/// Implements [`tokio_util::codec::Decoder`]; unknown control frame types are skipped.
pub struct FrameDecoder {
    decompressor: HeaderDecompressor,
    max_control_payload: u32,
    limits: HeaderLimits,
}

impl FrameDecoder {
    /// A new decoder with a fresh decompression context.
    pub fn new() -> Self {
        FrameDecoder {
            decompressor: HeaderDecompressor::new(1 << 20),
            max_control_payload: 1 << 20,
            limits: HeaderLimits::default(),
        }
    }

    fn control_frame(
        &mut self,
        kind: u16,
        flags: u8,
        mut p: Bytes,
    ) -> Result<Option<Frame>, FrameError> {
        let length = p.len() as u32;
        let need = |min: u32| {
            if length < min {
                Err(FrameError::InvalidLength {
                    frame_type: kind,
                    length,
                })
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            frame_type::SYN_STREAM => {
                need(10)?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                let associated_to = p.get_u32() & STREAM_ID_MASK;
                let priority = p.get_u8() >> 5;
                let slot = p.get_u8();
                let headers = self.headers(&p)?;
                check_stream_id(stream_id, kind)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    flags,
                    headers,
                }
            }
            frame_type::SYN_REPLY | frame_type::HEADERS => {
                need(4)?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                let headers = self.headers(&p)?;
                check_stream_id(stream_id, kind)?;
                if kind == frame_type::SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            frame_type::RST_STREAM => {
                need(8)?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                check_stream_id(stream_id, kind)?;
                Frame::RstStream {
                    stream_id,
                    status: p.get_u32(),
                }
            }
            frame_type::SETTINGS => {
                need(4)?;
                let count = p.get_u32();
                if u64::from(count) * 8 > u64::from(length - 4) {
                    return Err(FrameError::InvalidLength {
                        frame_type: kind,
                        length,
                    });
                }
                let entries = (0..count)
                    .map(|_| {
                        let flag_id = p.get_u32();
                        Setting {
                            flags: (flag_id >> 24) as u8,
                            id: flag_id & 0x00ff_ffff,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            frame_type::PING => {
                need(4)?;
                Frame::Ping { id: p.get_u32() }
            }
            frame_type::GOAWAY => {
                need(4)?;
                let last_good_stream_id = p.get_u32() & STREAM_ID_MASK;
                // SPDY/2 GOAWAY has no status; accept it as OK.
                let status = if p.remaining() >= 4 { p.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            frame_type::WINDOW_UPDATE => {
                need(8)?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                Frame::WindowUpdate {
                    stream_id,
                    delta: p.get_u32() & STREAM_ID_MASK,
                }
            }
            other => {
                tracing::debug!(frame_type = other, "skipping unknown SPDY control frame");
                return Ok(None);
            }
        };
        Ok(Some(frame))
    }

    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, FrameError> {
        let block = self.decompressor.decompress(compressed)?;
        Headers::decode_block(&block, self.limits)
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl Decoder for FrameDecoder {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if src.len() < FRAME_HEADER_LEN {
                return Ok(None);
            }
            let first = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            let flags = src[4];
            let length = u32::from_be_bytes([0, src[5], src[6], src[7]]);
            let control = first & 0x8000_0000 != 0;
            if control {
                let version = ((first >> 16) & 0x7fff) as u16;
                if version != VERSION {
                    return Err(FrameError::UnsupportedVersion(version));
                }
                if length > self.max_control_payload {
                    return Err(FrameError::ControlFrameTooLarge(length));
                }
            }
            let total = FRAME_HEADER_LEN + length as usize;
            if src.len() < total {
                src.reserve(total - src.len());
                return Ok(None);
            }
            let mut raw = src.split_to(total).freeze();
            raw.advance(FRAME_HEADER_LEN);
            if !control {
                let stream_id = first & STREAM_ID_MASK;
                check_stream_id(stream_id, 0)?;
                return Ok(Some(Frame::Data {
                    stream_id,
                    flags,
                    data: raw,
                }));
            }
            let kind = (first & 0xffff) as u16;
            if let Some(frame) = self.control_frame(kind, flags, raw)? {
                return Ok(Some(frame));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(dec: &mut FrameDecoder, bytes: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            frames.push(f);
        }
        assert!(buf.is_empty(), "leftover bytes");
        frames
    }

    // Recorded from Go's framer (github.com/moby/spdystream/spdy v0.5.1, the one crictl and
    // client-go vendor): SYN_STREAM 1 {streamType: error}, SYN_STREAM 3 {streamType: stdout},
    // then SYN_REPLY 1 {} -- all three share one zlib stream.
    const GO_SYN_1: &str = "800300010000002a0000000100000000000078f9e3c6a7c2626060\
                            6004a7b392a2d4c45c6851c29a5a54945f04000000ffff";
    const GO_SYN_3: &str = "800300010000001900000003000000000000c22ac5565c92925f5a02000000ffff";
    const GO_REPLY_1: &str = "800300020000000e000000016260606000000000ffff";
    // DATA 3 FIN "hi", PING 1, RST 3 CANCEL, GOAWAY 3 OK, WINDOW_UPDATE 3 +4096,
    // SETTINGS {INITIAL_WINDOW_SIZE: 65536}.
    const GO_MISC: &str = "00000003010000026869800300060000000400000001800300030000000800000003\
                           000000058003000700000008000000030000000080030009000000080000000300001000\
                           800300040000000c000000010000000700010000";

    #[test]
    fn decodes_header_blocks_compressed_by_go() {
        let mut dec = FrameDecoder::new();
        let mut wire = hex(GO_SYN_1);
        wire.extend(hex(GO_SYN_3));
        wire.extend(hex(GO_REPLY_1));
        let frames = decode_all(&mut dec, &wire);
        assert_eq!(frames.len(), 3);
        match &frames[0] {
            Frame::SynStream {
                stream_id: 1,
                headers,
                priority: 0,
                flags: 0,
                ..
            } => {
                assert_eq!(headers.get("streamType"), Some("error"));
                assert_eq!(headers.iter().next(), Some(("streamtype", "error")));
            }
            other => panic!("unexpected {other:?}"),
        }
        match &frames[1] {
            Frame::SynStream {
                stream_id: 3,
                headers,
                ..
            } => {
                assert_eq!(headers.get("streamtype"), Some("stdout"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            frames[2],
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Headers::new()
            }
        );
    }

    #[test]
    fn decodes_go_fixed_frames() {
        let mut dec = FrameDecoder::new();
        let frames = decode_all(&mut dec, &hex(GO_MISC));
        assert_eq!(
            frames,
            vec![
                Frame::Data {
                    stream_id: 3,
                    flags: FLAG_FIN,
                    data: Bytes::from_static(b"hi")
                },
                Frame::Ping { id: 1 },
                Frame::RstStream {
                    stream_id: 3,
                    status: rst_status::CANCEL
                },
                Frame::GoAway {
                    last_good_stream_id: 3,
                    status: 0
                },
                Frame::WindowUpdate {
                    stream_id: 3,
                    delta: 4096
                },
                Frame::Settings {
                    flags: 0,
                    entries: vec![Setting {
                        flags: 0,
                        id: SETTINGS_INITIAL_WINDOW_SIZE,
                        value: 65536
                    }]
                },
            ]
        );
    }

    #[test]
    fn fixed_frames_encode_exactly_as_go() {
        let mut enc = FrameEncoder::new().unwrap();
        let mut out = BytesMut::new();
        for f in [
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi"),
            },
            Frame::Ping { id: 1 },
            Frame::RstStream {
                stream_id: 3,
                status: rst_status::CANCEL,
            },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 4096,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![Setting {
                    flags: 0,
                    id: SETTINGS_INITIAL_WINDOW_SIZE,
                    value: 65536,
                }],
            },
        ] {
            enc.encode(&f, &mut out).unwrap();
        }
        assert_eq!(out.to_vec(), hex(GO_MISC));
    }

    #[test]
    fn header_frames_round_trip_through_one_context() {
        let mut enc = FrameEncoder::new().unwrap();
        let mut dec = FrameDecoder::new();
        let mut h = Headers::new();
        h.set("streamType", "data")
            .set("port", "8080")
            .set("requestID", "0");
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 7,
                slot: 0,
                flags: FLAG_FIN,
                headers: h.clone(),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Headers::new(),
            },
            Frame::Headers {
                stream_id: 1,
                flags: FLAG_FIN,
                headers: h.clone(),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: h,
            },
        ];
        let mut out = BytesMut::new();
        for f in &frames {
            enc.encode(f, &mut out).unwrap();
        }
        // Feed byte by byte to exercise partial frames.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in out.iter() {
            buf.put_u8(*b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn hand_computed_syn_reply_without_compression_context_fails() {
        // A SYN_REPLY whose block is not a zlib stream must be rejected, not misparsed.
        let raw = hex("80030002000000080000000100000000");
        let mut buf = BytesMut::from(&raw[..]);
        assert!(FrameDecoder::new().decode(&mut buf).is_err());
    }

    #[test]
    fn rejects_wrong_version_and_zero_stream() {
        let mut buf = BytesMut::from(&hex("800200060000000400000001")[..]);
        assert!(matches!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::UnsupportedVersion(2))
        ));
        let mut buf = BytesMut::from(&hex("0000000000000000")[..]);
        assert!(matches!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::ZeroStreamId(0))
        ));
    }

    #[test]
    fn skips_unknown_control_frames() {
        // NOOP (type 5, SPDY/2) followed by PING 2.
        let mut buf = BytesMut::from(&hex("80030005000000008003000600000004" /* ping */)[..]);
        buf.put_u32(2);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf).unwrap(),
            Some(Frame::Ping { id: 2 })
        );
    }
}
