//! What the stats and metrics RPCs share: one sample per cgroup, cached briefly, converted to
//! CRI's types, plus network counters read inside a pod's network namespace.

pub(crate) mod cache;
pub(crate) mod convert;
pub(crate) mod net_dev;
pub(crate) mod sample;
