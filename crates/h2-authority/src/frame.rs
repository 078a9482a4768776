//! The HTTP/2 frame layout this crate reads and writes (RFC 9113 §4.1, §6.2, §6.10).

/// The client connection preface, before the first frame.
pub(crate) const PREFACE_LEN: usize = 24;
/// Every frame starts with this many octets: length (24 bits), type, flags, stream id.
pub(crate) const HEADER_LEN: usize = 9;
/// The frame size every HTTP/2 peer must accept, whatever its settings say.
pub(crate) const MIN_MAX_FRAME_SIZE: usize = 16_384;

pub(crate) const TYPE_HEADERS: u8 = 0x1;
pub(crate) const TYPE_CONTINUATION: u8 = 0x9;

pub(crate) const FLAG_END_STREAM: u8 = 0x1;
pub(crate) const FLAG_END_HEADERS: u8 = 0x4;
pub(crate) const FLAG_PADDED: u8 = 0x8;
pub(crate) const FLAG_PRIORITY: u8 = 0x20;

/// A frame's 9-octet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: usize,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream_id: u32,
}

impl FrameHeader {
    /// Reads a header from the first 9 octets of `buf`, if there are that many.
    pub(crate) fn parse(buf: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Appends this header to `out`. `len` must fit 24 bits (callers keep frames ≤ 16 KiB).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.len).unwrap_or(u32::MAX).min(0x00ff_ffff);
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
    }
}

/// What a HEADERS frame's payload holds once its padding and priority fields are set apart.
pub(crate) struct HeadersPayload<'a> {
    /// The 5 priority octets, when the PRIORITY flag is set.
    pub(crate) priority: Option<[u8; 5]>,
    /// The header block fragment.
    pub(crate) fragment: &'a [u8],
}

/// Splits a HEADERS payload; `None` when its padding or priority fields do not fit (a
/// PROTOCOL_ERROR that h2 reports itself when it sees the frame as it came).
pub(crate) fn split_headers(flags: u8, payload: &[u8]) -> Option<HeadersPayload<'_>> {
    let mut rest = payload;
    let mut pad = 0usize;
    if flags & FLAG_PADDED != 0 {
        let (&n, tail) = rest.split_first()?;
        pad = usize::from(n);
        rest = tail;
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        let fields: [u8; 5] = rest.get(..5)?.try_into().ok()?;
        priority = Some(fields);
        rest = &rest[5..];
    }
    let end = rest.len().checked_sub(pad)?;
    Some(HeadersPayload {
        priority,
        fragment: &rest[..end],
    })
}

/// Writes a header block as one HEADERS frame and as many CONTINUATION frames as it needs,
/// none longer than [`MIN_MAX_FRAME_SIZE`]. Padding is dropped; priority is kept.
pub(crate) fn write_header_block(
    out: &mut Vec<u8>,
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: &[u8],
) {
    let prefix = if priority.is_some() { 5 } else { 0 };
    let first_len = block.len().min(MIN_MAX_FRAME_SIZE - prefix);
    let (first, mut rest) = block.split_at(first_len);
    let mut flags = 0;
    if end_stream {
        flags |= FLAG_END_STREAM;
    }
    if priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    let header = FrameHeader {
        len: prefix + first.len(),
        kind: TYPE_HEADERS,
        flags,
        stream_id,
    };
    header.write(out);
    if let Some(fields) = priority {
        out.extend_from_slice(&fields);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let n = rest.len().min(MIN_MAX_FRAME_SIZE);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let header = FrameHeader {
            len: chunk.len(),
            kind: TYPE_CONTINUATION,
            flags: if rest.is_empty() { FLAG_END_HEADERS } else { 0 },
            stream_id,
        };
        header.write(out);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips() {
        let header = FrameHeader {
            len: 0x01_02_03,
            kind: TYPE_HEADERS,
            flags: FLAG_END_HEADERS,
            stream_id: 7,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(FrameHeader::parse(&out), Some(header));
    }

    #[test]
    fn padding_and_priority_are_set_apart() {
        let payload = [2, 1, 2, 3, 4, 5, b'x', b'y', 0, 0];
        let split = split_headers(FLAG_PADDED | FLAG_PRIORITY, &payload).expect("fits");
        assert_eq!(split.priority, Some([1, 2, 3, 4, 5]));
        assert_eq!(split.fragment, b"xy");
        assert!(split_headers(FLAG_PADDED, &[9, 1]).is_none());
    }

    #[test]
    fn a_long_block_goes_on_in_continuation_frames() {
        let block = vec![7u8; MIN_MAX_FRAME_SIZE * 2 + 10];
        let mut out = Vec::new();
        write_header_block(&mut out, 3, true, Some([0; 5]), &block);
        let first = FrameHeader::parse(&out).expect("header");
        assert_eq!(first.kind, TYPE_HEADERS);
        assert_eq!(first.len, MIN_MAX_FRAME_SIZE);
        assert_eq!(first.flags, FLAG_END_STREAM | FLAG_PRIORITY);
        let mut at = HEADER_LEN + first.len;
        let mut seen = first.len - 5;
        let mut last_flags = 0;
        while at < out.len() {
            let next = FrameHeader::parse(&out[at..]).expect("header");
            assert_eq!(next.kind, TYPE_CONTINUATION);
            seen += next.len;
            last_flags = next.flags;
            at += HEADER_LEN + next.len;
        }
        assert_eq!(seen, block.len());
        assert_eq!(last_flags, FLAG_END_HEADERS);
    }
}
