//! zlib header-block compression with the SPDY/3 dictionary.
//!
//! Each direction of a connection has one compression context for its whole life: every header
//! block continues the same zlib stream and ends with a sync flush, so the peer can decode it as
//! soon as the frame arrives. The decompressor learns it needs the dictionary from the zlib header
//! of the first block (FDICT with DICTID 0xe3c6a7c2).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use crate::dictionary::HEADER_DICTIONARY;
use crate::error::FrameError;

/// Room added to an output buffer each time zlib fills it.
const OUTPUT_STEP: usize = 1024;

/// The sending side's zlib context.
pub(crate) struct HeaderCompressor {
    zlib: Compress,
}

impl HeaderCompressor {
    /// A fresh context primed with the SPDY dictionary (Go uses level 9; any level decodes).
    pub fn new() -> Result<Self, FrameError> {
        let mut zlib = Compress::new(Compression::best(), true);
        zlib.set_dictionary(HEADER_DICTIONARY)
            .map_err(|e| FrameError::Compress(e.to_string()))?;
        Ok(HeaderCompressor { zlib })
    }

    /// Compresses one header block and sync-flushes, appending to `out`.
    pub fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start_in = self.zlib.total_in();
        loop {
            if out.capacity() - out.len() < OUTPUT_STEP {
                out.reserve(OUTPUT_STEP);
            }
            let consumed = (self.zlib.total_in() - start_in) as usize;
            self.zlib
                .compress_vec(&block[consumed..], out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compress(e.to_string()))?;
            let consumed = (self.zlib.total_in() - start_in) as usize;
            // Done once all input is taken and zlib left spare room (nothing pending).
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The receiving side's zlib context.
pub(crate) struct HeaderDecompressor {
    zlib: Decompress,
    max_block: usize,
}

impl HeaderDecompressor {
    /// A fresh context; `max_block` bounds one decompressed header block.
    pub fn new(max_block: usize) -> Self {
        HeaderDecompressor {
            zlib: Decompress::new(true),
            max_block,
        }
    }

    /// Decompresses the compressed bytes of one header block; all of them must be consumed (as
    /// Go's framer insists).
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if consumed == compressed.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.capacity() - out.len() < OUTPUT_STEP {
                out.reserve(OUTPUT_STEP);
            }
            let before_out = out.len();
            let result =
                self.zlib
                    .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync);
            match result {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(HEADER_DICTIONARY)
                        .map_err(|e| FrameError::Decompress(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(FrameError::Decompress(e.to_string())),
            }
            if out.len() > self.max_block {
                return Err(FrameError::HeaderBlockTooLarge(self.max_block));
            }
            let now_consumed = (self.zlib.total_in() - start_in) as usize;
            if now_consumed == consumed && out.len() == before_out && out.len() < out.capacity() {
                // No progress with room to spare: the input is incomplete or corrupt.
                return Err(FrameError::Decompress(format!(
                    "stalled after {now_consumed} of {} bytes",
                    compressed.len()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_shares_context_across_blocks() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::new(1 << 20);
        let blocks: [&[u8]; 3] = [
            b"first block streamtype",
            b"\0\0\0\0",
            b"second streamtype block",
        ];
        let mut sizes = Vec::new();
        for block in blocks {
            let mut out = Vec::new();
            c.compress(block, &mut out).unwrap();
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
            sizes.push(out.len());
            assert_eq!(d.decompress(&out).unwrap(), block);
        }
        // The first block carries the zlib header with FDICT and the SPDY/3 DICTID.
        assert!(sizes[0] > sizes[1]);
    }

    #[test]
    fn first_block_has_fdict_and_dictid() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut out = Vec::new();
        c.compress(b"\0\0\0\0", &mut out).unwrap();
        assert_eq!(out[0], 0x78);
        assert_ne!(out[1] & 0x20, 0, "FDICT flag");
        assert_eq!(&out[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[test]
    fn garbage_is_rejected() {
        let mut d = HeaderDecompressor::new(1 << 20);
        assert!(d.decompress(b"\x01\x02\x03\x04garbage").is_err());
    }
}
