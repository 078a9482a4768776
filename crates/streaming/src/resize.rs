//! The resize stream: a sequence of JSON `{"Width":..,"Height":..}` values (client-go writes
//! each with `json.Encoder`, so newline-separated, but frames may split or join them).

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::backend::TerminalSize;

/// Bytes of unparsed input kept at most; a client sending more without a complete value is
/// broken and its resize stream is ignored from then on.
const MAX_PENDING: usize = 64 * 1024;

/// Parses every complete value in `buf`; returns them and how many bytes they used.
/// `Err` means the stream holds something that is not a terminal size.
pub(crate) fn parse_sizes(buf: &[u8]) -> Result<(Vec<TerminalSize>, usize), serde_json::Error> {
    let mut sizes = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<TerminalSize>();
    let mut used = 0;
    loop {
        match values.next() {
            Some(Ok(size)) => {
                sizes.push(size);
                used = values.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => return Ok((sizes, used)),
            Some(Err(e)) => return Err(e),
            None => return Ok((sizes, values.byte_offset())),
        }
    }
}

/// Reads the resize stream until EOF or garbage, sending each size to `tx` (kubelet's
/// `handleResizeEvents`).
pub(crate) async fn decode_resizes<R: AsyncRead + Unpin>(mut r: R, tx: mpsc::Sender<TerminalSize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let (sizes, used) = match parse_sizes(&buf) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "bad resize stream");
                return;
            }
        };
        buf.drain(..used);
        for size in sizes {
            if tx.send(size).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_PENDING {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_joined_and_split_values() {
        let (sizes, used) = parse_sizes(b"{\"Width\":80,\"Height\":24}\n{\"Width\":1").unwrap();
        assert_eq!(
            sizes,
            vec![TerminalSize {
                width: 80,
                height: 24
            }]
        );
        assert_eq!(used, 24);
        let input = b" {\"width\":3,\"height\":4} \n";
        let (sizes, used) = parse_sizes(input).unwrap();
        assert_eq!(
            sizes,
            vec![TerminalSize {
                width: 3,
                height: 4
            }]
        );
        assert_eq!(used, input.len());
        assert!(parse_sizes(b"nonsense").is_err());
    }

    #[tokio::test]
    async fn decoder_delivers_in_order() {
        let (tx, mut rx) = mpsc::channel(4);
        let input: &[u8] = b"{\"Width\":10,\"Height\":20}{\"Width\":30,\"Height\":40}\n";
        decode_resizes(input, tx).await;
        assert_eq!(
            rx.recv().await,
            Some(TerminalSize {
                width: 10,
                height: 20
            })
        );
        assert_eq!(
            rx.recv().await,
            Some(TerminalSize {
                width: 30,
                height: 40
            })
        );
        assert_eq!(rx.recv().await, None);
    }

    mod props {
        use bytes::Bytes;
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_parse_or_fail_cleanly(
                buf in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                if let Ok((_, used)) = parse_sizes(&buf) {
                    prop_assert!(used <= buf.len());
                }
            }

            /// Sizes written as client-go writes them, split at arbitrary points, all arrive
            /// in order.
            #[test]
            fn split_streams_deliver_every_size(
                sizes in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..12),
                cuts in proptest::collection::vec(any::<usize>(), 0..12),
            ) {
                let sizes: Vec<TerminalSize> =
                    sizes.into_iter().map(|(width, height)| TerminalSize { width, height }).collect();
                let mut wire = Vec::new();
                for s in &sizes {
                    serde_json::to_writer(&mut wire, s).unwrap();
                    wire.push(b'\n');
                }
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
                cuts.push(0);
                cuts.push(wire.len());
                cuts.sort_unstable();
                let chunks: Vec<std::io::Result<Bytes>> = cuts
                    .windows(2)
                    .map(|w| Ok(Bytes::copy_from_slice(&wire[w[0]..w[1]])))
                    .collect();
                let reader = tokio_util::io::StreamReader::new(futures::stream::iter(chunks));
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let got = rt.block_on(async {
                    let (tx, mut rx) = mpsc::channel(sizes.len().max(1));
                    decode_resizes(reader, tx).await;
                    let mut got = Vec::new();
                    while let Some(s) = rx.recv().await {
                        got.push(s);
                    }
                    got
                });
                prop_assert_eq!(got, sizes);
            }
        }
    }
}
