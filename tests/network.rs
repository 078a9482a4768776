//! Pod networking end to end through the daemon, with Debian's containernetworking-plugins
//! (bridge, host-local, portmap, tuning, loopback): pod IPs and pod-to-pod TCP, host ports on
//! 127.0.0.1 and the bridge address, IPs released at stop and handed out again, host-network
//! pods, NetworkReady following the config dir, a failing plugin, and a daemon killed mid-ADD.
//! After each case nothing is left: no netns pin, veth, IPAM reservation, CNI cache entry or
//! iptables rule of the test's pods (and `assert_nothing_left` for mounts, cgroups, processes).
//!
//! The tests share the host's iptables, sysctls and two CPUs: they run one at a time.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::TestDaemon;
use common::net::HostNet;
use longshore::api::*;
use tonic::Code;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test at a time (an async mutex: held across awaits, and it does not poison).
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

async fn start(portmap: bool) -> TestDaemon {
    TestDaemon::start_with(common::Options {
        cni: true,
        portmap,
        ..Default::default()
    })
    .await
}

/// A container serving `reply` over HTTP on port 8080 with busybox httpd.
fn web_server(reply: &str) -> ContainerConfig {
    let script =
        format!("mkdir -p /www && echo {reply} > /www/index.html && exec httpd -f -p 8080 -h /www");
    TestDaemon::container_config("web", &["sh", "-c", &script])
}

/// `GET /` over plain TCP; the body, or the error.
fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}

