//! What the runtime tells us about a pod, and how it becomes `CNI_ARGS` and `runtimeConfig`.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::bandwidth::Bandwidth;

/// The interface name a pod's network gets unless told otherwise.
pub const DEFAULT_IFNAME: &str = "eth0";

/// One pod sandbox's network attachment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// The sandbox id; passed to plugins as `CNI_CONTAINERID` and `K8S_POD_INFRA_CONTAINER_ID`.
    pub id: String,
    /// The pod's network namespace (a pinned nsfs bind mount or `/proc/<pid>/ns/net`).
    pub netns_path: PathBuf,
    /// The interface the default network creates in the pod, `eth0`.
    pub ifname: String,
    /// Pod name (`K8S_POD_NAME`).
    pub name: String,
    /// Pod namespace (`K8S_POD_NAMESPACE`).
    pub namespace: String,
    /// Pod UID (`K8S_POD_UID`).
    pub uid: String,
    /// `hostPort` mappings, for plugins with the `portMappings` capability. Mappings with
    /// `host_port` 0 are not passed (as containerd does).
    pub port_mappings: Vec<PortMapping>,
    /// Traffic shaping, for plugins with the `bandwidth` capability.
    pub bandwidth: Option<Bandwidth>,
    /// DNS settings, for plugins with the `dns` capability.
    pub dns: Option<DnsConfig>,
    /// Requested addresses (`10.1.2.3/24`), for plugins with the `ips` capability.
    pub ips: Vec<String>,
}

impl Default for PodNetwork {
    fn default() -> Self {
        PodNetwork {
            id: String::new(),
            netns_path: PathBuf::new(),
            ifname: DEFAULT_IFNAME.into(),
            name: String::new(),
            namespace: String::new(),
            uid: String::new(),
            port_mappings: Vec::new(),
            bandwidth: None,
            dns: None,
            ips: Vec::new(),
        }
    }
}

/// A `hostPort` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// The port on the host.
    pub host_port: u16,
    /// The port in the pod.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// The host address to bind; empty for all.
    pub host_ip: String,
}

/// A port mapping's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    /// The lower-case names the portmap plugin expects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// The pod's DNS settings (CRI `DNSConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// resolv.conf options.
    pub options: Vec<String>,
}

impl PodNetwork {
    /// `CNI_ARGS` as key/value pairs; `IgnoreUnknown=1` lets plugins skip the keys they do
    /// not know instead of failing.
    pub(crate) fn cni_args(&self) -> Vec<(String, String)> {
        [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", self.namespace.as_str()),
            ("K8S_POD_NAME", self.name.as_str()),
            ("K8S_POD_INFRA_CONTAINER_ID", self.id.as_str()),
            ("K8S_POD_UID", self.uid.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The capability arguments; each goes into the `runtimeConfig` of those plugins that
    /// declare the capability. Empty ones are left out.
    pub(crate) fn capability_args(&self) -> Map<String, Value> {
        let mut caps = Map::new();
        let mappings: Vec<Value> = self
            .port_mappings
            .iter()
            .filter(|m| m.host_port != 0)
            .map(port_mapping_json)
            .collect();
        if !mappings.is_empty() {
            caps.insert("portMappings".into(), Value::Array(mappings));
        }
        if let Some(bw) = &self.bandwidth {
            caps.insert("bandwidth".into(), bw.to_json());
        }
        if let Some(dns) = &self.dns {
            let dns =
                json!({"servers": dns.servers, "searches": dns.searches, "options": dns.options});
            caps.insert("dns".into(), dns);
        }
        if !self.ips.is_empty() {
            caps.insert("ips".into(), json!(self.ips));
        }
        caps
    }
}

fn port_mapping_json(m: &PortMapping) -> Value {
    let mut v = json!({
        "hostPort": m.host_port,
        "containerPort": m.container_port,
        "protocol": m.protocol.to_string(),
    });
    if !m.host_ip.is_empty() {
        v["hostIP"] = Value::String(m.host_ip.clone());
    }
    v
}

/// Joins key/value pairs into the `CNI_ARGS` form `K1=V1;K2=V2`.
pub(crate) fn join_cni_args(args: &[(String, String)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodNetwork {
        PodNetwork {
            id: "abc".into(),
            name: "web".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn cni_args_carry_the_kubernetes_keys() {
        assert_eq!(
            join_cni_args(&pod().cni_args()),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
             K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
        );
    }

    #[test]
    fn capability_args_leave_out_what_is_empty() {
        assert!(pod().capability_args().is_empty());
        let mut p = pod();
        p.port_mappings = vec![
            PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: String::new(),
            },
            PortMapping {
                host_port: 0,
                container_port: 53,
                protocol: Protocol::Udp,
                host_ip: String::new(),
            },
            PortMapping {
                host_port: 5353,
                container_port: 53,
                protocol: Protocol::Sctp,
                host_ip: "127.0.0.1".into(),
            },
        ];
        p.dns = Some(DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        });
        p.ips = vec!["10.1.0.9/24".into()];
        let caps = Value::Object(p.capability_args());
        assert_eq!(
            caps,
            json!({
                "portMappings": [
                    {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 5353, "containerPort": 53, "protocol": "sctp", "hostIP": "127.0.0.1"}
                ],
                "dns": {"servers": ["10.0.0.10"], "searches": ["svc.cluster.local"], "options": ["ndots:5"]},
                "ips": ["10.1.0.9/24"]
            })
        );
    }
}
