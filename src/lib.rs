//! Longshore: a Kubernetes CRI runtime built on namespaces, cgroups and overlayfs.
//!
//! The binary (`src/main.rs`) is thin. This library holds the
//! daemon's front door ([`server`]), the services answering CRI ([`runtime`] for
//! RuntimeService, [`image`] for ImageService, one file per RPC), the pod and container records
//! ([`state`]) and the parts they share ([`daemon`]). The kernel-facing work lives in the
//! workspace's `crates/`.

pub mod crash_point;
pub mod daemon;
pub mod events;
pub mod image;
pub mod layer_gc;
pub mod metrics;
pub mod recovery;
pub mod runtime;
pub mod server;
pub mod state;
pub mod streaming_backend;
pub mod version;

/// A CRI client over a unix socket, from `crates/cri-api`.
pub use longshore_cri_api::client;
/// The CRI v1 API, from `crates/cri-api`.
pub use longshore_cri_api::v1 as api;
