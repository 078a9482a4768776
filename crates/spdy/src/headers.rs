//! SPDY name/value header blocks (uncompressed form).
//!
//! A block is a 32-bit count followed by that many (32-bit length, name, 32-bit length, value)
//! entries, all big-endian. Names are lowercase on the wire (Go's framer lowercases on write and
//! flags uppercase names on read); several values for one name are joined with NUL.

use bytes::{Buf, BufMut, BytesMut};

use crate::error::FrameError;

/// The separator between values of one header in a block.
const VALUE_SEPARATOR: char = '\0';

/// Limits applied when decoding a header block from a peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderLimits {
    /// Most name/value pairs in one block.
    pub max_count: u32,
    /// Longest name or value, in bytes.
    pub max_field: u32,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        HeaderLimits {
            max_count: 1024,
            max_field: 64 * 1024,
        }
    }
}

/// An ordered set of SPDY headers. Names are stored lowercase; lookups ignore case, so
/// `get("streamType")` finds the `streamtype` header a Go client sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// An empty header set.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Sets `name` (lowercased) to `value`, replacing any earlier value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let name = name.to_ascii_lowercase();
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
        self
    }

    /// Adds another value for `name`; it travels NUL-joined with the earlier ones.
    pub fn append(&mut self, name: &str, value: &str) -> &mut Self {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => {
                entry.1.push(VALUE_SEPARATOR);
                entry.1.push_str(value);
            }
            None => self.entries.push((name, value.to_string())),
        }
        self
    }

    /// The first value of `name`, ignoring case (as Go's `http.Header.Get`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split(VALUE_SEPARATOR).next().unwrap_or(""))
    }

    /// Every value of `name`, ignoring case.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(VALUE_SEPARATOR))
            .collect()
    }

    /// Iterates over (name, joined value) pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the uncompressed name/value block to `out`.
    pub(crate) fn encode_block(&self, out: &mut BytesMut) {
        out.put_u32(self.entries.len() as u32);
        for (name, value) in &self.entries {
            out.put_u32(name.len() as u32);
            out.put_slice(name.as_bytes());
            out.put_u32(value.len() as u32);
            out.put_slice(value.as_bytes());
        }
    }

    /// Parses an uncompressed name/value block. Uppercase names are lowercased (Go flags them
    /// but still delivers them); a repeated name adds values.
    pub(crate) fn decode_block(mut block: &[u8], limits: HeaderLimits) -> Result<Self, FrameError> {
        let count = read_u32(&mut block)?;
        if count > limits.max_count {
            return Err(FrameError::TooManyHeaders(count));
        }
        let mut headers = Headers::new();
        for _ in 0..count {
            let name = read_field(&mut block, limits)?;
            let value = read_field(&mut block, limits)?;
            let name = std::str::from_utf8(name).map_err(|_| FrameError::HeaderNotUtf8)?;
            let value = std::str::from_utf8(value).map_err(|_| FrameError::HeaderNotUtf8)?;
            if name.is_empty() {
                return Err(FrameError::EmptyHeaderName);
            }
            headers.append(name, value);
        }
        if !block.is_empty() {
            return Err(FrameError::TrailingHeaderBytes(block.len()));
        }
        Ok(headers)
    }
}

fn read_u32(block: &mut &[u8]) -> Result<u32, FrameError> {
    if block.len() < 4 {
        return Err(FrameError::TruncatedHeaderBlock);
    }
    Ok(block.get_u32())
}

fn read_field<'a>(block: &mut &'a [u8], limits: HeaderLimits) -> Result<&'a [u8], FrameError> {
    let len = read_u32(block)?;
    if len > limits.max_field {
        return Err(FrameError::HeaderFieldTooLong(len));
    }
    let len = len as usize;
    if block.len() < len {
        return Err(FrameError::TruncatedHeaderBlock);
    }
    let (field, rest) = block.split_at(len);
    *block = rest;
    Ok(field)
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(name, value);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_lookup_ignores_case() {
        let mut h = Headers::new();
        h.set("streamType", "error").set("Port", "80");
        assert_eq!(h.get("STREAMTYPE"), Some("error"));
        assert_eq!(h.iter().next(), Some(("streamtype", "error")));
        h.set("streamtype", "data");
        assert_eq!(h.len(), 2);
        assert_eq!(h.get("streamType"), Some("data"));
    }

    #[test]
    fn block_round_trip_with_multiple_values() {
        let mut h = Headers::new();
        h.set("streamtype", "stdout")
            .append("x", "a")
            .append("x", "b");
        let mut buf = BytesMut::new();
        h.encode_block(&mut buf);
        let back = Headers::decode_block(&buf, HeaderLimits::default()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.get_all("x"), vec!["a", "b"]);
        assert_eq!(back.get("x"), Some("a"));
    }

    #[test]
    fn hand_built_block_decodes() {
        // count=1, "port" -> "8080"
        let raw = b"\0\0\0\x01\0\0\0\x04port\0\0\0\x048080";
        let h = Headers::decode_block(raw, HeaderLimits::default()).unwrap();
        assert_eq!(h.get("port"), Some("8080"));
    }

    #[test]
    fn truncated_and_oversized_blocks_fail() {
        let raw = b"\0\0\0\x01\0\0\0\x04po";
        assert!(matches!(
            Headers::decode_block(raw, HeaderLimits::default()),
            Err(FrameError::TruncatedHeaderBlock)
        ));
        let raw = b"\0\0\x10\x00";
        assert!(matches!(
            Headers::decode_block(
                raw,
                HeaderLimits {
                    max_count: 10,
                    max_field: 10
                }
            ),
            Err(FrameError::TooManyHeaders(4096))
        ));
    }

    proptest::proptest! {
        /// Uncompressed blocks of arbitrary bytes (what a hostile peer's zlib stream inflates
        /// to): never a panic, never more entries or longer fields than the limits allow.
        #[test]
        fn arbitrary_blocks_respect_the_limits(
            block in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            max_count in 0u32..8,
            max_field in 0u32..64,
        ) {
            let limits = HeaderLimits { max_count, max_field };
            if let Ok(h) = Headers::decode_block(&block, limits) {
                proptest::prop_assert!(h.len() <= max_count as usize);
                for (name, value) in h.iter() {
                    proptest::prop_assert!(!name.is_empty());
                    proptest::prop_assert!(name.len() <= max_field as usize);
                    proptest::prop_assert_eq!(name.to_ascii_lowercase(), name);
                    // Repeated names join their values, each within the limit.
                    proptest::prop_assert!(
                        value.split(VALUE_SEPARATOR).all(|v| v.len() <= max_field as usize)
                    );
                }
            }
        }

        #[test]
        fn blocks_round_trip(
            pairs in proptest::collection::vec(("[a-z0-9-]{1,10}", "\\PC{0,20}"), 0..8),
        ) {
            let h: Headers = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let mut buf = BytesMut::new();
            h.encode_block(&mut buf);
            let back = Headers::decode_block(&buf, HeaderLimits::default());
            proptest::prop_assert_eq!(back.ok(), Some(h));
        }
    }
}
