//! redb tables for pod and container records. Values are JSON, so a record can grow fields
//! without a migration (missing fields take their defaults).

use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ContainerRecord, PodRecord};

const PODS: TableDefinition<&str, &[u8]> = TableDefinition::new("pods");
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused.
    #[error("state database: {0}")]
    Db(String),
    /// A stored record holds a config that does not decode.
    #[error("state record {id}: {reason}")]
    Corrupt {
        /// The record's id.
        id: String,
        /// What does not decode.
        reason: String,
    },
    /// A stored record does not parse.
    #[error("state record {id}: {source}")]
    Decode {
        /// The record's id.
        id: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl longshore_error::Classify for StoreError {
    fn kind(&self) -> longshore_error::Kind {
        longshore_error::Kind::Internal
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Write-through persistence of pod and container records.
#[derive(Clone)]
pub struct RecordStore {
    db: Arc<Database>,
}

impl RecordStore {
    /// Uses the daemon's database, creating the tables if needed.
    pub fn new(db: Arc<Database>) -> Result<Self, StoreError> {
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(PODS).map_err(db_err)?;
        tx.open_table(CONTAINERS).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(RecordStore { db })
    }

    /// Writes (or replaces) a pod record.
    pub fn put_pod(&self, record: &PodRecord) -> Result<(), StoreError> {
        self.put(PODS, &record.id, record)
    }

    /// Writes (or replaces) a container record.
    pub fn put_container(&self, record: &ContainerRecord) -> Result<(), StoreError> {
        self.put(CONTAINERS, &record.id, record)
    }

    /// Deletes a pod record; a missing one is fine.
    pub fn delete_pod(&self, id: &str) -> Result<(), StoreError> {
        self.delete(PODS, id)
    }

    /// Deletes a container record; a missing one is fine.
    pub fn delete_container(&self, id: &str) -> Result<(), StoreError> {
        self.delete(CONTAINERS, id)
    }

    /// Every pod record.
    pub fn pods(&self) -> Result<Vec<PodRecord>, StoreError> {
        self.all(PODS)
    }

    /// Every container record.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        self.all(CONTAINERS)
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Decode {
            id: id.to_string(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table).map_err(db_err)?;
            t.insert(id, bytes.as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn delete(&self, table: TableDefinition<&str, &[u8]>, id: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table).map_err(db_err)?;
            t.remove(id).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    fn all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(table).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let record =
                serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
                    id: k.value().to_string(),
                    source,
                })?;
            out.push(record);
        }
        Ok(out)
    }
}
