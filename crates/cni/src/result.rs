//! Reading a plugin chain's result: the pod's addresses, interfaces, routes and DNS.
//!
//! Results of spec 0.3.0 and later list `interfaces` and `ips` (with a `version` field before
//! 1.0.0, ignored here); 0.1.0 and 0.2.0 results carry one `ip4` and one `ip6` block.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

/// What the pod's default network gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkResult {
    /// The pod's addresses on its interface: IPv4 ones first, then IPv6, each in plugin order.
    /// The first is the pod's primary IP.
    pub ips: Vec<IpConfig>,
    /// Interfaces the plugins created or touched (host and pod side).
    pub interfaces: Vec<Interface>,
    /// Routes the plugins installed in the pod.
    pub routes: Vec<Route>,
    /// DNS settings the plugins returned (most return none).
    pub dns: Dns,
    /// The last plugin's result as it printed it.
    pub raw: Value,
}

/// One address of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with its prefix length.
    pub address: Cidr,
    /// The gateway, if the plugin named one.
    pub gateway: Option<IpAddr>,
    /// The interface it is on, when the plugin said.
    pub interface: Option<String>,
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its MAC address.
    #[serde(default)]
    pub mac: String,
    /// The netns path it lives in; empty for a host-side interface.
    #[serde(default)]
    pub sandbox: String,
}

/// A route in the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination.
    pub dst: Cidr,
    /// The next hop; `None` for the interface's default gateway.
    pub gw: Option<IpAddr>,
}

/// DNS settings in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default)]
    pub domain: String,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// resolv.conf options.
    #[serde(default)]
    pub options: Vec<String>,
}

/// An address with a prefix length, `10.1.0.5/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} has no prefix length"))?;
        let addr: IpAddr = addr.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = len
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?}: bad prefix length"))?;
        Ok(Cidr { addr, prefix_len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl NetworkResult {
    /// The pod's primary IP (its first IPv4 address, else its first IPv6 one).
    pub fn primary_ip(&self) -> Option<IpAddr> {
        self.ips.first().map(|ip| ip.address.addr)
    }

    /// Reads a result; `ifname` picks the pod's own addresses out of all the result lists.
    pub(crate) fn from_raw(raw: Value, ifname: &str) -> Result<NetworkResult, String> {
        let parsed: RawResult = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let interfaces = parsed.interfaces;
        let mut ips = Vec::new();
        let mut routes = parse_routes(&parsed.routes)?;
        for ip in &parsed.ips {
            let interface = ip
                .interface
                .and_then(|i| interfaces.get(i))
                .map(|i| i.name.clone());
            ips.push(IpConfig {
                address: ip.address.parse()?,
                gateway: parse_opt_ip(ip.gateway.as_deref())?,
                interface,
            });
        }
        for legacy in [&parsed.ip4, &parsed.ip6].into_iter().flatten() {
            ips.push(IpConfig {
                address: legacy.ip.parse()?,
                gateway: parse_opt_ip(legacy.gateway.as_deref())?,
                interface: None,
            });
            routes.extend(parse_routes(&legacy.routes)?);
        }
        let dns = parsed.dns.unwrap_or_default();
        Ok(NetworkResult {
            ips: pod_ips(ips, &interfaces, ifname),
            interfaces,
            routes,
            dns,
            raw,
        })
    }
}

/// Keeps the addresses on the pod's own interface (named `ifname`, inside a sandbox) when
/// the result says which those are, and orders IPv4 before IPv6 as containerd does.
fn pod_ips(ips: Vec<IpConfig>, interfaces: &[Interface], ifname: &str) -> Vec<IpConfig> {
    let in_pod = |ip: &IpConfig| {
        ip.interface.as_deref().is_some_and(|name| {
            interfaces
                .iter()
                .any(|i| i.name == name && name == ifname && !i.sandbox.is_empty())
        })
    };
    let mut chosen: Vec<IpConfig> = ips.iter().filter(|ip| in_pod(ip)).cloned().collect();
    if chosen.is_empty() {
        chosen = ips;
    }
    chosen.sort_by_key(|ip| ip.address.addr.is_ipv6());
    chosen
}

fn parse_routes(routes: &[RawRoute]) -> Result<Vec<Route>, String> {
    routes
        .iter()
        .map(|r| {
            Ok(Route {
                dst: r.dst.parse()?,
                gw: parse_opt_ip(r.gw.as_deref())?,
            })
        })
        .collect()
}

fn parse_opt_ip(s: Option<&str>) -> Result<Option<IpAddr>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e| format!("{s:?}: {e}")),
    }
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<RawIp>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    ip4: Option<RawLegacyIp>,
    #[serde(default)]
    ip6: Option<RawLegacyIp>,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    #[serde(default)]
    gw: Option<String>,
}

