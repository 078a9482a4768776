//! The SPDY frame codec under attack: arbitrary bytes, split anywhere, never panic the decoder
//! or make it hold more than the frame limits allow; every frame the encoder makes decodes to
//! itself through one shared compression context; a header block that inflates past the limit
//! is refused without inflating it all (the allocator below counts what decoding holds).

#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use longshore_spdy::frame::{Frame, FrameDecoder, FrameEncoder, MAX_FRAME_PAYLOAD, Setting};
use longshore_spdy::{FrameError, Headers};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Counts the live and peak heap bytes of the current thread (proptest runs each case on the
/// test's own thread, and tests run on threads of their own).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local Cells with const initializers, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A moving realloc holds both blocks for a moment: count the new one first.
        note_alloc(new_size);
        note_free(layout.size());
        // SAFETY: ptr came from this allocator with this layout; new_size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most heap it held at once beyond what was live.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

/// Decodes everything in `wire`, fed in pieces of `piece` bytes, up to the first error.
fn decode_pieces(wire: &[u8], piece: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in wire.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// What any decoded frame must satisfy, whatever the input.
fn check_bounds(frame: &Frame) -> Result<(), TestCaseError> {
    const ID_MASK: u32 = 0x7fff_ffff;
    match frame {
        Frame::Data {
            stream_id, data, ..
        } => {
            prop_assert!(*stream_id != 0 && *stream_id <= ID_MASK);
            prop_assert!(data.len() <= MAX_FRAME_PAYLOAD);
        }
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            headers,
            ..
        } => {
            prop_assert!(*stream_id != 0 && *stream_id <= ID_MASK && *associated_to <= ID_MASK);
            prop_assert!(*priority <= 7);
            prop_assert!(headers.len() <= 1024);
        }
        Frame::SynReply {
            stream_id, headers, ..
        }
        | Frame::Headers {
            stream_id, headers, ..
        } => {
            prop_assert!(*stream_id != 0 && *stream_id <= ID_MASK);
            prop_assert!(headers.len() <= 1024);
        }
        Frame::RstStream { stream_id, .. } => prop_assert!(*stream_id != 0),
        Frame::Settings { entries, .. } => {
            // 8 bytes per entry in a control frame of at most 1 MiB.
            prop_assert!(entries.len() <= (1 << 20) / 8);
            prop_assert!(entries.iter().all(|e| e.id <= 0x00ff_ffff));
        }
        Frame::WindowUpdate { stream_id, delta } => {
            prop_assert!(*stream_id <= ID_MASK && *delta <= ID_MASK);
        }
        Frame::GoAway {
            last_good_stream_id,
            ..
        } => prop_assert!(*last_good_stream_id <= ID_MASK),
        Frame::Ping { .. } => {}
    }
    Ok(())
}

/// Bytes that look like SPDY often enough to get past the frame header: valid control frame
/// headers (right version, known types, small lengths) and data frame headers, then noise.
fn spdy_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (
            0u16..12,
            any::<u8>(),
            0u32..64,
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(kind, flags, len, body)| {
                let mut v = vec![0x80, 0x03];
                v.extend_from_slice(&kind.to_be_bytes());
                v.push(flags);
                v.extend_from_slice(&len.to_be_bytes()[1..]);
                v.extend(body);
                v
            }),
        (
            any::<u32>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(id, flags, body)| {
                let mut v = (id & 0x7fff_ffff).to_be_bytes().to_vec();
                v.push(flags);
                v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
                v.extend(body);
                v
            }),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

fn headers() -> impl Strategy<Value = Headers> {
    proptest::collection::vec(("[a-zA-Z0-9-]{1,12}", "\\PC{0,24}"), 0..6).prop_map(|pairs| {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.append(&n, &v);
        }
        h
    })
}

fn stream_id() -> impl Strategy<Value = u32> {
    1u32..=0x7fff_ffff
}

