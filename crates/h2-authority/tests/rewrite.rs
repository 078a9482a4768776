//! The rewriter against header blocks a client's HPACK encoder makes (dynamic table, Huffman
//! or not, split over CONTINUATION frames, padded), fed in pieces of every size.

use bytes::BytesMut;
use longshore_h2_authority::Rewriter;
use proptest::prelude::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn request(authority: &[u8], path: &[u8]) -> Fields {
    vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (b":path".to_vec(), path.to_vec()),
        (b":authority".to_vec(), authority.to_vec()),
        (b"te".to_vec(), b"trailers".to_vec()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
        (
            b"user-agent".to_vec(),
            b"grpc-python/1.85.0 grpc-c/52.0.0".to_vec(),
        ),
    ]
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("small");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A connection as a client writes it: preface, SETTINGS, then per request a header block
/// (padded HEADERS, then CONTINUATION) and a DATA frame.
fn connection(requests: &[Fields]) -> Vec<u8> {
    let mut encoder = loona_hpack::Encoder::new();
    let mut out = PREFACE.to_vec();
    frame(&mut out, 0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    for (i, fields) in requests.iter().enumerate() {
        let stream = 1 + 2 * u32::try_from(i).expect("few");
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        let (first, rest) = block.split_at(block.len() / 2);
        let mut payload = vec![3];
        payload.extend_from_slice(first);
        payload.extend_from_slice(&[0, 0, 0]);
        frame(&mut out, 0x1, 0x8, stream, &payload);
        frame(&mut out, 0x9, 0x4, stream, rest);
        frame(&mut out, 0x0, 0x1, stream, b"\0\0\0\0\x02\x0a\x00");
    }
    out
}

fn feed_in_pieces(input: &[u8], piece: usize) -> Vec<u8> {
    let mut rewriter = Rewriter::new();
    let mut pending = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        pending.extend_from_slice(chunk);
        rewriter.feed(&mut pending, &mut out).expect("rewrites");
    }
    assert!(pending.is_empty(), "{} octets left unread", pending.len());
    out
}

/// Reads the frames a server would: header blocks decoded, DATA payloads kept.
fn server_reads(octets: &[u8]) -> (Vec<Fields>, Vec<Vec<u8>>) {
    assert_eq!(&octets[..PREFACE.len()], PREFACE);
    let mut at = PREFACE.len();
    let mut decoder = loona_hpack::Decoder::new();
    let (mut blocks, mut data, mut fragment) = (Vec::new(), Vec::new(), Vec::new());
    while at < octets.len() {
        let h = &octets[at..at + 9];
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        let mut payload = &octets[at + 9..at + 9 + len];
        at += 9 + len;
        if kind == 0x1 {
            if flags & 0x8 != 0 {
                let pad = usize::from(payload[0]);
                payload = &payload[1..payload.len() - pad];
            }
            if flags & 0x20 != 0 {
                payload = &payload[5..];
            }
        }
        match kind {
            0x1 | 0x9 => {
                fragment.extend_from_slice(payload);
                if flags & 0x4 != 0 {
                    blocks.push(decoder.decode(&fragment).expect("server decodes"));
                    fragment.clear();
                }
            }
            0x0 => data.push(payload.to_vec()),
            _ => {}
        }
    }
    (blocks, data)
}

#[test]
fn a_socket_path_authority_becomes_localhost_on_every_stream() {
    let path = b"%2Frun%2Flongshore%2Flongshore.sock";
    let sent = vec![
        request(path, b"/runtime.v1.RuntimeService/Version"),
        request(path, b"/runtime.v1.RuntimeService/ListPodSandbox"),
        request(
            b"/run/longshore/longshore.sock",
            b"/runtime.v1.ImageService/ListImages",
        ),
    ];
    let (blocks, data) = server_reads(&feed_in_pieces(&connection(&sent), 4096));
    assert_eq!(blocks.len(), 3);
    for (got, want) in blocks.iter().zip(&sent) {
        let mut want = want.clone();
        want[3].1 = b"localhost".to_vec();
        assert_eq!(got, &want);
    }
    assert_eq!(data, vec![b"\0\0\0\0\x02\x0a\x00".to_vec(); 3]);
}

#[test]
fn a_valid_authority_passes_through_untouched() {
    let sent = vec![
        request(b"localhost", b"/runtime.v1.RuntimeService/Version"),
        request(b"%2Fnot%2Fchecked%2Fafter%2Fthe%2Ffirst", b"/x"),
    ];
    let input = connection(&sent);
    assert_eq!(feed_in_pieces(&input, 7), input);
}

proptest! {
    #[test]
    fn any_piece_size_gives_the_same_octets(piece in 1usize..300) {
        let path = b"%2Ftmp%2Fls.sock";
        let sent = vec![request(path, b"/a"), request(path, b"/b")];
        let input = connection(&sent);
        prop_assert_eq!(feed_in_pieces(&input, piece), feed_in_pieces(&input, input.len()));
    }

    #[test]
    fn arbitrary_octets_never_panic_and_are_bounded(
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        piece in 1usize..64,
    ) {
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&tail);
        let mut rewriter = Rewriter::new();
        let mut pending = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            pending.extend_from_slice(chunk);
            if rewriter.feed(&mut pending, &mut out).is_err() {
                break;
            }
        }
        // An octet of input names at most one field, and a field is at most a dynamic table
        // (4096 octets) long, written with a few octets of lengths.
        prop_assert!(out.len() <= input.len() * 4110, "{} from {}", out.len(), input.len());
    }
}
