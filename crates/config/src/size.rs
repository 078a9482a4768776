//! Byte sizes written as a number of bytes or with a unit: `64MiB`, `16KiB`, `2GiB`, `1GB`.

use serde::{Deserialize, Deserializer};

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse(&t).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

fn parse(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size like \"64MiB\" or 1048576");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| bad())?;
    let mult: u64 = match t[split..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_units() {
        assert_eq!(parse("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse("512").unwrap(), 512);
        assert!(parse("12 parsecs").is_err());
        assert!(parse("99999999999TiB").is_err());
    }
}