/// Retries [`http_get`] until it answers (the server may still be starting).
async fn http_get_eventually(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = tokio::task::spawn_blocking(move || http_get(addr))
            .await
            .unwrap();
        match got {
            Ok(text) if text.contains("200 OK") => return text,
            other if Instant::now() > deadline => panic!("GET http://{addr}/: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A host port nobody listens on now.
fn free_port() -> u16 {
    loop {
        let port = 30000 + (rand::random::<u16>() % 20000);
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// The CNI cache entry of a pod's default network (`<id>/<network>-eth0.json`).
fn cache_entry(d: &TestDaemon, pod_id: &str) -> serde_json::Value {
    let name = format!("{}-eth0.json", d.cni_network_name());
    d.cni_cache_entries()
        .into_iter()
        .find(|(path, _)| path.ends_with(format!("{pod_id}/{name}")))
        .unwrap_or_else(|| {
            panic!(
                "no cache entry {name} for {pod_id}: {:#?}",
                d.cni_cache_entries()
            )
        })
        .1
}

/// A pod's pinned netns path, from `PodSandboxStatus` verbose info.
async fn netns_of(d: &mut TestDaemon, pod_id: &str) -> String {
    let info = d.pod_status(pod_id).await.info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
    info["netns"].as_str().unwrap_or_default().to_string()
}

fn is_mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

/// Finishes a test: removes every pod, then checks that nothing is left.
async fn finish(mut d: TestDaemon, host: &HostNet) {
    d.remove_all_pods().await;
    d.assert_network_released();
    host.assert_no_pod_rules();
    d.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pods_get_distinct_ips_and_talk_over_tcp() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    let host = HostNet::new(&d);
    d.pull(common::BUSYBOX).await;

    let server_pod = d.pod_config("server");
    let server_id = d.run_pod(&server_pod).await;
    d.run_container(&server_id, &server_pod, web_server("hello-from-server"))
        .await;
    let client_pod = d.pod_config("client");
    let client_id = d.run_pod(&client_pod).await;

    let server_ips = d.pod_ips(&server_id).await;
    let client_ips = d.pod_ips(&client_id).await;
    assert_eq!(server_ips.len(), 1, "{server_ips:?}");
    assert_eq!(client_ips.len(), 1, "{client_ips:?}");
    assert_ne!(server_ips, client_ips);
    let prefix = d.cni_ip(0).strip_suffix('0').unwrap().to_string();
    for ip in [&server_ips[0], &client_ips[0]] {
        assert!(ip.starts_with(&prefix), "{ip} outside the test /24");
    }
    assert_eq!(d.reserved_ips().len(), 2);
    assert_eq!(d.bridge_ports().len(), 2);

    // Pod to pod: busybox nc in the client pod against httpd in the server pod. (Not busybox
    // wget: statically linked, it crashes in glibc's resolver in an image without NSS libs.)
    let url = format!("{} 8080", server_ips[0]);
    let script = format!(
        "for i in $(seq 100); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {url} | grep hello && exit 0; sleep 0.1; done; exit 1"
    );
    let fetch = TestDaemon::container_config("fetch", &["sh", "-c", &script]);
    let fetch_id = d.run_container(&client_id, &client_pod, fetch).await;
    let status = d.wait_exited(&fetch_id, Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(&status.log_path).unwrap_or_default();
    assert_eq!(status.exit_code, 0, "nc {url} failed: {log}");
    assert!(log.contains("hello-from-server"), "{log}");
    // And from the host, over the bridge.
    let addr: SocketAddr = format!("{}:8080", server_ips[0]).parse().unwrap();
    assert!(
        http_get_eventually(addr)
            .await
            .contains("hello-from-server")
    );

    // What the plugins were told: the Kubernetes pod arguments, the pinned netns.
    let entry = cache_entry(&d, &server_id);
    let args: Vec<(String, String)> = serde_json::from_value(entry["cni_args"].clone()).unwrap();
    let meta = server_pod.metadata.clone().unwrap();
    for (key, want) in [
        ("K8S_POD_NAMESPACE", meta.namespace.as_str()),
        ("K8S_POD_NAME", meta.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", server_id.as_str()),
        ("K8S_POD_UID", meta.uid.as_str()),
        ("IgnoreUnknown", "1"),
    ] {
        assert!(
            args.contains(&(key.to_string(), want.to_string())),
            "{key}={want} missing from {args:?}"
        );
    }
    let netns = netns_of(&mut d, &server_id).await;
    assert!(netns.ends_with("/ns/net") && is_mounted(&netns), "{netns}");
    assert_eq!(entry["netns"], netns.as_str());

    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_port_answers_on_localhost_and_the_bridge_and_stop_removes_its_rules() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(true).await;
    // ipMasq too: its rules are removed only if DEL runs while the netns is still pinned.
    let mut conf = d.cni_conflist();
    conf["plugins"][0]["ipMasq"] = true.into();
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);
    d.pull(common::BUSYBOX).await;

    let port = free_port();
    let mut pod = d.pod_config("hostport");
    pod.port_mappings = vec![
        PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 8080,
            host_port: port as i32,
            host_ip: String::new(),
        },
        // No host port: nothing for portmap.
        PortMapping {
            protocol: Protocol::Udp as i32,
            container_port: 53,
            host_port: 0,
            host_ip: String::new(),
        },
    ];
    pod.dns_config = Some(DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    pod.annotations
        .insert("kubernetes.io/ingress-bandwidth".into(), "10M".into());
    let pod_id = d.run_pod(&pod).await;
    d.run_container(&pod_id, &pod, web_server("hello-via-hostport"))
        .await;
    let pod_ip = d.pod_ips(&pod_id).await[0].clone();

    for addr in [
        format!("127.0.0.1:{port}"),
        format!("{}:{port}", d.cni_ip(1)),
    ] {
        let text = http_get_eventually(addr.parse().unwrap()).await;
        assert!(text.contains("hello-via-hostport"), "{addr}: {text}");
    }
    let rules = host.pod_rules();
    assert!(
        rules
            .iter()
            .any(|r| r.contains(&format!("--to-destination {pod_ip}:8080"))),
        "no DNAT rule: {rules:#?}"
    );
    assert!(
        rules.iter().any(|r| r.contains("MASQUERADE")),
        "no ipMasq rule: {rules:#?}"
    );
    let route_localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", d.bridge());
    assert_eq!(
        std::fs::read_to_string(&route_localnet).unwrap().trim(),
        "1"
    );

    // The capability arguments the plugins got.
    let caps = &cache_entry(&d, &pod_id)["capability_args"];
    assert_eq!(
        caps["portMappings"],
        serde_json::json!([{"hostPort": port, "containerPort": 8080, "protocol": "tcp"}])
    );
    assert_eq!(caps["dns"]["servers"], serde_json::json!(["10.96.0.10"]));
    assert_eq!(caps["dns"]["options"], serde_json::json!(["ndots:5"]));
    assert_eq!(
        caps["bandwidth"]["ingressRate"],
        serde_json::json!(10_000_000)
    );

    // Stop: the rules, the IP and the veth go; the netns stays pinned until remove.
    let netns = netns_of(&mut d, &pod_id).await;
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    host.assert_no_pod_rules();
    assert!(d.reserved_ips().is_empty(), "{:?}", d.reserved_ips());
    assert!(d.bridge_ports().is_empty(), "{:?}", d.bridge_ports());
    assert!(
        d.pod_ips(&pod_id).await.is_empty(),
        "a stopped pod reports no IP"
    );
    assert!(
        is_mounted(&netns),
        "the netns stays pinned until the pod is removed"
    );
    let refused =
        tokio::task::spawn_blocking(move || http_get(format!("127.0.0.1:{port}").parse().unwrap()))
            .await
            .unwrap();
    assert!(refused.is_err(), "the host port still answers: {refused:?}");

    d.client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .unwrap();
    assert!(!is_mounted(&netns));
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_pod_releases_its_ip_for_the_next_one() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    // A range of one address: the next pod can only get it once the last one gave it back.
    let only = d.cni_ip(10);
    let mut conf = d.cni_conflist();
    conf["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] = only.clone().into();
    conf["plugins"][0]["ipam"]["ranges"][0][0]["rangeEnd"] = only.clone().into();
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);

    let first = d.run_pod(&d.pod_config("first")).await;
    assert_eq!(d.pod_ips(&first).await, vec![only.clone()]);
    assert_eq!(d.reserved_ips(), vec![only.clone()]);

    // No address left: host-local's own message comes back, and the half-made pod is gone.
    let config = d.pod_config("second");
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("no IP addresses available"),
        "{err:?}"
    );
    assert!(
        err.message().contains("bridge"),
        "names the plugin: {err:?}"
    );
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(d.bridge_ports().len(), 1, "{:?}", d.bridge_ports());
    assert_eq!(
        d.cni_cache_entries().len(),
        2,
        "loopback and eth0 of the first pod only"
    );
    let state_dirs = std::fs::read_dir(d.dir.path().join("state/pods"))
        .unwrap()
        .count();
    assert_eq!(
        state_dirs, 1,
        "the failed pod's folder (and netns pin) is gone"
    );

    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: first.clone(),
        })
        .await
        .unwrap();
    assert!(d.reserved_ips().is_empty(), "{:?}", d.reserved_ips());
    // Again: harmless.
    d.client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: first.clone(),
        })
        .await
        .unwrap();

    let third = d.run_pod(&d.pod_config("third")).await;
    assert_eq!(
        d.pod_ips(&third).await,
        vec![only.clone()],
        "the released address is handed out again"
    );
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_fails_the_pod_with_its_message_and_leaves_nothing() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(true).await;
    // bridge (with ipMasq) and portmap succeed, then tuning refuses a non-network sysctl: the
    // first two must be undone.
    let mut conf = d.cni_conflist();
    conf["plugins"][0]["ipMasq"] = true.into();
    conf["plugins"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "tuning", "sysctl": {"kernel.domainname": "longshore"}}));
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);

    let mut pod = d.pod_config("failing");
    pod.port_mappings = vec![PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 80,
        host_port: free_port() as i32,
        host_ip: String::new(),
    }];
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message()
            .contains("invalid net sysctl key: \"kernel.domainname\""),
        "{err:?}"
    );
    assert!(
        err.message().contains("\"tuning\"") && err.message().contains("ADD"),
        "{err:?}"
    );

    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
    d.assert_network_released();
    host.assert_no_pod_rules();
    d.assert_nothing_left();
    // Not even a record: a restarted daemon knows no such pod.
    d.restart().await;
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");

    // The name was released: the same pod runs once the network is fixed.
    conf["plugins"].as_array_mut().unwrap().pop();
    d.write_cni_conflist(&conf);
    let id = d.run_pod(&pod).await;
    assert_eq!(d.pod_ips(&id).await.len(), 1);
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_ready_follows_the_config_dir_without_a_restart() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    let host = HostNet::new(&d);
    let ready = d.network_ready().await;
    assert!(ready.status, "{ready:?}");
    assert!(
        ready.reason.is_empty() && ready.message.is_empty(),
        "{ready:?}"
    );

    let good = std::fs::read(d.cni_conflist_path()).unwrap();
    std::fs::write(
        d.cni_conflist_path(),
        br#"{"cniVersion": "1.0.0", "name": "#,
    )
    .unwrap();
    let broken = d.network_ready().await;
    assert!(!broken.status, "{broken:?}");
    assert_eq!(broken.reason, "InvalidNetworkConfig");
    assert!(
        broken.message.contains("10-test.conflist") && broken.message.contains("EOF"),
        "{broken:?}"
    );
    // A pod cannot be networked now: FailedPrecondition with the same words, nothing made.
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(d.pod_config("early")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("EOF"), "{err:?}");
    d.assert_nothing_left();

    // A plugin that is not installed.
    let mut conf: serde_json::Value = serde_json::from_slice(&good).unwrap();
    conf["plugins"][0]["type"] = "no-such-plugin".into();
    d.write_cni_conflist(&conf);
    let missing = d.network_ready().await;
    assert!(!missing.status);
    assert_eq!(missing.reason, "PluginNotFound");
    assert!(missing.message.contains("no-such-plugin"), "{missing:?}");

    std::fs::write(d.cni_conflist_path(), &good).unwrap();
    let fixed = d.network_ready().await;
    assert!(fixed.status, "{fixed:?}");
    let id = d.run_pod(&d.pod_config("after-fix")).await;
    assert_eq!(d.pod_ips(&id).await.len(), 1);
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_network_pod_sees_the_host_interfaces_and_skips_cni() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    let host = HostNet::new(&d);
    d.pull(common::BUSYBOX).await;

    let mut pod = d.pod_config("hostnet");
    let options = NamespaceOption {
        network: NamespaceMode::Node as i32,
        ..Default::default()
    };
    pod.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(options),
            ..Default::default()
        }),
        ..Default::default()
    });
    let pod_id = d.run_pod(&pod).await;
    assert!(
        d.pod_ips(&pod_id).await.is_empty(),
        "kubelet uses the node's IP"
    );
    assert!(
        d.cni_cache_entries().is_empty(),
        "no CNI for a host-network pod"
    );
    assert!(d.reserved_ips().is_empty());
    assert_eq!(netns_of(&mut d, &pod_id).await, "", "no netns pinned");

    let ctr = TestDaemon::container_config(
        "ifaces",
        &["sh", "-c", "readlink /proc/self/ns/net; cat /proc/net/dev"],
    );
    let ctr_id = d.run_container(&pod_id, &pod, ctr).await;
    let status = d.wait_exited(&ctr_id, Duration::from_secs(20)).await;
    let log = std::fs::read_to_string(&status.log_path).unwrap_or_default();
    assert_eq!(status.exit_code, 0, "{log}");
    let host_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        log.contains(&*host_netns.to_string_lossy()),
        "not the host netns ({host_netns:?}): {log}"
    );
    let host_dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let first_host_iface = host_dev
        .lines()
        .nth(2)
        .and_then(|l| l.split(':').next())
        .unwrap()
        .trim()
        .to_string();
    assert!(
        log.contains(&format!("{first_host_iface}:")),
        "{first_host_iface} missing: {log}"
    );
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dual_stack_pods_report_ipv4_first_then_ipv6() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    // IPv6 listed first in the config: the primary IP is still the IPv4 one.
    let octet = d.network.as_ref().unwrap().1;
    let mut conf = d.cni_conflist();
    let v4 = conf["plugins"][0]["ipam"]["ranges"][0].clone();
    conf["plugins"][0]["ipam"]["ranges"] =
        serde_json::json!([[{"subnet": format!("fd31:{octet:x}::/64")}], v4]);
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);

    let id = d.run_pod(&d.pod_config("dual")).await;
    let ips = d.pod_ips(&id).await;
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(
        ips[0].parse::<std::net::Ipv4Addr>().is_ok(),
        "primary {ips:?}"
    );
    assert!(ips[1].starts_with(&format!("fd31:{octet:x}:")), "{ips:?}");
    assert_eq!(d.reserved_ips().len(), 2);
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_gets_the_address_its_annotation_asks_for() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    let mut conf = d.cni_conflist();
    conf["plugins"][0]["capabilities"] = serde_json::json!({"ips": true});
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);

    let want = d.cni_ip(77);
    let mut pod = d.pod_config("static");
    pod.annotations
        .insert("longshore.io/ips".into(), want.clone());
    let id = d.run_pod(&pod).await;
    assert_eq!(d.pod_ips(&id).await, vec![want.clone()]);
    assert_eq!(
        cache_entry(&d, &id)["capability_args"]["ips"],
        serde_json::json!([want])
    );

    pod.metadata.as_mut().unwrap().attempt = 1;
    pod.annotations
        .insert("longshore.io/ips".into(), "not-an-ip".into());
    let err = d
        .client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    finish(d, &host).await;
}

