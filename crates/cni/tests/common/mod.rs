//! Test harness: a private bridge network per test (own bridge name, subnet, conf dir,
//! host-local data dir and result cache), network namespaces with guards, helpers to talk
//! TCP inside a namespace, and leftover checks (netns, veth, bridge, iptables, IPAM files).
//!
//! Needs root and Debian's containernetworking-plugins in /usr/lib/cni.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use longshore_cni::{Cni, CniConfig, PodNetwork};
use nix::sched::{CloneFlags, setns};
use rand::Rng;

/// Where Debian installs the reference plugins.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";
/// Host sysctls the bridge plugin may turn on (`isGateway`); restored after each test.
const FORWARDING_SYSCTLS: &[&str] = &[
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
];
/// Chains that every table has; a pod's rules go in chains of its own.
const BUILTIN_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
pub use longshore_testkit::iptables::lines as iptables_lines;
use longshore_testkit::iptables::{
    SHARED_CHAINS, nft_tables, remove_added as remove_new_iptables, remove_new_nft_tables,
};

/// Network tests share iptables and sysctl state: one at a time. (An async mutex, as the
/// guard is held across awaits; it does not poison, so one failed test fails alone.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the serial lock.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Runs a command, panicking with its output on failure.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_quiet(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        run("ip", &["netns", "add", name]);
        Netns {
            name: name.into(),
            path: PathBuf::from("/run/netns").join(name),
        }
    }

    /// Deletes it now (a pod whose namespace vanished before teardown).
    pub fn delete(&self) {
        run_quiet("ip", &["netns", "del", &self.name]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
        // `ip netns del` fails on an already unmounted pin; remove the file ourselves.
        let _ = fs::remove_file(&self.path);
    }
}

/// Runs `f` on a fresh thread that has entered the namespace at `path`; sockets made there
/// stay in that namespace wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let ns = File::open(&path).expect("open netns");
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP server inside a namespace: each connection gets `reply` and is closed. Its socket
/// keeps the namespace alive, so stop it (or drop it) before deleting the namespace.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Listens on all IPv4 addresses.
    pub fn start(netns: &Path, port: u16, reply: &'static str) -> Server {
        Self::listen(netns, SocketAddr::from(([0, 0, 0, 0], port)), reply)
    }

    /// Listens on all IPv6 addresses.
    pub fn start_v6(netns: &Path, port: u16, reply: &'static str) -> Server {
        Self::listen(netns, SocketAddr::from(([0u16; 8], port)), reply)
    }

    fn listen(netns: &Path, addr: SocketAddr, reply: &'static str) -> Server {
        let listener = in_netns(netns, move || TcpListener::bind(addr).expect("bind"));
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to `addr` (from the current namespace) and reads until the peer closes.
pub fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut s = String::new();
    conn.read_to_string(&mut s)?;
    Ok(s)
}

/// Connects from inside the namespace at `path`.
pub fn fetch_from_netns(path: &Path, addr: SocketAddr) -> std::io::Result<String> {
    in_netns(path, move || fetch(addr))
}

/// One test's private network: bridge `lsb-t<tag>`, subnet 10.222.<octet>.0/24.
pub struct TestNet {
    pub tag: String,
    pub bridge: String,
    pub network: String,
    pub octet: u8,
    pub dir: tempfile::TempDir,
    iptables_before: BTreeSet<String>,
    nft_tables_before: BTreeSet<String>,
    sysctls_before: Vec<(&'static str, String)>,
    finished: bool,
}

impl TestNet {
    pub fn new() -> TestNet {
        let mut rng = rand::rng();
        let tag = format!("{:06x}", rng.random_range(0..0x1000000u32));
        let routes = run("ip", &["-4", "route", "show"]);
        let octet = loop {
            let n: u8 = rng.random_range(1..=250);
            if !routes.contains(&format!("10.222.{n}.")) {
                break n;
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["conf", "ipam", "cache"] {
            fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        TestNet {
            bridge: format!("lsb-t{tag}"),
            network: format!("lstest-{tag}"),
            tag,
            octet,
            dir,
            iptables_before: iptables_lines(),
            nft_tables_before: nft_tables(),
            sysctls_before: FORWARDING_SYSCTLS
                .iter()
                .map(|p| (*p, fs::read_to_string(p).unwrap_or_default()))
                .collect(),
            finished: false,
        }
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// host-local's directory for this network.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    pub fn cni(&self) -> Cni {
        Cni::new(CniConfig {
            conf_dir: self.conf_dir(),
            bin_dirs: vec![
                PathBuf::from("/nonexistent/cni/bin"),
                PathBuf::from(PLUGIN_DIR),
            ],
            cache_dir: self.cache_dir(),
        })
        .expect("Cni::new")
    }

    /// `10.222.<octet>.<host>`.
    pub fn ip(&self, host: u8) -> String {
        format!("10.222.{}.{host}", self.octet)
    }

    pub fn subnet(&self) -> String {
        format!("10.222.{}.0/24", self.octet)
    }

    /// A netns named after this test.
    pub fn netns(&self, suffix: &str) -> Netns {
        Netns::new(&format!("lsn-{}-{suffix}", self.tag))
    }

    /// A pod in `ns` with an id unique to this test.
    pub fn pod(&self, suffix: &str, ns: &Netns) -> PodNetwork {
        PodNetwork {
            id: format!("{}{suffix}", self.tag),
            netns_path: ns.path.clone(),
            name: format!("pod-{suffix}"),
            namespace: "lstest".into(),
            uid: format!("uid-{}-{suffix}", self.tag),
            ..Default::default()
        }
    }

    /// The bridge plugin's config with host-local on this test's subnet; `range` limits the
    /// addresses handed out (`(start, end)` host parts).
    pub fn bridge_plugin(&self, range: Option<(u8, u8)>) -> serde_json::Value {
        let mut r = serde_json::json!({"subnet": self.subnet(), "gateway": self.ip(1)});
        if let Some((start, end)) = range {
            r["rangeStart"] = self.ip(start).into();
            r["rangeEnd"] = self.ip(end).into();
        }
        serde_json::json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": self.ipam_dir(),
                "ranges": [[r]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        })
    }

    /// bridge + host-local, then portmap with snat.
    pub fn conflist(&self, version: &str, range: Option<(u8, u8)>) -> String {
        self.conflist_value(version, range).to_string()
    }

    /// [`TestNet::conflist`] as a value, to modify.
    pub fn conflist_value(&self, version: &str, range: Option<(u8, u8)>) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": version,
            "name": self.network,
            "plugins": [
                self.bridge_plugin(range),
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        })
    }

