//! Pod networking with the real reference plugins (bridge, host-local, portmap, loopback,
//! bandwidth) in real network namespaces. Root only; tests run one at a time because they
//! share the host's iptables and sysctls.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Server, TestNet, fetch, fetch_from_netns, run, serial};
use longshore_cni::{Bandwidth, Error, NetworkResult, PortMapping, Protocol};
use rand::Rng;

const POD_PORT: u16 = 8080;

fn ipv4(result: &NetworkResult) -> IpAddr {
    let ip = result.primary_ip().expect("a pod IP");
    assert!(ip.is_ipv4(), "{ip}");
    ip
}

fn host_veth(result: &NetworkResult) -> String {
    result
        .interfaces
        .iter()
        .find(|i| i.sandbox.is_empty() && i.name.starts_with("veth"))
        .map(|i| i.name.clone())
        .expect("host-side veth in the result")
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[tokio::test]
async fn two_pods_get_distinct_ips_and_talk_over_tcp() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    net.write_conf("10-test.conflist", &net.conflist("1.0.0", None));
    let cni = net.cni();
    assert!(cni.status().ready, "{:?}", cni.status());
    let (ns_a, ns_b) = (net.netns("a"), net.netns("b"));
    let (pod_a, pod_b) = (net.pod("a", &ns_a), net.pod("b", &ns_b));

    let started = Instant::now();
    let (a, b) = tokio::join!(cni.setup(&pod_a), cni.setup(&pod_b));
    eprintln!("two pods set up concurrently in {:?}", started.elapsed());
    let (a, b) = (a.expect("setup a"), b.expect("setup b"));
    let (ip_a, ip_b) = (ipv4(&a), ipv4(&b));
    assert_ne!(ip_a, ip_b);
    for r in [&a, &b] {
        let ip = &r.ips[0];
        assert!(
            ip.address
                .to_string()
                .starts_with(&format!("10.222.{}.", net.octet))
        );
        assert_eq!(ip.address.prefix_len, 24);
        assert_eq!(ip.gateway, Some(net.ip(1).parse().unwrap()));
        assert_eq!(ip.interface.as_deref(), Some("eth0"));
        assert!(r.routes.iter().any(|rt| rt.dst.to_string() == "0.0.0.0/0"));
    }
    assert_eq!(net.reserved_ips().len(), 2);
    assert_eq!(net.bridge_ports().len(), 2);
    // The loopback network brought lo up, as containerd's cni-loopback does.
    let lo = run("ip", &["-n", &ns_a.name, "-o", "link", "show", "lo"]);
    assert!(lo.contains("LOOPBACK,UP"), "{lo}");

    let mut server = Server::start(&ns_a.path, POD_PORT, "hello from a");
    let reply = fetch_from_netns(&ns_b.path, SocketAddr::new(ip_a, POD_PORT)).expect("b -> a");
    assert_eq!(reply, "hello from a");
    server.stop();

    cni.check(&pod_a).await.expect("check a");
    cni.check(&pod_b).await.expect("check b");

    let started = Instant::now();
    cni.teardown(&pod_a).await.expect("teardown a");
    eprintln!("one pod torn down in {:?}", started.elapsed());
    cni.teardown(&pod_b).await.expect("teardown b");
    cni.teardown(&pod_a).await.expect("repeated teardown");
    assert!(net.bridge_ports().is_empty());
    assert!(net.reserved_ips().is_empty());
    assert!(matches!(cni.check(&pod_a).await, Err(Error::NotSetUp(_))));
    drop((ns_a, ns_b));
    net.finish();
}

