//! The pod's network through CNI: ADD with the pinned network namespace at RunPodSandbox, DEL at
//! stop and again (harmlessly) at remove or after a crash. Plugin calls run in their own task so a
//! cancelled RPC cannot kill a plugin half-way.

use std::net::IpAddr;

use longshore_cni::{Bandwidth, DnsConfig, PodNetwork, PortMapping, Protocol};

use crate::server::RpcError;
use crate::server::status::RpcContext;
use tracing::info;

use crate::api::{self, PodSandboxConfig};
use crate::daemon::Daemon;
use crate::state::PodRecord;

/// Pod annotation asking for specific addresses (`10.86.0.50` or `10.86.0.50/16`, comma
/// separated, at most one per family), passed to plugins with the `ips` capability (host-local
/// honours it). CRI has no field for it; networks without the capability ignore it.
pub(crate) const IPS_ANNOTATION: &str = "longshore.io/ips";

/// Everything CNI ADD needs from the pod's config, checked before any part of the pod is made
/// so bad input fails fast with InvalidArgument. The netns is filled in by [`attach`].
pub(crate) fn request(config: &PodSandboxConfig, id: &str) -> Result<PodNetwork, RpcError> {
    let meta = config.metadata.clone().unwrap_or_default();
    let bandwidth =
        Bandwidth::from_annotations(&config.annotations).context("config.annotations")?;
    let dns = config.dns_config.as_ref().map(|d| DnsConfig {
        servers: d.servers.clone(),
        searches: d.searches.clone(),
        options: d.options.clone(),
    });
    Ok(PodNetwork {
        id: id.to_string(),
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        port_mappings: port_mappings(config)?,
        bandwidth,
        dns,
        ips: requested_ips(config)?,
        ..Default::default()
    })
}

/// Runs CNI ADD for a pod in its pinned netns and records its IPs. The record is persisted with
/// `network_attached` set before ADD starts, so a daemon that dies mid-ADD comes back knowing
/// that this pod needs a DEL (the CNI cache holds what DEL needs).
pub(crate) async fn attach(
    d: &Daemon,
    mut network: PodNetwork,
    record: &mut PodRecord,
) -> Result<(), RpcError> {
    network.netns_path = record
        .netns
        .clone()
        .ok_or_else(|| RpcError::internal("a pod with its own network has no pinned netns"))?;
    record.network_attached = true;
    d.state
        .record_pod(record)
        .await
        .context("recording the pod before its network")?;
    let cni = d.cni.clone();
    let result = tokio::spawn(async move { cni.setup(&network).await })
        .await
        .map_err(|e| RpcError::internal(format!("CNI task: {e}")))?
        .map_err(cni_error)?;
    // IPv4 first, then IPv6 (the crate orders them): the first is the pod's primary IP.
    record.ips = result
        .ips
        .iter()
        .map(|ip| ip.address.addr.to_string())
        .collect();
    info!(pod = %record.id, ips = ?record.ips, "pod network attached");
    Ok(())
}

/// Runs CNI DEL for a pod, with the config and arguments its ADD used (from the CNI cache).
/// Safe to repeat (a no-op once done) and after a crash; a vanished netns is fine. Must run
/// before the netns is unpinned: with the netns gone the bridge plugin cannot find the pod's
/// addresses and leaks their ipMasq rules.
pub(crate) async fn detach(d: &Daemon, record: &PodRecord) -> Result<(), RpcError> {
    let network = PodNetwork {
        id: record.id.clone(),
        netns_path: record.netns.clone().unwrap_or_default(),
        ..Default::default()
    };
    let cni = d.cni.clone();
    tokio::spawn(async move { cni.teardown(&network).await })
        .await
        .map_err(|e| RpcError::internal(format!("CNI task: {e}")))?
        .map_err(cni_error)?;
    info!(pod = %record.id, "pod network detached");
    Ok(())
}

