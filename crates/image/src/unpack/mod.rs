//! Streaming layer unpack: compressed bytes in, files out, in one pass on a blocking thread.
//!
//! network chunks -> [`ChannelReader`] (sha256 + size of the blob) -> gzip/zstd/plain decoder
//! -> [`DiffReader`] (sha256 = diff ID, size limit) -> tar -> [`apply::Applier`] -> snapshot dir.

mod apply;
mod decompress;
mod fsops;
mod stream;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use longshore_registry::Digest;

pub(crate) use decompress::known_layer_type;
pub(crate) use stream::{ChannelReader, StopFlags};

/// Why an unpack failed, before it is tied to a layer in the crate's error.
#[derive(Debug)]
pub(crate) enum UnpackError {
    /// Malicious or forbidden content.
    Hostile(String),
    /// A malformed tar or compressed stream.
    Invalid(String),
    /// The uncompressed stream passed the configured limit.
    TooLarge,
    /// More compressed bytes than the descriptor announced.
    Oversize,
    /// The blob does not hash to its digest (found after a broken stream, the likely cause).
    DigestMismatch(Digest),
    /// Reading the stream failed (also: the download stopped; the caller knows why).
    Read(io::Error),
    /// Writing to the snapshot failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl UnpackError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        UnpackError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn io_raw(op: &'static str, path: &[u8], source: io::Error) -> Self {
        UnpackError::Io {
            op,
            path: PathBuf::from(String::from_utf8_lossy(path).into_owned()),
            source,
        }
    }
}

/// What an unpack produced and measured.
#[derive(Debug, Clone)]
pub(crate) struct UnpackStats {
    /// sha256 of the compressed stream as received.
    pub compressed_digest: Digest,
    /// Compressed bytes received.
    pub compressed_size: u64,
    /// sha256 of the uncompressed tar: the diff ID.
    pub diff_id: Digest,
    /// Apparent bytes of regular files written.
    pub bytes: u64,
    /// Inodes created.
    pub inodes: u64,
}

/// Unpack the layer arriving through `input` into `dest`. Blocking; run on a blocking thread.
pub(crate) fn unpack(
    mut input: ChannelReader,
    flags: Arc<StopFlags>,
    dest: &Path,
    max_bytes: u64,
    sync: bool,
    expected: &Digest,
) -> Result<UnpackStats, UnpackError> {
    let result = unpack_inner(&mut input, &flags, dest, max_bytes, sync);
    if result.is_err() && flags.too_large.load(Ordering::Relaxed) {
        // The tar reader reports the limit as just another read error.
        return Err(UnpackError::TooLarge);
    }
    if let Err(UnpackError::Invalid(_) | UnpackError::Read(_)) = &result {
        // A corrupt stream is most often corrupt content: read the rest (bounded by the
        // descriptor size) and report a digest mismatch if that is what it is.
        if !flags.oversize.load(Ordering::Relaxed) && io::copy(&mut input, &mut io::sink()).is_ok()
        {
            let (hasher, _) = input.finish();
            let actual = Digest::from_hasher(hasher);
            if &actual != expected {
                return Err(UnpackError::DigestMismatch(actual));
            }
        }
        return Err(result
            .err()
            .unwrap_or(UnpackError::Invalid("unpack failed".into())));
    }
    let classify = |e: UnpackError| {
        if flags.too_large.load(Ordering::Relaxed) {
            UnpackError::TooLarge
        } else if flags.oversize.load(Ordering::Relaxed) {
            UnpackError::Oversize
        } else {
            e
        }
    };
    let (bytes, inodes, diff_id) = result.map_err(classify)?;
    // Whatever follows the compressed stream still counts toward the blob digest.
    io::copy(&mut input, &mut io::sink()).map_err(|e| classify(UnpackError::Read(e)))?;
    let (hasher, compressed_size) = input.finish();
    Ok(UnpackStats {
        compressed_digest: Digest::from_hasher(hasher),
        compressed_size,
        diff_id,
        bytes,
        inodes,
    })
}

fn unpack_inner(
    input: &mut ChannelReader,
    flags: &Arc<StopFlags>,
    dest: &Path,
    max_bytes: u64,
    sync: bool,
) -> Result<(u64, u64, Digest), UnpackError> {
    let (compression, prefix) = decompress::detect(input).map_err(UnpackError::Read)?;
    let decoder = decompress::decoder(compression, prefix, &mut *input)
        .map_err(|e| UnpackError::Invalid(format!("decompressor: {e}")))?;
    let mut diff = stream::DiffReader::new(decoder, max_bytes, flags.clone());
    let mut applier = apply::Applier::new(dest)?;
    {
        let mut archive = tar::Archive::new(&mut diff);
        let entries = archive
            .entries()
            .map_err(|e| UnpackError::Invalid(format!("not a tar stream: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| UnpackError::Invalid(format!("tar: {e}")))?;
            applier.apply(&mut entry)?;
        }
    }
    // The tar end marker may be followed by padding: it is part of the diff ID.
    io::copy(&mut diff, &mut io::sink())
        .map_err(|e| UnpackError::Invalid(format!("after the tar end: {e}")))?;
    let (bytes, inodes) = (applier.bytes, applier.inodes);
    if sync {
        applier
            .sync()
            .map_err(|e| UnpackError::io("syncfs", dest, e))?;
    }
    applier.finish()?;
    let (hasher, _) = diff.finish();
    Ok((bytes, inodes, Digest::from_hasher(hasher)))
}
