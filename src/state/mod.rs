//! The daemon's records of pods and containers: kept in memory for fast answers and written
//! through to the embedded `redb` database, so a restarted daemon finds everything again.
//! [`Store`] owns them all; its record writer is the only code that writes the tables.

mod container;
mod db;
mod names;
mod pod;
mod store;
mod writer;

pub use container::{Container, ContainerRecord, ContainerState, ExitInfo};
pub use db::{RecordStore, StoreError};
pub use names::NameRegistry;
pub use pod::{Pod, PodRecord, PodState};
pub use store::Store;

/// Nanoseconds since the Unix epoch, as CRI timestamps are.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A new random 64-hex-digit id, as containerd makes them.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// base64 serde for protobuf bytes inside JSON records.
pub(crate) mod proto_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
