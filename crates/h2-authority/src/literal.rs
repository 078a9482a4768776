//! The one HPACK representation this crate writes: "literal header field without indexing, new
//! name", with plain (not Huffman) strings (RFC 7541 §6.2.2, §5.1, §5.2). It never touches the
//! receiver's dynamic table, so re-encoded blocks need no table kept in step with h2's.

/// Appends one header field to a header block.
pub(crate) fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_string(out, name);
    encode_string(out, value);
}

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    encode_integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// An integer with an N-bit prefix; `first` holds the bits above the prefix.
fn encode_integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value % 0x80) as u8 | 0x80);
        value /= 0x80;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode_with_an_hpack_decoder() {
        let long = vec![b'v'; 300];
        let mut block = Vec::new();
        encode_field(&mut block, b":authority", b"localhost");
        encode_field(&mut block, b"x-long", &long);
        let mut decoder = loona_hpack::Decoder::new();
        let fields = decoder.decode(&block).expect("decodes");
        assert_eq!(
            fields,
            vec![
                (b":authority".to_vec(), b"localhost".to_vec()),
                (b"x-long".to_vec(), long)
            ]
        );
    }
}
