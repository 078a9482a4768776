//! Longshore's overlay snapshotter.
//!
//! - Layers: `<root>/snapshots/<chain-id-hex>/fs`, one per chain ID, shared by every image and
//!   container. The image store unpacks into [`Snapshotter::begin_layer`]'s temporary directory
//!   and [`LayerWriter::commit`]s, which renames it into place and records it.
//! - Leases (in the daemon's redb database): images and containers hold the layers they use;
//!   [`Snapshotter::gc`] frees layers nobody holds.
//! - Containers: [`Snapshotter::prepare`] makes `<root>/containers/<id>/{upper,work}`;
//!   [`Snapshotter::mount`] mounts the overlay, with lowerdir lists of any length;
//!   [`Snapshotter::mount_idmapped`] the same over idmapped views of the layers, for a container
//!   in a user namespace.

mod db;
mod error;
mod idmap;
mod mount;
mod snapshotter;
mod usage;

pub use db::LayerRecord;
pub use error::{Error, Result};
pub use idmap::{attach, idmapped_bind, idmapped_tree, mount_overlay_idmapped};
pub use mount::{MountStrategy, OverlaySpec, bind_readonly, mount_overlay, unmount};
pub use snapshotter::{GcReport, LayerWriter, Rootfs, Snapshotter, container_lease, image_lease};
pub use usage::disk_usage;
