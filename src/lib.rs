//! Longshore: a Kubernetes CRI runtime built on namespaces, cgroups and overlayfs.
//!
//! The binary (`src/main.rs`) is thin; this library holds the generated CRI API and the
//! services that answer it.

pub mod api;