#[tokio::test]
async fn dual_stack_pods_get_both_families_ipv4_first() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    let v6_subnet = format!("fd86:222:{}::/64", net.octet);
    // No gateway and no masquerading: pod-to-pod traffic stays on the bridge, and the host's
    // IPv6 forwarding (which would change how it treats router advertisements) is not touched.
    let mut bridge = net.bridge_plugin(None);
    bridge["isGateway"] = false.into();
    bridge["ipMasq"] = false.into();
    bridge["ipam"]["ranges"] = serde_json::json!([
        [{"subnet": v6_subnet}],
        [{"subnet": net.subnet()}]
    ]);
    bridge["ipam"]["routes"] = serde_json::json!([]);
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0", "name": net.network, "plugins": [bridge]
    });
    net.write_conf("10-test.conflist", &conflist.to_string());
    let cni = net.cni();
    let (ns_a, ns_b) = (net.netns("v6a"), net.netns("v6b"));
    let (pod_a, pod_b) = (net.pod("v6a", &ns_a), net.pod("v6b", &ns_b));
    let a = cni.setup(&pod_a).await.expect("setup a");
    cni.setup(&pod_b).await.expect("setup b");

    // host-local lists the IPv6 range first; the pod's primary IP is still its IPv4 one.
    assert_eq!(
        a.raw["ips"][0]["address"].as_str().map(|s| s.contains(':')),
        Some(true)
    );
    let families: Vec<bool> = a.ips.iter().map(|ip| ip.address.addr.is_ipv6()).collect();
    assert_eq!(families, [false, true], "{:?}", a.ips);
    let v6 = a.ips[1].address.addr;
    let mut server = Server::start_v6(&ns_a.path, POD_PORT, "hello over ipv6");
    let reply = fetch_from_netns(&ns_b.path, SocketAddr::new(v6, POD_PORT)).expect("b -> a v6");
    assert_eq!(reply, "hello over ipv6");
    server.stop();

    cni.teardown(&pod_a).await.expect("teardown a");
    cni.teardown(&pod_b).await.expect("teardown b");
    drop((ns_a, ns_b));
    net.finish();
}

#[tokio::test]
async fn host_port_answers_from_the_host_and_teardown_removes_its_rules() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    net.write_conf("10-test.conflist", &net.conflist("0.4.0", None));
    let cni = net.cni();
    let ns = net.netns("hp");
    let host_port: u16 = rand::rng().random_range(20000..30000);
    let mut pod = net.pod("hp", &ns);
    pod.port_mappings = vec![PortMapping {
        host_port,
        container_port: POD_PORT,
        protocol: Protocol::Tcp,
        host_ip: String::new(),
    }];

    let result = cni.setup(&pod).await.expect("setup");
    let ip = ipv4(&result).to_string();
    let rules = net.new_pod_iptables_lines();
    assert!(
        rules.iter().any(|l| l.contains("DNAT") && l.contains(&ip)),
        "no DNAT to {ip}: {rules:#?}"
    );
    let _server = Server::start(&ns.path, POD_PORT, "hello via hostPort");
    let gateway: IpAddr = net.ip(1).parse().unwrap();
    let via_bridge = fetch(SocketAddr::new(gateway, host_port)).expect("bridge address");
    assert_eq!(via_bridge, "hello via hostPort");
    // portmap's snat sets route_localnet on the bridge and masquerades 127.0.0.1.
    let via_localhost = fetch(SocketAddr::from(([127, 0, 0, 1], host_port))).expect("localhost");
    assert_eq!(via_localhost, "hello via hostPort");
    // No cni.check() here: portmap 1.1.1's CHECK wants IPv6 rules of an IPv4-only pod
    // (containernetworking/plugins#819).

    cni.teardown(&pod).await.expect("teardown");
    assert!(
        net.new_pod_iptables_lines().is_empty(),
        "{:#?}",
        net.new_pod_iptables_lines()
    );
    assert!(
        fetch(SocketAddr::new(gateway, host_port)).is_err(),
        "port still forwarded"
    );
    drop(_server);
    drop(ns);
    net.finish();
}

