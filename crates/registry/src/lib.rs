//! Longshore's registry client for the OCI distribution API (Docker Registry v2).
//!
//! - [`Reference`] parses and normalizes image names (`busybox` -> `docker.io/library/busybox:latest`).
//! - [`Client::session`] picks hosts from containerd-style `hosts.toml` mirrors ([`hosts`]) and
//!   credentials from the request or a docker config.json ([`Credentials`]).
//! - [`Session::pull_manifest`] resolves a tag or digest, choosing the node's platform from an
//!   index; [`Session::fetch_blob`] streams a blob for the caller to digest and unpack as it arrives.

mod auth;
mod client;
mod credentials;
mod digest;
mod error;
pub mod hosts;
mod manifest;
mod platform;
mod reference;

pub use client::{
    BlobStream, Client, Fetched, MAX_MANIFEST_BYTES, RegistryConfig, ResolvedImage, Session,
};
pub use credentials::{Credentials, from_docker_config};
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use manifest::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, ImageIndex, ImageManifest,
    MANIFEST_ACCEPT, Manifest, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
pub use platform::Platform;
pub use reference::{DOCKER_HUB, Reference};
