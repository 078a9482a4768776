//! Network checks for a [`TestDaemon`] with a CNI network (`Options { cni: true, .. }`): its
//! conflist, host-local reservations, bridge ports, CNI cache, and a [`HostNet`] guard that
//! notes the host's iptables and forwarding sysctls before a test, finds the rules the test's
//! pods left, and removes them (and portmap's shared chains, if the test made them) at the end.
//!
//! Only adds to the harness: nothing here changes how a daemon is started.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use longshore::api::*;

use super::TestDaemon;

// Portmap's shared chains (made once per host, never removed) and the iptables readers.
pub use longshore_testkit::iptables::{SHARED_CHAINS, lines as iptables_lines};
use longshore_testkit::iptables::{remove as remove_rules, remove_unused_shared_chains};

/// Host sysctls the bridge plugin may turn on (`isGateway`); restored after each test.
const FORWARDING_SYSCTLS: &[&str] = &[
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
];
/// Where the harness writes the test network's conflist (inside the daemon's CNI conf dir).
const CONFLIST_FILE: &str = "cni/10-test.conflist";

impl TestDaemon {
    /// The test network's bridge; panics for a daemon without one.
    pub fn bridge(&self) -> String {
        self.network
            .as_ref()
            .expect("a daemon with a CNI network")
            .0
            .clone()
    }

    /// The test network's CNI name (`<bridge>-net`).
    pub fn cni_network_name(&self) -> String {
        format!("{}-net", self.bridge())
    }

    /// `10.231.<octet>.<host>`: an address in the test network's /24.
    pub fn cni_ip(&self, host: u8) -> String {
        let octet = self
            .network
            .as_ref()
            .expect("a daemon with a CNI network")
            .1;
        format!("10.231.{octet}.{host}")
    }

    /// The test network's conflist file.
    pub fn cni_conflist_path(&self) -> PathBuf {
        self.dir.path().join(CONFLIST_FILE)
    }

