//! The SPDY/3 header-compression dictionary.
//!
//! Every header block on a SPDY/3 connection is compressed with zlib primed with this fixed
//! dictionary (SPDY/3 draft, section 2.6.10.1). Its Adler-32 is `0xe3c6a7c2`, the `DICTID` that
//! appears in the zlib header of the first compressed block.

/// The dictionary bytes, exactly as the protocol defines them.
pub(crate) const HEADER_DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

#[cfg(test)]
mod tests {
    use super::HEADER_DICTIONARY;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        assert_eq!(HEADER_DICTIONARY.len(), 1423);
        assert_eq!(&HEADER_DICTIONARY[..11], b"\0\0\0\x07options");
        assert!(HEADER_DICTIONARY.ends_with(b"utf-,*,enq=0."));
    }
}
