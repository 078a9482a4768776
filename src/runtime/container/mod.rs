//! What the container RPCs share: a container's cgroup, its monitor, how its exit is watched and
//! recorded, the namespaces it joins, and what its OCI spec is built from.

pub(crate) mod cgroup;
pub(crate) mod exit;
pub(crate) mod idmapped_mounts;
pub(crate) mod image_volumes;
pub(crate) mod monitor;
pub(crate) mod namespaces;
pub(crate) mod restore;
pub(crate) mod spec_inputs;