/// `hostPort` mappings (those with a host port; the others need no plugin), ports checked.
fn port_mappings(config: &PodSandboxConfig) -> Result<Vec<PortMapping>, RpcError> {
    let mut out = Vec::new();
    for (i, p) in config.port_mappings.iter().enumerate() {
        if p.host_port <= 0 {
            continue;
        }
        let port = |field: &str, value: i32| {
            u16::try_from(value).ok().filter(|v| *v > 0).ok_or_else(|| {
                RpcError::invalid_argument(format!(
                    "config.port_mappings[{i}].{field} {value} is not a port (1-65535)"
                ))
            })
        };
        out.push(PortMapping {
            host_port: port("host_port", p.host_port)?,
            container_port: port("container_port", p.container_port)?,
            protocol: match p.protocol() {
                api::Protocol::Tcp => Protocol::Tcp,
                api::Protocol::Udp => Protocol::Udp,
                api::Protocol::Sctp => Protocol::Sctp,
            },
            host_ip: p.host_ip.clone(),
        });
    }
    Ok(out)
}

/// The addresses [`IPS_ANNOTATION`] asks for, each an IP with an optional prefix length.
fn requested_ips(config: &PodSandboxConfig) -> Result<Vec<String>, RpcError> {
    let Some(value) = config.annotations.get(IPS_ANNOTATION) else {
        return Ok(Vec::new());
    };
    let bad = |item: &str, why: &str| {
        RpcError::invalid_argument(format!(
            "annotation {IPS_ANNOTATION}={value:?}: {item:?} {why}"
        ))
    };
    let mut ips: Vec<String> = Vec::new();
    let mut families = (false, false);
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, prefix) = match item.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (item, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad(item, "is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if let Some(p) = prefix {
            p.parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| bad(item, "has a bad prefix length"))?;
        }
        let seen = if addr.is_ipv4() {
            &mut families.0
        } else {
            &mut families.1
        };
        if std::mem::replace(seen, true) {
            return Err(bad(item, "is a second address of the same family"));
        }
        ips.push(item.to_string());
    }
    Ok(ips)
}

/// CNI failures as gRPC errors carrying the plugin's own message.
fn cni_error(e: longshore_cni::Error) -> RpcError {
    let context = match &e {
        longshore_cni::Error::NotReady { .. } => "network not ready",
        _ => "pod network",
    };
    RpcError::from(e).context(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PortMapping as CriPortMapping;

    fn config() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                attempt: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn request_carries_names_ports_dns_and_bandwidth() {
        let mut c = config();
        c.port_mappings = vec![
            CriPortMapping {
                protocol: api::Protocol::Udp as i32,
                container_port: 53,
                host_port: 5353,
                host_ip: "127.0.0.1".into(),
            },
            CriPortMapping {
                protocol: 0,
                container_port: 80,
                host_port: 0,
                host_ip: String::new(),
            },
        ];
        c.dns_config = Some(api::DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec![],
            options: vec![],
        });
        c.annotations
            .insert("kubernetes.io/ingress-bandwidth".into(), "1M".into());
        let r = request(&c, "abc").unwrap();
        assert_eq!(
            (
                r.id.as_str(),
                r.name.as_str(),
                r.namespace.as_str(),
                r.uid.as_str()
            ),
            ("abc", "web", "default", "u1")
        );
        assert_eq!(
            r.port_mappings.len(),
            1,
            "a mapping without a host port needs no plugin"
        );
        assert_eq!(r.port_mappings[0].host_port, 5353);
        assert_eq!(r.port_mappings[0].protocol, Protocol::Udp);
        assert_eq!(r.dns.unwrap().servers, ["10.0.0.10"]);
        assert!(r.bandwidth.is_some());
        assert!(r.ips.is_empty());
    }

    #[test]
    fn ports_out_of_range_are_refused() {
        for (host, container) in [(70000, 80), (8080, 0), (8080, 65536)] {
            let mut c = config();
            c.port_mappings = vec![CriPortMapping {
                protocol: 0,
                container_port: container,
                host_port: host,
                host_ip: String::new(),
            }];
            let err = request(&c, "abc").unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains("port_mappings[0]"), "{err}");
        }
    }

    #[test]
    fn requested_ips_are_checked() {
        let mut c = config();
        c.annotations
            .insert(IPS_ANNOTATION.into(), " 10.1.0.9/24, fd00::9 ".into());
        assert_eq!(request(&c, "abc").unwrap().ips, ["10.1.0.9/24", "fd00::9"]);
        for bad in ["10.1.0.9/33", "nonsense", "10.1.0.9,10.1.0.10"] {
            c.annotations.insert(IPS_ANNOTATION.into(), bad.into());
            let err = request(&c, "abc").unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(err.message().contains(IPS_ANNOTATION), "{err}");
        }
    }
}
