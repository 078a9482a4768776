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
}