    pub fn write_conf(&self, file: &str, text: &str) {
        fs::write(self.conf_dir().join(file), text).expect("write conf");
    }

    /// Addresses host-local holds for this network (its files named by IP).
    pub fn reserved_ips(&self) -> Vec<String> {
        let dir = self.ipam_dir().join(&self.network);
        let Ok(read) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut ips: Vec<String> = read
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect();
        ips.sort();
        ips
    }

    /// Interfaces enslaved to this test's bridge (the pods' host-side veths).
    pub fn bridge_ports(&self) -> Vec<String> {
        let dir = PathBuf::from("/sys/class/net")
            .join(&self.bridge)
            .join("brif");
        let mut ports: Vec<String> = fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ports.sort();
        ports
    }

    /// Files left in the result cache.
    pub fn cache_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in fs::read_dir(self.cache_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push(dir.path());
            for f in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                files.push(f.path());
            }
        }
        files
    }

    /// iptables lines added since the test began, apart from portmap's shared chains and
    /// the built-in chains of tables iptables-nft created on first use.
    pub fn new_pod_iptables_lines(&self) -> Vec<String> {
        iptables_lines()
            .difference(&self.iptables_before)
            .filter(|l| !SHARED_CHAINS.iter().any(|c| l.contains(c)))
            .filter(|l| {
                !BUILTIN_CHAINS
                    .iter()
                    .any(|c| l.ends_with(&format!(" :{c}")))
            })
            .cloned()
            .collect()
    }

    /// Deletes the bridge, namespaces named after the test, portmap's shared chains (if the
    /// test made them) and restores the forwarding sysctls.
    fn clean_up(&self) {
        run_quiet("ip", &["link", "del", &self.bridge]);
        for ns in run("ip", &["netns", "list"]).lines() {
            let name = ns.split_whitespace().next().unwrap_or_default();
            if name.contains(&self.tag) {
                run_quiet("ip", &["netns", "del", name]);
            }
        }
        remove_new_iptables(&self.iptables_before);
        remove_new_nft_tables(&self.nft_tables_before);
        for (path, value) in &self.sysctls_before {
            if fs::read_to_string(path).is_ok_and(|now| now != *value) {
                let _ = fs::write(path, value);
            }
        }
    }

    /// Cleans up, then asserts nothing of the test is left: namespaces, veths, bridge,
    /// iptables rules or chains, IPAM reservations, cache files.
    pub fn finish(mut self) {
        self.finished = true;
        let ports = self.bridge_ports();
        let reserved = self.reserved_ips();
        let pod_rules = self.new_pod_iptables_lines();
        let cache = self.cache_files();
        self.clean_up();
        assert!(ports.is_empty(), "veths left on {}: {ports:?}", self.bridge);
        assert!(reserved.is_empty(), "IPs still reserved: {reserved:?}");
        assert!(
            pod_rules.is_empty(),
            "per-pod iptables rules left: {pod_rules:#?}"
        );
        assert!(cache.is_empty(), "cache files left: {cache:?}");
        let links = run("ip", &["-o", "link", "show"]);
        assert!(!links.contains(&self.bridge), "bridge {} left", self.bridge);
        let netns = run("ip", &["netns", "list"]);
        assert!(!netns.contains(&self.tag), "netns left: {netns}");
        let left: Vec<_> = iptables_lines()
            .symmetric_difference(&self.iptables_before)
            .cloned()
            .collect();
        assert!(
            left.is_empty(),
            "iptables differs from before the test: {left:#?}"
        );
        assert_eq!(nft_tables(), self.nft_tables_before, "nftables tables left");
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if !self.finished {
            self.clean_up();
        }
    }
}
