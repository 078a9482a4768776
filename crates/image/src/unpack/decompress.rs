//! Choosing the decompressor: by the layer's media type and, decisively, its magic bytes.

use std::io::{self, Cursor, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const MAGIC_LEN: usize = 4;

/// Layer media types we unpack (OCI, OCI non-distributable, Docker).
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A layer's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Is `media_type` a layer we can unpack?
pub(crate) fn known_layer_type(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or("").trim();
    LAYER_MEDIA_TYPES.contains(&base)
}

/// Read the first bytes of `input` and pick the decompressor; returns those bytes too, to be
/// put back in front of the stream.
pub(crate) fn detect(input: &mut impl Read) -> io::Result<(Compression, Vec<u8>)> {
    let mut prefix = vec![0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        let n = input.read(&mut prefix[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    prefix.truncate(filled);
    let compression = if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    Ok((compression, prefix))
}

/// The decompressed stream of `prefix` followed by `rest`.
pub(crate) fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    prefix: Vec<u8>,
    rest: R,
) -> io::Result<Box<dyn Read + 'a>> {
    let input = Cursor::new(prefix).chain(rest);
    Ok(match compression {
        Compression::None => Box::new(input),
        // Multi-member: parallel compressors (pigz) write several gzip members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic() {
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, b"hello").unwrap();
            e.finish().unwrap()
        };
        let zs = zstd::encode_all(&b"hello"[..], 1).unwrap();
        for (data, want) in [
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
            (b"hello".to_vec(), Compression::None),
        ] {
            let mut r = &data[..];
            let (c, prefix) = detect(&mut r).unwrap();
            assert_eq!(c, want);
            let mut out = String::new();
            decoder(c, prefix, r)
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "hello");
        }
        assert!(known_layer_type(
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ));
        assert!(!known_layer_type(
            "application/vnd.oci.image.layer.v1.tar+encrypted"
        ));
    }
}