#[tokio::test]
async fn teardown_releases_the_ip_for_the_next_pod() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    // One address only, so the next pod must get the very address the first one released.
    // A single-plugin .conf at 0.3.1: wrapped into a list, and DEL gets no prevResult.
    let mut conf = net.bridge_plugin(Some((10, 10)));
    conf["cniVersion"] = "0.3.1".into();
    conf["name"] = net.network.clone().into();
    net.write_conf("10-test.conf", &conf.to_string());
    let cni = net.cni();
    let (ns1, ns2) = (net.netns("one"), net.netns("two"));
    let (pod1, pod2) = (net.pod("one", &ns1), net.pod("two", &ns2));

    let first = cni.setup(&pod1).await.expect("setup 1");
    assert_eq!(ipv4(&first).to_string(), net.ip(10));
    let veth1 = host_veth(&first);

    let err = cni.setup(&pod2).await.expect_err("the range is exhausted");
    assert!(
        matches!(&err, Error::Plugin(f)
            if f.plugin == "bridge" && f.msg.contains("no IP addresses available")),
        "{err}"
    );
    assert_eq!(
        net.bridge_ports(),
        std::slice::from_ref(&veth1),
        "the failed pod left a veth"
    );
    assert_eq!(net.reserved_ips(), [net.ip(10)]);

    cni.teardown(&pod1).await.expect("teardown 1");
    assert!(!link_exists(&veth1));
    assert!(net.reserved_ips().is_empty());
    cni.teardown(&pod1).await.expect("repeated teardown");

    let second = cni.setup(&pod2).await.expect("setup 2");
    assert_eq!(ipv4(&second).to_string(), net.ip(10));
    cni.teardown(&pod2).await.expect("teardown 2");
    drop((ns1, ns2));
    net.finish();
}

#[tokio::test]
async fn teardown_works_after_the_netns_vanished() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    // Without ipMasq: the bridge plugin cannot remove its masquerade rules without the
    // namespace (it reads the pod's addresses from its interface; upstream
    // containernetworking/plugins#810), so the daemon must tear down before unpinning.
    let mut conflist = net.conflist_value("1.0.0", None);
    conflist["plugins"][0]["ipMasq"] = false.into();
    net.write_conf("10-test.conflist", &conflist.to_string());
    let cni = net.cni();
    let (gone, unpinned) = (net.netns("gone"), net.netns("unpinned"));
    let mut pods = [net.pod("gone", &gone), net.pod("unpinned", &unpinned)];
    for (i, pod) in pods.iter_mut().enumerate() {
        pod.port_mappings = vec![PortMapping {
            host_port: 31000 + i as u16,
            container_port: POD_PORT,
            protocol: Protocol::Tcp,
            host_ip: String::new(),
        }];
        cni.setup(pod).await.expect("setup");
    }
    assert!(!net.new_pod_iptables_lines().is_empty());

    // One namespace deleted outright; the other's pin unmounted, leaving an empty file,
    // as when the daemon unpins a sandbox's namespaces before tearing its network down.
    gone.delete();
    run("umount", &[unpinned.path.to_str().unwrap()]);
    assert!(unpinned.path.is_file());

    for pod in &pods {
        cni.teardown(pod).await.expect("teardown without a netns");
        cni.teardown(pod).await.expect("repeated teardown");
    }
    assert!(net.reserved_ips().is_empty());
    assert!(
        net.new_pod_iptables_lines().is_empty(),
        "{:#?}",
        net.new_pod_iptables_lines()
    );
    assert!(matches!(
        cni.check(&pods[0]).await,
        Err(Error::Netns { .. })
    ));
    // The kernel destroys a dead namespace (and its veth pair) asynchronously.
    wait_for(
        || net.bridge_ports().is_empty(),
        "veths of dead namespaces to go",
    );
    drop((gone, unpinned));
    net.finish();
}