    /// The test network's conflist as it is now.
    pub fn cni_conflist(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.cni_conflist_path()).unwrap()).unwrap()
    }

    /// Replaces the conflist; the daemon reads it again on its next pod start or status query.
    pub fn write_cni_conflist(&self, conf: &serde_json::Value) {
        std::fs::write(
            self.cni_conflist_path(),
            serde_json::to_vec_pretty(conf).unwrap(),
        )
        .unwrap();
    }

    /// host-local's directory for the test network.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam").join(self.cni_network_name())
    }

    /// Addresses host-local holds for the test network (its files named by IP).
    pub fn reserved_ips(&self) -> Vec<String> {
        let mut ips: Vec<String> = std::fs::read_dir(self.ipam_dir())
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ips.retain(|n| n.parse::<std::net::IpAddr>().is_ok());
        ips.sort();
        ips
    }

    /// Interfaces enslaved to the test bridge: the pods' host-side veths.
    pub fn bridge_ports(&self) -> Vec<String> {
        let dir = PathBuf::from("/sys/class/net")
            .join(self.bridge())
            .join("brif");
        let mut ports: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ports.sort();
        ports
    }

    /// The CNI result cache's entries (`<id>/<network>-<ifname>.json`), as parsed JSON.
    pub fn cni_cache_entries(&self) -> Vec<(PathBuf, serde_json::Value)> {
        let mut out = Vec::new();
        for pod in std::fs::read_dir(self.dir.path().join("cni-cache"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(pod.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let value = std::fs::read(f.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(serde_json::Value::Null);
                out.push((f.path(), value));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The daemon's Status `NetworkReady` condition.
    pub async fn network_ready(&mut self) -> RuntimeCondition {
        let status = self
            .client
            .runtime
            .status(StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
        status
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.r#type == "NetworkReady")
            .expect("a NetworkReady condition")
    }

    /// A pod's status (verbose, so `info` names its netns).
    pub async fn pod_status(&mut self, id: &str) -> PodSandboxStatusResponse {
        self.client
            .runtime
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            })
            .await
            .unwrap_or_else(|e| panic!("PodSandboxStatus: {e}\n{}", self.daemon_log()))
            .into_inner()
    }

    /// A pod's IPs from PodSandboxStatus, primary first.
    pub async fn pod_ips(&mut self, id: &str) -> Vec<String> {
        let net = self
            .pod_status(id)
            .await
            .status
            .unwrap()
            .network
            .unwrap_or_default();
        let mut ips = vec![net.ip];
        ips.extend(net.additional_ips.into_iter().map(|p| p.ip));
        ips.retain(|ip| !ip.is_empty());
        ips
    }

    /// Stops and removes one pod through the API.
    pub async fn stop_and_remove_pod(&mut self, id: &str) {
        self.client
            .runtime
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", self.daemon_log()));
        self.client
            .runtime
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", self.daemon_log()));
    }

    /// Asserts that nothing of the test network is held: no veth on the bridge, no host-local
    /// reservation, no CNI cache entry, no pinned netns (pod state folders).
    pub fn assert_network_released(&self) {
        assert!(
            self.bridge_ports().is_empty(),
            "veths left on {}: {:?}",
            self.bridge(),
            self.bridge_ports()
        );
        assert!(
            self.reserved_ips().is_empty(),
            "IPs still reserved: {:?}",
            self.reserved_ips()
        );
        let cache = self.cni_cache_entries();
        assert!(cache.is_empty(), "CNI cache entries left: {cache:#?}");
        let pins: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&*self.dir.path().to_string_lossy()) && l.contains("/ns/net"))
            .map(String::from)
            .collect();
        assert!(pins.is_empty(), "netns pins left: {pins:#?}");
    }
}

/// The host's iptables and forwarding sysctls before a test; on drop, removes what the test's
/// network left and restores the sysctls.
pub struct HostNet {
    /// The test network's name; every per-pod rule's comment carries it.
    network: String,
    /// `10.231.<octet>.`: rules naming pod addresses.
    subnet_prefix: String,
    iptables_before: BTreeSet<String>,
    sysctls_before: Vec<(&'static str, String)>,
    /// Per-pod chains seen jumped to from our rules; their own lines name neither of the above.
    chains: Mutex<BTreeSet<String>>,
}

impl HostNet {
    /// Notes the host's state now, before `d` makes any pod.
    pub fn new(d: &TestDaemon) -> HostNet {
        HostNet {
            network: d.cni_network_name(),
            subnet_prefix: d
                .cni_ip(0)
                .strip_suffix('0')
                .unwrap_or_default()
                .to_string(),
            iptables_before: iptables_lines(),
            sysctls_before: FORWARDING_SYSCTLS
                .iter()
                .map(|p| (*p, std::fs::read_to_string(p).unwrap_or_default()))
                .collect(),
            chains: Mutex::new(BTreeSet::new()),
        }
    }

    /// iptables lines added since [`HostNet::new`] that belong to this test's pods: those naming
    /// its network or subnet, and the chains they jump to. Portmap's shared chains are left out.
    pub fn pod_rules(&self) -> Vec<String> {
        let added: Vec<String> = iptables_lines()
            .difference(&self.iptables_before)
            .cloned()
            .collect();
        let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        for line in &added {
            if line.contains(&self.network) || line.contains(&self.subnet_prefix) {
                if let Some(target) = line
                    .split(" -j ")
                    .nth(1)
                    .and_then(|t| t.split_whitespace().next())
                {
                    if target.starts_with("CNI-") && !SHARED_CHAINS.contains(&target) {
                        chains.insert(target.to_string());
                    }
                }
            }
        }
        added
            .into_iter()
            .filter(|l| {
                let own_chain = chains.iter().any(|c| {
                    l.ends_with(&format!(" :{c}"))
                        || l.contains(&format!("-A {c} "))
                        || l.contains(&format!("-j {c}"))
                });
                own_chain || l.contains(&self.network) || l.contains(&self.subnet_prefix)
            })
            .filter(|l| !SHARED_CHAINS.iter().any(|c| l.ends_with(&format!(" :{c}"))))
            .collect()
    }

    /// Asserts that the test's pods left no iptables rule or chain.
    pub fn assert_no_pod_rules(&self) {
        let left = self.pod_rules();
        assert!(
            left.is_empty(),
            "iptables rules of the test's pods left: {left:#?}"
        );
    }
}

impl Drop for HostNet {
    fn drop(&mut self) {
        remove_rules(&self.pod_rules());
        remove_unused_shared_chains(&self.iptables_before);
        for (path, value) in &self.sysctls_before {
            if std::fs::read_to_string(path).is_ok_and(|now| now != *value) {
                let _ = std::fs::write(path, value);
            }
        }
    }
}
