//! CNI spec versions: which ones we speak, and what each one allows.

use std::fmt;

/// Spec versions a network configuration may declare. Results of 0.1.0 and 0.2.0 have their
/// own shape (`ip4`/`ip6`); 0.3.0 brought plugin lists and `prevResult`; 0.4.0 brought CHECK
/// and the cached result on DEL; 1.1.0 only added verbs we do not use.
const SUPPORTED: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// A CNI spec version as a configuration declares it (`cniVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CniVersion {
    major: u32,
    minor: u32,
    patch: u32,
}

impl CniVersion {
    /// The first version with CHECK, and with the cached result passed to DEL.
    pub const V0_4_0: CniVersion = CniVersion::new(0, 4, 0);

    const fn new(major: u32, minor: u32, patch: u32) -> Self {
        CniVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses a supported version string; `None` for anything we do not speak.
    pub fn parse(s: &str) -> Option<CniVersion> {
        if !SUPPORTED.contains(&s) {
            return None;
        }
        let mut parts = s.split('.').map(|p| p.parse::<u32>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) => {
                Some(CniVersion::new(major, minor, patch))
            }
            _ => None,
        }
    }

    /// The versions we accept, for error messages.
    pub fn supported() -> &'static [&'static str] {
        SUPPORTED
    }

    /// Whether this version knows the CHECK command (0.4.0 and later).
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// Whether DEL receives the cached ADD result as `prevResult` (0.4.0 and later).
    pub fn del_gets_prev_result(self) -> bool {
        self >= Self::V0_4_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_supported_versions() {
        let v031 = CniVersion::parse("0.3.1").unwrap();
        let v040 = CniVersion::parse("0.4.0").unwrap();
        let v100 = CniVersion::parse("1.0.0").unwrap();
        assert!(v031 < v040 && v040 < v100);
        assert!(!v031.has_check());
        assert!(v040.has_check() && v100.has_check());
        assert!(!v031.del_gets_prev_result());
        assert_eq!(v100.to_string(), "1.0.0");
    }

    #[test]
    fn rejects_unknown_versions() {
        for bad in ["", "1.0", "0.5.0", "2.0.0", "v1.0.0", "1.0.0-rc1"] {
            assert_eq!(CniVersion::parse(bad), None, "{bad:?}");
        }
    }
}
