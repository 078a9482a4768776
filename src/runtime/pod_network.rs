//! The pod's network through CNI: ADD with the pinned network namespace at RunPodSandbox, DEL at
//! stop and again (harmlessly) at remove or after a crash. Plugin calls run in their own task so a
//! cancelled RPC cannot kill a plugin half-way.

use longshore_cni::{Bandwidth, DnsConfig, PodNetwork, PortMapping, Protocol};
use tonic::Status;
use tracing::info;

use crate::api::{self, PodSandboxConfig};
use crate::daemon::Daemon;
use crate::state::PodRecord;

/// Runs CNI ADD for a pod and records its IPs.
pub(crate) async fn attach(d: &Daemon, config: &PodSandboxConfig, record: &mut PodRecord) -> Result<(), Status> {
    let netns = record
        .netns
        .clone()
        .ok_or_else(|| Status::internal("a pod with its own network has no pinned netns"))?;
    let network = pod_network(config, &record.id, netns)?;
    let cni = d.cni.clone();
    // Marked before ADD: a crash mid-ADD still gets a DEL at teardown.
    record.network_attached = true;
    let result = tokio::spawn(async move { cni.setup(&network).await })
        .await
        .map_err(|e| Status::internal(format!("CNI task: {e}")))?
        .map_err(cni_status)?;
    record.ips = result.ips.iter().map(|ip| ip.address.addr.to_string()).collect();
    info!(pod = %record.id, ips = ?record.ips, "pod network attached");
    Ok(())
}

/// Runs CNI DEL for a pod. Safe to repeat; a vanished netns is fine.
pub(crate) async fn detach(d: &Daemon, record: &PodRecord) -> Result<(), Status> {
    let network = PodNetwork {
        id: record.id.clone(),
        netns_path: record.netns.clone().unwrap_or_default(),
        ..Default::default()
    };
    let cni = d.cni.clone();
    tokio::spawn(async move { cni.teardown(&network).await })
        .await
        .map_err(|e| Status::internal(format!("CNI task: {e}")))?
        .map_err(cni_status)?;
    info!(pod = %record.id, "pod network detached");
    Ok(())
}

fn pod_network(config: &PodSandboxConfig, id: &str, netns: std::path::PathBuf) -> Result<PodNetwork, Status> {
    let meta = config.metadata.clone().unwrap_or_default();
    let bandwidth = Bandwidth::from_annotations(&config.annotations)
        .map_err(|e| Status::invalid_argument(format!("config.annotations: {e}")))?;
    let port_mappings = config
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| PortMapping {
            host_port: p.host_port as u16,
            container_port: p.container_port as u16,
            protocol: match p.protocol() {
                api::Protocol::Tcp => Protocol::Tcp,
                api::Protocol::Udp => Protocol::Udp,
                api::Protocol::Sctp => Protocol::Sctp,
            },
            host_ip: p.host_ip.clone(),
        })
        .collect();
    let dns = config.dns_config.as_ref().map(|d| DnsConfig {
        servers: d.servers.clone(),
        searches: d.searches.clone(),
        options: d.options.clone(),
    });
    Ok(PodNetwork {
        id: id.to_string(),
        netns_path: netns,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        port_mappings,
        bandwidth,
        dns,
        ..Default::default()
    })
}

/// CNI failures as gRPC errors carrying the plugin's own message.
fn cni_status(e: longshore_cni::Error) -> Status {
    match &e {
        longshore_cni::Error::NotReady { .. } => Status::failed_precondition(format!("network not ready: {e}")),
        _ => Status::unavailable(format!("pod network: {e}")),
    }
}
