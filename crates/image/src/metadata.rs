//! Image records in the daemon's redb database, and parsing of image configs.

use std::collections::{BTreeMap, HashMap};

use longshore_registry::Digest;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// image ID -> JSON [`Image`].
const IMAGES: TableDefinition<&str, &str> = TableDefinition::new("images");
/// repo tag or repo digest -> image ID.
const IMAGE_NAMES: TableDefinition<&str, &str> = TableDefinition::new("image_names");

/// An image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// `registry/repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `registry/repo@sha256:...` names (the digest the reference resolved to).
    pub repo_digests: Vec<String>,
    /// Bytes of config plus compressed layers, as the manifest states them.
    pub size: u64,
    /// The runtime config from the image config.
    pub config: ImageConfig,
    /// Layer chain IDs, base first.
    pub chain_ids: Vec<String>,
    /// Layer diff IDs, base first.
    pub diff_ids: Vec<String>,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// Content-store blobs this image holds (index, manifest, config).
    pub blobs: Vec<String>,
    /// Pinned images are never garbage-collected by kubelet.
    pub pinned: bool,
    /// `os/architecture[/variant]` from the config.
    pub platform: String,
    /// When the image was built, from the config (RFC 3339), if stated.
    pub created: Option<String>,
}

/// The parts of an image config a container runtime uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `USER`: `name`, `uid`, `name:group`, `uid:gid`; empty if unset.
    pub user: String,
    /// `ENV` as `KEY=value`.
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
    /// `WORKDIR`; empty if unset.
    pub working_dir: String,
    /// `STOPSIGNAL`; empty if unset.
    pub stop_signal: String,
    /// `VOLUME` paths, sorted.
    pub volumes: Vec<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`d ports (`80/tcp`), sorted.
    pub exposed_ports: Vec<String>,
}

/// The image config document (OCI or Docker), as much as we read of it.
#[derive(Debug, Deserialize)]
pub(crate) struct RawConfig {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<RawRuntimeConfig>,
    pub rootfs: RawRootfs,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawRootfs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RawRuntimeConfig {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    stop_signal: Option<String>,
    #[serde(default)]
    volumes: Option<HashMap<String, serde_json::Value>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    exposed_ports: Option<HashMap<String, serde_json::Value>>,
}

impl RawConfig {
    /// Parse a config blob; `what` names it in errors.
    pub(crate) fn parse(what: &str, bytes: &[u8]) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::hostile(what, format!("unparseable image config: {e}")))?;
        if raw.rootfs.kind != "layers" {
            return Err(Error::hostile(
                what,
                format!("rootfs type {:?} is not \"layers\"", raw.rootfs.kind),
            ));
        }
        Ok(raw)
    }

    pub(crate) fn platform(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }

    pub(crate) fn runtime(&self) -> ImageConfig {
        let c = self.config.as_ref();
        let sorted_keys = |m: Option<&HashMap<String, serde_json::Value>>| {
            let mut v: Vec<String> = m.map(|m| m.keys().cloned().collect()).unwrap_or_default();
            v.sort();
            v
        };
        ImageConfig {
            user: c.and_then(|c| c.user.clone()).unwrap_or_default(),
            env: c.and_then(|c| c.env.clone()).unwrap_or_default(),
            entrypoint: c.and_then(|c| c.entrypoint.clone()).unwrap_or_default(),
            cmd: c.and_then(|c| c.cmd.clone()).unwrap_or_default(),
            working_dir: c.and_then(|c| c.working_dir.clone()).unwrap_or_default(),
            stop_signal: c.and_then(|c| c.stop_signal.clone()).unwrap_or_default(),
            volumes: sorted_keys(c.and_then(|c| c.volumes.as_ref())),
            labels: c.and_then(|c| c.labels.clone()).unwrap_or_default(),
            exposed_ports: sorted_keys(c.and_then(|c| c.exposed_ports.as_ref())),
        }
    }
}

/// Chain IDs for diff IDs: `chain[0] = diff[0]`, `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub(crate) fn chain_ids(diff_ids: &[Digest]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.to_string(),
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()).to_string(),
        };
        out.push(next);
    }
    out
}

pub(crate) fn ensure_tables(db: &redb::Database) -> Result<()> {
    let tx = db.begin_write()?;
    tx.open_table(IMAGES)?;
    tx.open_table(IMAGE_NAMES)?;
    tx.commit()?;
    Ok(())
}

fn decode(key: &str, json: &str) -> Result<Image> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode(image: &Image) -> String {
    // A struct of strings, integers and maps always serializes.
    serde_json::to_string(image).unwrap_or_default()
}

