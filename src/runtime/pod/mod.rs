//! What the pod sandbox RPCs share: a pod's cgroup, its files (`hostname`, `hosts`,
//! `resolv.conf`), its network (CNI), and the teardown that undoes what was made.

pub(crate) mod cgroup;
pub(crate) mod files;
pub(crate) mod network;
pub(crate) mod teardown;
pub(crate) mod userns;