#[tokio::test]
async fn a_failing_plugin_reports_its_message_and_leaves_nothing() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    let mut bad = net.bridge_plugin(None);
    bad["ipam"]["ranges"] = serde_json::json!([[{"subnet": format!("10.222.{}.0/31", net.octet)}]]);
    let conflist = |bridge: serde_json::Value| {
        serde_json::json!({"cniVersion": "1.0.0", "name": net.network, "plugins": [bridge]})
            .to_string()
    };
    net.write_conf("10-test.conflist", &conflist(bad));
    let cni = net.cni();
    assert!(
        cni.status().ready,
        "only the plugin can tell this config is wrong"
    );
    let ns = net.netns("fail");
    let pod = net.pod("fail", &ns);

    let err = cni.setup(&pod).await.expect_err("host-local refuses a /31");
    match &err {
        Error::Plugin(f) => {
            assert_eq!((f.plugin.as_str(), f.command), ("bridge", "ADD"));
            assert!(f.msg.contains("too small to allocate from"), "{}", f.msg);
            assert!(f.code.is_some());
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("too small to allocate from"));
    assert!(
        net.bridge_ports().is_empty(),
        "veth left: {:?}",
        net.bridge_ports()
    );
    assert!(net.reserved_ips().is_empty());
    let pod_link = run("ip", &["-n", &ns.name, "-o", "link", "show"]);
    assert!(!pod_link.contains("eth0"), "{pod_link}");

    // Its DEL fails the same way, so the attachment stays cached and teardown reports it...
    assert!(cni.teardown(&pod).await.is_err());
    // ...until the admin fixes the config: teardown then succeeds with the fixed one.
    net.write_conf("10-test.conflist", &conflist(net.bridge_plugin(None)));
    cni.teardown(&pod)
        .await
        .expect("teardown with the fixed config");
    cni.teardown(&pod).await.expect("repeated teardown");
    drop(ns);
    net.finish();
}

#[tokio::test]
async fn teardown_after_a_restart_and_a_config_change_uses_the_cached_config() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    net.write_conf("10-test.conflist", &net.conflist("1.0.0", None));
    let ns = net.netns("rs");
    let pod = net.pod("rs", &ns);
    let veth = {
        let cni = net.cni();
        let result = cni.setup(&pod).await.expect("setup");
        host_veth(&result)
    };
    // A new daemon, and the network replaced by another one (another name, bridge, subnet).
    let other = serde_json::json!({
        "cniVersion": "1.0.0", "name": format!("{}-new", net.network),
        "plugins": [{"type": "bridge", "bridge": format!("{}n", net.bridge),
                     "ipam": {"type": "host-local", "subnet": "10.222.251.0/24",
                              "dataDir": net.ipam_dir()}}]
    });
    net.write_conf("10-test.conflist", &other.to_string());
    let cni = net.cni();
    cni.teardown(&pod)
        .await
        .expect("teardown with the cached config");
    assert!(!link_exists(&veth));
    assert!(
        net.reserved_ips().is_empty(),
        "IP of the old network not released"
    );
    assert!(
        !link_exists(&format!("{}n", net.bridge)),
        "DEL ran the new config"
    );
    drop(ns);
    net.finish();
}

#[tokio::test]
async fn the_bandwidth_capability_shapes_the_pod_traffic() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0", "name": net.network,
        "plugins": [
            net.bridge_plugin(None),
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    net.write_conf("10-test.conflist", &conflist.to_string());
    let cni = net.cni();
    let ns = net.netns("bw");
    let mut pod = net.pod("bw", &ns);
    pod.bandwidth = Some(Bandwidth {
        ingress_rate: 1_000_000,
        ingress_burst: 1_000_000,
        egress_rate: 2_000_000,
        egress_burst: 1_000_000,
    });
    let result = cni.setup(&pod).await.expect("setup");
    let veth = host_veth(&result);
    // Ingress to the pod is shaped on the host veth; egress through an ifb device.
    let qdisc = run("tc", &["qdisc", "show", "dev", &veth]);
    assert!(qdisc.contains("tbf"), "{qdisc}");
    let ifb: Vec<String> = result
        .interfaces
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| n.starts_with("bwp"))
        .collect();
    assert_eq!(ifb.len(), 1, "{:?}", result.interfaces);
    assert!(link_exists(&ifb[0]));

    cni.teardown(&pod).await.expect("teardown");
    assert!(!link_exists(&ifb[0]), "ifb device left");
    drop(ns);
    net.finish();
}