pub(crate) fn get(db: &redb::Database, id: &str) -> Result<Option<Image>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(IMAGES)?;
    let Some(v) = table.get(id)? else {
        return Ok(None);
    };
    decode(id, v.value()).map(Some)
}

pub(crate) fn id_by_name(db: &redb::Database, name: &str) -> Result<Option<String>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(IMAGE_NAMES)?;
    Ok(table.get(name)?.map(|v| v.value().to_string()))
}

pub(crate) fn list(db: &redb::Database) -> Result<Vec<Image>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(IMAGES)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

/// Store `image` and point `tags` and `digests` at it, merging with an existing record of the
/// same ID. A tag that pointed at another image moves (that image keeps its other names).
pub(crate) fn put(
    db: &redb::Database,
    image: Image,
    tags: &[String],
    digests: &[String],
) -> Result<Image> {
    let tx = db.begin_write()?;
    let stored = {
        let mut images = tx.open_table(IMAGES)?;
        let mut names = tx.open_table(IMAGE_NAMES)?;
        let existing = images
            .get(image.id.as_str())?
            .map(|v| decode(&image.id, v.value()))
            .transpose()?;
        let mut record = match existing {
            Some(old) => Image {
                repo_tags: old.repo_tags,
                repo_digests: old.repo_digests,
                pinned: old.pinned,
                ..image
            },
            None => image,
        };
        for name in tags.iter().chain(digests) {
            let previous = names.get(name.as_str())?.map(|v| v.value().to_string());
            if let Some(other) = previous.filter(|o| o != &record.id) {
                let old = images
                    .get(other.as_str())?
                    .map(|v| decode(&other, v.value()))
                    .transpose()?;
                if let Some(mut old) = old {
                    old.repo_tags.retain(|t| t != name);
                    old.repo_digests.retain(|t| t != name);
                    images.insert(other.as_str(), encode(&old).as_str())?;
                }
            }
            names.insert(name.as_str(), record.id.as_str())?;
        }
        for t in tags {
            if !record.repo_tags.contains(t) {
                record.repo_tags.push(t.clone());
            }
        }
        for d in digests {
            if !record.repo_digests.contains(d) {
                record.repo_digests.push(d.clone());
            }
        }
        images.insert(record.id.as_str(), encode(&record).as_str())?;
        record
    };
    tx.commit()?;
    Ok(stored)
}

/// Drop one tag from an image.
pub(crate) fn remove_tag(db: &redb::Database, id: &str, tag: &str) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let mut images = tx.open_table(IMAGES)?;
        let mut names = tx.open_table(IMAGE_NAMES)?;
        names.remove(tag)?;
        let image = images.get(id)?.map(|v| decode(id, v.value())).transpose()?;
        if let Some(mut image) = image {
            image.repo_tags.retain(|t| t != tag);
            images.insert(id, encode(&image).as_str())?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Delete an image record and every name pointing at it.
pub(crate) fn remove(db: &redb::Database, id: &str) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let mut images = tx.open_table(IMAGES)?;
        let mut names = tx.open_table(IMAGE_NAMES)?;
        images.remove(id)?;
        let stale: Vec<String> = names
            .iter()?
            .filter_map(|e| e.ok())
            .filter(|(_, v)| v.value() == id)
            .map(|(k, _)| k.value().to_string())
            .collect();
        for name in stale {
            names.remove(name.as_str())?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Set the pinned flag.
pub(crate) fn set_pinned(db: &redb::Database, id: &str, pinned: bool) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let mut images = tx.open_table(IMAGES)?;
        let image = images.get(id)?.map(|v| decode(id, v.value())).transpose()?;
        let mut image = image.ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
        image.pinned = pinned;
        images.insert(id, encode(&image).as_str())?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a.to_string());
        assert_eq!(
            chain[1],
            Digest::of(format!("{a} {b}").as_bytes()).to_string()
        );
    }

    #[test]
    fn parses_docker_config_with_nulls() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"User":"1000","Env":null,"Cmd":["sh"],"ExposedPorts":{"80/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},"Labels":null},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cfg = RawConfig::parse("c", raw).unwrap();
        let rt = cfg.runtime();
        assert_eq!(rt.user, "1000");
        assert_eq!(rt.cmd, vec!["sh"]);
        assert_eq!(rt.exposed_ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(rt.volumes, vec!["/data"]);
        assert!(rt.env.is_empty() && rt.labels.is_empty());
        assert!(RawConfig::parse("c", b"{not json").is_err());
        assert!(RawConfig::parse("c", br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}"#).is_err());
    }
}
