//! The client-to-server half of an HTTP/2 connection, read frame by frame until its first
//! header block tells whether the client sends a valid `:authority`.
//!
//! - A valid or absent authority (grpc-go sends `localhost`): every octet from there on passes
//!   through untouched and unparsed.
//! - One h2 would refuse (gRPC's C core sends the socket path, `%2Frun%2Flongshore%2F...`;
//!   grpc-java sends `/run/...`): every header block of the connection is decoded with the
//!   client's HPACK context and written again with literals, the authority made `localhost`.
//!   Other frames pass through as they come.

use bytes::{Buf, BytesMut};
use loona_hpack::Decoder;

use crate::frame::{self, FrameHeader};
use crate::literal;

/// What replaces an authority h2 would refuse; what grpc-go sends over a unix socket.
pub const REPLACEMENT: &[u8] = b"localhost";

/// The longest header block (all its frames) this rewriter holds while it waits for the end.
/// h2 itself refuses header lists past 16 MiB; a client sending more than this gets its
/// connection closed.
const MAX_BLOCK: usize = 16 << 20;

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A header block could not be decoded after this connection was being rewritten: its
    /// HPACK context is lost, so nothing after it can be understood either.
    #[error("header block of stream {stream_id} cannot be decoded: {reason}")]
    Hpack {
        /// The stream whose HEADERS carried it.
        stream_id: u32,
        /// The decoder's complaint.
        reason: String,
    },
    /// A header block longer than the rewriter holds.
    #[error("header block of stream {stream_id} is longer than {MAX_BLOCK} octets")]
    TooLong {
        /// The stream whose HEADERS started it.
        stream_id: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Octets of the connection preface still to come.
    Preface(usize),
    /// At a frame boundary.
    Frame,
    /// Octets of a non-header frame's payload still to forward.
    Forward(usize),
    /// Everything is forwarded as it comes.
    PassThrough,
}

/// A header block being gathered from a HEADERS frame and its CONTINUATIONs.
struct Block {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as they came, to forward untouched if the connection is not rewritten.
    raw: Vec<u8>,
}

/// The rewriter's state for one connection.
pub struct Rewriter {
    state: State,
    rewriting: bool,
    block: Option<Block>,
    decoder: Decoder<'static>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    /// A rewriter for a new connection, before its preface.
    pub fn new() -> Self {
        Self {
            state: State::Preface(frame::PREFACE_LEN),
            rewriting: false,
            block: None,
            decoder: Decoder::new(),
        }
    }

    /// True once the client's first header block was fine: from here on, octets need not pass
    /// through [`Rewriter::feed`] at all.
    pub fn passing_through(&self) -> bool {
        self.state == State::PassThrough
    }

    /// True when this connection's header blocks are being rewritten.
    pub fn rewriting(&self) -> bool {
        self.rewriting
    }

