//! `UpdatePodSandboxResources`: kubelet tells the runtime a pod's new size after an in-place
//! resize (the sum of its containers' resources, plus the pod overhead).
//!
//! When kubelet names the pod's cgroup (`cgroup_parent`), kubelet's own cgroup manager has
//! already resized it and owns it; Longshore leaves it alone rather than race that manager.
//! When Longshore made the pod cgroup itself (no `cgroup_parent`), nobody else sizes it, so the
//! total is applied there.

use std::sync::Arc;

use crate::server::RpcError;
use crate::server::status::RpcContext;
use longshore_cgroups::{Cgroup, CgroupPath};
use tracing::debug;

use super::container;
use super::lookup;
use super::stats::sample::blocking;
use crate::api::{
    LinuxContainerResources, UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse,
};
use crate::daemon::Daemon;

pub(super) async fn update_pod_sandbox_resources(
    d: &Arc<Daemon>,
    req: UpdatePodSandboxResourcesRequest,
) -> Result<UpdatePodSandboxResourcesResponse, RpcError> {
    let pod = lookup::pod(d, &req.pod_sandbox_id)?;
    let record = pod.snapshot();
    if !record.owns_cgroup || record.cgroup.is_empty() {
        debug!(pod = %pod.id, cgroup = %record.cgroup, "pod cgroup is kubelet's; it applied the new size itself");
        return Ok(UpdatePodSandboxResourcesResponse {});
    }
    let total = total(req.resources.as_ref(), req.overhead.as_ref());
    let path = CgroupPath::new(&record.cgroup).context("pod cgroup")?;
    let d = d.clone();
    blocking(move || {
        let cgroup = Cgroup::open(&d.hierarchy, &path)
            .with_context(|| format!("opening pod cgroup {}", path.as_str()))?;
        cgroup
            .apply(&container::cgroup::resources(&total))
            .with_context(|| format!("pod cgroup {}", path.as_str()))
    })
    .await??;
    debug!(pod = %pod.id, "pod cgroup resized");
    Ok(UpdatePodSandboxResourcesResponse {})
}

/// The pod's size: its containers' sum plus the overhead. CPU shares and memory add up; a CPU
/// quota adds up when both are limited (the overhead's quota rescaled to the sum's period); an
/// unlimited sum stays unlimited. Everything else comes from the sum.
fn total(
    resources: Option<&LinuxContainerResources>,
    overhead: Option<&LinuxContainerResources>,
) -> LinuxContainerResources {
    let mut total = resources.cloned().unwrap_or_default();
    let Some(o) = overhead else { return total };
    if total.cpu_shares > 0 && o.cpu_shares > 0 {
        total.cpu_shares += o.cpu_shares;
    }
    if total.memory_limit_in_bytes > 0 && o.memory_limit_in_bytes > 0 {
        total.memory_limit_in_bytes += o.memory_limit_in_bytes;
    }
    if total.cpu_quota > 0 && o.cpu_quota > 0 {
        let overhead_quota = match (total.cpu_period, o.cpu_period) {
            (p, q) if p > 0 && q > 0 => o.cpu_quota.saturating_mul(p) / q,
            _ => o.cpu_quota,
        };
        total.cpu_quota += overhead_quota;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_adds_to_what_is_limited() {
        let sum = LinuxContainerResources {
            cpu_shares: 1024,
            cpu_quota: 200_000,
            cpu_period: 100_000,
            memory_limit_in_bytes: 256 << 20,
            cpuset_cpus: "0-1".into(),
            ..Default::default()
        };
        let overhead = LinuxContainerResources {
            cpu_shares: 102,
            cpu_quota: 5_000,
            cpu_period: 50_000,
            memory_limit_in_bytes: 32 << 20,
            ..Default::default()
        };
        let t = total(Some(&sum), Some(&overhead));
        assert_eq!(t.cpu_shares, 1126);
        assert_eq!(t.cpu_quota, 210_000, "5 ms per 50 ms is 10 ms per 100 ms");
        assert_eq!(t.cpu_period, 100_000);
        assert_eq!(t.memory_limit_in_bytes, 288 << 20);
        assert_eq!(t.cpuset_cpus, "0-1");
        let unlimited = LinuxContainerResources {
            cpu_quota: -1,
            ..Default::default()
        };
        let t = total(Some(&unlimited), Some(&overhead));
        assert_eq!(
            (t.cpu_quota, t.memory_limit_in_bytes, t.cpu_shares),
            (-1, 0, 0),
            "unlimited stays unlimited"
        );
        assert_eq!(total(Some(&sum), None), sum);
        assert_eq!(total(None, None), LinuxContainerResources::default());
    }
}
