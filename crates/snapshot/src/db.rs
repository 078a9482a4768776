//! The snapshotter's tables in the daemon's redb database.

use redb::{
    MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// chain ID -> JSON [`LayerRecord`]: layers that are fully unpacked.
pub(crate) const LAYERS: TableDefinition<&str, &str> = TableDefinition::new("snapshot_layers");
/// lease owner ("image:<id>", "container:<id>", "pull:<n>") -> chain IDs it holds.
pub(crate) const LEASES: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("snapshot_leases");

/// What we know about an unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// The chain ID of the layer below, `None` for a base layer.
    pub parent: Option<String>,
    /// The uncompressed digest of this layer's tar.
    pub diff_id: String,
    /// Bytes the unpacked files take on disk.
    pub size_bytes: u64,
    /// Inodes the unpacked files use.
    pub inodes: u64,
}

pub(crate) fn ensure_tables(db: &redb::Database) -> Result<()> {
    let tx = db.begin_write()?;
    tx.open_table(LAYERS)?;
    tx.open_multimap_table(LEASES)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_layer(db: &redb::Database, chain_id: &str) -> Result<Option<LayerRecord>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(LAYERS)?;
    let Some(value) = table.get(chain_id)? else {
        return Ok(None);
    };
    parse(chain_id, value.value()).map(Some)
}

pub(crate) fn all_layers(db: &redb::Database) -> Result<Vec<(String, LayerRecord)>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(LAYERS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_string(), parse(k.value(), v.value())?));
    }
    Ok(out)
}

/// Every chain ID some lease holds.
pub(crate) fn leased_chain_ids(
    tx: &redb::WriteTransaction,
) -> Result<std::collections::HashSet<String>> {
    let leases = tx.open_multimap_table(LEASES)?;
    let mut held = std::collections::HashSet::new();
    for entry in leases.iter()? {
        let (_, values) = entry?;
        for v in values {
            held.insert(v?.value().to_string());
        }
    }
    Ok(held)
}

fn parse(key: &str, json: &str) -> Result<LayerRecord> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode(record: &LayerRecord) -> String {
    // Serializing a plain struct of strings and integers cannot fail.
    serde_json::to_string(record).unwrap_or_default()
}