#[derive(Deserialize)]
struct RawLegacyIp {
    ip: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_1_0_result_and_puts_ipv4_first() {
        let raw = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/p"}
            ],
            "ips": [
                {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2},
                {"address": "10.1.0.1/24", "interface": 0}
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0"}],
            "dns": {"nameservers": ["10.0.0.10"]}
        });
        let r = NetworkResult::from_raw(raw.clone(), "eth0").unwrap();
        let ips: Vec<String> = r.ips.iter().map(|ip| ip.address.to_string()).collect();
        assert_eq!(ips, ["10.1.0.5/24", "fd00::5/64"]);
        assert_eq!(r.primary_ip(), Some("10.1.0.5".parse().unwrap()));
        assert_eq!(r.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(r.ips[0].interface.as_deref(), Some("eth0"));
        assert_eq!(r.routes.len(), 2);
        assert_eq!(r.routes[1].gw, None);
        assert_eq!(r.dns.nameservers, ["10.0.0.10"]);
        assert_eq!(r.interfaces[2].sandbox, "/run/netns/p");
        assert_eq!(r.raw, raw);
    }

    #[test]
    fn reads_a_0_3_result_without_interfaces() {
        let raw = json!({
            "cniVersion": "0.3.1",
            "ips": [{"version": "4", "address": "192.168.1.7/16"}]
        });
        let r = NetworkResult::from_raw(raw, "eth0").unwrap();
        assert_eq!(r.primary_ip(), Some("192.168.1.7".parse().unwrap()));
        assert_eq!(r.ips[0].interface, None);
    }

    #[test]
    fn reads_a_0_2_result() {
        let raw = json!({
            "cniVersion": "0.2.0",
            "ip4": {"ip": "10.22.0.7/16", "gateway": "10.22.0.1",
                    "routes": [{"dst": "0.0.0.0/0"}]},
            "dns": {}
        });
        let r = NetworkResult::from_raw(raw, "eth0").unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.22.0.7/16");
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in ["10.1.0.5", "10.1.0.5/33", "nonsense/8"] {
            let raw = json!({"ips": [{"address": bad}]});
            assert!(NetworkResult::from_raw(raw, "eth0").is_err(), "{bad}");
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// Arbitrary JSON, biased toward the keys and values results have.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                Just(json!("10.1.0.5/24")),
                Just(json!("fd00::5/64")),
                Just(json!("10.1.0.1")),
                Just(json!("eth0")),
                "[0-9a-f.:/]{0,20}".prop_map(Value::from),
                "\\PC{0,12}".prop_map(Value::from),
            ];
            let key = prop_oneof![
                Just("interfaces"),
                Just("ips"),
                Just("routes"),
                Just("dns"),
                Just("ip4"),
                Just("ip6"),
                Just("address"),
                Just("gateway"),
                Just("interface"),
                Just("dst"),
                Just("gw"),
                Just("ip"),
                Just("name"),
                Just("sandbox"),
                Just("nameservers"),
                Just("cniVersion"),
            ]
            .prop_map(str::to_string);
            leaf.prop_recursive(4, 48, 6, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                    proptest::collection::btree_map(key.clone(), inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn check(raw: Value, ifname: &str) -> Result<(), TestCaseError> {
            let Ok(r) = NetworkResult::from_raw(raw.clone(), ifname) else {
                return Ok(());
            };
            prop_assert_eq!(&r.raw, &raw);
            // IPv4 first, and the primary IP is the first address.
            prop_assert!(
                r.ips
                    .windows(2)
                    .all(|w| !w[0].address.addr.is_ipv6() || w[1].address.addr.is_ipv6())
            );
            prop_assert_eq!(r.primary_ip(), r.ips.first().map(|i| i.address.addr));
            for ip in &r.ips {
                let max = if ip.address.addr.is_ipv4() { 32 } else { 128 };
                prop_assert!(ip.address.prefix_len <= max);
                // A named interface is one the result lists.
                if let Some(name) = &ip.interface {
                    prop_assert!(r.interfaces.iter().any(|i| &i.name == name));
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Ok(raw) = serde_json::from_slice::<Value>(&bytes) {
                    check(raw, "eth0")?;
                }
            }

            #[test]
            fn arbitrary_json_never_panics(raw in json_value()) {
                check(raw, "eth0")?;
            }

            #[test]
            fn cidrs_parse_or_fail_cleanly(s in prop_oneof!["\\PC{0,30}", "[0-9a-f.:]{1,20}/[0-9]{0,4}"]) {
                if let Ok(c) = s.parse::<Cidr>() {
                    prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
                }
            }

            /// Results as plugins print them: every address kept, on the interface it names.
            #[test]
            fn generated_results_keep_their_addresses(
                v4 in proptest::collection::vec((any::<[u8; 4]>(), 0u8..=32), 0..4),
                v6 in proptest::collection::vec((any::<[u16; 8]>(), 0u8..=128), 0..4),
                interface in proptest::option::of(0usize..4),
            ) {
                let addrs: Vec<Cidr> = v4
                    .iter()
                    .map(|(a, l)| Cidr { addr: IpAddr::from(*a), prefix_len: *l })
                    .chain(v6.iter().map(|(a, l)| Cidr { addr: IpAddr::from(*a), prefix_len: *l }))
                    .collect();
                let ips: Vec<Value> = addrs
                    .iter()
                    .map(|c| json!({"address": c.to_string(), "interface": interface}))
                    .collect();
                let raw = json!({
                    "cniVersion": "1.0.0",
                    "interfaces": [{"name": "eth0", "sandbox": "/run/netns/p"}],
                    "ips": ips,
                });
                let r = NetworkResult::from_raw(raw.clone(), "eth0").unwrap();
                check(raw, "eth0")?;
                // Only an in-range index names an interface; then all addresses are the pod's.
                prop_assert_eq!(r.ips.len(), addrs.len());
                let mut want = addrs.clone();
                want.sort_by_key(|c| c.addr.is_ipv6());
                let got: Vec<Cidr> = r.ips.iter().map(|i| i.address).collect();
                prop_assert_eq!(got, want);
                for ip in &r.ips {
                    let named = (interface == Some(0)).then(|| "eth0".to_string());
                    prop_assert_eq!(&ip.interface, &named);
                }
            }
        }
    }
}
