//! The Kubernetes Container Runtime Interface, v1 (`runtime.v1`), as Longshore serves it and as
//! its tests and benchmark tool call it: the generated messages, the tonic servers and clients
//! ([`v1`]), and a client for a CRI unix socket ([`client::CriClient`]) that works against
//! Longshore, containerd and CRI-O alike.

#![warn(missing_docs)]

pub mod client;

/// The CRI v1 API (`runtime.v1`), generated from the workspace's `proto/api.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}

pub use client::CriClient;