/// Frames as a valid peer would send them (fields within their wire widths).
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            stream_id(),
            0u32..=0x7fff_ffff,
            0u8..8,
            any::<u8>(),
            any::<u8>(),
            headers()
        )
            .prop_map(
                |(stream_id, associated_to, priority, slot, flags, headers)| Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    flags,
                    headers
                }
            ),
        (stream_id(), any::<u8>(), headers()).prop_map(|(stream_id, flags, headers)| {
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            }
        }),
        (stream_id(), any::<u8>(), headers()).prop_map(|(stream_id, flags, headers)| {
            Frame::Headers {
                stream_id,
                flags,
                headers,
            }
        }),
        (stream_id(), any::<u32>())
            .prop_map(|(stream_id, status)| Frame::RstStream { stream_id, status }),
        (
            any::<u8>(),
            proptest::collection::vec((any::<u8>(), 0u32..=0xff_ffff, any::<u32>()), 0..6)
        )
            .prop_map(|(flags, e)| Frame::Settings {
                flags,
                entries: e
                    .into_iter()
                    .map(|(flags, id, value)| Setting { flags, id, value })
                    .collect(),
            }),
        any::<u32>().prop_map(|id| Frame::Ping { id }),
        (0u32..=0x7fff_ffff, any::<u32>()).prop_map(|(last_good_stream_id, status)| {
            Frame::GoAway {
                last_good_stream_id,
                status,
            }
        }),
        (0u32..=0x7fff_ffff, 0u32..=0x7fff_ffff)
            .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
        (
            stream_id(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(stream_id, flags, data)| Frame::Data {
                stream_id,
                flags,
                data: Bytes::from(data),
            }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        wire in proptest::collection::vec(any::<u8>(), 0..600),
        piece in 1usize..64,
    ) {
        let (frames, _) = decode_pieces(&wire, piece);
        for f in &frames {
            check_bounds(f)?;
        }
    }

    #[test]
    fn spdy_like_bytes_never_panic_the_decoder(wire in spdy_ish(), piece in 1usize..64) {
        let (frames, _) = decode_pieces(&wire, piece);
        for f in &frames {
            check_bounds(f)?;
        }
    }

    /// Frames after valid ones (so the zlib context is primed) followed by garbage.
    #[test]
    fn garbage_after_valid_frames_never_panics(
        frames in proptest::collection::vec(frame(), 1..4),
        garbage in spdy_ish(),
        piece in 1usize..64,
    ) {
        let mut enc = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::new();
        for f in &frames {
            enc.encode(f, &mut wire).unwrap();
        }
        wire.extend_from_slice(&garbage);
        let (got, _) = decode_pieces(&wire, piece);
        prop_assert!(got.len() >= frames.len());
        prop_assert_eq!(&got[..frames.len()], &frames[..]);
        for f in &got {
            check_bounds(f)?;
        }
    }

    #[test]
    fn encoded_frames_decode_to_themselves(
        frames in proptest::collection::vec(frame(), 0..12),
        piece in 1usize..200,
    ) {
        let mut enc = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::new();
        for f in &frames {
            enc.encode(f, &mut wire).unwrap();
        }
        let (got, err) = decode_pieces(&wire, piece);
        prop_assert!(err.is_none(), "{err:?}");
        prop_assert_eq!(got, frames);
    }
}

/// A SYN_STREAM whose header block is a zlib stream (no dictionary: the decoder only primes
/// one when the stream asks) inflating to a block of `values.len()` headers, each with that
/// many zero bytes as its value.
fn bomb(values: &[usize]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&(values.len() as u32).to_be_bytes()).unwrap();
    let zeros = vec![0u8; 64 * 1024];
    for (i, len) in values.iter().enumerate() {
        let name = format!("x{i}");
        z.write_all(&(name.len() as u32).to_be_bytes()).unwrap();
        z.write_all(name.as_bytes()).unwrap();
        z.write_all(&(*len as u32).to_be_bytes()).unwrap();
        let mut left = *len;
        while left > 0 {
            let n = left.min(zeros.len());
            z.write_all(&zeros[..n]).unwrap();
            left -= n;
        }
    }
    let compressed = z.finish().unwrap();
    let mut wire = BytesMut::new();
    wire.put_u16(0x8003);
    wire.put_u16(1);
    wire.put_u32((10 + compressed.len()) as u32);
    wire.put_u32(1);
    wire.put_u32(0);
    wire.put_u16(0);
    wire.extend_from_slice(&compressed);
    wire.to_vec()
}

/// The decoder's limit on one inflated header block.
const MAX_BLOCK: usize = 1 << 20;

proptest! {
    // Each case inflates megabytes through an unoptimized zlib: a few cases suffice.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn header_bombs_are_refused_in_bounded_memory(
        extra in prop_oneof![1usize..4096, (1usize << 20)..(6 << 20)],
    ) {
        let wire = bomb(&[MAX_BLOCK + extra]);
        let ((frames, err), peak) = peak_during(|| decode_pieces(&wire, wire.len()));
        prop_assert!(frames.is_empty());
        prop_assert!(matches!(err, Some(FrameError::HeaderBlockTooLarge(MAX_BLOCK))), "{err:?}");
        // The inflated block may overshoot the limit by one growth step, never by the bomb.
        prop_assert!(peak <= 3 * MAX_BLOCK + 4 * wire.len() + (256 << 10), "peak {peak} bytes");
    }
}

#[test]
fn a_block_just_under_the_limit_is_accepted() {
    // 16 fields of 64 KiB minus the block's own framing (4 bytes of count, 6 + 4 per field).
    let mut values = vec![64 * 1024; 16];
    values[15] -= 4 + 16 * (4 + 2 + 4) + 6;
    let wire = bomb(&values);
    let ((frames, err), _peak) = peak_during(|| decode_pieces(&wire, wire.len()));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 1);
}