/// Command lines of CNI plugin processes running for `container_id`.
fn plugin_processes(container_id: &str) -> Vec<String> {
    let needle = format!("CNI_CONTAINERID={container_id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|pid| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
            )
            .into_owned()
        })
        .collect()
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_mid_add_still_tears_the_pod_network_down() {
    longshore_testkit::require_root!();
    use nix::fcntl::{Flock, FlockArg};
    let _serial = serial().await;
    let mut d = start(false).await;
    let mut conf = d.cni_conflist();
    conf["plugins"][0]["ipMasq"] = true.into();
    d.write_cni_conflist(&conf);
    let host = HostNet::new(&d);

    // host-local serialises on a lock file in its data dir: holding it parks the pod's ADD
    // inside the real plugins, after the bridge plugin made the veth.
    std::fs::create_dir_all(d.ipam_dir()).unwrap();
    let lock_file = std::fs::File::create(d.ipam_dir().join("lock")).unwrap();
    let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();

    let mut client = d.client.clone();
    let config = d.pod_config("crash");
    let rpc = tokio::spawn(async move {
        client
            .runtime
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
    });
    let cache_dir = d.dir.path().join("cni-cache");
    let mut pod_id = String::new();
    wait_until(
        "the pod's ADD to reach host-local",
        Duration::from_secs(20),
        || {
            let Some(dir) = std::fs::read_dir(&cache_dir).unwrap().flatten().next() else {
                return false;
            };
            pod_id = dir.file_name().to_string_lossy().into_owned();
            plugin_processes(&pod_id)
                .iter()
                .any(|cmd| cmd.contains("host-local"))
        },
    )
    .await;

    d.stop_process(libc::SIGKILL);
    assert!(rpc.await.unwrap().is_err(), "the RPC dies with the daemon");
    d.restart().await;
    // Let the orphaned plugins finish their ADD: now there is an IP and a veth to clean up.
    drop(lock);
    wait_until(
        "the orphaned plugins to exit",
        Duration::from_secs(20),
        || plugin_processes(&pod_id).is_empty(),
    )
    .await;
    // The restarted daemon undoes the pod its crash cut short, after the orphaned ADD ended.
    wait_until(
        "the restarted daemon to release the pod's address",
        Duration::from_secs(20),
        || d.reserved_ips().is_empty(),
    )
    .await;
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "the half-made pod is not listed: {pods:?}");
    d.assert_nothing_left_within(Duration::from_secs(20)).await;
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_pod_sandbox_given_up_by_its_caller_still_finishes_the_pod() {
    longshore_testkit::require_root!();
    use nix::fcntl::{Flock, FlockArg};
    let _serial = serial().await;
    let mut d = start(false).await;
    let host = HostNet::new(&d);
    std::fs::create_dir_all(d.ipam_dir()).unwrap();
    let lock_file = std::fs::File::create(d.ipam_dir().join("lock")).unwrap();
    let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();

    // kubelet's RPC timeout, shortened: the ADD is parked in host-local when it runs out.
    let mut req = tonic::Request::new(RunPodSandboxRequest {
        config: Some(d.pod_config("impatient")),
        runtime_handler: String::new(),
    });
    req.set_timeout(Duration::from_millis(1500));
    let err = d.client.runtime.run_pod_sandbox(req).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    drop(lock);

    // The daemon carried on: the pod is made, listed and networked, so kubelet finds it (or
    // removes it) on its next sync instead of it leaking.
    let mut listed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while listed.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pod never appeared\n{}",
            d.daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        listed = d
            .client
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
    }
    assert_eq!(listed[0].state, PodSandboxState::SandboxReady as i32);
    assert_eq!(d.pod_ips(&listed[0].id).await.len(), 1);
    assert_eq!(d.reserved_ips().len(), 1);
    finish(d, &host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_whose_network_teardown_keeps_failing_can_still_be_removed() {
    longshore_testkit::require_root!();
    let _serial = serial().await;
    let mut d = start(false).await;
    let host = HostNet::new(&d);
    let pod = d.pod_config("stuck");
    let pod_id = d.run_pod(&pod).await;
    // The plugin its ADD used is gone for good: every DEL fails the same way.
    let (path, mut entry) = d.cni_cache_entries().remove(0);
    entry["config"]["plugins"][0]["type"] = "uninstalled-plugin".into();
    std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
    let stop = d
        .client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await;
    assert!(stop.is_err(), "StopPodSandbox reports the failing DEL");
    d.client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemovePodSandbox must succeed: {e}\n{}", d.daemon_log()));
    let pods = d
        .client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
    // Everything local went; what could not be released is said in the log.
    d.assert_nothing_left();
    assert!(
        d.daemon_log()
            .contains("removing the pod left something behind"),
        "the daemon says what it left"
    );
    // The test cleans up what only a working plugin could have: the address and cache entry.
    let _ = std::fs::remove_file(&path);
    for ip in d.reserved_ips() {
        let _ = std::fs::remove_file(d.ipam_dir().join(ip));
    }
    drop(host);
}
