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
#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("state record {id}: {reason}")]
    Decode {
        /// The record's id.
        id: String,
        /// The JSON error.
        reason: String,
    },
}

impl longshore_error::Classify for StoreError {
    fn kind(&self) -> longshore_error::Kind {
        longshore_error::Kind::Internal
    }
}

/// One change to the records, as the writer applies it.
pub(super) enum Op {
    /// Write a pod record (JSON).
    PutPod(String, Vec<u8>),
    /// Forget a pod.
    DeletePod(String),
    /// Write a container record (JSON).
    PutContainer(String, Vec<u8>),
    /// Forget a container.
    DeleteContainer(String),
}

/// A record as the database stores it.
pub(super) fn encode<T: Serialize>(id: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Decode {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The pod and container tables: read at start, written only by the record writer.
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

    /// Every pod record.
    pub fn pods(&self) -> Result<Vec<PodRecord>, StoreError> {
        self.all(PODS)
    }

    /// Every container record.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        self.all(CONTAINERS)
    }

    /// Applies `ops` in one transaction: all or none.
    pub(super) fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut pods = tx.open_table(PODS).map_err(db_err)?;
            let mut containers = tx.open_table(CONTAINERS).map_err(db_err)?;
            for op in ops {
                match op {
                    Op::PutPod(id, bytes) => pods.insert(id.as_str(), bytes.as_slice()).map(drop),
                    Op::DeletePod(id) => pods.remove(id.as_str()).map(drop),
                    Op::PutContainer(id, bytes) => {
                        containers.insert(id.as_str(), bytes.as_slice()).map(drop)
                    }
                    Op::DeleteContainer(id) => containers.remove(id.as_str()).map(drop),
                }
                .map_err(db_err)?;
            }
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
            let record = serde_json::from_slice(v.value()).map_err(|e| StoreError::Decode {
                id: k.value().to_string(),
                reason: e.to_string(),
            })?;
            out.push(record);
        }
        Ok(out)
    }
}
