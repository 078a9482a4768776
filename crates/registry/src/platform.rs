//! Platforms (os/architecture/variant) and choosing one manifest from an index.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A platform as image indexes describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// GOARCH-style architecture: amd64, arm64, arm, ...
    pub architecture: String,
    /// GOOS-style OS: linux.
    pub os: String,
    /// CPU variant: v7, v8, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// How well an index entry's platform fits this node; `None` if it cannot run here.
    /// Higher is better: an exact variant beats a missing one beats an older compatible one.
    pub(crate) fn score(&self, other: &Platform) -> Option<u32> {
        if other.os != self.os || other.architecture != self.architecture {
            return None;
        }
        match (&self.variant, &other.variant) {
            (_, None) => Some(2),
            (Some(mine), Some(theirs)) if normalize_variant(mine) == normalize_variant(theirs) => {
                Some(3)
            }
            // arm v7 runs v6 and v5 binaries, arm64 v8.x runs v8: older variants are acceptable.
            (Some(mine), Some(theirs)) => variant_number(theirs)
                .zip(variant_number(mine))
                .filter(|(t, m)| t <= m)
                .map(|_| 1),
            (None, Some(theirs)) => {
                (normalize_variant(theirs) == default_variant(&self.architecture)).then_some(3)
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_variant(v: &str) -> &str {
    match v {
        "8" | "v8.0" => "v8",
        "7" => "v7",
        other => other,
    }
}

fn default_variant(arch: &str) -> &'static str {
    match arch {
        "arm64" => "v8",
        "amd64" => "v1",
        _ => "",
    }
}

fn variant_number(v: &str) -> Option<u32> {
    v.trim_start_matches('v').split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::manifest::{Descriptor, ImageIndex};

    fn entry(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: Digest::of(&[n]),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        }
    }

    fn pick(entries: Vec<Descriptor>, arch: &str, variant: Option<&str>) -> Option<u8> {
        let index = ImageIndex {
            schema_version: 2,
            media_type: None,
            manifests: entries.clone(),
        };
        let p = Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        };
        index
            .select(&p)
            .map(|d| entries.iter().position(|e| e.digest == d.digest).unwrap() as u8)
    }

    #[test]
    fn selects_by_arch_and_variant() {
        let entries = vec![
            entry("arm64", Some("v8"), 0),
            entry("amd64", None, 1),
            entry("arm", Some("v6"), 2),
            entry("arm", Some("v7"), 3),
        ];
        assert_eq!(pick(entries.clone(), "amd64", None), Some(1));
        assert_eq!(pick(entries.clone(), "arm64", Some("v8")), Some(0));
        assert_eq!(pick(entries.clone(), "arm", Some("v7")), Some(3));
        assert_eq!(pick(entries.clone(), "arm", Some("v6")), Some(2));
        assert_eq!(pick(entries, "s390x", None), None);
        assert_eq!(
            pick(vec![entry("arm", Some("v7"), 0)], "arm", Some("v6")),
            None
        );
    }
}