#[tokio::test]
async fn the_shipped_conflist_networks_a_pod() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let net = TestNet::new();
    let shipped = include_str!("../../../deploy/cni/10-longshore-bridge.conflist");
    let mut conf: serde_json::Value = serde_json::from_str(shipped).expect("shipped conflist");
    // Everything as shipped but the names and addresses this test must own.
    conf["name"] = net.network.clone().into();
    let bridge = &mut conf["plugins"][0];
    assert_eq!(bridge["bridge"], "longshore0");
    bridge["bridge"] = net.bridge.clone().into();
    bridge["ipam"]["ranges"] = serde_json::json!([[{"subnet": net.subnet()}]]);
    bridge["ipam"]["dataDir"] = net.ipam_dir().to_string_lossy().into_owned().into();
    net.write_conf("10-longshore-bridge.conflist", &conf.to_string());
    let cni = net.cni();
    assert!(cni.status().ready, "{:?}", cni.status());

    let ns = net.netns("shipped");
    let mut pod = net.pod("shipped", &ns);
    let host_port: u16 = rand::rng().random_range(30000..32000);
    pod.port_mappings = vec![PortMapping {
        host_port,
        container_port: POD_PORT,
        protocol: Protocol::Tcp,
        host_ip: String::new(),
    }];
    let annotations = HashMap::from([(
        longshore_cni::EGRESS_ANNOTATION.to_string(),
        "10M".to_string(),
    )]);
    pod.bandwidth = Bandwidth::from_annotations(&annotations).expect("annotation");
    let result = cni.setup(&pod).await.expect("setup");
    ipv4(&result);
    let _server = Server::start(&ns.path, POD_PORT, "shipped");
    let reply = fetch(SocketAddr::from(([127, 0, 0, 1], host_port))).expect("localhost hostPort");
    assert_eq!(reply, "shipped");
    cni.teardown(&pod).await.expect("teardown");
    drop(_server);
    drop(ns);
    net.finish();
}

/// Prints how long setup, teardown and status take; asserts only that all of it worked.
#[tokio::test]
async fn timings() {
    longshore_testkit::require_root!();
    const PODS: usize = 10;
    const STATUS_CALLS: u32 = 1000;
    let _serial = serial().await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = TestNet::new();
    net.write_conf("10-test.conflist", &net.conflist("1.0.0", None));
    let cni = net.cni();

    let started = Instant::now();
    for _ in 0..STATUS_CALLS {
        assert!(cni.status().ready);
    }
    let status = started.elapsed() / STATUS_CALLS;

    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for i in 0..PODS {
        let ns = net.netns(&format!("t{i}"));
        let mut pod = net.pod(&format!("t{i}"), &ns);
        pod.port_mappings = vec![PortMapping {
            host_port: 32100 + i as u16,
            container_port: POD_PORT,
            protocol: Protocol::Tcp,
            host_ip: String::new(),
        }];
        let t = Instant::now();
        cni.setup(&pod).await.expect("setup");
        setup.push(t.elapsed());
        let t = Instant::now();
        cni.teardown(&pod).await.expect("teardown");
        teardown.push(t.elapsed());
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        format!("mean {mean:?}, min {:?}, max {:?}", v[0], v[v.len() - 1])
    };
    eprintln!("status(): {status:?} per call ({STATUS_CALLS} calls)");
    eprintln!(
        "setup (loopback + bridge/host-local/portmap, one hostPort), {PODS} pods: {}",
        stats(&mut setup)
    );
    eprintln!("teardown, {PODS} pods: {}", stats(&mut teardown));
    net.finish();
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