    /// Consumes what it can of `input` (octets from the client) and appends what the server
    /// should read to `out`. What is left in `input` waits for more octets.
    pub fn feed(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Result<(), Error> {
        loop {
            match self.state {
                State::PassThrough => {
                    out.extend_from_slice(input);
                    input.clear();
                    return Ok(());
                }
                State::Preface(left) | State::Forward(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    if n < left {
                        self.state = match self.state {
                            State::Preface(_) => State::Preface(left - n),
                            _ => State::Forward(left - n),
                        };
                        return Ok(());
                    }
                    self.state = State::Frame;
                }
                State::Frame => {
                    let Some(header) = FrameHeader::parse(input) else {
                        return Ok(());
                    };
                    if !self.is_header_frame(&header) {
                        self.flush_unfinished_block(out);
                        if self.state == State::PassThrough {
                            continue;
                        }
                        out.extend_from_slice(&input[..frame::HEADER_LEN]);
                        input.advance(frame::HEADER_LEN);
                        self.state = State::Forward(header.len);
                        continue;
                    }
                    let whole = frame::HEADER_LEN + header.len;
                    if input.len() < whole {
                        return Ok(());
                    }
                    let raw = input.split_to(whole);
                    self.gather(header, &raw, out)?;
                }
            }
        }
    }

    fn is_header_frame(&self, header: &FrameHeader) -> bool {
        header.kind == frame::TYPE_HEADERS
            || (header.kind == frame::TYPE_CONTINUATION && self.block.is_some())
    }

    /// A frame other than CONTINUATION in the middle of a header block is the client's
    /// protocol error: the frames go to h2 as they came, for h2 to say so.
    fn flush_unfinished_block(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.raw);
            self.state = State::PassThrough;
        }
    }

    fn gather(&mut self, header: FrameHeader, raw: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let payload = &raw[frame::HEADER_LEN..];
        if header.kind == frame::TYPE_HEADERS {
            self.flush_unfinished_block(out);
            if self.state == State::PassThrough {
                out.extend_from_slice(raw);
                return Ok(());
            }
            let Some(split) = frame::split_headers(header.flags, payload) else {
                return self.give_up(raw, out, header.stream_id, "malformed HEADERS frame");
            };
            self.block = Some(Block {
                stream_id: header.stream_id,
                end_stream: header.flags & frame::FLAG_END_STREAM != 0,
                priority: split.priority,
                fragment: split.fragment.to_vec(),
                raw: Vec::new(),
            });
        } else if let Some(block) = self.block.as_mut() {
            block.fragment.extend_from_slice(payload);
        }
        let Some(block) = self.block.as_mut() else {
            return Ok(());
        };
        block.raw.extend_from_slice(raw);
        if block.raw.len() > MAX_BLOCK {
            return Err(Error::TooLong {
                stream_id: block.stream_id,
            });
        }
        if header.flags & frame::FLAG_END_HEADERS != 0 {
            let block = self.block.take();
            if let Some(block) = block {
                self.finish(block, out)?;
            }
        }
        self.state = if self.state == State::PassThrough {
            State::PassThrough
        } else {
            State::Frame
        };
        Ok(())
    }

    /// A block this rewriter cannot read: before rewriting started, h2 gets it as it came and
    /// judges it; after, the connection's HPACK context is lost.
    fn give_up(
        &mut self,
        raw: &[u8],
        out: &mut Vec<u8>,
        stream_id: u32,
        reason: &str,
    ) -> Result<(), Error> {
        if self.rewriting {
            return Err(Error::Hpack {
                stream_id,
                reason: reason.to_string(),
            });
        }
        out.extend_from_slice(raw);
        self.state = State::PassThrough;
        Ok(())
    }

    fn finish(&mut self, block: Block, out: &mut Vec<u8>) -> Result<(), Error> {
        let fields = match self.decoder.decode(&block.fragment) {
            Ok(fields) => fields,
            Err(e) => {
                return self.give_up(&block.raw, out, block.stream_id, &format!("{e:?}"));
            }
        };
        if !self.rewriting {
            let refused = fields
                .iter()
                .any(|(name, value)| name == b":authority" && !valid_authority(value));
            if !refused {
                out.extend_from_slice(&block.raw);
                self.state = State::PassThrough;
                return Ok(());
            }
            self.rewriting = true;
        }
        let mut encoded = Vec::with_capacity(block.fragment.len() * 2);
        for (name, value) in &fields {
            if name == b":authority" && !valid_authority(value) {
                literal::encode_field(&mut encoded, name, REPLACEMENT);
            } else {
                literal::encode_field(&mut encoded, name, value);
            }
            if encoded.len() > MAX_BLOCK {
                return Err(Error::TooLong {
                    stream_id: block.stream_id,
                });
            }
        }
        frame::write_header_block(
            out,
            block.stream_id,
            block.end_stream,
            block.priority,
            &encoded,
        );
        Ok(())
    }
}

/// What h2 accepts as an `:authority`: the `http` crate's parser, which h2 uses.
fn valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}
