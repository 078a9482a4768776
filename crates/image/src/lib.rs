//! Longshore's image store: pulls images into a content store and layer snapshots, and keeps
//! image records in the daemon's redb database.
//!
//! A pull resolves the reference (mirrors, auth and platform selection in `longshore-registry`),
//! fetches the config, then streams each missing layer straight from the network through
//! decompression into its snapshot directory, several layers at once, verifying the blob digest,
//! size and diff ID on the way. Nothing becomes visible until it is verified: a failed or
//! hostile pull leaves no blob, no snapshot and no record behind.

pub mod content;
mod error;
mod metadata;
mod pull;
mod singleflight;
mod store;
mod unpack;

pub use error::{Error, ErrorKind, Result};
pub use longshore_registry::{Credentials, Platform};
pub use metadata::{Image, ImageConfig};
pub use store::{FsUsage, ImageStore, ImageStoreConfig};
