//! Manifest, index and descriptor documents: OCI image spec and Docker schema 2, which share a shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What the client asks for in `Accept`: every manifest kind we can use.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A pointer to content: media type, digest and size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// For index entries: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations, kept for completeness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type, if it states one.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type, if it states one.
    #[serde(default)]
    pub media_type: Option<String>,
    /// One entry per platform (or other artifact).
    pub manifests: Vec<Descriptor>,
}

/// A fetched manifest document of either kind.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A single-platform image manifest.
    Image(ImageManifest),
    /// A multi-platform index.
    Index(ImageIndex),
}

/// The `mediaType` field alone, to sniff a document served without a useful Content-Type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    schema_version: Option<u32>,
}

impl Manifest {
    /// Parse `bytes`, served as `content_type`, into a manifest or index.
    /// `what` names the document in errors.
    pub fn parse(what: &str, content_type: Option<&str>, bytes: &[u8]) -> Result<Self> {
        let sniff: Sniff = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(what, format!("manifest is not JSON: {e}")))?;
        if sniff.schema_version != Some(2) {
            return Err(Error::invalid(
                what,
                "manifest schemaVersion is not 2 (schema 1 is not supported)",
            ));
        }
        let media_type = sniff
            .media_type
            .as_deref()
            .or(content_type.map(|c| c.split(';').next().unwrap_or(c).trim()))
            .unwrap_or("");
        let is_index = match media_type {
            OCI_INDEX | DOCKER_MANIFEST_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            // Content-Type was generic (application/json): decide by shape.
            _ => sniff.manifests.is_some(),
        };
        if is_index {
            let index: ImageIndex = serde_json::from_slice(bytes)
                .map_err(|e| Error::invalid(what, format!("unparseable image index: {e}")))?;
            Ok(Manifest::Index(index))
        } else {
            let manifest: ImageManifest = serde_json::from_slice(bytes)
                .map_err(|e| Error::invalid(what, format!("unparseable image manifest: {e}")))?;
            Ok(Manifest::Image(manifest))
        }
    }
}

impl ImageIndex {
    /// The best entry for `platform`; entries without a platform are skipped.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter_map(|d| {
                d.platform
                    .as_ref()
                    .and_then(|p| platform.score(p))
                    .map(|s| (s, d))
            })
            // max_by_key keeps the last maximum; reverse so the first best entry wins, as in
            // containerd.
            .rev()
            .max_by_key(|(s, _)| *s)
            .map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_both_kinds() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{D}","size":1}},"layers":[]}}"#
        );
        assert!(matches!(
            Manifest::parse("m", None, m.as_bytes()).unwrap(),
            Manifest::Image(_)
        ));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"x","digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        assert!(matches!(
            Manifest::parse("i", Some("application/json"), i.as_bytes()).unwrap(),
            Manifest::Index(_)
        ));
    }

    #[test]
    fn refuses_garbage() {
        assert!(Manifest::parse("m", None, b"{not json").is_err());
        assert!(Manifest::parse("m", None, br#"{"schemaVersion":1}"#).is_err());
        let negative =
            format!(r#"{{"schemaVersion":2,"config":{{"digest":"{D}","size":-1}},"layers":[]}}"#);
        assert!(Manifest::parse("m", Some(OCI_MANIFEST), negative.as_bytes()).is_err());
    }
}
